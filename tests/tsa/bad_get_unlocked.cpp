// Writes through get() without holding the container's mutex.
// EXPECT-DIAGNOSTIC: calling function 'get' requires holding mutex '.*' exclusively
#include <string>
#include <unordered_map>

#include "polymap/check/guarded.hpp"

void f(polymap::check::guarded<std::unordered_map<std::string, int>>& m) {
  m.get()["a"] = 1;
}

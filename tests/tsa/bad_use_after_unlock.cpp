// Keeps using the container after the guard's scope ended.
// EXPECT-DIAGNOSTIC: calling function 'get' requires holding mutex '.*' exclusively
#include <string>
#include <unordered_map>

#include "polymap/check/guarded.hpp"

namespace check = polymap::check;

void f(check::guarded<std::unordered_map<std::string, int>>& m) {
  {
    check::lock_guard g(m.mutex());
    m.get()["a"] = 1;
  }
  m.get()["b"] = 2;
}

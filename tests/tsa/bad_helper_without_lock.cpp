// A helper declared POLYMAP_REQUIRES(m.mutex()) called without the lock.
// EXPECT-DIAGNOSTIC: calling function 'bump' requires holding mutex '.*' exclusively
#include <string>
#include <unordered_map>

#include "polymap/check/guarded.hpp"

namespace check = polymap::check;
using map = std::unordered_map<std::string, int>;

void bump(check::guarded<map>& m) POLYMAP_REQUIRES(m.mutex()) {
  ++m.get()["hits"];
}

void f(check::guarded<map>& m) {
  bump(m);
}

// Holds the reader-writer mutex shared, then writes: get() needs it exclusively.
// EXPECT-DIAGNOSTIC: calling function 'get' requires holding mutex '.*' exclusively
#include <string>
#include <unordered_map>

#include "polymap/check/guarded.hpp"

namespace check = polymap::check;

void f(check::guarded<std::unordered_map<std::string, int>, check::owned_shared_mutex<>>& m) {
  check::shared_lock_guard g(m.mutex());
  m.get().erase("a");
}

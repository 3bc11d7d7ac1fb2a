// Calls with_lock() (which takes the mutex) while already holding it: a
// self-deadlock with a non-recursive mutex.
// EXPECT-DIAGNOSTIC: cannot call function 'with_lock' while mutex '.*' is held
#include <string>
#include <unordered_map>

#include "polymap/check/guarded.hpp"

namespace check = polymap::check;
using map = std::unordered_map<std::string, int>;

void f(check::guarded<map>& m) {
  check::lock_guard g(m.mutex());
  m.with_lock([](map& u) { u["a"] = 1; });
}

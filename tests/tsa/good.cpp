// Correct use of guarded<>: compiles cleanly under
// clang++ -Wthread-safety -Werror (tests/tsa/CMakeLists.txt). The bad_*.cpp
// files next to it each break one rule and must be rejected.
#include <cstddef>
#include <string>
#include <unordered_map>

#include "polymap/check/guarded.hpp"

namespace check = polymap::check;

using map = std::unordered_map<std::string, int>;

std::size_t exclusive(check::guarded<map>& m) {
  check::lock_guard g(m.mutex());
  m.get()["a"] = 1;
  m->insert_or_assign("b", 2);
  return m.get_shared().size();
}

int shared(const check::guarded<map, check::owned_shared_mutex<>>& m) {
  check::shared_lock_guard g(m.mutex());
  const auto it = m.get_shared().find("a");
  return it == m.get_shared().end() ? 0 : it->second + static_cast<int>(m->size());
}

void writer(check::guarded<map, check::owned_shared_mutex<>>& m) {
  check::lock_guard g(m.mutex());
  m.get().erase("a");
}

// A helper that states its requirement: the caller must hold the mutex.
void bump(check::guarded<map>& m) POLYMAP_REQUIRES(m.mutex()) {
  ++m.get()["hits"];
}

int callbacks(check::guarded<map>& m) {
  m.with_lock([](map& u) { u["c"] = 3; });
  {
    check::lock_guard g(m.mutex());
    bump(m);
  }
  return m.with_shared_lock([](const map& u) { return static_cast<int>(u.size()); });
}

void setup(check::guarded<map>& m) {
  m.unguarded().reserve(16);
}

int main() {
  check::guarded<map> m;
  check::guarded<map, check::owned_shared_mutex<>> s;
  setup(m);
  writer(s);
  return static_cast<int>(exclusive(m)) + shared(s) + callbacks(m) > 0 ? 0 : 1;
}

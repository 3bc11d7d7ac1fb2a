// Reads through get_shared() without holding the mutex at all.
// EXPECT-DIAGNOSTIC: calling function 'get_shared' requires holding mutex '.*'
#include <cstddef>
#include <string>
#include <unordered_map>

#include "polymap/check/guarded.hpp"

std::size_t f(const polymap::check::guarded<std::unordered_map<std::string, int>>& m) {
  return m.get_shared().size();
}

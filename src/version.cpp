#include "polymap/polymap.hpp"

namespace polymap {
const char* version() noexcept {
  return "0.1.0";
}
}  // namespace polymap

// polymap/polymap.hpp — everything public, in one include.
#pragma once

#include "polymap/locked_map.hpp"
#include "polymap/result.hpp"
#include "polymap/stats.hpp"
#include "polymap/value.hpp"

namespace polymap {
// The library's version, "major.minor.patch".
const char* version() noexcept;
}  // namespace polymap

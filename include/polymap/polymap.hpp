// polymap/polymap.hpp — everything public, in one include.
#pragma once

#include "polymap/concurrent_map.hpp"
#include "polymap/context.hpp"
#include "polymap/locked_map.hpp"
#include "polymap/result.hpp"
#include "polymap/snapshot_map.hpp"
#include "polymap/stats.hpp"
#include "polymap/typed_store.hpp"
#include "polymap/value.hpp"

namespace polymap {
// The library's version, "major.minor.patch".
const char* version() noexcept;
}  // namespace polymap

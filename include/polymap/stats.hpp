// polymap/stats.hpp — what every map's stats() returns, and what
// config::config_store::stats() returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace polymap {

struct stats_t {
  std::string map;           // "locked_map", "concurrent_map", ...
  std::size_t size = 0;      // entries
  std::size_t capacity = 0;  // slots (or buckets) allocated
  double load_factor = 0.0;  // size / capacity
  // probe_length_histogram[i]: entries found after i+1 probed groups (or chain
  // steps). Empty where the map cannot measure it without cost.
  std::vector<std::uint64_t> probe_length_histogram;
  std::uint64_t growths = 0;     // rehashes into a larger table since construction
                                 // (snapshot_map: rebuilds of its read index)
  std::uint64_t lock_waits = 0;  // lock acquisitions that found the lock taken
  std::size_t bytes = 0;         // memory held by the table (approximate; 0 if unknown)
  // Reclamation backlog of the map's epoch domain (shared by every map in the
  // domain, so not this map's alone): objects retired and not yet freed, and
  // their bytes as far as known. It grows while any thread stays pinned, e.g.
  // a visit callback that blocks. 0 for maps without deferred reclamation.
  std::size_t retired_pending = 0;
  std::size_t retired_pending_bytes = 0;
};

// A config_store's reload counters (polymap::to_prometheus renders them).
struct config_stats {
  std::uint64_t reloads_accepted = 0;  // the first load included
  std::uint64_t reloads_rejected = 0;
  std::uint64_t version = 0;          // the snapshot_map version in force
  std::uint64_t callback_errors = 0;  // subscriber calls that threw
  double last_accepted_time = 0;      // unix seconds of the last accepted reload; 0: never
  double last_error_time = 0;         // unix seconds of the last rejected reload; 0: never
  struct source {
    std::string name;            // config_source::name()
    bool ok = true;              // its last load succeeded and its status is not failed
    std::uint64_t revision = 0;  // source_status::revision
    std::string state;           // source_status::st: "idle", "connected", "retrying" or "failed"
    std::string last_error;      // source_status::last_error (empty if none)
  };
  std::vector<source> sources;  // in precedence order
};

}  // namespace polymap

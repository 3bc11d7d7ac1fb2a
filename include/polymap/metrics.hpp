// polymap/metrics.hpp — every map's stats() in the Prometheus text exposition
// format (version 0.0.4), ready to serve on a /metrics endpoint.
//
// FAMILIES (one HELP and one TYPE line each, then one sample per map)
//   polymap_map_entries              gauge      entries (stats_t::size)
//   polymap_map_capacity             gauge      slots or buckets allocated
//   polymap_map_load_factor          gauge      size / capacity
//   polymap_map_memory_bytes         gauge      table memory (0 if unknown)
//   polymap_map_growths_total        counter    rehashes into a larger table
//   polymap_map_lock_waits_total     counter    lock acquisitions that waited
//   polymap_reclaim_pending_objects  gauge      retired, not yet freed (epoch domain)
//   polymap_reclaim_pending_bytes    gauge      their bytes, as far as known
//   polymap_map_probe_length         histogram  groups (or chain steps) probed
//                                               to find an entry: _bucket{le},
//                                               _sum, _count
//
// LABELS
//   instance="<name the service gives the map>", type="<stats_t::map>".
//   Label values are escaped as the format requires (\\, \", \n).
//
// A page that shows several maps must render them in one call (the vector
// overload): the format allows one HELP/TYPE block per family per page.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "polymap/stats.hpp"

namespace polymap {

// One map's statistics with the name the service knows it by.
struct named_stats {
  std::string instance;
  stats_t stats;
};

// The metrics of one map, labelled instance=instance_label, type=s.map.
std::string to_prometheus(const stats_t& s, std::string_view instance_label);

// The metrics of several maps on one page (each family's HELP/TYPE once).
std::string to_prometheus(const std::vector<named_stats>& maps);

}  // namespace polymap

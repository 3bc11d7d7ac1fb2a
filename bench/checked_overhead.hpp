// bench/checked_overhead.hpp — what polymap::check::checked<M> costs on a
// single thread, against the bare container measured in the same run.
//
// METHOD
//   Keys: N distinct uint64 keys (a bijective mix of 1..N), inserted in one
//   fixed order into every map measured, so the bare and the checked tables
//   have the same layout. Probes: a pre-generated array of at least 4096
//   entries, made of fixed-seed shuffles of the N keys (every probe hits),
//   each entry marked "write" with probability 1/10 for the mixed workload.
//   The timed loop walks the array cyclically: no random-number work, no
//   modulo. Each lookup's result goes through a DoNotOptimize-style sink (an
//   empty asm that claims to read it), so no lookup is elided or hoisted.
//   Workloads: find (hits, the value read), contains (hits), mixed (90% find,
//   10% insert_or_assign of an existing key: the size stays N).
//   Variants: the bare container, checked<M, read_check::count> and
//   checked<M, read_check::validate>, for std::unordered_map<uint64_t,
//   uint64_t> and boost::unordered_flat_map<uint64_t, uint64_t>; and the bare
//   polymap::locked_map<uint64_t, uint64_t> against stale_checked<> of it
//   (check/stale.hpp: the stale-read detector of issue 18).
//   One repeat times `ops` operations of every (container, workload,
//   variant) in turn, the order rotated each repeat, so that noise falls on
//   all variants alike. Runs are timed by the thread's CPU clock
//   (CLOCK_THREAD_CPUTIME_ID): time spent descheduled by other work on a
//   shared machine is not counted; cache pollution by that work still is.
//   The reported ns/op is the median of the
//   repeats; the ratio is the median of the per-repeat ratios, each run over
//   the bare container's run of the same repeat (paired, so that load on a
//   shared machine mostly cancels). A measurement, not a test: nothing
//   asserts a timing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace polymap::bench {

struct checked_overhead_options {
  std::size_t size = 10'000;    // keys in each map
  std::size_t ops = 2'000'000;  // operations per timed run
  int repeats = 5;              // timed runs per row; the median is reported (at least 3)
  std::uint64_t seed = 20240607;
};

struct checked_overhead_row {
  std::string container;          // "std::unordered_map", "boost::unordered_flat_map", "polymap::locked_map"
  std::string workload;           // "find", "contains", "mixed"
  std::string variant;            // "bare", "checked<count>", "checked<validate>", "stale_checked"
  std::vector<double> ns_per_op;  // one per repeat
  double median = 0;              // ns per operation, the median of ns_per_op
  double ratio = 0;               // the median of ns_per_op[i] / bare ns_per_op[i] (1 for the bare row)
};

struct checked_overhead_results {
  checked_overhead_options options;
  std::string cpu, compiler, build_type;
  int cores = 0;
  std::string load_before, load_after;  // the 1-minute load average around the run
  bool checked_refs = false;            // POLYMAP_CHECKED_REFS in the measured code
  std::vector<checked_overhead_row> rows;
  double elapsed_seconds = 0;
};

// The target of issue 5: checked<> within 10% of the bare container.
inline constexpr double checked_overhead_target = 1.10;
// The target of issue 18: stale_checked<> within 25% of the bare locked_map.
inline constexpr double stale_checked_overhead_target = 1.25;

// Throws std::invalid_argument for size 0, ops 0 or fewer than 3 repeats.
checked_overhead_results run_checked_overhead(const checked_overhead_options& opt);

std::string render_checked_overhead_table(const checked_overhead_results& r);
nlohmann::json to_json(const checked_overhead_results& r);

}  // namespace polymap::bench

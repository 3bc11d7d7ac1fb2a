// bench/latency.hpp — per-operation latency while a map grows (issue 16;
// `polymap bench latency`).
//
// METHOD
//   Keys: N distinct uint64 keys (make_u64_keys, a bijective mix of 0..N-1),
//   values polymap::value holding an int64, through the same adapters as
//   `polymap bench` (bench/adapters.hpp).
//   One run of one map is four phases on a fresh map (no reserve; the
//   adapter's n_hint sizes only maps that cannot grow, xenium):
//     insert        T threads insert keys[0, N) from EMPTY, each thread a
//                   contiguous slice; every insert timed alone.
//     mixed_find,   a second fresh map is prefilled with keys[0, N/2) by T
//     mixed_insert  threads (untimed); then T threads alternate a find of a
//                   uniformly chosen prefilled key and an insert of the next
//                   key of their slice of keys[N/2, N), each timed alone.
//                   A table that grew by doubling from empty to N/2 keys has
//                   at most twice N/2 slots at its load limit, so the N/2 more
//                   keys cross at least one growth while the finds run.
//     find          then T threads find N/2 uniformly chosen keys of the now
//                   grown map: steady-state finds to compare with mixed_find.
//   Every find must hit and every insert must insert (the keys are distinct);
//   a map that does otherwise is reported as an error.
//   Timing: std::chrono::steady_clock::now() before and after the one call
//   (clock_gettime(CLOCK_MONOTONIC), through the vDSO where the clock source
//   is the TSC), so each sample includes one clock read's cost; that cost is
//   measured at the start (back-to-back reads) and reported, not subtracted.
//   Samples go to a per-thread log-linear histogram (below), merged per run
//   and pooled per map over the runs; the exact maximum of each run is kept.
//   Throughput: the phase's operations of the row's kind over the phase's wall
//   time (release to the last join), clock reads included.
//   Runs are interleaved (run 1 of every map, then run 2 ...), so a load
//   change on a shared machine hits every map alike; median over runs.
//
// WHY A HISTOGRAM
//   2,000,000 inserts x 5 runs x 5 maps x 4 phases are ~150 million samples.
//   Raw uint32 nanoseconds would be 600 MB and, while recording, a stream of
//   stores competing with the map for cache. A histogram in the style of
//   HdrHistogram keeps 30 KB per thread whatever N is, pools runs by adding
//   counts, and costs a few instructions per sample; its percentiles are the
//   upper bound of their bucket, at most 1/64 (1.6%) above the true value;
//   values under 128 ns are exact; the maximum is exact.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/results.hpp"

namespace polymap::bench::latency {

// Log-linear buckets over nanoseconds: 0..127 one bucket per value, then 64
// buckets per power of two.
class histogram {
 public:
  static constexpr unsigned sub_bits = 6;                                 // 64 sub-buckets per power of two
  static constexpr std::size_t exact_limit = std::size_t{2} << sub_bits;  // 128
  static constexpr std::size_t bucket_count = (64 - sub_bits) * (std::size_t{1} << sub_bits) + exact_limit;

  static std::size_t index(std::uint64_t ns) {
    if (ns < exact_limit) return static_cast<std::size_t>(ns);
    const unsigned shift = static_cast<unsigned>(std::bit_width(ns)) - (sub_bits + 1);
    return (std::size_t{shift} << sub_bits) + static_cast<std::size_t>(ns >> shift);
  }
  // The largest value that falls in bucket i.
  static std::uint64_t upper(std::size_t i);

  void record(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++count_;
    if (ns > max_) max_ = ns;
  }
  void merge(const histogram& o);
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  // The value at or below which p percent of the samples lie (nearest rank),
  // as its bucket's upper bound, never above max(). 0 when empty.
  std::uint64_t percentile(double p) const;

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0, max_ = 0;
};

enum class phase { insert, mixed_find, mixed_insert, find };
const char* name(phase p);                          // "insert", "mixed_find", "mixed_insert", "find"
const char* title(phase p, bool reserved = false);  // "insert from empty", ...; reserved: a --reserve run's
std::vector<phase> all_phases();

struct settings {
  std::size_t n = 2'000'000;
  int threads = 2;
  int runs = 5;
  std::vector<std::string> maps;  // empty: default_maps()
  bool mixed = true;              // the mixed and find phases
  bool reserve = false;           // reserve(n) each map before it fills: no growth (the floor without one)
  std::uint64_t seed = 42;
};

// The maps run when --maps is not given: polymap's concurrent maps and every
// packaged concurrent peer in this build.
std::vector<std::string> default_maps();
// Every map this benchmark can run (all of `polymap bench --list`; the
// one-thread map only with threads = 1).
std::vector<map_info> available_maps();

// "" if s can run, else what is wrong, naming the option.
std::string validate(const settings& s);
double estimate_seconds(const settings& s);

struct row {
  std::string map;
  latency::phase phase = phase::insert;
  std::uint64_t ops = 0;  // samples pooled over the runs
  std::uint64_t p50_ns = 0, p99_ns = 0, p999_ns = 0, p9999_ns = 0, max_ns = 0;
  std::vector<std::uint64_t> run_max_ns;  // one per run
  std::uint64_t median_run_max_ns = 0;
  // One per run, summed over the phase's threads: involuntary context
  // switches (a preemption, or a yield that let another task run) and the
  // time they waited, runnable, for a CPU. A max far above the run's wait
  // came from the map (or the hypervisor); one within it may be the host's
  // (on this project's VMs, kdamond and the sandbox agent take a vCPU for
  // 3-16 ms: docs/concurrent_map.md, session 28).
  std::vector<std::uint64_t> run_switches, run_waited_ns;
  std::vector<double> mops;  // one per run
  double median_mops = 0;
};

struct results {
  machine_info machine;
  std::string load_average;  // /proc/loadavg's first three fields at the start
  settings config;
  std::string clock;               // what timed each operation
  std::uint64_t clock_p50_ns = 0;  // two back-to-back clock reads, median
  std::uint64_t clock_p99_ns = 0;
  std::vector<map_info> maps;
  std::vector<row> rows;            // map-major, phases in all_phases() order
  std::vector<std::string> errors;  // misses, failed inserts, wrong sizes
  double elapsed_seconds = 0;
};

const row* find_row(const results& r, const std::string& map, phase p);

struct progress {
  std::size_t done = 0, total = 0;  // (run, map) steps
  std::string line;
  double elapsed_seconds = 0, eta_seconds = 0;
};

// Precondition: validate(s) is "".
results run(const settings& s, const std::function<void(const progress&)>& on_progress = {});

// "123 ns", "4.56 us", "65.4 ms".
std::string format_ns(std::uint64_t ns);
// A markdown table: one row per map and phase.
std::string render_table(const results& r);
// A row's "each run's max (involuntary switches, time waited for a CPU)":
// "2.31 ms (12, 4.1 ms), 1.20 ms (3, 35.2 us)".
std::string runs_with_switches(const row& x);
nlohmann::json to_json(const results& r);

}  // namespace polymap::bench::latency

// bench/publish.hpp — read throughput while one writer publishes on a fixed
// schedule, and single-key write latency (issue 4; `polymap bench publish`).
//
// METHOD
//   Maps: snapshot_map, concurrent_map and locked_map, all <uint64_t, V> with
//   V = uint64_t (default) or polymap::value (an int64 inside).
//   Keys: N distinct uint64 keys (make_u64_keys), every map prefilled with all
//   N of them; nothing is erased, so every find must hit.
//   Value words: (round << 32) | key index. The prefill is round 0; the
//   writer's r-th publish of a map (counted over the map's whole life) is
//   round r and writes the keys with indices ((r-1)*batch + j) mod N,
//   j < batch.
//
//   Throughput cell (map, readers R, writer on/off), one repeat:
//     R reader threads walk their own pre-generated array of uniformly chosen
//     key indices (fixed seed, the same arrays for every map) and call
//     find(); each counts its operations and hits, checks that a found
//     value's low 32 bits are the key's index (a torn or misplaced value
//     would not be), and adds the value to a sink that ends in a global
//     atomic. The main thread releases everyone from a latch, sleeps for the
//     duration and raises a stop flag (polled every 256 finds); each reader's
//     Mops/s is its own finds over its own time from the release to its stop.
//     The writer (if on) wakes at t0 + k * period (sleep_until on
//     steady_clock, so lateness does not accumulate), writes `batch` keys as
//     one round -- snapshot_map: one apply(batch), a single publish;
//     concurrent_map and locked_map: insert_or_assign per key -- and times the
//     round. A slot already past when the writer gets to it is skipped and
//     counted as missed, not made up in a burst. scheduled = whole periods in
//     the run; achieved = rounds written.
//     snapshot_map with batch > 1 (unless verify is off): every 1024 finds a
//     reader takes snapshot(), reads the first key of the round the writer
//     is writing (announced before it writes) or wrote last, and, if that
//     value carries round r > 0, checks up to 16 keys of round r's batch in
//     the same snapshot: each must carry a round >= r (an apply is
//     all-or-nothing, and later rounds only raise a key's round). Those
//     lookups are not counted as operations.
//   Cells run interleaved (repeat, readers, writer, map), so load changes on
//   a shared machine hit every map alike; each cell reports the median over
//   its repeats. Ratios are taken within one run: against locked_map in the
//   same (values, readers, writer) cell, and against the same map with no
//   writer.
//
//   Write latency (map, N): a fresh map prefilled with N keys (snapshot_map
//   through apply() in chunks of 65,536 keys), writes/10 untimed warm-up
//   writes, then `writes` insert_or_assign calls of uniformly chosen present
//   keys from one thread with no readers, each timed alone with steady_clock;
//   median, p99 (nearest rank), mean and max in microseconds. The map is
//   destroyed before the next one is built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/results.hpp"

namespace polymap::bench::publish {

// The map every throughput and latency ratio is taken against.
inline constexpr const char* reference_map = "locked_map";

enum class value_kind { u64, value };
const char* name(value_kind v);  // "u64", "value"
std::optional<value_kind> parse_value_kind(const std::string& s);

// The maps this benchmark drives, in table order.
std::vector<std::string> map_names();

struct settings {
  std::size_t size = 10'000;  // N for the throughput cells
  std::vector<int> readers = {1, 2};
  double duration = 1.0;           // seconds per repeat of a cell
  std::uint64_t period_us = 1000;  // writer: one round per period
  int repeats = 3;
  std::size_t batch = 1;          // keys per round
  std::vector<std::string> maps;  // empty: map_names()
  std::vector<value_kind> values = {value_kind::u64};
  bool verify = true;  // snapshot_map batch check (batch > 1)
  bool throughput = true;
  bool latency = true;
  std::vector<std::size_t> latency_sizes = {10'000, 1'000'000};
  std::size_t latency_writes = 2000;
  std::uint64_t seed = 42;
};

// "" if s can run, else what is wrong, naming the CLI option.
std::string validate(const settings& s);

// A rough duration of run(s) in seconds, for the progress line.
double estimate_seconds(const settings& s);

// One repeat of one throughput cell.
struct sample {
  double seconds = 0;                        // the longest reader's run
  double window_seconds = 0;                 // release to stop, on the main thread
  std::vector<double> reader_mops;           // per reader thread
  double mops = 0;                           // sum of reader_mops
  std::uint64_t ops = 0, hits = 0;           // finds, and finds that found the key
  std::uint64_t bad_values = 0;              // found values not tagged with their key
  std::uint64_t checks = 0, violations = 0;  // snapshot batch checks
  std::uint64_t publishes = 0, scheduled = 0, missed_slots = 0;
  double publish_us_median = 0, publish_us_p99 = 0;  // one round, writer side
};

struct cell {
  std::string map;
  value_kind values = value_kind::u64;
  int readers = 1;
  bool writer = false;
  std::vector<sample> samples;  // one per repeat
  // Medians over the repeats:
  double mops = 0;             // all readers together
  double mops_per_thread = 0;  // mops / readers
  double publishes_per_s = 0, scheduled_per_s = 0, publish_us_median = 0, publish_us_p99 = 0;
  std::optional<double> vs_reference;  // mops / locked_map's mops, same cell
  std::optional<double> vs_idle;       // mops / this map's no-writer mops
  // Sums over the repeats (misses and violations must be 0):
  std::uint64_t ops = 0, misses = 0, bad_values = 0, checks = 0, violations = 0;
};

struct latency_row {
  std::string map;
  value_kind values = value_kind::u64;
  std::size_t n = 0;
  std::size_t writes = 0;
  double prefill_seconds = 0;
  double median_us = 0, p99_us = 0, mean_us = 0, max_us = 0;
  std::optional<double> vs_reference;  // median over locked_map's median, same n
};

struct results {
  machine_info machine;
  std::string load_average;  // /proc/loadavg's first three fields at the start
  settings config;
  std::vector<cell> cells;
  std::vector<latency_row> latency;
  double elapsed_seconds = 0;
};

struct progress {
  std::size_t done = 0, total = 0;  // throughput repeats and latency rows
  std::string line;                 // what just finished or is starting
  double elapsed_seconds = 0, eta_seconds = 0;
};

// Runs the benchmark; on_progress gets a line per finished step and per
// prefill chunk of large maps. Precondition: validate(s) is "".
results run(const settings& s, const std::function<void(const progress&)>& on_progress = {});

// Markdown tables of the throughput cells and of the latency rows.
std::string render_table(const results& r);

nlohmann::json to_json(const results& r);

}  // namespace polymap::bench::publish

// bench/results.hpp — what a benchmark run measured, as the driver produces it
// and the report (JSON, table, HTML) consumes it. Kept free of the peers'
// headers so the report renders anywhere, from a committed JSON file.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/host_probe.hpp"

namespace polymap::bench {

// The map every ratio is taken against, measured in the same run.
inline constexpr const char* baseline_map = "std_shared_mutex";
// The one-thread, no-synchronization limit (plain boost::unordered_flat_map).
inline constexpr const char* nosync_map = "nosync_flat";

// Workloads over pre-generated operations. The mixed ones run on a map
// prefilled with all N keys and draw every key from those N (finds always
// hit; insert_or_assign always assigns, so the size stays N).
enum class workload { find100, find95, find50, insert };
enum class key_kind { u64, str };
enum class distribution { uniform, zipf };

const char* name(workload w);      // "find100", "find95", "find50", "insert"
const char* title(workload w);     // "100% find", "95% find / 5% insert_or_assign", ...
const char* name(key_kind k);      // "u64", "str"
const char* title(key_kind k);     // "uint64 keys", "16-24 char string keys"
const char* name(distribution d);  // "uniform", "zipf"
std::optional<workload> parse_workload(const std::string& s);
std::optional<key_kind> parse_keys(const std::string& s);
std::optional<distribution> parse_distribution(const std::string& s);
std::vector<workload> all_workloads();

struct map_info {
  std::string name;         // "tbb_hash_map"
  std::string label;        // "tbb::concurrent_hash_map"
  std::string description;  // how the adapter drives it
  bool concurrent = true;   // false: runs at one thread only
};

struct config {
  std::string map;
  workload wl = workload::find100;
  key_kind keys = key_kind::u64;
  std::size_t n = 0;
  distribution dist = distribution::uniform;
  int threads = 1;
};

struct measurement {
  config cfg;
  std::vector<double> mops;  // one per repeat, million operations per second
  double median = 0;
  std::optional<double> ratio;  // median / the baseline's median, same config
};

struct memory_row {
  std::string map;
  key_kind keys = key_kind::u64;
  std::size_t n = 0;
  double bytes_per_entry = 0;
};

struct machine_info {
  std::string cpu;
  int cores = 0;
  std::string compiler;
  std::string build_type;
  std::string date;  // UTC, ISO 8601
  std::string note;  // "2 cores shared with compiles: noisy", set by the caller
  // How fast a cache line crosses between two CPUs, at the start of the run
  // (detect_machine) and at its end (finish_machine): bench/host_probe.hpp.
  host_probe probe_start;
  host_probe probe_end;
};

// machine_info as JSON: the fields above, "host_probe": {"start", "end"}
// and `extra` merged in; and back (a file without a probe reads as not
// measured).
nlohmann::json machine_json(const machine_info& m, const nlohmann::json& extra = nlohmann::json::object());
machine_info machine_from_json(const nlohmann::json& j);
// "a cache line's round trip between CPUs 0 and 1 took 182 ns at the start
// of the run and 190 ns at its end" (or why the probe did not run).
std::string describe_host(const machine_info& m);

struct run_settings {
  int repeats = 3;
  double seconds_per_run = 0.2;  // mixed workloads: wall time of one repeat
  std::size_t ops_per_run = 0;   // if non-zero: a fixed op count instead of time
  std::string memory_method;
  std::string timing_method;
};

struct results {
  machine_info machine;
  run_settings settings;
  std::vector<map_info> maps;
  std::vector<measurement> rows;
  std::vector<memory_row> memory;
  double elapsed_seconds = 0;
};

// Fills every row's ratio from the baseline row of the same configuration.
void compute_ratios(results& r);

nlohmann::json to_json(const results& r);
// Throws std::runtime_error naming the first thing it cannot read.
results from_json(const nlohmann::json& j);

}  // namespace polymap::bench

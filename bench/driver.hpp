// bench/driver.hpp — runs the benchmark matrix over every map adapter.
//
// METHOD
//   Keys: N distinct uint64 keys (a bijective mix of 0..N-1) or N distinct
//   16-24 character strings, built before anything is timed.
//   Operations: per thread, an array of pre-generated (key index, read|write)
//   words drawn uniformly or by Zipf(0.99) (ranks scattered over the keys by
//   a fixed permutation), with the workload's write share. Threads walk their
//   own array cyclically, so the timed loop does no random-number work.
//   Mixed workloads (find100/95/50) run on one map per (map, keys, N),
//   prefilled with all N keys, for seconds_per_run (or ops_per_run) each; the
//   main thread releases the workers from a latch, sleeps, raises a stop flag
//   (polled every 256 ops) and divides the ops done by the wall time.
//   insert: N inserts into a fresh map (no reserve), keys split between the
//   threads; rounds repeat until seconds_per_run of timed inserting is done.
//   Memory: heap bytes live after one thread inserts the N keys into a fresh
//   map, counted by a replaced global operator new (malloc_usable_size of each
//   block, so allocator rounding is included, malloc headers are not), divided
//   by N. String keys' own heap blocks (over 15 chars) are included.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "bench/results.hpp"

namespace polymap::bench {

struct matrix {
  std::vector<std::string> maps;  // empty: every available map
  std::vector<workload> workloads = all_workloads();
  std::vector<key_kind> keys = {key_kind::u64, key_kind::str};
  std::vector<std::size_t> ns = {10'000, 2'000'000};
  std::vector<distribution> dists = {distribution::uniform, distribution::zipf};
  std::vector<int> threads = {1, 2, 4};
  int repeats = 3;
  double seconds_per_run = 0.2;
  std::size_t ops_per_run = 0;
  bool memory = true;
};

// The reduced matrix `polymap bench --quick` runs (under a minute here).
matrix quick_matrix();

struct progress {
  std::size_t done = 0, total = 0;  // measurements (config x map)
  const measurement* last = nullptr;
  double elapsed_seconds = 0;
  double eta_seconds = 0;
  std::string note;  // e.g. "prefilling tbb_hash_map with 2000000 str keys"
};

// The maps compiled into this build (peers whose packages were found).
std::vector<map_info> available_maps();

// A peer this build could not compile (its package was not found at
// configure time): its --maps name, what it is, and the Debian 12 package
// that brings it (then reconfigure and rebuild).
struct missing_peer {
  std::string name, label, package;
};
std::vector<missing_peer> missing_peers();

// Names in m.maps that are not available (empty if all are).
std::vector<std::string> unknown_maps(const matrix& m);

// A rough duration of run(m), in seconds, before it starts.
double estimate_seconds(const matrix& m);

// Runs the matrix. on_progress is called after each measurement and before
// each prefill.
results run(const matrix& m, const std::function<void(const progress&)>& on_progress = {});

// Drives one adapter as a map: inserts n keys, finds them all, assigns some,
// checks size. Returns "" if it behaved, else what went wrong.
std::string check_adapter(const std::string& map, key_kind keys, std::size_t n);

// The CPU, core count, compiler, build type and date of this run, and the
// host probe at its start (bench/host_probe.hpp: about 10-50 ms).
machine_info detect_machine();
// The host probe at the end of the run.
void finish_machine(machine_info& m);
// /proc/loadavg's first three fields ("" where there is none).
std::string read_loadavg();

// Heap bytes live right now by the counting operator new, and whether it
// counts; exposed for the tests.
long long counted_heap_bytes();
void set_heap_counting(bool on);

}  // namespace polymap::bench

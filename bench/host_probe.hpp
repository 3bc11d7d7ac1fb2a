// bench/host_probe.hpp — how fast a cache line travels between two of this
// machine's CPUs, measured at the start and at the end of each benchmark run
// and stored with its results.
//
// Why: on the shared 2-vCPU VMs this project measures on, the same binaries
// give different ratios from one run to the next. A map whose readers write
// a shared line (Boost's concurrent_flat_map takes each group's lock to
// read) scales from 1 to 2 threads in some runs and not at all in others,
// while polymap's lookups, which write no shared line, keep their speed
// (README, Latest benchmark). The line's round trip between the two CPUs
// the threads run on is the cost such a map pays; recording it with every
// result says which kind of run a ratio came from, and a probe at each end
// shows whether the host changed during the run.
//
// The probe pins two threads of its own to two CPUs the process may run on
// (the caller's affinity is not touched), bounces one cache line between
// them and keeps the median of several batches, so a batch in which a
// thread was preempted does not count. It takes about 10-50 ms.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace polymap::bench {

struct host_probe {
  bool measured = false;  // false: fewer than two CPUs to pin to, or a thread could not be pinned
  int cpu_a = -1;         // the two CPUs the probe's threads ran on
  int cpu_b = -1;
  double round_trip_ns = 0;  // median over batches of one line's trip to the other CPU and back
  std::string why_not;       // set when !measured
};

// Measures now. Never throws (a failure is a probe with measured == false).
host_probe probe_host() noexcept;

// "CPUs 0 and 1: a cache line's round trip 182 ns", or why it was not measured.
std::string describe(const host_probe& p);

// {"measured", "cpus", "round_trip_ns"} or {"measured": false, "why_not"};
// from_json accepts a missing or null value (files written before the probe).
nlohmann::json to_json(const host_probe& p);
host_probe host_probe_from_json(const nlohmann::json& j);

}  // namespace polymap::bench

#include "bench/host_probe.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <nlohmann/json.hpp>

namespace polymap::bench {

namespace {

constexpr int kBatches = 9;
constexpr std::uint32_t kTripsPerBatch = 2000;
constexpr auto kGiveUpAfter = std::chrono::seconds(2);  // both threads spin: bound the worst case

// The line the two threads bounce, alone on its cache line (and the next:
// an adjacent-line prefetcher must not pull a neighbour along).
struct alignas(128) line {
  std::atomic<std::uint32_t> turn{0};  // odd: the far thread's turn; even: the near thread's
  char pad[124];
};

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

bool pin_to(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// The first two CPUs this process may run on, or fewer.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

host_probe measure(int a, int b) {
  host_probe p;
  p.cpu_a = a;
  p.cpu_b = b;
  line l;
  // -1: not started; 0: the far thread failed to pin; 1: ready.
  std::atomic<int> far_state{-1};
  std::atomic<bool> stop{false};
  const std::uint32_t last = 2 * kBatches * kTripsPerBatch;
  // The far thread answers each odd turn with the next even one.
  std::thread far([&] {
    if (!pin_to(b)) {
      far_state.store(0);
      return;
    }
    far_state.store(1);
    for (std::uint32_t want = 1; want < last; want += 2) {
      // acquire/release: each turn's store is seen whole by the other thread;
      // nothing else is shared, so nothing stronger is needed.
      while (l.turn.load(std::memory_order_acquire) != want) {
        if (stop.load(std::memory_order_relaxed)) return;
        cpu_relax();
      }
      l.turn.store(want + 1, std::memory_order_release);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  // The near thread is a thread too, so the caller's own affinity stays as it was.
  const auto near_body = [&] {
    if (!pin_to(a)) {
      p.why_not = fmt::format("could not pin a thread to CPU {}", a);
      stop.store(true);
      return;
    }
    while (far_state.load() < 0) cpu_relax();
    if (far_state.load() == 0) {
      p.why_not = fmt::format("could not pin a thread to CPU {}", b);
      return;
    }
    std::array<double, kBatches> batch_ns{};  // no allocation: nothing in here may throw
    std::uint32_t turn = 0;
    for (int k = 0; k < kBatches; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      for (std::uint32_t i = 0; i < kTripsPerBatch; ++i) {
        l.turn.store(++turn, std::memory_order_release);
        ++turn;
        while (l.turn.load(std::memory_order_acquire) != turn) {
          cpu_relax();
          if (std::chrono::steady_clock::now() - start > kGiveUpAfter) {
            p.why_not = "the other CPU did not answer within 2 s (busy or throttled)";
            stop.store(true);
            return;
          }
        }
      }
      const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
      batch_ns[static_cast<std::size_t>(k)] = d.count() / kTripsPerBatch;
    }
    std::nth_element(batch_ns.begin(), batch_ns.begin() + kBatches / 2, batch_ns.end());
    p.round_trip_ns = batch_ns[kBatches / 2];
    p.measured = true;
  };
  // Nothing may leave a thread's function: a failed message is a probe not measured.
  const auto near_side = [&] {
    try {
      near_body();
    } catch (...) {
      p.measured = false;
      stop.store(true);
    }
  };
  try {
    std::thread near(near_side);
    near.join();
  } catch (...) {  // the near thread could not start: release the far one before rethrowing
    stop.store(true);
    far.join();
    throw;
  }
  far.join();
  return p;
}

}  // namespace

host_probe probe_host() noexcept {
  try {
    const std::vector<int> cpus = allowed_cpus();
    if (cpus.size() < 2) {
      host_probe p;
      p.why_not = "fewer than two CPUs to run on";
      return p;
    }
    host_probe p = measure(cpus[0], cpus[1]);
    if (!p.measured && p.why_not.empty()) p.why_not = "the probe's thread failed";
    return p;
  } catch (const std::exception& e) {  // a thread that could not start
    host_probe p;
    p.why_not = e.what();
    return p;
  } catch (...) {
    return host_probe{false, -1, -1, 0, "the probe failed"};
  }
}

std::string describe(const host_probe& p) {
  if (!p.measured) return "not measured: " + p.why_not;
  return fmt::format("CPUs {} and {}: a cache line's round trip {:.0f} ns", p.cpu_a, p.cpu_b, p.round_trip_ns);
}

nlohmann::json to_json(const host_probe& p) {
  if (!p.measured) return {{"measured", false}, {"why_not", p.why_not}};
  return {{"measured", true}, {"cpus", {p.cpu_a, p.cpu_b}}, {"round_trip_ns", p.round_trip_ns}};
}

host_probe host_probe_from_json(const nlohmann::json& j) {
  host_probe p;
  if (!j.is_object()) {
    p.why_not = "not in this file";
    return p;
  }
  p.measured = j.value("measured", false);
  p.why_not = j.value("why_not", "");
  if (p.measured) {
    const auto& c = j.at("cpus");
    p.cpu_a = c.at(0).get<int>();
    p.cpu_b = c.at(1).get<int>();
    p.round_trip_ns = j.at("round_trip_ns").get<double>();
  }
  return p;
}

}  // namespace polymap::bench

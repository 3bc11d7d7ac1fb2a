// polymap/verify/stress.hpp — the recorded stress harness, typed on the map.
//
//   polymap::verify::stress_options o;  o.threads = 4; o.keys = 4;
//   auto r = polymap::verify::run_stress<polymap::locked_map<>>(o);
//   EXPECT_TRUE(r.ok()) << r.report();
//
// Threads start together from a std::latch and run a seeded mixed load
// (find, contains, insert, insert_or_assign, erase, update as add, opaque
// update, compare_exchange) over `keys` keys through recorded<M> (and
// perturbed<M> when options.perturb), in rounds of `round_ops` operations per
// thread. After each round the threads join, the history is checked from the
// map's contents at the start of the round (so the map is never cleared and
// memory stays bounded), and the next round starts. A failing report names
// the seed that reproduces the run.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "polymap/value.hpp"
#include "polymap/verify/checker.hpp"
#include "polymap/verify/history.hpp"
#include "polymap/verify/perturb.hpp"
#include "polymap/verify/recorded.hpp"

namespace polymap::verify {

// Keys and values the stress load uses; specialize for other K or V.
template <class K, class = void>
struct stress_keys {
  static K make(std::size_t i) { return static_cast<K>(i); }
};
template <class K>
struct stress_keys<K, std::enable_if_t<std::is_constructible_v<K, std::string>>> {
  static K make(std::size_t i) { return K("k" + std::to_string(i)); }
};

template <class V, class = void>
struct stress_values {
  // A small range, so compare_exchange often finds what it expects.
  static V make(std::uint64_t r) { return static_cast<V>(r % 6); }
  static V delta(std::uint64_t r) { return static_cast<V>(1 + r % 3); }
};
template <>
struct stress_values<polymap::value> {
  static polymap::value make(std::uint64_t r) {
    switch (r % 8) {
      case 0:
      case 1:
      case 2:
        return polymap::value(static_cast<std::int64_t>((r >> 3) % 6));
      case 3:
        return polymap::value(static_cast<double>((r >> 3) % 3) * 0.5);
      case 4:
        return polymap::value(std::string((r >> 3) % 3, 's'));
      case 5:
        return polymap::value(polymap::make_bytes(1 + (r >> 3) % 40, std::byte{0x5a}));
      case 6:
        return polymap::value((r >> 3) % 2 == 0);
      default:
        return polymap::value(std::string(20 + (r >> 3) % 2, 'L'));  // heap-allocated string
    }
  }
  static polymap::value delta(std::uint64_t r) { return polymap::value(static_cast<std::int64_t>(1 + r % 3)); }
};

struct stress_options {
  std::size_t threads = 4;
  std::size_t ops_per_thread = 250'000;  // in all, over every round
  std::size_t round_ops = 50'000;        // per thread between checks
  std::size_t keys = 4;                  // few keys: high contention; many: spread
  std::uint64_t seed = 1;
  bool perturb = false;  // inject the seeded schedule (perturb.hpp)
  check_options check{};
};

template <class K, class V>
struct stress_result {
  std::uint64_t seed = 0;
  std::size_t operations = 0;  // recorded and checked
  std::size_t rounds = 0;
  std::size_t violating_keys = 0;  // over all rounds
  std::size_t inconclusive_keys = 0;
  std::uint64_t steps = 0;  // checker search steps
  std::string violations;   // the first failing round's report
  bool ok() const noexcept { return violating_keys == 0 && inconclusive_keys == 0; }
  std::string report() const {
    return fmt::format("{} operations in {} rounds checked: {} violating keys, {} inconclusive (seed {}){}\n{}",
                       operations, rounds, violating_keys, inconclusive_keys, seed,
                       ok() ? "" : fmt::format("; rerun with seed {} to reproduce", seed), violations);
  }
};

namespace detail_stress {

// One thread's share of a round, over any recorded map R.
template <class R, class K, class V>
void run_ops(R& r, std::mt19937_64& rng, std::size_t n, std::size_t keys, std::vector<std::optional<V>>& seen) {
  using keys_t = stress_keys<K>;
  using vals_t = stress_values<V>;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t x = rng();
    const std::size_t ki = static_cast<std::size_t>((x >> 40) % keys);
    K k = keys_t::make(ki);
    const std::uint64_t pick = x % 100;
    if (pick < 22) {
      seen[ki] = r.find(k);
    } else if (pick < 28) {
      r.contains(k);
    } else if (pick < 40) {
      r.insert(std::move(k), vals_t::make(x >> 8));
    } else if (pick < 52) {
      r.insert_or_assign(std::move(k), vals_t::make(x >> 8));
    } else if (pick < 62) {
      r.erase(k);
    } else if (pick < 77) {
      seen[ki] = r.add(std::move(k), vals_t::delta(x >> 8));
    } else if (pick < 82) {
      const V v = vals_t::make(x >> 8);
      seen[ki] = r.update(std::move(k), [&v](const V*) { return v; });
    } else {
      // Expect what this thread last saw half the time (often still current).
      const V expected = ((x >> 20) & 1) && seen[ki] ? *seen[ki] : vals_t::make(x >> 24);
      r.compare_exchange(k, expected, vals_t::make(x >> 8));
    }
  }
}

}  // namespace detail_stress

// Runs the recorded stress load on `map` (shared, possibly non-empty).
template <class M>
stress_result<typename M::key_type, typename M::mapped_type> run_stress(M& map, const stress_options& o) {
  using K = typename M::key_type;
  using V = typename M::mapped_type;
  stress_result<K, V> res;
  res.seed = o.seed;
  const std::size_t threads = o.threads ? o.threads : 1;
  const std::size_t keys = o.keys ? o.keys : 1;
  const std::size_t round = o.round_ops ? o.round_ops : o.ops_per_thread;
  recorder<K, V> rec(threads, std::min(round, o.ops_per_thread));
  std::vector<std::mt19937_64> rngs;
  for (std::size_t t = 0; t < threads; ++t) rngs.emplace_back(o.seed * 1000003u + t);
  std::vector<std::vector<std::optional<V>>> seen(threads, std::vector<std::optional<V>>(keys));
  std::optional<schedule> sched;
  if (o.perturb) {
    schedule_options so;
    so.seed = o.seed;
    so.threads = threads;
    so.ops_per_thread = o.ops_per_thread;
    sched.emplace(so);
  }
  std::vector<std::optional<thread_schedule>> tsched(threads);
  if (sched)
    for (std::size_t t = 0; t < threads; ++t) tsched[t].emplace(sched->for_thread(t));

  for (std::size_t done = 0; done < o.ops_per_thread; done += round) {
    const std::size_t n = std::min(round, o.ops_per_thread - done);
    initial_state<K, V> initial;
    map.for_each([&](const K& k, const V& v) { initial.emplace(k, v); });
    std::latch start(static_cast<std::ptrdiff_t>(threads));
    std::vector<std::thread> workers;
    for (std::size_t t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        start.arrive_and_wait();
        if (tsched[t]) {
          perturbed<M> p(map, std::move(*tsched[t]));
          recorded<perturbed<M>> r(p, rec.log(t));
          detail_stress::run_ops<recorded<perturbed<M>>, K, V>(r, rngs[t], n, keys, seen[t]);
          tsched[t].emplace(p.schedule_state());  // continue the schedule next round
        } else {
          recorded<M> r(map, rec.log(t));
          detail_stress::run_ops<recorded<M>, K, V>(r, rngs[t], n, keys, seen[t]);
        }
      });
    }
    for (auto& w : workers) w.join();
    auto h = rec.collect();
    auto c = check<K, V>(h, o.check, initial);
    ++res.rounds;
    res.operations += c.operations;
    res.steps += c.steps;
    res.violating_keys += c.violating_keys;
    res.inconclusive_keys += c.inconclusive_keys;
    if (!c.ok() && res.violations.empty()) res.violations = fmt::format("round {}: {}", res.rounds, c.report());
  }
  return res;
}

// The same on a fresh map.
template <class M>
stress_result<typename M::key_type, typename M::mapped_type> run_stress(const stress_options& o) {
  auto map = std::make_unique<M>();
  return run_stress(*map, o);
}

}  // namespace polymap::verify

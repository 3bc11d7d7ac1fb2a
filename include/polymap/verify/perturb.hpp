// polymap/verify/perturb.hpp — replayable schedule perturbation.
//
// Stress tests on a 2-core machine see few interleavings: threads run in long
// time slices, so two operations on one key rarely overlap in the same way
// twice. A `schedule` injects seeded yields and short sleeps at operation
// boundaries (before each call of a perturbed<M> map), in the spirit of PCT
// (Burckhardt et al., "A randomized scheduler with probabilistic guarantees of
// finding bugs", ASPLOS 2010):
//   * every thread gets a distinct random priority; a thread whose priority
//     ranks r-th (0 = highest) pauses at a boundary with probability r/(n+1),
//     so low-priority threads fall behind and high ones run ahead;
//   * at `depth - 1` random change points (counted in the thread's own
//     operations) the thread's priority drops below every other one, which
//     flips which side of a race wins, as PCT's priority change points do;
//   * a pause is a yield, or (one in eight) a sleep of 1..`max_sleep_us` us.
// Every decision comes from the seed and the thread's index only, so one seed
// injects the same pauses at the same operations on every run: print the
// seed when a check fails and rerun with it. The OS still schedules the rest,
// so a seed reproduces the perturbation, not necessarily the exact
// interleaving; in practice a failing seed fails again in a few reruns.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace polymap::verify {

struct schedule_options {
  std::uint64_t seed = 1;
  std::size_t threads = 2;
  std::size_t depth = 3;                 // PCT depth: depth - 1 priority change points per thread
  std::size_t ops_per_thread = 100'000;  // where change points are drawn from
  unsigned max_sleep_us = 50;
};

// The per-thread state of a schedule; call point() at each operation boundary.
class thread_schedule {
 public:
  thread_schedule(const schedule_options& o, std::size_t index, std::size_t priority_rank)
      : rng_(o.seed * 0x9E3779B97F4A7C15ull + index * 0xBF58476D1CE4E5B9ull + 1),
        threads_(o.threads),
        rank_(priority_rank),
        max_sleep_us_(o.max_sleep_us) {
    std::uniform_int_distribution<std::size_t> at(0, o.ops_per_thread ? o.ops_per_thread - 1 : 0);
    for (std::size_t i = 1; i < o.depth; ++i) change_points_.push_back(at(rng_));
  }

  void point() {
    ++step_;
    for (auto c : change_points_) {
      if (c == step_) rank_ = threads_;  // below every initial priority
    }
    // A pause with probability rank / (threads + 1).
    if (rng_() % (threads_ + 1) < rank_) {
      if (rng_() % 8 == 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(1 + rng_() % max_sleep_us_));
      } else {
        std::this_thread::yield();
      }
      ++pauses_;
    }
  }
  std::uint64_t pauses() const noexcept { return pauses_; }

 private:
  std::mt19937_64 rng_;
  std::size_t threads_;
  std::size_t rank_;
  unsigned max_sleep_us_;
  std::vector<std::size_t> change_points_;
  std::size_t step_ = 0;
  std::uint64_t pauses_ = 0;
};

// A seeded schedule for `threads` threads; for_thread(t) gives thread t's part.
class schedule {
 public:
  explicit schedule(const schedule_options& o) : opt_(o) {
    if (opt_.threads == 0) opt_.threads = 1;
    if (opt_.max_sleep_us == 0) opt_.max_sleep_us = 1;
    ranks_.resize(opt_.threads);
    for (std::size_t i = 0; i < ranks_.size(); ++i) ranks_[i] = i;
    std::mt19937_64 rng(opt_.seed);
    std::shuffle(ranks_.begin(), ranks_.end(), rng);
  }
  thread_schedule for_thread(std::size_t t) const { return thread_schedule(opt_, t, ranks_.at(t)); }
  std::uint64_t seed() const noexcept { return opt_.seed; }

 private:
  schedule_options opt_;
  std::vector<std::size_t> ranks_;
};

// A map wrapper that passes a schedule point before every operation. Like
// recorded<M>, one per thread over a shared map:
//   perturbed<locked_map<>> p(map, sched.for_thread(t));
template <class M>
class perturbed {
 public:
  using key_type = typename M::key_type;
  using mapped_type = typename M::mapped_type;

  perturbed(M& map, thread_schedule s) : map_(map), sched_(std::move(s)) {}

  template <class... A>
  bool insert(A&&... a) {
    sched_.point();
    return map_.insert(std::forward<A>(a)...);
  }
  template <class... A>
  bool insert_or_assign(A&&... a) {
    sched_.point();
    return map_.insert_or_assign(std::forward<A>(a)...);
  }
  template <class Q>
  auto find(const Q& q) {
    sched_.point();
    return map_.find(q);
  }
  template <class Q>
  bool contains(const Q& q) {
    sched_.point();
    return map_.contains(q);
  }
  template <class Q>
  bool erase(const Q& q) {
    sched_.point();
    return map_.erase(q);
  }
  template <class F>
  auto update(key_type k, F f) {
    sched_.point();
    return map_.update(std::move(k), std::move(f));
  }
  template <class Q>
  bool compare_exchange(const Q& q, const mapped_type& expected, mapped_type desired) {
    sched_.point();
    return map_.compare_exchange(q, expected, std::move(desired));
  }
  template <class Q, class F>
  bool visit(const Q& q, F f) {
    sched_.point();
    return map_.visit(q, std::move(f));
  }
  template <class F>
  bool insert_or_visit(key_type k, mapped_type v, F f) {
    sched_.point();
    return map_.insert_or_visit(std::move(k), std::move(v), std::move(f));
  }

  M& map() noexcept { return map_; }
  const thread_schedule& schedule_state() const noexcept { return sched_; }

 private:
  M& map_;
  thread_schedule sched_;
};

}  // namespace polymap::verify

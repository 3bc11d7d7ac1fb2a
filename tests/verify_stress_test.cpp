// The recorded stress harness: it must reject maps with seeded bugs and accept
// every real map on >= 1,000,000 recorded operations per map (default build;
// scaled down under sanitizers), at high contention and with spread keys.
// To check a new map, add it to `real_maps` below.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "polymap/locked_map.hpp"
#include "polymap/verify/verify.hpp"
#include "sanitizer_scale.hpp"
#include "wide_types.hpp"

#if __has_include("polymap/concurrent_map.hpp")
#include "polymap/concurrent_map.hpp"
#define POLYMAP_VERIFY_HAS_CONCURRENT_MAP 1
#endif
#if __has_include("polymap/snapshot_map.hpp")
#include "polymap/snapshot_map.hpp"
#define POLYMAP_VERIFY_HAS_SNAPSHOT_MAP 1
#endif

// A 64-byte V (concurrent_map boxes it): the load's values and the model's
// add. Every word of a big_value derives from its number, so a value pieced
// together from two writes would show as a value never written.
template <>
struct polymap::verify::stress_values<polymap::testing::big_value> {
  using V = polymap::testing::big_value;
  static V make(std::uint64_t r) { return V::of(r % 6); }
  static V delta(std::uint64_t r) { return V::of(1 + r % 3); }
};
template <>
struct polymap::verify::value_traits<polymap::testing::big_value> {
  using V = polymap::testing::big_value;
  static V add(const V* cur, const V& delta) { return cur ? V::of(cur->number() + delta.number()) : delta; }
  static std::size_t hash(const V& v) { return std::hash<V>{}(v); }
  static std::string show(const V& v) { return fmt::format("big({})", v.number()); }
};

namespace {

using polymap::value;
using polymap::testing::big_value;
namespace pv = polymap::verify;

constexpr std::size_t scale = polymap::testing::under_sanitizer ? 20 : 1;

// --- maps with seeded bugs ----------------------------------------------------

// Every `period`-th successful insert reports success but stores nothing.
class lossy_map : public polymap::locked_map<> {
 public:
  bool insert(std::string k, value v) {
    if (count_.fetch_add(1, std::memory_order_relaxed) % period == period - 1) return !contains(k);
    return polymap::locked_map<>::insert(std::move(k), std::move(v));
  }
  static constexpr std::uint64_t period = 97;

 private:
  std::atomic<std::uint64_t> count_{0};
};

// Remembers each key's previous value; every `period`-th find returns it (a
// stale read, as from a cache that missed an invalidation).
class stale_map : public polymap::locked_map<> {
 public:
  bool insert_or_assign(std::string k, value v) {
    remember(k);
    return polymap::locked_map<>::insert_or_assign(std::move(k), std::move(v));
  }
  template <class Q>
  std::optional<value> find(const Q& q) {
    if (count_.fetch_add(1, std::memory_order_relaxed) % period == period - 1) {
      std::lock_guard g(m_);
      if (auto it = old_.find(std::string(q)); it != old_.end()) return it->second;
    }
    return polymap::locked_map<>::find(q);
  }
  static constexpr std::uint64_t period = 53;

 private:
  void remember(const std::string& k) {
    auto cur = polymap::locked_map<>::find(k);
    std::lock_guard g(m_);
    old_[k] = cur;
  }
  std::atomic<std::uint64_t> count_{0};
  std::mutex m_;
  std::unordered_map<std::string, std::optional<value>> old_;
};

// update() is a read then a separate write: an atomicity violation that no
// data-race detector sees (every access is under the lock).
class racy_update_map : public polymap::locked_map<> {
 public:
  template <class F>
  value update(std::string k, F f) {
    auto cur = find(k);
    value next = f(cur ? &*cur : nullptr);
    std::this_thread::yield();  // as if f were slow: the window the bug needs
    insert_or_assign(std::move(k), next);
    return next;
  }
};

pv::stress_options small_run(std::size_t keys, std::uint64_t seed) {
  pv::stress_options o;
  o.threads = 4;
  o.keys = keys;
  // Not scaled down under sanitizers: a seeded bug shows only when its rare
  // case (e.g. the 97th insert of an absent key) occurs often enough, and at
  // 1/20 of this size it sometimes did not (an ASan run passed a lossy map).
  // Locked maps with 8 keys check this many operations in well under a second.
  o.ops_per_thread = 40'000;
  o.round_ops = 10'000;
  o.seed = seed;
  o.check.max_reported = 1;
  return o;
}

TEST(VerifyStress, RejectsALossyInsert) {
  auto r = pv::run_stress<lossy_map>(small_run(8, 11));
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.violating_keys, 0u);
  EXPECT_NE(r.report().find("rerun with seed 11"), std::string::npos);
  EXPECT_NE(r.report().find("insert("), std::string::npos) << r.report();
  std::printf("%s", r.report().c_str());
}

TEST(VerifyStress, RejectsAStaleRead) {
  auto r = pv::run_stress<stale_map>(small_run(8, 12));
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.violating_keys, 0u);
  EXPECT_NE(r.report().find("find("), std::string::npos) << r.report();
  std::printf("%s", r.report().c_str());
}

TEST(VerifyStress, RejectsANonAtomicUpdateUnderPerturbation) {
  auto o = small_run(2, 13);
  o.perturb = true;  // pauses widen the read-to-write window
  // The pauses make every lost update likely, so the smaller sanitizer size
  // still shows it (and keeps the pauses' cost bounded there).
  o.ops_per_thread /= scale;
  o.round_ops /= scale;
  auto r = pv::run_stress<racy_update_map>(o);
  EXPECT_FALSE(r.ok());
  std::printf("%s", r.report().c_str());
}

TEST(VerifyStress, ScheduleIsReproducibleFromItsSeed) {
  auto pauses = [](std::uint64_t seed) {
    pv::schedule_options so;
    so.seed = seed;
    so.threads = 3;
    so.ops_per_thread = 1000;
    so.max_sleep_us = 1;
    pv::schedule s(so);
    std::vector<std::uint64_t> out;
    for (std::size_t t = 0; t < 3; ++t) {
      auto ts = s.for_thread(t);
      for (int i = 0; i < 1000; ++i) ts.point();
      out.push_back(ts.pauses());
    }
    return out;
  };
  EXPECT_EQ(pauses(42), pauses(42));
  EXPECT_NE(pauses(42), pauses(43));
}

// --- real maps: must pass -----------------------------------------------------

template <class M>
class RealMapStress : public ::testing::Test {};

#ifdef POLYMAP_VERIFY_HAS_CONCURRENT_MAP
// Short string keys in their slots (inline_string_key).
using inline_string_map = polymap::concurrent_map<std::string, polymap::value, polymap::hash<std::string>,
                                                  polymap::key_equal<std::string>, polymap::inline_string_traits>;
#endif

using real_maps = ::testing::Types<polymap::locked_map<>
#ifdef POLYMAP_VERIFY_HAS_CONCURRENT_MAP
                                   ,
                                   polymap::concurrent_map<>, inline_string_map,
                                   polymap::concurrent_map<std::uint64_t, polymap::value>,
                                   polymap::concurrent_map<std::uint64_t, std::uint64_t>,  // word key, word value
                                   polymap::concurrent_map<std::uint64_t, big_value>       // boxed value
#endif
#ifdef POLYMAP_VERIFY_HAS_SNAPSHOT_MAP
                                   ,
                                   polymap::snapshot_map<>
#endif
                                   >;
TYPED_TEST_SUITE(RealMapStress, real_maps);

// 4 threads on 3 keys: 600,000 operations (default build).
TYPED_TEST(RealMapStress, HighContentionFewKeys) {
  pv::stress_options o;
  o.threads = 4;
  o.keys = 3;
  o.ops_per_thread = 150'000 / scale;
  o.round_ops = 50'000 / scale;
  o.seed = 20261126;
  auto r = pv::run_stress<TypeParam>(o);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_EQ(r.operations, o.threads * o.ops_per_thread);
  std::printf("%s", r.report().c_str());
}

// 2 threads over 10,000 keys: 400,000 operations.
TYPED_TEST(RealMapStress, SpreadKeys) {
  pv::stress_options o;
  o.threads = 2;
  o.keys = 10'000;
  o.ops_per_thread = 200'000 / scale;
  o.round_ops = 100'000 / scale;
  o.seed = 7;
  auto r = pv::run_stress<TypeParam>(o);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_EQ(r.operations, o.threads * o.ops_per_thread);
  std::printf("%s", r.report().c_str());
}

// 3 threads on 16 keys with seeded pauses: 60,000 operations.
TYPED_TEST(RealMapStress, PerturbedSchedule) {
  pv::stress_options o;
  o.threads = 3;
  o.keys = 16;
  o.ops_per_thread = 20'000 / scale;
  o.round_ops = 10'000 / scale;
  o.seed = 99;
  o.perturb = true;
  auto r = pv::run_stress<TypeParam>(o);
  EXPECT_TRUE(r.ok()) << r.report();
  std::printf("%s", r.report().c_str());
}

#ifdef POLYMAP_VERIFY_HAS_CONCURRENT_MAP
// concurrent_map from its smallest table (one group of 15 slots): the run
// grows it several times while the threads write, and erasures from
// overflowed groups force rebuilds of the same size (dirty); every history
// across those rebuilds must check.
template <class M>
class GrowingMapStress : public ::testing::Test {};
using growing_maps = ::testing::Types<polymap::concurrent_map<>, inline_string_map,
                                      polymap::concurrent_map<std::uint64_t, std::uint64_t>,
                                      polymap::concurrent_map<std::uint64_t, big_value>>;
TYPED_TEST_SUITE(GrowingMapStress, growing_maps);

// 2 threads over 3,000 keys in 4 rounds: 200,000 operations (default build).
TYPED_TEST(GrowingMapStress, GrowsDuringTheRun) {
  TypeParam map;
  ASSERT_LE(map.stats().capacity, 15u);
  pv::stress_options o;
  o.threads = 2;
  o.keys = 3'000;
  o.ops_per_thread = 100'000 / scale;
  o.round_ops = 25'000 / scale;
  o.seed = 15;
  auto r = pv::run_stress(map, o);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_EQ(r.operations, o.threads * o.ops_per_thread);
  const auto s = map.stats();
  EXPECT_GE(s.growths, 4u) << "the run was meant to grow the table";
  std::printf("%s%zu growths, %zu entries, capacity %zu\n", r.report().c_str(), static_cast<std::size_t>(s.growths),
              s.size, s.capacity);
}
#endif

}  // namespace

// `polymap bench latency`'s parts: the log-linear histogram's buckets and
// percentiles against exact answers, and a tiny run of every default map
// that must count every operation and find every key, and the involuntary
// context switches a run reports. No timing is asserted.
#include <gtest/gtest.h>

#ifdef POLYMAP_HAVE_BENCH

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <sched.h>

#include "bench/latency.hpp"

namespace {

using polymap::bench::latency::histogram;
namespace bl = polymap::bench::latency;

TEST(BenchLatencyHistogram, BucketsAreExactBelow128AndWithinOneSixtyFourthAbove) {
  for (std::uint64_t v = 0; v < 128; ++v) {
    EXPECT_EQ(histogram::index(v), v);
    EXPECT_EQ(histogram::upper(histogram::index(v)), v);
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200'000; ++i) {
    const unsigned bits = 7 + static_cast<unsigned>(rng() % 57);
    const std::uint64_t v = (rng() >> (64 - bits)) | (std::uint64_t{1} << (bits - 1));
    const std::size_t idx = histogram::index(v);
    ASSERT_LT(idx, histogram::bucket_count) << v;
    const std::uint64_t up = histogram::upper(idx);
    ASSERT_GE(up, v);
    // The bucket's width is under 1/64 of its values.
    ASSERT_LE(static_cast<double>(up - v), static_cast<double>(v) / 64.0) << v;
  }
  // Indices grow with values, without gaps at the powers of two.
  for (std::uint64_t v = 100; v < 100'000; ++v) ASSERT_LE(histogram::index(v), histogram::index(v + 1));
  EXPECT_EQ(histogram::index(128), histogram::index(127) + 1);
  EXPECT_EQ(histogram::upper(histogram::index(~std::uint64_t{0})), ~std::uint64_t{0});
}

TEST(BenchLatencyHistogram, PercentilesAreNearestRankAndMaxIsExact) {
  histogram h;
  EXPECT_EQ(h.percentile(50), 0u);
  std::vector<std::uint64_t> values;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 100'000; ++i) values.push_back(20 + rng() % 5'000'000);
  values.push_back(987'654'321);  // one stall
  for (auto v : values) h.record(v);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), 987'654'321u);
  EXPECT_EQ(h.percentile(100), 987'654'321u);
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
    const std::uint64_t exact = values[rank - 1];
    const std::uint64_t got = h.percentile(p);
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(static_cast<double>(got), static_cast<double>(exact) * (1 + 1.0 / 64)) << p;
  }
  // Merging two halves is the same as recording everything in one.
  histogram a, b;
  for (std::size_t i = 0; i < values.size(); ++i) (i % 2 ? a : b).record(values[i]);
  a.merge(b);
  EXPECT_EQ(a.count(), h.count());
  EXPECT_EQ(a.max(), h.max());
  for (double p : {1.0, 50.0, 99.99}) EXPECT_EQ(a.percentile(p), h.percentile(p));
}

TEST(BenchLatency, ValidateNamesTheOption) {
  bl::settings s;
  EXPECT_EQ(bl::validate(s), "");
  s.n = 10;
  EXPECT_NE(bl::validate(s).find("--n"), std::string::npos);
  s = {};
  s.threads = 0;
  EXPECT_NE(bl::validate(s).find("--threads"), std::string::npos);
  s = {};
  s.runs = 0;
  EXPECT_NE(bl::validate(s).find("--runs"), std::string::npos);
  s = {};
  s.maps = {"nosuch"};
  EXPECT_NE(bl::validate(s).find("'nosuch' is not in this build"), std::string::npos);
  s = {};
  s.maps = {"nosync_flat"};
  EXPECT_NE(bl::validate(s).find("one thread"), std::string::npos);
  s.threads = 1;
  EXPECT_EQ(bl::validate(s), "");
  s = {};
  s.reserve = true;
  s.maps = {"snapshot_map"};  // copy-on-write: nothing to reserve
  EXPECT_NE(bl::validate(s).find("--reserve: snapshot_map"), std::string::npos);
  s.maps = {"concurrent_map", "no_map"};
  EXPECT_EQ(bl::validate(s), "");
}

TEST(BenchLatency, AReservedRunTakesTheDefaultsThatReserve) {
  bl::settings s;
  s.n = 3000;
  s.runs = 1;
  s.mixed = false;
  s.reserve = true;
  const auto r = bl::run(s);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  const auto& m = r.config.maps;
  EXPECT_NE(std::find(m.begin(), m.end(), "concurrent_map"), m.end());
  EXPECT_EQ(std::find(m.begin(), m.end(), "snapshot_map"), m.end());
  for (const auto& name : m) {
    const auto* x = bl::find_row(r, name, bl::phase::insert);
    ASSERT_NE(x, nullptr) << name;
    EXPECT_EQ(x->ops, s.n) << name;
  }
  EXPECT_EQ(bl::to_json(r)["settings"]["reserve"], true);
}

TEST(BenchLatency, ATinyRunCountsEveryOperationOfEveryMap) {
  bl::settings s;
  s.n = 3000;
  s.threads = 2;
  s.runs = 2;
  const auto r = bl::run(s);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  const auto maps = bl::default_maps();
  ASSERT_FALSE(maps.empty());
  EXPECT_NE(std::find(maps.begin(), maps.end(), "concurrent_map"), maps.end());
  ASSERT_EQ(r.rows.size(), maps.size() * 4);
  for (const auto& m : maps) {
    for (auto ph : bl::all_phases()) {
      const auto* x = bl::find_row(r, m, ph);
      ASSERT_NE(x, nullptr) << m << " " << bl::name(ph);
      const std::uint64_t per_run = ph == bl::phase::insert ? s.n : s.n / 2;
      EXPECT_EQ(x->ops, per_run * 2) << m << " " << bl::name(ph);
      EXPECT_LE(x->p50_ns, x->p99_ns);
      EXPECT_LE(x->p99_ns, x->p999_ns);
      EXPECT_LE(x->p999_ns, x->p9999_ns);
      EXPECT_LE(x->p9999_ns, x->max_ns);
      ASSERT_EQ(x->run_max_ns.size(), 2u);
      EXPECT_EQ(x->max_ns, std::max(x->run_max_ns[0], x->run_max_ns[1]));
      EXPECT_LE(x->median_run_max_ns, x->max_ns);
      EXPECT_EQ(x->run_switches.size(), 2u);
      EXPECT_EQ(x->run_waited_ns.size(), 2u);
      ASSERT_EQ(x->mops.size(), 2u);
      EXPECT_GT(x->median_mops, 0);
    }
  }
  EXPECT_GT(r.clock_p50_ns, 0u);
  const auto j = bl::to_json(r);
  EXPECT_EQ(j["rows"].size(), r.rows.size());
  EXPECT_EQ(j["settings"]["n"], 3000);
  EXPECT_TRUE(j["errors"].empty());
  // The table names every map and phase.
  const std::string table = bl::render_table(r);
  for (const auto& m : maps) EXPECT_NE(table.find("| " + m + " | mixed_insert |"), std::string::npos) << table;
}

// Two threads that must share one CPU for tens of milliseconds are
// preempted by each other: the run says so, in the row, the JSON and the
// table.
TEST(BenchLatency, CountsTheInvoluntarySwitchesOfARunsThreads) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c)
    if (CPU_ISSET(c, &saved)) first = c;
  ASSERT_GE(first, 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // the workers inherit it
  bl::settings s;
  s.n = 400'000;
  s.threads = 2;
  s.runs = 1;
  s.mixed = false;
  s.maps = {"concurrent_map"};
  const auto r = bl::run(s);
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  const auto* x = bl::find_row(r, "concurrent_map", bl::phase::insert);
  ASSERT_NE(x, nullptr);
  ASSERT_EQ(x->run_switches.size(), 1u);
  ASSERT_EQ(x->run_waited_ns.size(), 1u);
  EXPECT_GT(x->run_switches[0], 0u);
  // Each thread waited while the other ran: a slice at least, far over 10 us
  // (where the kernel keeps schedstat: CONFIG_SCHED_INFO).
  if (std::ifstream("/proc/thread-self/schedstat")) {
    EXPECT_GT(x->run_waited_ns[0], 10'000u);
  }
  const auto j = bl::to_json(r);
  EXPECT_EQ(j["rows"][0]["run_involuntary_switches"][0], x->run_switches[0]);
  EXPECT_EQ(j["rows"][0]["run_queue_wait_ns"][0], x->run_waited_ns[0]);
  EXPECT_NE(
      bl::render_table(r).find(fmt::format(" ({}, {}) |", x->run_switches[0], bl::format_ns(x->run_waited_ns[0]))),
      std::string::npos)
      << bl::render_table(r);
}

TEST(BenchLatency, FormatsNanosecondsInTheirUnit) {
  EXPECT_EQ(bl::format_ns(85), "85 ns");
  EXPECT_EQ(bl::format_ns(4490), "4.49 us");
  EXPECT_EQ(bl::format_ns(99'996), "100 us");
  EXPECT_EQ(bl::format_ns(65'400'000), "65.4 ms");
  EXPECT_EQ(bl::format_ns(2'000'000'000), "2 s");
}

}  // namespace

#else
TEST(BenchLatency, SkippedWithoutBench) {
  GTEST_SKIP() << "built with POLYMAP_BUILD_BENCH=OFF";
}
#endif

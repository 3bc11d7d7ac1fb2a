// Every benchmark adapter behaves like a map, and a tiny run of the driver
// produces a complete result. Speed is never checked here.
#include <gtest/gtest.h>

#ifdef POLYMAP_HAVE_BENCH

#include <memory>
#include <vector>

#include "bench/driver.hpp"

namespace {

using namespace polymap::bench;

TEST(BenchAdapters, EveryMapBehavesLikeAMap) {
  const auto maps = available_maps();
  ASSERT_GE(maps.size(), 4u);
  for (const auto& m : maps) {
    EXPECT_EQ(check_adapter(m.name, key_kind::u64, 3000), "") << m.name << " with u64 keys";
    EXPECT_EQ(check_adapter(m.name, key_kind::str, 1000), "") << m.name << " with string keys";
  }
  EXPECT_NE(check_adapter("no_such_map", key_kind::u64, 10), "");
}

TEST(BenchAdapters, CountingAllocatorSeesHeapBlocks) {
  const long long before = counted_heap_bytes();
  set_heap_counting(true);
  auto block = std::make_unique<std::vector<char>>(4096);
  set_heap_counting(false);
  EXPECT_GE(counted_heap_bytes() - before, 4096);
  set_heap_counting(true);
  block.reset();
  set_heap_counting(false);
  EXPECT_EQ(counted_heap_bytes(), before);
}

TEST(BenchAdapters, TinyRunFillsEveryConfiguration) {
  matrix m;
  m.keys = {key_kind::u64, key_kind::str};
  m.ns = {500};
  m.threads = {1, 2};
  m.repeats = 1;
  m.ops_per_run = 2000;  // a fixed op count: quick, and nothing timed matters
  std::size_t calls = 0, total = 0;
  const results r = run(m, [&](const progress& p) {
    if (p.last) ++calls;
    total = p.total;
  });
  EXPECT_EQ(calls, total);
  EXPECT_EQ(r.rows.size(), total);
  EXPECT_GE(r.maps.size(), 4u);
  for (const auto& row : r.rows) {
    EXPECT_GT(row.median, 0.0) << row.cfg.map;
    EXPECT_TRUE(row.ratio.has_value()) << row.cfg.map << " has no baseline in the same run";
  }
  EXPECT_EQ(r.memory.size(), r.maps.size() * 2);
  for (const auto& mem : r.memory) EXPECT_GT(mem.bytes_per_entry, 8.0) << mem.map;
  EXPECT_GT(estimate_seconds(m), 0.0);
  m.maps = {"no_such_map"};
  EXPECT_EQ(unknown_maps(m).size(), 1u);
  EXPECT_THROW(run(m), std::invalid_argument);
}

}  // namespace

#else
TEST(BenchAdapters, SkippedWithoutBench) {
  GTEST_SKIP() << "built with POLYMAP_BUILD_BENCH=OFF";
}
#endif

// locked_map: the conformance suite, the concurrency suite, and its own stats.
#include "polymap/locked_map.hpp"

#include "concurrency.hpp"
#include "conformance.hpp"

using reference_types = ::testing::Types<polymap::testing::reference_map<>>;
INSTANTIATE_TYPED_TEST_SUITE_P(reference, MapConformance, reference_types);

using locked_types = ::testing::Types<polymap::locked_map<>>;
INSTANTIATE_TYPED_TEST_SUITE_P(locked, MapConformance, locked_types);
INSTANTIATE_TYPED_TEST_SUITE_P(locked, MapConcurrency, locked_types);

TEST(LockedMap, StatsCountGrowthAndSize) {
  polymap::locked_map<> m;
  for (int i = 0; i < 1000; ++i) m.insert(std::to_string(i), i);
  auto s = m.stats();
  EXPECT_EQ(s.map, "locked_map");
  EXPECT_EQ(s.size, 1000u);
  EXPECT_GT(s.growths, 0u);
  EXPECT_GT(s.bytes, 1000u * sizeof(polymap::value));
}

TEST(LockedMap, IntegerKeysAndPlainValues) {
  polymap::locked_map<std::uint64_t, std::uint64_t> m;
  for (std::uint64_t i = 0; i < 5000; ++i) EXPECT_TRUE(m.insert(i, i * i));
  EXPECT_EQ(m.find(std::uint64_t{70}), std::uint64_t{4900});
  EXPECT_EQ(m.update(7, [](const std::uint64_t* c) { return c ? *c + 1 : 0; }), 50u);
  EXPECT_TRUE(m.compare_exchange(std::uint64_t{7}, 50, 51));
  EXPECT_EQ(m.erase_if([](std::uint64_t k, std::uint64_t) { return k >= 100; }), 4900u);
}

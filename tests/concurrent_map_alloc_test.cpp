// concurrent_map under allocation failure: a growth whose new table cannot be
// allocated throws std::bad_alloc and leaves the map as it was (the frozen
// groups are thawed), and the map keeps working afterwards.
//
// Tables are the only over-aligned allocations (alignas(64)), so this binary
// replaces the aligned operator new with one that can be told to fail.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include "polymap/concurrent_map.hpp"

namespace {
std::atomic<bool> fail_aligned{false};
}

// GCC sees the replaced aligned new/delete pair as malloc'ed memory handed to
// operator delete; the pair below is consistent (aligned_alloc / free).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n, std::align_val_t a) {
  if (fail_aligned.load()) throw std::bad_alloc();
  const std::size_t al = static_cast<std::size_t>(a);
  void* p = std::aligned_alloc(al, (n + al - 1) / al * al);
  if (!p) throw std::bad_alloc();
  return p;
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

TEST(ConcurrentMapAlloc, FailedGrowthChangesNothing) {
  polymap::concurrent_map<std::uint64_t, std::uint64_t> m;
  (void)m.contains(std::uint64_t{0});  // the thread's epoch record (also over-aligned) exists from here on
  std::uint64_t k = 0;
  // Fill until the next insert needs a growth: the table starts with one group.
  const std::size_t cap = m.stats().capacity;
  while (m.stats().capacity == cap) {
    fail_aligned = true;
    bool threw = false;
    try {
      m.insert(k, k * 2);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    fail_aligned = false;
    if (threw) break;
    ++k;
  }
  // The insert that needed the growth threw; the map is unchanged and usable.
  EXPECT_EQ(m.size(), k);
  EXPECT_EQ(m.stats().capacity, cap);
  EXPECT_FALSE(m.contains(k));
  for (std::uint64_t i = 0; i < k; ++i) ASSERT_EQ(m.find(i), i * 2);
  EXPECT_TRUE(m.insert(k, k * 2));  // the groups were thawed: writes go on
  for (std::uint64_t i = k + 1; i < 1000; ++i) ASSERT_TRUE(m.insert(i, i * 2));
  EXPECT_EQ(m.size(), 1000u);
  EXPECT_GT(m.stats().capacity, cap);
  EXPECT_TRUE(m.erase(std::uint64_t{3}));
  EXPECT_EQ(m.find(std::uint64_t{999}), 1998u);
}

TEST(ConcurrentMapAlloc, FailedClearAndReserveChangeNothing) {
  polymap::concurrent_map<> m;
  for (int i = 0; i < 100; ++i) m.insert("k" + std::to_string(i), i);  // also claims the epoch record
  fail_aligned = true;
  EXPECT_THROW(m.clear(), std::bad_alloc);
  EXPECT_THROW(m.reserve(100000), std::bad_alloc);
  fail_aligned = false;
  EXPECT_EQ(m.size(), 100u);
  EXPECT_EQ(m.template get<std::int64_t>("k42"), 42);
  EXPECT_TRUE(m.insert_or_assign("k42", 1) == false);
  m.clear();
  EXPECT_EQ(m.size(), 0u);
}

// shrink_to_fit that cannot allocate the smaller table, for a table that
// shrinks at once and one that shrinks by migration: the map is as it was
// (same capacity, every key), not migrating, and a later shrink works.
TEST(ConcurrentMapAlloc, FailedShrinkChangesNothing) {
  for (const std::size_t n : {std::size_t{2000}, 24 * polymap::concurrent_map_traits::incremental_min_groups}) {
    polymap::concurrent_map<std::uint64_t, std::uint64_t> m;
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_TRUE(m.insert(i, i * 2));
    for (std::uint64_t i = 10; i < n; ++i) ASSERT_TRUE(m.erase(i));
    const std::size_t cap = m.stats().capacity;
    fail_aligned = true;
    EXPECT_THROW(m.shrink_to_fit(), std::bad_alloc) << "n = " << n;
    fail_aligned = false;
    EXPECT_FALSE(m.debug_migration().running);
    EXPECT_EQ(m.stats().capacity, cap);
    EXPECT_EQ(m.size(), 10u);
    for (std::uint64_t i = 0; i < 10; ++i) ASSERT_EQ(m.find(i), i * 2);
    EXPECT_TRUE(m.insert(std::uint64_t{n}, 1));
    m.shrink_to_fit();
    EXPECT_LT(m.stats().capacity, cap);
    for (std::uint64_t i = 0; i < 10; ++i) ASSERT_EQ(m.find(i), i * 2);
    EXPECT_EQ(m.find(std::uint64_t{n}), 1u);
  }
}

// A table large enough to grow by incremental migration (GROWTH): the
// insert that would begin the migration cannot allocate the next table; the
// map is as it was, not migrating, and a later growth migrates it whole.
TEST(ConcurrentMapAlloc, FailedMigrationStartChangesNothing) {
  polymap::concurrent_map<std::uint64_t, std::uint64_t> m;
  (void)m.contains(std::uint64_t{0});
  std::uint64_t k = 0;
  while (m.stats().capacity < polymap::concurrent_map_traits::incremental_min_groups * 15) {
    ASSERT_TRUE(m.insert(k, k * 2));
    ++k;
  }
  const std::size_t cap = m.stats().capacity;
  bool threw = false;
  while (!threw) {
    fail_aligned = true;
    try {
      m.insert(k, k * 2);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    fail_aligned = false;
    if (!threw) ++k;
  }
  EXPECT_FALSE(m.debug_migration().running);
  EXPECT_EQ(m.size(), k);
  EXPECT_EQ(m.stats().capacity, cap);
  for (std::uint64_t i = 0; i < k; ++i) ASSERT_EQ(m.find(i), i * 2);
  for (std::uint64_t i = k; i < 4 * k; ++i) ASSERT_TRUE(m.insert(i, i * 2));  // migrates, then again
  EXPECT_EQ(m.size(), 4 * k);
  EXPECT_GT(m.stats().capacity, 2 * cap);
  for (std::uint64_t i = 0; i < 4 * k; ++i) ASSERT_EQ(m.find(i), i * 2);
}

// The inline layout with payload values: the insert whose growth fails drops
// the value it was given (LeakSanitizer checks that in the asan build), and
// the payloads already stored survive the failed growth and a later one.
TEST(ConcurrentMapAlloc, FailedGrowthKeepsInlinePayloads) {
  polymap::concurrent_map<std::uint64_t, polymap::value> m;
  static_assert(decltype(m)::inline_slots);
  (void)m.contains(std::uint64_t{0});
  std::uint64_t k = 0;
  const std::size_t cap = m.stats().capacity;
  bool threw = false;
  while (!threw && m.stats().capacity == cap) {
    fail_aligned = true;
    try {
      m.insert(k, std::string("value-") + std::to_string(k) + std::string(32, 'x'));  // a heap payload
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    fail_aligned = false;
    if (!threw) ++k;
  }
  ASSERT_TRUE(threw);
  EXPECT_EQ(m.size(), k);
  for (std::uint64_t i = 0; i < k; ++i)
    ASSERT_EQ(m.find(i)->get<std::string>().value(), std::string("value-") + std::to_string(i) + std::string(32, 'x'));
  for (std::uint64_t i = k; i < 500; ++i) ASSERT_TRUE(m.insert(i, std::string("v") + std::to_string(i)));
  EXPECT_EQ(m.find(std::uint64_t{0})->get<std::string>().value().substr(0, 7), "value-0");
  EXPECT_EQ(m.find(std::uint64_t{499})->get<std::string>().value(), "v499");
}

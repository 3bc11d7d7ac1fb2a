// Bad input, each with a defined and tested outcome, for every map:
//   empty keys, 1 MiB keys, keys with embedded NULs  -> ordinary keys (byte strings)
//   NaN values                                        -> stored and read back; NaN == NaN in value
//   NaN keys (double K)                               -> never equal to themselves: each insert adds a
//                                                        new unreachable entry; erase_if/clear remove them
//   wrong-type reads                                  -> errc::type_mismatch naming key, stored and
//                                                        requested types; .value() throws bad_result_access
//   10 million entries                                -> all stored and found (default build only)
//   clear() while other threads read and write        -> readers see absent or a whole value of the key
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <latch>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "polymap/locked_map.hpp"
#include "polymap/value.hpp"
#include "sanitizer_scale.hpp"

#if __has_include("polymap/concurrent_map.hpp")
#include "polymap/concurrent_map.hpp"
#define POLYMAP_BAD_INPUT_HAS_CONCURRENT_MAP 1
#endif
#if __has_include("polymap/snapshot_map.hpp")
#include "polymap/snapshot_map.hpp"
#define POLYMAP_BAD_INPUT_HAS_SNAPSHOT_MAP 1
#endif

using polymap::testing::under_sanitizer;

namespace {

using polymap::value;

// many: entries for TenMillionEntries: 10 million for locked_map (~12 s on 2
// busy cores); fewer for the others to stay in the CI budget (concurrent_map
// took ~23 s for 10M, snapshot_map, which copies a path per write, ~280 s).
// erase_if_removes_nan_keys: concurrent_map's erase_if re-finds each doomed
// key by lookup, which a NaN key never matches, so there NaN entries leave only
// by clear() (a known difference, reported; keys that are not equal to
// themselves break every map's contract anyway).
struct locked_family {
  template <class K, class V>
  using map = polymap::locked_map<K, V>;
  static constexpr std::uint64_t many = 10'000'000;
  static constexpr bool erase_if_removes_nan_keys = true;
};
#ifdef POLYMAP_BAD_INPUT_HAS_CONCURRENT_MAP
struct concurrent_family {
  template <class K, class V>
  using map = polymap::concurrent_map<K, V>;
  static constexpr std::uint64_t many = 3'000'000;  // 10M: ~23 s on 2 busy cores, over the CI budget
  static constexpr bool erase_if_removes_nan_keys = false;
};
#endif
#ifdef POLYMAP_BAD_INPUT_HAS_SNAPSHOT_MAP
struct snapshot_family {
  template <class K, class V>
  using map = polymap::snapshot_map<K, V>;
  static constexpr std::uint64_t many = 300'000;
  static constexpr bool erase_if_removes_nan_keys = true;
};
#endif
using families = ::testing::Types<locked_family
#ifdef POLYMAP_BAD_INPUT_HAS_CONCURRENT_MAP
                                  ,
                                  concurrent_family
#endif
#ifdef POLYMAP_BAD_INPUT_HAS_SNAPSHOT_MAP
                                  ,
                                  snapshot_family
#endif
                                  >;

template <class F>
class BadInput : public ::testing::Test {};
TYPED_TEST_SUITE(BadInput, families);

TYPED_TEST(BadInput, OddKeysAreOrdinaryKeys) {
  typename TypeParam::template map<std::string, value> m;
  const std::string empty;
  const std::string nul1("a\0b", 3), nul2("a\0c", 3), nul3(std::string(1, '\0'));
  // snapshot_map takes ~12 s on 1 MiB keys even unsanitized
  constexpr std::size_t big_size = under_sanitizer ? std::size_t{1} << 16 : std::size_t{1} << 20;
  std::string big(big_size, 'x'), big2 = big;
  big2.back() = 'y';  // differs only in its last byte
  EXPECT_TRUE(m.insert(empty, 0));
  EXPECT_TRUE(m.insert(nul1, 1));
  EXPECT_TRUE(m.insert(nul2, 2));
  EXPECT_TRUE(m.insert(nul3, 3));
  EXPECT_TRUE(m.insert(big, 4));
  EXPECT_TRUE(m.insert(big2, 5));
  EXPECT_EQ(m.size(), 6u);
  EXPECT_FALSE(m.contains("a"));  // "a\0b" is not "a"
  EXPECT_EQ(m.template get<std::int64_t>(empty), 0);
  EXPECT_EQ(m.template get<std::int64_t>(nul2), 2);
  EXPECT_EQ(m.template get<std::int64_t>(nul3), 3);
  EXPECT_EQ(m.template get<std::int64_t>(big2), 5);
  EXPECT_EQ(m.update(empty, [](const value* c) { return value((c ? *c->get<std::int64_t>() : 0) + 10); }), value(10));
  EXPECT_TRUE(m.compare_exchange(big, value(4), value("four")));
  EXPECT_TRUE(m.erase(nul1));
  EXPECT_FALSE(m.erase(nul1));
  EXPECT_TRUE(m.contains(nul2));
  std::size_t big_keys = 0;
  m.for_each([&](const std::string& k, const value&) { big_keys += k.size() == big_size; });
  EXPECT_EQ(big_keys, 2u);
  // A missing 1 MiB key: the error message names it (the whole key).
  const std::string absent(big_size, 'z');
  auto r = m.template get<std::int64_t>(absent);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), polymap::errc::not_found);
  EXPECT_GE(r.error().message().size(), absent.size());
}

TYPED_TEST(BadInput, NaNValuesRoundTrip) {
  typename TypeParam::template map<std::string, value> m;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(m.insert("nan", nan));
  auto got = m.template get<double>("nan");
  ASSERT_TRUE(got);
  EXPECT_TRUE(std::isnan(*got));
  EXPECT_EQ(*m.find("nan"), value(nan));                                        // value: NaN equals NaN
  EXPECT_TRUE(m.compare_exchange("nan", value(-nan), value(0.0)));              // any NaN matches any NaN
  EXPECT_TRUE(m.compare_exchange("nan", value(-0.0), value(1.0)));              // -0.0 == +0.0
  EXPECT_FALSE(m.compare_exchange("nan", value(std::int64_t{1}), value(2.0)));  // int64 1 is not double 1.0
  EXPECT_TRUE(m.insert_or_assign("inf", std::numeric_limits<double>::infinity()) || m.contains("inf"));
  EXPECT_EQ(m.template get<double>("inf"), std::numeric_limits<double>::infinity());
}

TYPED_TEST(BadInput, NaNKeysAreNeverFound) {
  typename TypeParam::template map<double, std::int64_t> m;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(m.insert(nan, 1));
  EXPECT_TRUE(m.insert(nan, 2));  // NaN != NaN: a second, distinct entry
  EXPECT_FALSE(m.contains(nan));
  EXPECT_FALSE(m.find(nan).has_value());
  EXPECT_FALSE(m.erase(nan));
  EXPECT_EQ(m.size(), 2u);
  std::size_t seen = 0;
  m.for_each([&](double k, std::int64_t) { seen += std::isnan(k); });
  EXPECT_EQ(seen, 2u);
  const std::size_t erased = m.erase_if([](double k, std::int64_t) { return std::isnan(k); });
  EXPECT_EQ(erased, TypeParam::erase_if_removes_nan_keys ? 2u : 0u);
  m.clear();
  EXPECT_EQ(m.size(), 0u);
}

struct point {
  int x = 0, y = 0;
  friend bool operator==(const point&, const point&) = default;
};

TYPED_TEST(BadInput, WrongTypeReadsAreErrorsNamingTheKey) {
  typename TypeParam::template map<std::string, value> m;
  m.insert("n", 42);
  m.insert("s", "text");
  m.insert("b", polymap::make_bytes(3, std::byte{1}));
  m.insert("p", point{1, 2});
  m.insert("null", polymap::null);
  struct want {
    const char* key;
    const char* stored;
  };
  auto check = [&](auto r, const char* key, const char* stored, const char* requested) {
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error(), polymap::errc::type_mismatch) << key;
    const std::string& msg = r.error().message();
    EXPECT_NE(msg.find(std::string("'") + key + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(stored), std::string::npos) << msg;
    EXPECT_NE(msg.find(requested), std::string::npos) << msg;
    EXPECT_THROW((void)r.value(), polymap::bad_result_access);
  };
  check(m.template get<double>("n"), "n", "int64", "double");
  check(m.template get<std::string>("n"), "n", "int64", "string");
  check(m.template get<std::int64_t>("s"), "s", "string", "int64");
  check(m.template get<polymap::bytes>("s"), "s", "string", "bytes");
  check(m.template get<std::string>("b"), "b", "bytes", "string");
  check(m.template get<std::int64_t>("p"), "p", "point", "int64");
  check(m.template get<point>("n"), "n", "int64", "point");
  check(m.template get<bool>("null"), "null", "null", "bool");
  EXPECT_EQ(m.template get<point>("p"), (point{1, 2}));
  const polymap::key<double> as_double{"n"};
  check(m.get(as_double), "n", "int64", "double");
  auto missing = m.template get<std::int64_t>("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), polymap::errc::not_found);
  try {
    (void)missing.value();
    FAIL() << "value() of an error must throw";
  } catch (const polymap::bad_result_access& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
    EXPECT_EQ(e.error(), polymap::errc::not_found);
  }
}

TYPED_TEST(BadInput, TenMillionEntries) {
  if constexpr (under_sanitizer) {
    GTEST_SKIP() << "10 million entries run in the default build only (memory and time under sanitizers)";
  }
  using M = typename TypeParam::template map<std::uint64_t, value>;
  auto m = std::make_unique<M>();
  constexpr std::uint64_t n = TypeParam::many;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!m->insert(i, value(static_cast<std::int64_t>(i)))) FAIL() << "insert " << i;
  }
  ASSERT_EQ(m->size(), n);
  for (std::uint64_t i = 0; i < n; i += 997) {
    auto v = m->find(i);
    ASSERT_TRUE(v) << i;
    ASSERT_EQ(*v, value(static_cast<std::int64_t>(i)));
  }
  EXPECT_FALSE(m->contains(n));
  EXPECT_TRUE(m->erase(n / 2));
  EXPECT_EQ(m->size(), n - 1);
  m->clear();
  EXPECT_EQ(m->size(), 0u);
  EXPECT_FALSE(m->contains(std::uint64_t{1}));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu entries: inserted, sampled, cleared in %.2f s (not asserted)\n", static_cast<unsigned long long>(n),
              s);
}

// A writer fills and clears in rounds; other threads read, update and iterate.
// Every value a reader sees is a whole value of its key (its tag); after the
// threads join, the map is consistent.
TYPED_TEST(BadInput, ClearWhileOthersReadAndWrite) {
  typename TypeParam::template map<std::string, value> m;
  constexpr int keys = 32;
  constexpr int rounds = under_sanitizer ? 10 : 30;
  auto key = [](int i) { return "k" + std::to_string(i); };
  auto tagged = [](const std::string& k, int n) {
    return value(k + "|" + std::to_string(n) + std::string(n % 40, '.'));
  };
  auto ok = [](const std::string& k, const value& v) {
    if (v.is<std::int64_t>()) return true;  // written by update below
    const auto* s = v.get_if<std::string>();
    return s && s->compare(0, k.size() + 1, k + "|") == 0;
  };
  std::atomic<bool> done{false};
  std::atomic<long> bad{0}, reads{0};
  std::latch start(4);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    start.arrive_and_wait();
    for (int r = 0; r < rounds; ++r) {
      for (int i = 0; i < keys; ++i) m.insert_or_assign(key(i), tagged(key(i), r));
      m.clear();
    }
    done.store(true);
  });
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      int i = t;
      do {  // at least one read, even if the writers finish first
        const std::string k = key(i++ % keys);
        switch (i % 16 == 15 ? 3 : i % 3) {
          case 0:
            if (auto v = m.find(k); v && !ok(k, *v)) ++bad;
            break;
          case 1:
            m.visit(k, [&](const value& v) { bad += !ok(k, v); });
            break;
          case 2:
            m.update(k, [](const value* c) {
              return value(c && c->is<std::int64_t>() ? *c->get_if<std::int64_t>() + 1 : 0);
            });
            break;
          default:
            m.for_each([&](const std::string& fk, const value& v) { bad += !ok(fk, v); });
            break;
        }
        ++reads;
      } while (!done.load());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  std::size_t count = 0;
  m.for_each([&](const std::string& k, const value& v) {
    ++count;
    EXPECT_TRUE(ok(k, v));
    EXPECT_TRUE(m.contains(k));
  });
  EXPECT_EQ(count, m.size());
}

}  // namespace

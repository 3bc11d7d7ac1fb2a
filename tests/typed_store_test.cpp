// typed_store: the API per type, the compile-time type check, and concurrent
// writers of different types checked against an oracle.
#include "polymap/typed_store.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "concurrency.hpp"
#include "polymap/concurrent_map.hpp"
#include "polymap/locked_map.hpp"

namespace {

struct blob {
  std::array<unsigned char, 64> data{};
  int id = 0;
  friend bool operator==(const blob&, const blob&) = default;
};

using store_t = polymap::typed_store<std::int64_t, std::string, blob>;
using locked_store_t = polymap::basic_typed_store<polymap::locked_map, std::int64_t, std::string, blob>;

const polymap::key<std::int64_t> timeout{"timeout"};
const polymap::key<std::string> region{"region"};
const polymap::key<blob> payload{"payload"};

// --- compile-time checks ------------------------------------------------------
template <class S, class T>
concept can_get = requires(const S& s, const polymap::key<T>& k) {
  s.get(k);
};
template <class S, class T, class U>
concept can_set = requires(S& s, const polymap::key<T>& k, U u) {
  s.set(k, u);
};
template <class S, class T>
concept can_erase = requires(S& s, const polymap::key<T>& k) {
  s.erase(k);
};

static_assert(can_get<store_t, std::int64_t>);
static_assert(can_get<store_t, blob>);
static_assert(!can_get<store_t, double>, "a key<double> must not compile on a store without double");
static_assert(!can_get<store_t, float>);
static_assert(!can_erase<store_t, double>);
static_assert(can_set<store_t, std::int64_t, int>);
static_assert(!can_set<store_t, double, double>, "no double map: set must not compile");
static_assert(!can_set<store_t, std::int64_t, double>, "narrowing double -> int64 must not compile");
static_assert(!can_set<store_t, std::int64_t, const char*>, "a string is not an int64");
static_assert(can_set<store_t, std::string, const char*>);
static_assert(store_t::holds<std::string> && !store_t::holds<double>);
// No boxing: the int64 domain is a map of std::int64_t, not of polymap::value.
static_assert(std::is_same_v<store_t::map_type<std::int64_t>::mapped_type, std::int64_t>);
static_assert(std::is_same_v<locked_store_t::map_type<blob>, polymap::locked_map<std::string, blob>>);
static_assert(std::is_same_v<store_t::map_type<blob>, polymap::concurrent_map<std::string, blob>>);

}  // namespace

// Every behaviour test runs over both map templates.
template <class S>
class TypedStore : public ::testing::Test {};
using store_types = ::testing::Types<store_t, locked_store_t>;
TYPED_TEST_SUITE(TypedStore, store_types);

TYPED_TEST(TypedStore, SetGetPerType) {
  TypeParam s;
  EXPECT_TRUE(s.set(timeout, 30));
  EXPECT_FALSE(s.set(timeout, 31));  // assigned
  EXPECT_TRUE(s.set(region, "eu-west"));
  blob b;
  b.id = 7;
  EXPECT_TRUE(s.set(payload, b));

  EXPECT_EQ(s.get(timeout), 31);
  EXPECT_EQ(s.get(region), std::string("eu-west"));
  EXPECT_EQ(s.get(payload)->id, 7);
  EXPECT_TRUE(*s.get(payload) == b);
  EXPECT_EQ(s.template get<std::int64_t>("timeout"), 31);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.template size<std::int64_t>(), 1u);
}

TYPED_TEST(TypedStore, MissingKeyIsNotFoundNamingTheKey) {
  TypeParam s;
  auto r = s.get(timeout);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), polymap::errc::not_found);
  EXPECT_NE(r.error().message().find("timeout"), std::string::npos);
  EXPECT_FALSE(s.find(timeout));
  EXPECT_FALSE(s.contains(timeout));
}

TYPED_TEST(TypedStore, NamesArePerTypeDomain) {
  TypeParam s;
  const polymap::key<std::int64_t> port_i{"port"};
  const polymap::key<std::string> port_s{"port"};
  s.set(port_i, 8080);
  s.set(port_s, "http-alt");
  EXPECT_EQ(s.get(port_i), 8080);
  EXPECT_EQ(s.get(port_s), std::string("http-alt"));
  EXPECT_TRUE(s.erase(port_i));
  EXPECT_FALSE(s.contains(port_i));
  EXPECT_TRUE(s.contains(port_s));
}

TYPED_TEST(TypedStore, InsertFindVisitUpdateCompareExchange) {
  TypeParam s;
  EXPECT_TRUE(s.insert(timeout, 1));
  EXPECT_FALSE(s.insert(timeout, 2));
  EXPECT_EQ(s.find(timeout), std::optional<std::int64_t>(1));
  EXPECT_FALSE(s.insert_or_assign(timeout, 5));
  std::int64_t seen = 0;
  EXPECT_TRUE(s.visit(timeout, [&](const std::int64_t& v) { seen = v; }));
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(s.update(timeout, [](const std::int64_t* c) { return c ? *c * 2 : 0; }), 10);
  EXPECT_EQ(s.update(polymap::key<std::int64_t>{"fresh"}, [](const std::int64_t* c) { return c ? *c : -1; }), -1);
  EXPECT_TRUE(s.compare_exchange(timeout, 10, 11));
  EXPECT_FALSE(s.compare_exchange(timeout, 10, 12));
  EXPECT_EQ(s.get(timeout), 11);
  EXPECT_FALSE(s.insert_or_visit(timeout, 0, [](std::int64_t& v) { v += 100; }));
  EXPECT_EQ(s.get(timeout), 111);
  EXPECT_TRUE(s.insert_or_visit(region, "x", [](std::string&) {}));
}

TYPED_TEST(TypedStore, ForEachEraseIfClearStats) {
  TypeParam s;
  for (int i = 0; i < 100; ++i) {
    s.set(polymap::key<std::int64_t>{"i" + std::to_string(i)}, i);
    s.set(polymap::key<std::string>{"s" + std::to_string(i)}, std::to_string(i));
  }
  std::int64_t sum = 0;
  s.template for_each<std::int64_t>([&](const std::string&, const std::int64_t& v) { sum += v; });
  EXPECT_EQ(sum, 4950);

  std::size_t ints = 0, strings = 0;
  s.for_each([&](const std::string&, const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::int64_t>) ++ints;
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) ++strings;
  });
  EXPECT_EQ(ints, 100u);
  EXPECT_EQ(strings, 100u);

  EXPECT_EQ(s.template erase_if<std::int64_t>([](const std::string&, std::int64_t v) { return v % 2 == 0; }), 50u);
  EXPECT_EQ(s.template size<std::int64_t>(), 50u);

  auto st = s.stats();
  EXPECT_EQ(st.size, 150u);
  EXPECT_GE(st.capacity, st.size);
  EXPECT_NE(st.map.find("typed_store<"), std::string::npos);
  EXPECT_EQ(s.template stats<std::string>().size, 100u);

  s.template clear<std::string>();
  EXPECT_EQ(s.size(), 50u);
  s.clear();
  EXPECT_TRUE(s.empty());
}

TYPED_TEST(TypedStore, ReserveThenUse) {
  TypeParam s;
  s.template reserve<std::string>(64);
  s.set(region, std::string("ap"));
  EXPECT_EQ(s.get(region), std::string("ap"));
}

// Threads write different types and keys from a latch; every thread also
// bumps a shared counter per type with update(). The end state must equal the
// oracle computed from what each thread did.
TYPED_TEST(TypedStore, ConcurrentWritersOfDifferentTypes) {
  TypeParam s;
  constexpr int per = 500;
  const int n = concurrency::thread_count();
  const polymap::key<std::int64_t> counter{"counter"};
  concurrency::run_threads(n, [&](int t) {
    for (int i = 0; i < per; ++i) {
      const std::string name = std::to_string(t) + ":" + std::to_string(i);
      switch ((t + i) % 3) {
        case 0:
          s.set(polymap::key<std::int64_t>{name}, t * per + i);
          break;
        case 1:
          s.set(polymap::key<std::string>{name}, name);
          break;
        default: {
          blob b;
          b.id = t * per + i;
          b.data.fill(static_cast<unsigned char>(i));
          s.set(polymap::key<blob>{name}, b);
        }
      }
      s.update(counter, [](const std::int64_t* c) { return c ? *c + 1 : 1; });
      // Readers of the other domains run concurrently with the writers.
      (void)s.get(polymap::key<std::string>{std::to_string((t + 1) % n) + ":" + std::to_string(i)});
    }
  });
  EXPECT_EQ(s.get(counter), static_cast<std::int64_t>(n) * per);
  std::size_t ints = 0, strings = 0, blobs = 0;
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < per; ++i) {
      const std::string name = std::to_string(t) + ":" + std::to_string(i);
      switch ((t + i) % 3) {
        case 0:
          ASSERT_EQ(s.get(polymap::key<std::int64_t>{name}), t * per + i) << name;
          ASSERT_FALSE(s.contains(polymap::key<std::string>{name}));
          ++ints;
          break;
        case 1:
          ASSERT_EQ(s.get(polymap::key<std::string>{name}), name);
          ++strings;
          break;
        default: {
          auto b = s.get(polymap::key<blob>{name});
          ASSERT_TRUE(b);
          ASSERT_EQ(b->id, t * per + i);
          ASSERT_EQ(b->data[63], static_cast<unsigned char>(i));
          ++blobs;
        }
      }
    }
  }
  EXPECT_EQ(s.template size<std::int64_t>(), ints + 1);  // + the counter
  EXPECT_EQ(s.template size<std::string>(), strings);
  EXPECT_EQ(s.template size<blob>(), blobs);
}

// compare_exchange on one key from every thread: each increment lands once.
TYPED_TEST(TypedStore, ConcurrentCompareExchangeCounts) {
  TypeParam s;
  const polymap::key<std::int64_t> c{"c"};
  s.set(c, 0);
  constexpr int per = 1000;
  const int n = concurrency::thread_count();
  concurrency::run_threads(n, [&](int) {
    for (int i = 0; i < per; ++i) {
      for (;;) {
        const std::int64_t cur = *s.get(c);
        if (s.compare_exchange(c, cur, cur + 1)) break;
      }
    }
  });
  EXPECT_EQ(s.get(c), static_cast<std::int64_t>(n) * per);
}

// concurrency.hpp brings the MapConcurrency suite; this file only uses its helpers.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MapConcurrency);

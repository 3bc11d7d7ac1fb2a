// tests/conformance.hpp — the stable API's conformance suite, written once,
// typed on the map and on the keys and values it is run with.
//
// Instantiate it for a map M (its key_type and mapped_type choose the keys
// and values below: strings get short keys, 1-8 bytes):
//   INSTANTIATE_TYPED_TEST_SUITE_P(my_map, MapConformance, ::testing::Types<my_map<>>);
// or for a map with other keys or values:
//   ::testing::Types<conformance::setup<M, conformance::long_string_keys>>
// It runs first against polymap::testing::reference_map (std::unordered_map).
// Tests of polymap::value's own behaviour (typed get, a type change, NaN)
// run where V is polymap::value; string-key tests where K is a string.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "polymap/value.hpp"
#include "reference_map.hpp"
#include "wide_types.hpp"

namespace conformance {

inline const polymap::key<std::int64_t> timeout{"timeout"};
inline const polymap::key<std::string> region{"region"};

struct boom : std::runtime_error {
  boom() : std::runtime_error("boom") {}
};

// --- keys: make(i) differs for every i, index(make(i)) == i; edges() are
// keys a table may get wrong.

inline constexpr char digit62[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
inline std::string base62(std::uint64_t i) {
  std::string s;
  do {
    s.insert(s.begin(), digit62[i % 62]);
    i /= 62;
  } while (i);
  return s;
}
inline std::uint64_t from_base62(std::string_view s) {
  std::uint64_t i = 0;
  for (char c : s) i = i * 62 + static_cast<std::uint64_t>(std::string_view(digit62).find(c));
  return i;
}

inline std::vector<std::string> string_edges() {
  return {"", std::string("a\0b", 3), "a", std::string(1, '\0'), std::string(1 << 20, 'x'), std::string(200, 'y')};
}

// 1-8 bytes: i in base 62, padded with '.' to 1 + i % 8 bytes.
struct short_string_keys {
  static std::string make(std::uint64_t i) {
    std::string s = base62(i);
    if (s.size() < 1 + i % 8) s.append(1 + i % 8 - s.size(), '.');
    return s;
  }
  static std::uint64_t index(std::string_view k) { return from_base62(k.substr(0, k.find('.'))); }
  static std::vector<std::string> edges() { return string_edges(); }
};

// 40-200 bytes: a run of 'L' (shared by many keys, so Eq reads to the end),
// then '/' and i in base 62.
struct long_string_keys {
  static std::string make(std::uint64_t i) {
    const std::string d = base62(i);
    const std::size_t len = 40 + (i * 7919) % 161;
    return std::string(len - d.size() - 1, 'L') + "/" + d;
  }
  static std::uint64_t index(std::string_view k) { return from_base62(k.substr(k.rfind('/') + 1)); }
  static std::vector<std::string> edges() { return string_edges(); }
};

// i times an odd constant: spread over all 64 bits, 0 included (i = 0).
template <class K>
struct word_keys {
  static constexpr std::uint64_t mul = 0x9E3779B97F4A7C15ull;
  static constexpr std::uint64_t inverse() {  // of mul, mod 2^64 (Newton)
    std::uint64_t x = mul;
    for (int n = 0; n < 6; ++n) x *= 2 - mul * x;
    return x;
  }
  static_assert(mul * inverse() == 1);
  static K make(std::uint64_t i) { return static_cast<K>(i * mul); }
  static std::uint64_t index(K k) { return static_cast<std::uint64_t>(k) * inverse(); }
  static std::vector<K> edges() {
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    return {0, 1, max, max - 1, std::uint64_t{1} << 63, std::uint64_t{1} << 32, std::uint64_t{2} << 32, 0xffffffffu};
  }
};

struct pair_keys {
  using K = polymap::testing::pair_key;
  static K make(std::uint64_t i) { return {i, i * 7 + 3}; }
  static std::uint64_t index(const K& k) { return k.a; }
  static std::vector<K> edges() { return {{0, 0}, {0, 1}, {1, 0}, {~0ull, ~0ull}, {~0ull, 0}}; }
};

template <class K>
using default_keys = std::conditional_t<std::is_convertible_v<const K&, std::string_view>, short_string_keys,
                                        std::conditional_t<std::is_integral_v<K>, word_keys<K>, pair_keys>>;

// --- values: make(n) holds n, number(make(n)) == n; pick(r) a value for the
// differential test; next(v) what a callback turns v into.
template <class V, class = void>
struct values {
  static V make(std::int64_t n) { return static_cast<V>(n); }
  static std::int64_t number(const V& v) { return static_cast<std::int64_t>(v); }
  static V pick(std::uint64_t r) { return make(static_cast<std::int64_t>(r % 7)); }
  static V next(const V& v) { return make(number(v) + 1); }
};

template <>
struct values<polymap::value> {
  static polymap::value make(std::int64_t n) { return polymap::value(n); }
  static std::int64_t number(const polymap::value& v) { return *v.get<std::int64_t>(); }
  static polymap::value pick(std::uint64_t r) {
    switch (r % 4) {
      case 0:
        return polymap::value(static_cast<std::int64_t>(r % 7));
      case 1:
        return polymap::value(static_cast<double>(r % 3));
      case 2:
        return polymap::value(std::string(r % 3, 'z'));
      default:
        return polymap::value(r % 2 == 0);
    }
  }
  static polymap::value next(const polymap::value& v) { return polymap::value(v.to_string() + "!"); }
};

template <>
struct values<polymap::testing::big_value> {
  using V = polymap::testing::big_value;
  static V make(std::int64_t n) { return V::of(static_cast<std::uint64_t>(n)); }
  static std::int64_t number(const V& v) { return static_cast<std::int64_t>(v.number()); }
  static V pick(std::uint64_t r) { return make(static_cast<std::int64_t>(r % 7)); }
  static V next(const V& v) { return make(number(v) + 1); }
};

// 1-5 copies of n: a heap-owning V, boxed.
template <>
struct values<std::vector<int>> {
  using V = std::vector<int>;
  static V make(std::int64_t n) { return V(1 + static_cast<std::size_t>(n % 5), static_cast<int>(n)); }
  static std::int64_t number(const V& v) { return v.front(); }
  static V pick(std::uint64_t r) { return make(static_cast<std::int64_t>(r % 7)); }
  static V next(const V& v) { return make(number(v) + 1); }
};

template <class M, class Keys = default_keys<typename M::key_type>, class Values = values<typename M::mapped_type>>
struct setup {
  using map_type = M;
  using keys = Keys;
  using vals = Values;
};
template <class T>
struct setup_of {
  using type = setup<T>;
};
template <class M, class Keys, class Values>
struct setup_of<setup<M, Keys, Values>> {
  using type = setup<M, Keys, Values>;
};

}  // namespace conformance

template <class T>
class MapConformance : public ::testing::Test {
 protected:
  using setup = typename conformance::setup_of<T>::type;
  using map_type = typename setup::map_type;
  using K = typename map_type::key_type;
  using V = typename map_type::mapped_type;
  static constexpr bool value_map = std::is_same_v<V, polymap::value>;
  static constexpr bool string_keys = std::is_convertible_v<const K&, std::string_view>;
  static K key(std::uint64_t i) { return setup::keys::make(i); }
  static std::uint64_t index(const K& k) { return setup::keys::index(k); }
  static V val(std::int64_t n) { return setup::vals::make(n); }
  static std::int64_t num(const V& v) { return setup::vals::number(v); }
  static std::optional<V> opt(std::int64_t n) { return val(n); }
  map_type map;
};
TYPED_TEST_SUITE_P(MapConformance);

using polymap::value;

TYPED_TEST_P(MapConformance, InsertOnlyWhenAbsent) {
  using C = TestFixture;
  auto& m = this->map;
  EXPECT_TRUE(m.insert(C::key(1), C::val(1)));
  EXPECT_FALSE(m.insert(C::key(1), C::val(2)));
  EXPECT_EQ(m.find(C::key(1)), C::opt(1));
  EXPECT_EQ(m.size(), 1u);
}

TYPED_TEST_P(MapConformance, InsertOrAssign) {
  using C = TestFixture;
  auto& m = this->map;
  EXPECT_TRUE(m.insert_or_assign(C::key(1), C::val(1)));
  EXPECT_FALSE(m.insert_or_assign(C::key(1), C::val(2)));
  EXPECT_EQ(m.find(C::key(1)), C::opt(2));
  if constexpr (C::value_map) {  // a value of another type replaces it
    EXPECT_FALSE(m.insert_or_assign(C::key(1), "now a string"));
    EXPECT_EQ(*m.find(C::key(1)), value("now a string"));
  }
  EXPECT_EQ(m.size(), 1u);
}

TYPED_TEST_P(MapConformance, FindByAnyStringKind) {
  using C = TestFixture;
  if constexpr (!C::string_keys) {
    GTEST_SKIP() << "string keys only";
  } else {
    auto& m = this->map;
    const std::string s = C::key(1);
    m.insert(s, C::val(15));
    EXPECT_EQ(m.find(s), C::opt(15));
    EXPECT_EQ(m.find(std::string_view(s)), C::opt(15));
    EXPECT_EQ(m.find(s.c_str()), C::opt(15));
    EXPECT_FALSE(m.find(C::key(2)).has_value());
    EXPECT_FALSE(m.find(std::string_view(s).substr(1)).has_value());
    EXPECT_TRUE(m.contains(std::string_view(s)));
    EXPECT_FALSE(m.contains(C::key(2).c_str()));
  }
}

TYPED_TEST_P(MapConformance, TypedGet) {
  using C = TestFixture;
  if constexpr (!C::value_map) {
    GTEST_SKIP() << "polymap::value maps only";
  } else {
    auto& m = this->map;
    const auto n = C::key(1);
    const std::string shown = "'" + polymap::detail::describe_key(n) + "'";
    m.insert(n, 42);
    auto ok = m.template get<std::int64_t>(n);
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, 42);

    auto wrong = m.template get<double>(n);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error(), polymap::errc::type_mismatch);
    EXPECT_NE(wrong.error().message().find("int64"), std::string::npos);
    EXPECT_NE(wrong.error().message().find("double"), std::string::npos);
    EXPECT_NE(wrong.error().message().find(shown), std::string::npos);

    auto missing = m.template get<std::int64_t>(C::key(2));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), polymap::errc::not_found);
    EXPECT_NE(missing.error().message().find(polymap::detail::describe_key(C::key(2))), std::string::npos);
    EXPECT_THROW((void)missing.value(), polymap::bad_result_access);
  }
}

TYPED_TEST_P(MapConformance, TypedKeys) {
  using C = TestFixture;
  if constexpr (!C::value_map || !C::string_keys) {
    GTEST_SKIP() << "typed keys are names: string -> polymap::value maps only";
  } else {
    auto& m = this->map;
    EXPECT_EQ(m.get(conformance::timeout).error(), polymap::errc::not_found);
    EXPECT_TRUE(m.set(conformance::timeout, 3000));
    EXPECT_FALSE(m.set(conformance::timeout, std::int64_t{4000}));
    EXPECT_EQ(m.get(conformance::timeout), std::int64_t{4000});
    m.set(conformance::region, "eu");
    EXPECT_EQ(m.get(conformance::region), std::string("eu"));
    m.insert_or_assign("timeout", "not a number");
    EXPECT_EQ(m.get(conformance::timeout).error(), polymap::errc::type_mismatch);
  }
}

TYPED_TEST_P(MapConformance, Visit) {
  using C = TestFixture;
  auto& m = this->map;
  if constexpr (C::value_map) {
    m.insert(C::key(1), "hello");
    std::string seen;
    EXPECT_TRUE(m.visit(C::key(1), [&](const value& v) { seen = *v.get<std::string>(); }));
    EXPECT_EQ(seen, "hello");
  } else {
    m.insert(C::key(1), C::val(7));
    std::int64_t seen = 0;
    EXPECT_TRUE(m.visit(C::key(1), [&](const typename C::V& v) { seen = C::num(v); }));
    EXPECT_EQ(seen, 7);
  }
  EXPECT_FALSE(m.visit(C::key(2), [&](const typename C::V&) { ADD_FAILURE() << "visited a missing key"; }));
}

TYPED_TEST_P(MapConformance, InsertOrVisit) {
  using C = TestFixture;
  auto& m = this->map;
  auto bump = [](typename C::V& v) { v = C::val(C::num(v) + 1); };
  EXPECT_TRUE(m.insert_or_visit(C::key(1), C::val(1), bump));
  EXPECT_FALSE(m.insert_or_visit(C::key(1), C::val(1), bump));
  EXPECT_FALSE(m.insert_or_visit(C::key(1), C::val(1), bump));
  EXPECT_EQ(m.find(C::key(1)), C::opt(3));
}

TYPED_TEST_P(MapConformance, Update) {
  using C = TestFixture;
  auto& m = this->map;
  auto inc = [](const typename C::V* cur) { return cur ? C::val(C::num(*cur) + 1) : C::val(100); };
  EXPECT_EQ(m.update(C::key(1), inc), C::val(100));
  EXPECT_EQ(m.update(C::key(1), inc), C::val(101));
  EXPECT_EQ(m.find(C::key(1)), C::opt(101));
}

TYPED_TEST_P(MapConformance, CompareExchange) {
  using C = TestFixture;
  auto& m = this->map;
  const auto x = C::key(1);
  EXPECT_FALSE(m.compare_exchange(x, C::val(1), C::val(2)));  // absent
  EXPECT_FALSE(m.contains(x));
  m.insert(x, C::val(1));
  EXPECT_FALSE(m.compare_exchange(x, C::val(3), C::val(2)));
  EXPECT_EQ(m.find(x), C::opt(1));
  EXPECT_TRUE(m.compare_exchange(x, C::val(1), C::val(2)));
  EXPECT_EQ(m.find(x), C::opt(2));
  if constexpr (C::value_map) {
    EXPECT_FALSE(m.compare_exchange(x, value(2.0), value(3)));  // int64 2 is not double 2.0
    const auto y = C::key(2);
    m.insert_or_assign(y, std::nan(""));
    EXPECT_TRUE(m.compare_exchange(y, value(std::nan("")), value(0.0)));  // NaN equals NaN
  }
}

TYPED_TEST_P(MapConformance, EraseAndEraseIf) {
  using C = TestFixture;
  auto& m = this->map;
  for (int i = 0; i < 100; ++i) m.insert(C::key(i), C::val(i));
  EXPECT_TRUE(m.erase(C::key(0)));
  EXPECT_FALSE(m.erase(C::key(0)));
  EXPECT_EQ(m.erase_if([](const typename C::K&, const typename C::V& v) { return C::num(v) % 2 == 1; }), 50u);
  EXPECT_EQ(m.size(), 49u);
  EXPECT_FALSE(m.contains(C::key(1)));
  EXPECT_TRUE(m.contains(C::key(2)));
}

TYPED_TEST_P(MapConformance, ForEachSizeClearReserve) {
  using C = TestFixture;
  auto& m = this->map;
  m.reserve(1000);
  for (int i = 0; i < 300; ++i) m.insert(C::key(i), C::val(i));
  std::int64_t sum = 0;
  std::size_t count = 0;
  m.for_each([&](const typename C::K& k, const typename C::V& v) {
    EXPECT_EQ(k, C::key(static_cast<std::uint64_t>(C::num(v))));
    sum += C::num(v);
    ++count;
  });
  EXPECT_EQ(count, 300u);
  EXPECT_EQ(sum, 299 * 300 / 2);
  auto s = m.stats();
  EXPECT_EQ(s.size, 300u);
  EXPECT_GE(s.capacity, 300u);
  EXPECT_GT(s.load_factor, 0.0);
  EXPECT_LE(s.load_factor, 1.0);
  m.clear();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_FALSE(m.contains(C::key(1)));
}

TYPED_TEST_P(MapConformance, ThrowingCallbacksChangeNothing) {
  using C = TestFixture;
  using V = typename C::V;
  auto& m = this->map;
  const auto a = C::key(1), b = C::key(2);
  m.insert(a, C::val(1));
  EXPECT_THROW(m.insert_or_visit(a, C::val(5),
                                 [](V& v) {
                                   v = C::val(999);  // a partial change, then a throw
                                   throw conformance::boom();
                                 }),
               conformance::boom);
  EXPECT_EQ(m.find(a), C::opt(1));
  EXPECT_THROW(m.update(a, [](const V*) -> V { throw conformance::boom(); }), conformance::boom);
  EXPECT_THROW(m.update(b, [](const V*) -> V { throw conformance::boom(); }), conformance::boom);
  EXPECT_EQ(m.find(a), C::opt(1));
  EXPECT_FALSE(m.contains(b));
  for (int i = 0; i < 20; ++i) m.insert(C::key(100 + i), C::val(i));
  int calls = 0;
  EXPECT_THROW(m.erase_if([&](const typename C::K&, const V&) {
    if (++calls == 10) throw conformance::boom();
    return true;
  }),
               conformance::boom);
  EXPECT_EQ(m.size(), 21u);
  EXPECT_THROW(m.visit(a, [](const V&) { throw conformance::boom(); }), conformance::boom);
  EXPECT_EQ(m.size(), 21u);
  EXPECT_TRUE(m.insert(C::key(3), C::val(1)));  // the map still works (no lock left held)
}

TYPED_TEST_P(MapConformance, ManyEntriesAndGrowth) {
  using C = TestFixture;
  auto& m = this->map;
  constexpr int n = 20000;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(m.insert(C::key(i), C::val(i)));
  EXPECT_EQ(m.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(m.find(C::key(i)), C::opt(i)) << i;
  for (int i = 0; i < n; i += 2) ASSERT_TRUE(m.erase(C::key(i)));
  EXPECT_EQ(m.size(), static_cast<std::size_t>(n / 2));
  for (int i = 0; i < n; ++i) ASSERT_EQ(m.contains(C::key(i)), i % 2 == 1) << i;
}

// The keys a table may get wrong: for strings empty, embedded NUL, a prefix
// of another, 1 MiB; for words 0, all ones, high bits only.
TYPED_TEST_P(MapConformance, BadInputKeys) {
  using C = TestFixture;
  auto& m = this->map;
  const auto edges = C::setup::keys::edges();
  for (std::size_t i = 0; i < edges.size(); ++i) EXPECT_TRUE(m.insert(edges[i], C::val(i))) << i;
  EXPECT_EQ(m.size(), edges.size());
  for (std::size_t i = 0; i < edges.size(); ++i) EXPECT_EQ(m.find(edges[i]), C::opt(i)) << i;
  EXPECT_TRUE(m.erase(edges[0]));
  EXPECT_FALSE(m.contains(edges[0]));
  for (std::size_t i = 1; i < edges.size(); ++i) EXPECT_EQ(m.find(edges[i]), C::opt(i)) << i;
  if constexpr (C::value_map && C::string_keys) {
    EXPECT_TRUE(m.insert_or_assign(edges[0], "empty key"));
    EXPECT_EQ(m.template get<std::string>(edges[0]), std::string("empty key"));
  }
}

// Random operations, each result compared with the reference map.
TYPED_TEST_P(MapConformance, DifferentialAgainstReference) {
  using C = TestFixture;
  using V = typename C::V;
  using vals = typename C::setup::vals;
  auto& m = this->map;
  polymap::testing::reference_map<typename C::K, V> ref;
  std::mt19937_64 rng(20261126);
  for (int step = 0; step < 20000; ++step) {
    const std::uint64_t r = rng();
    const auto k = C::key(r % 61);
    const V v = vals::pick(r >> 8);
    SCOPED_TRACE(testing::Message() << "step " << step << " key " << r % 61);
    switch ((r >> 20) % 9) {
      case 0:
        ASSERT_EQ(m.insert(k, v), ref.insert(k, v));
        break;
      case 1:
        ASSERT_EQ(m.insert_or_assign(k, v), ref.insert_or_assign(k, v));
        break;
      case 2:
        ASSERT_EQ(m.find(k), ref.find(k));
        break;
      case 3:
        ASSERT_EQ(m.erase(k), ref.erase(k));
        break;
      case 4: {
        const V e = vals::pick(r >> 30);
        ASSERT_EQ(m.compare_exchange(k, e, v), ref.compare_exchange(k, e, v));
        break;
      }
      case 5: {
        auto f = [&](const V* cur) { return cur ? vals::next(*cur) : v; };
        ASSERT_EQ(m.update(k, f), ref.update(k, f));
        break;
      }
      case 6: {
        auto f = [](V& cur) { cur = vals::next(cur); };
        ASSERT_EQ(m.insert_or_visit(k, v, f), ref.insert_or_visit(k, v, f));
        break;
      }
      case 7:
        ASSERT_EQ(m.contains(k), ref.contains(k));
        break;
      default:
        ASSERT_EQ(m.size(), ref.size());
        break;
    }
  }
  std::map<std::uint64_t, V> a, b;
  m.for_each([&](const typename C::K& k, const V& v) { EXPECT_TRUE(a.emplace(C::index(k), v).second); });
  ref.for_each([&](const typename C::K& k, const V& v) { b.emplace(C::index(k), v); });
  EXPECT_EQ(a, b);
}

REGISTER_TYPED_TEST_SUITE_P(MapConformance, InsertOnlyWhenAbsent, InsertOrAssign, FindByAnyStringKind, TypedGet,
                            TypedKeys, Visit, InsertOrVisit, Update, CompareExchange, EraseAndEraseIf,
                            ForEachSizeClearReserve, ThrowingCallbacksChangeNothing, ManyEntriesAndGrowth, BadInputKeys,
                            DifferentialAgainstReference);

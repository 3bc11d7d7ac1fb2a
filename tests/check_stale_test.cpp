// Tests of stale_checked<M> (polymap/check/stale.hpp): writes based on a stale
// read are reported, with the three sites; atomic operations, forgotten reads
// and reads outside the window are not. Interleavings are forced with latches
// (read on one thread, write on another, write on the first), never by timing.
#include "polymap/check/stale.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <latch>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "polymap/concurrent_map.hpp"
#include "polymap/locked_map.hpp"

namespace {

using polymap::value;
using polymap::check::conflict;
using polymap::check::recording_handler;
using polymap::check::scoped_report_handler;
using polymap::check::stale_checked;
using polymap::check::stale_options;
using polymap::check::stale_scope;

using counters = stale_checked<polymap::locked_map<std::string, std::int64_t>>;

// Runs first() on thread A, then second() on thread B, then third() on A,
// each step after the previous one finished (latches), and returns A's and
// B's thread ids.
struct interleaving {
  std::thread::id a, b;
};
interleaving a_b_a(const std::function<void()>& first, const std::function<void()>& second,
                   const std::function<void()>& third) {
  std::latch read_done(1), write_done(1);
  interleaving ids;
  std::thread ta([&] {
    ids.a = std::this_thread::get_id();
    first();
    read_done.count_down();
    write_done.wait();
    third();
  });
  std::thread tb([&] {
    ids.b = std::this_thread::get_id();
    read_done.wait();
    second();
    write_done.count_down();
  });
  ta.join();
  tb.join();
  return ids;
}

// __builtin_LINE at the call: the line a site must name.
std::uint_least32_t line_here(std::uint_least32_t l = __builtin_LINE()) {
  return l;
}

TEST(StaleChecked, ReadOtherWriteThenWriteReportsOnceNamingTheThreeSites) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  m.insert_or_assign("hits", 1);
  std::uint_least32_t read_line = 0, other_line = 0, write_line = 0;
  const auto ids = a_b_a(
      [&] {
        read_line = line_here() + 1;
        auto v = m.find("hits");
        ASSERT_TRUE(v);
      },
      [&] {
        other_line = line_here() + 1;
        m.insert_or_assign("hits", 5);
      },
      [&] {
        write_line = line_here() + 1;
        m.insert_or_assign("hits", 2);
      });
  const auto reports = h.reports();
  ASSERT_EQ(reports.size(), 1u);
  const auto& r = reports[0];
  EXPECT_EQ(r.kind, conflict::stale_write);
  EXPECT_EQ(r.key, "hits");
  EXPECT_EQ(r.lost_writes, 1u);
  EXPECT_EQ(r.read.op, "find");
  EXPECT_EQ(r.read.where.line, read_line);
  EXPECT_EQ(r.read.thread, ids.a);
  EXPECT_EQ(r.other.op, "insert_or_assign");
  EXPECT_EQ(r.other.where.line, other_line);
  EXPECT_EQ(r.other.thread, ids.b);
  EXPECT_EQ(r.here.op, "insert_or_assign");
  EXPECT_EQ(r.here.where.line, write_line);
  EXPECT_EQ(r.here.thread, ids.a);
  EXPECT_NE(std::string(r.here.where.file).find("check_stale_test.cpp"), std::string::npos);
  const std::string text = polymap::check::to_string(r);
  EXPECT_NE(text.find("read before: find"), std::string::npos) << text;
  EXPECT_NE(text.find("update"), std::string::npos) << text;
  EXPECT_NE(text.find("compare_exchange"), std::string::npos) << text;
  EXPECT_NE(r.detail.find("'hits'"), std::string::npos) << r.detail;
}

// Reads name a map by an id that is never reused: a map built where a
// destroyed one lived does not inherit its reads.
TEST(StaleChecked, ANewMapAtAnOldAddressHasNoReads) {
  recording_handler h;
  scoped_report_handler scope(h);
  alignas(counters) unsigned char storage[sizeof(counters)];
  auto* first = new (storage) counters;
  first->insert_or_assign("k", 1);
  (void)first->find("k");
  first->~counters();
  auto* second = new (storage) counters;  // same address, same key, another map
  second->insert_or_assign("k", 2);
  second->~counters();
  EXPECT_EQ(h.count(), 0u);
}

TEST(StaleChecked, ReadThenWriteWithNoInterveningWriteIsSilent) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  m.insert_or_assign("hits", 1);
  // The other thread writes a different key, and reads the same one.
  a_b_a([&] { (void)m.find("hits"); },
        [&] {
          m.insert_or_assign("other", 1);
          (void)m.find("hits");
        },
        [&] { m.insert_or_assign("hits", 2); });
  EXPECT_EQ(h.count(), 0u);
  // And on one thread: read, write, write again (the first write consumed the read).
  auto v = m.find("hits");
  m.insert_or_assign("hits", *v + 1);
  m.insert_or_assign("hits", *v + 2);
  EXPECT_EQ(h.count(), 0u);
}

TEST(StaleChecked, ContainsThenInsertReportsWhenAnotherThreadInserted) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  bool inserted = true;
  const auto ids = a_b_a([&] { EXPECT_FALSE(m.contains("k")); }, [&] { EXPECT_TRUE(m.insert("k", 1)); },
                         [&] { inserted = m.insert("k", 2); });
  EXPECT_FALSE(inserted);
  ASSERT_EQ(h.count(), 1u);
  const auto r = h.reports()[0];
  EXPECT_EQ(r.read.op, "contains");
  EXPECT_EQ(r.other.op, "insert");
  EXPECT_EQ(r.other.thread, ids.b);
  EXPECT_EQ(r.here.op, "insert");
  EXPECT_EQ(r.lost_writes, 1u);
}

TEST(StaleChecked, EraseAfterAStaleReadIsReported) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  m.insert_or_assign("k", 1);
  a_b_a([&] { (void)m.find("k"); }, [&] { m.insert_or_assign("k", 3); }, [&] { EXPECT_TRUE(m.erase("k")); });
  ASSERT_EQ(h.count(), 1u);
  EXPECT_EQ(h.reports()[0].here.op, "erase");
}

TEST(StaleChecked, ErasedAndRecreatedKeyIsSeen) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  m.insert_or_assign("k", 1);
  a_b_a([&] { (void)m.find("k"); },
        [&] {
          m.erase("k");
          m.insert_or_assign("k", 1);  // the same value as read: the stamp still differs
        },
        [&] { m.insert_or_assign("k", 2); });
  EXPECT_EQ(h.count(), 1u);
}

TEST(StaleChecked, AtomicOperationsAreNeverReported) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  m.insert_or_assign("k", 1);
  // read, other write, then each atomic operation in turn.
  a_b_a([&] { (void)m.find("k"); }, [&] { m.insert_or_assign("k", 10); },
        [&] { m.update("k", [](const std::int64_t* cur) { return cur ? *cur + 1 : 1; }); });
  a_b_a([&] { (void)m.find("k"); }, [&] { m.insert_or_assign("k", 20); },
        [&] { EXPECT_TRUE(m.compare_exchange("k", std::int64_t{20}, std::int64_t{21})); });
  a_b_a([&] { (void)m.contains("k"); }, [&] { m.insert_or_assign("k", 30); },
        [&] { EXPECT_FALSE(m.insert_or_visit("k", 0, [](std::int64_t& v) { ++v; })); });
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(*m.find("k"), 31);
  // The value an atomic operation returned is a read: a write based on it,
  // after another thread's write, is reported.
  std::int64_t got = 0;
  a_b_a([&] { got = m.update("k", [](const std::int64_t* cur) { return cur ? *cur + 1 : 1; }); },
        [&] { m.insert_or_assign("k", 100); }, [&] { m.insert_or_assign("k", got + 1); });
  EXPECT_EQ(h.count(), 1u);
}

TEST(StaleChecked, ForgetAndScopesMakeAWriteBlind) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  m.insert_or_assign("k", 1);
  a_b_a([&] { (void)m.find("k"); }, [&] { m.insert_or_assign("k", 2); },
        [&] {
          m.forget("k");
          m.insert_or_assign("k", 3);
        });
  a_b_a([&] { (void)m.find("k"); }, [&] { m.insert_or_assign("k", 2); },
        [&] {
          m.forget();
          m.insert_or_assign("k", 3);
        });
  a_b_a(
      [&] {
        stale_scope task;  // a unit of work: its reads end with it
        (void)m.find("k");
      },
      [&] { m.insert_or_assign("k", 2); }, [&] { m.insert_or_assign("k", 3); });
  a_b_a([&] { (void)m.find("k"); }, [&] { m.insert_or_assign("k", 2); },
        [&] {
          polymap::check::forget_all();
          m.insert_or_assign("k", 3);
        });
  EXPECT_EQ(h.count(), 0u);
  // forget(k) forgets only k.
  m.insert_or_assign("j", 1);
  a_b_a(
      [&] {
        (void)m.find("k");
        (void)m.find("j");
      },
      [&] {
        m.insert_or_assign("k", 5);
        m.insert_or_assign("j", 5);
      },
      [&] {
        m.forget("j");
        m.insert_or_assign("j", 6);
        m.insert_or_assign("k", 6);
      });
  ASSERT_EQ(h.count(), 1u) << polymap::check::to_string(h.reports()[0]) << "\n"
                           << polymap::check::to_string(h.reports()[1]);
  EXPECT_EQ(h.reports()[0].key, "k");
}

TEST(StaleChecked, ReadsOutsideTheWindowAreForgotten) {
  recording_handler h;
  scoped_report_handler scope(h);
  stale_options o;
  o.window_ops = 8;
  counters m(o);
  m.insert_or_assign("k", 1);
  m.insert_or_assign("x", 1);
  // Older than window_ops operations of the reading thread.
  a_b_a(
      [&] {
        (void)m.find("k");
        for (int i = 0; i < 8; ++i) (void)m.find("x");
      },
      [&] { m.insert_or_assign("k", 2); }, [&] { m.insert_or_assign("k", 3); });
  EXPECT_EQ(h.count(), 0u);
  // Within the window (7 operations later): reported.
  a_b_a(
      [&] {
        (void)m.find("k");
        for (int i = 0; i < 6; ++i) (void)m.find("x");
      },
      [&] { m.insert_or_assign("k", 2); }, [&] { m.insert_or_assign("k", 3); });
  EXPECT_EQ(h.count(), 1u);
  // Pushed out of the ring (32 reads) although within a larger window.
  o.window_ops = 1000;
  counters wide(o);
  wide.insert_or_assign("k", 1);
  a_b_a(
      [&] {
        (void)wide.find("k");
        for (int i = 0; i < 32; ++i) (void)wide.find("x");
      },
      [&] { wide.insert_or_assign("k", 2); }, [&] { wide.insert_or_assign("k", 3); });
  EXPECT_EQ(h.count(), 1u);
}

TEST(StaleChecked, ReadsOlderThanTheTimeWindowAreForgotten) {
  recording_handler h;
  scoped_report_handler scope(h);
  stale_options o;
  o.window_time = std::chrono::milliseconds(1);
  counters m(o);
  m.insert_or_assign("k", 1);
  a_b_a([&] { (void)m.find("k"); },
        [&] {
          // Waits on the clock itself: past the window by construction.
          const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(3);
          while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
          m.insert_or_assign("k", 2);
        },
        [&] { m.insert_or_assign("k", 3); });
  EXPECT_EQ(h.count(), 0u);
}

TEST(StaleChecked, TypedGetAndSetOnValues) {
  recording_handler h;
  scoped_report_handler scope(h);
  stale_checked<polymap::locked_map<>> m;
  const polymap::key<std::int64_t> hits("hits");
  m.set(hits, 1);
  a_b_a([&] { EXPECT_EQ(*m.get(hits), 1); }, [&] { m.set(hits, 7); }, [&] { m.set(hits, 2); });
  ASSERT_EQ(h.count(), 1u);
  const auto r = h.reports()[0];
  EXPECT_EQ(r.read.op, "get");
  EXPECT_EQ(r.other.op, "set");
  EXPECT_EQ(r.here.op, "set");
  auto wrong = m.get<std::string>("hits");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), polymap::errc::type_mismatch);
  EXPECT_EQ(m.get<std::int64_t>("absent").error(), polymap::errc::not_found);
}

TEST(StaleChecked, WrapsConcurrentMapToo) {
  recording_handler h;
  scoped_report_handler scope(h);
  stale_checked<polymap::concurrent_map<>> m;
  m.insert_or_assign("hits", value(std::int64_t{1}));
  a_b_a([&] { (void)m.visit("hits", [](const value&) {}); },
        [&] { m.insert_or_assign("hits", value(std::int64_t{2})); },
        [&] { m.insert_or_assign("hits", value(std::int64_t{3})); });
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(m.size(), 1u);
  std::size_t seen = 0;
  m.for_each([&](const std::string& k, const value& v) {
    EXPECT_EQ(k, "hits");
    EXPECT_EQ(*v.get_if<std::int64_t>(), 3);
    ++seen;
  });
  EXPECT_EQ(seen, 1u);
}

// The lab's program: two threads increment one counter with get, then
// insert_or_assign. Every lost increment is explained by the reports: the
// writes they say were overwritten unseen add up to at least the loss (one
// stale write can lose several increments, so the count of reports alone can
// be lower than the loss).
TEST(StaleChecked, CheckThenActIncrementLossIsExplainedByReports) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  m.insert_or_assign("hits", 0);
  constexpr int kIncrements = 5000;
  std::latch start(2);
  auto body = [&] {
    start.arrive_and_wait();
    for (int i = 0; i < kIncrements; ++i) {
      const std::int64_t cur = *m.find("hits");
      if (i % 8 == 0) std::this_thread::yield();  // widens the gap the other thread can land in
      m.insert_or_assign("hits", cur + 1);
    }
  };
  std::thread a(body), b(body);
  a.join();
  b.join();
  const std::int64_t lost = 2 * kIncrements - *m.find("hits");
  std::uint64_t overwritten = 0;
  for (const auto& r : h.reports()) {
    EXPECT_EQ(r.kind, conflict::stale_write);
    EXPECT_EQ(r.key, "hits");
    EXPECT_GE(r.lost_writes, 1u);
    overwritten += r.lost_writes;
  }
  EXPECT_GE(overwritten, static_cast<std::uint64_t>(lost));
  if (lost > 0) {
    EXPECT_GE(h.count(), 1u);
  }
}

// A mixed load of atomic operations, plain reads and blind writes after
// forget(): no report at all.
TEST(StaleChecked, MixedAtomicLoadHasNoReports) {
  recording_handler h;
  scoped_report_handler scope(h);
  counters m;
  constexpr int kThreads = 4, kOps = 4000, kKeys = 16;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      std::uint64_t x = 88172645463325252ULL + static_cast<std::uint64_t>(t);
      for (int i = 0; i < kOps; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const std::string k = "k" + std::to_string(x % kKeys);
        switch (x % 7) {
          case 0:
            m.update(k, [](const std::int64_t* cur) { return cur ? *cur + 1 : 1; });
            break;
          case 1:
            m.insert_or_visit(k, 1, [](std::int64_t& v) { ++v; });
            break;
          case 2: {
            const auto cur = m.find(k);
            if (cur) (void)m.compare_exchange(k, *cur, *cur + 1);
            break;
          }
          case 3:
            (void)m.contains(k);
            break;
          case 4:
            (void)m.visit(k, [](std::int64_t) {});
            break;
          case 5:
            (void)m.find(k);
            m.forget(k);
            m.insert_or_assign(k, 0);  // blind: does not depend on the read
            break;
          default: {
            stale_scope task;
            (void)m.find(k);
          }
            m.insert_or_assign(k, 1);
            break;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_LE(m.size(), static_cast<std::size_t>(kKeys));
}

TEST(StaleChecked, WriteLogsOfExitedThreadsAreReusedAndStampsStayUnique) {
  counters m;
  std::vector<std::uint64_t> stamps;
  for (int i = 0; i < 4; ++i) {
    std::thread([&] { m.insert_or_assign("k" + std::to_string(i), i); }).join();
  }
  m.unchecked().for_each([&](const std::string&, const auto& e) { stamps.push_back(e.stamp); });
  ASSERT_EQ(stamps.size(), 4u);
  std::sort(stamps.begin(), stamps.end());
  EXPECT_EQ(std::unique(stamps.begin(), stamps.end()), stamps.end());
  for (auto s : stamps) EXPECT_NE(s, 0u);
}

}  // namespace

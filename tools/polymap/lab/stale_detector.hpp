// tools/polymap/lab/stale_detector.hpp — the check_then_act scenario's
// "polymap detector" column: the naive check-then-act programs run on
// stale_checked<locked_map<>> (polymap/check/stale.hpp), in-process, with a
// handler that counts the reports. The programs have the naive cases' shape
// (hazard_cases.hpp): two threads, get then insert_or_assign one counter, or
// contains then insert the same keys. The lost updates counted here are this
// run's own, so that the cell compares reports with the loss they explain.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "hazard_cases.hpp"  // first: it selects checked references
#include "polymap/check/stale.hpp"
#include "polymap/locked_map.hpp"

namespace polymap::lab::stale {

// Counts stale_write reports and the writes they say were overwritten unseen.
class tally_handler final : public check::report_handler {
 public:
  void on_report(const check::report& r) override {
    if (r.kind != check::conflict::stale_write) {
      // relaxed, all three: counters read after the threads are joined.
      other.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    reports.fetch_add(1, std::memory_order_relaxed);
    overwritten.fetch_add(static_cast<std::int64_t>(r.lost_writes), std::memory_order_relaxed);
  }
  std::atomic<std::int64_t> reports{0}, overwritten{0}, other{0};
};

struct counts {
  std::int64_t reports = 0;      // stale writes reported
  std::int64_t overwritten = 0;  // writes they overwrote unseen (sum of report::lost_writes)
  std::int64_t lost = 0;         // lost increments / inserts believed done but lost, this run
  std::int64_t attempts = 0;     // increments / claims made
  void add(const counts& c) {
    reports += c.reports;
    overwritten += c.overwritten;
    lost += c.lost;
    attempts += c.attempts;
  }
};

inline counts get_then_set(int n) {
  tally_handler h;
  check::scoped_report_handler scope(h);
  check::stale_checked<polymap::locked_map<>> m;
  m.insert_or_assign("hits", value(std::int64_t{0}));
  auto body = [&] {
    for (int i = 0; i < n; ++i) {
      auto cur = m.get<std::int64_t>("hits");
      m.insert_or_assign("hits", value(*cur + 1));
    }
  };
  cases::run_pair(body, body);
  counts c;
  c.attempts = std::int64_t{2} * n;
  c.lost = c.attempts - *m.get<std::int64_t>("hits");
  c.reports = h.reports.load();
  c.overwritten = h.overwritten.load();
  return c;
}

inline counts contains_then_insert(int n) {
  tally_handler h;
  check::scoped_report_handler scope(h);
  check::stale_checked<polymap::locked_map<>> m;
  std::atomic<std::int64_t> claims{0};
  auto body = [&](int t) {
    for (int k = 0; k < n; ++k) {
      const std::string key = "k" + std::to_string(k);
      if (!m.contains(key)) {
        m.insert(key, value(std::int64_t{t}));           // return value ignored, as in the pattern
        claims.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count, read after join
      }
    }
  };
  cases::run_pair([&] { body(0); }, [&] { body(1); });
  counts c;
  c.attempts = claims.load();
  c.lost = c.attempts - static_cast<std::int64_t>(m.size());
  c.reports = h.reports.load();
  c.overwritten = h.overwritten.load();
  return c;
}

// The table cell: reports, the writes they name as overwritten unseen, and
// the loss of the same run (increments or claimed inserts).
inline std::string cell(const counts& c) {
  return fmt::format("stale_checked<>: reported {} stale writes ({} overwritten, {} lost)", c.reports, c.overwritten,
                     c.lost);
}

// The detector column of a check_then_act row: `rounds` rounds of round()
// (get_then_set or contains_then_insert), in-process, summed.
template <class Round>
std::string run_cell(int rounds, Round round) {
  counts c;
  for (int i = 0; i < rounds; ++i) c.add(round());
  return cell(c);
}

}  // namespace polymap::lab::stale

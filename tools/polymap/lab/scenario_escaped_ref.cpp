// Scenario 5, "escaped_ref": a map whose get() locks, finds and returns a
// const V&. The lock is gone when the reference is used. Thread A takes the
// reference; thread B then erases the key and inserts another (the freed
// memory is reused), or overwrites the value in place (nothing is freed); A
// then reads. B's writes happen-before A's read through the map's mutex, so
// ThreadSanitizer sees no race; ASan sees the use after free but not the
// overwrite. checked<>::ref() carries the container's generation and reports
// both; polymap's maps hand out no reference outside visit(): find() copies.
#include "hazard_cases.hpp"  // first: it selects checked references

#include <algorithm>

#include <fmt/format.h>

#include "lab.hpp"
#include "polymap/check/report.hpp"

namespace polymap::lab {
namespace {

constexpr int kIters = 50;  // references taken per round (each two thread hand-offs)

std::string checked_cell(bool erase, int rounds) {
  row det;
  run_rounds(
      det, rounds, false,
      [erase] {
        check::counting_handler h(0);
        check::scoped_report_handler scope(h);
        auto c = cases::ref_checked(kIters, erase);
        c.reports = static_cast<std::int64_t>(h.count());
        return c;
      },
      options{});
  return fmt::format("checked_ref: reported {} of {} stale uses, {} read through", det.reports,
                     std::int64_t{kIters} * rounds, det.wrong);
}

std::vector<row> run(const options& opt) {
  const int rounds = std::min(opt.rounds, 10);
  std::vector<row> rows;

  for (const bool erase : {true, false}) {
    row naive;
    naive.scenario = "escaped_ref";
    naive.container = erase ? "const V& after erase + reuse" : "const V& after overwrite (no free)";
    const auto cells = measure_sanitizers(erase ? "ref_after_erase" : "ref_after_overwrite", opt);
    naive.tsan = cells.tsan;
    naive.asan = cells.asan;
    if (auto why = skip_reason(false, erase); !why.empty()) {
      naive.outcome = verdict::silent_ub;
      naive.outcome_text = "not run";
      naive.note = why;
    } else {
      run_rounds(
          naive, rounds, true,
          [erase] { return erase ? cases::ref_after_erase_naive(kIters) : cases::ref_after_overwrite_naive(kIters); },
          opt);
      naive.outcome = naive_verdict(naive);
      naive.outcome_text = fmt::format("{} of {} reads saw another value{}", naive.wrong,
                                       std::int64_t{kIters} * (naive.rounds - naive.crashes),
                                       naive.crashes ? fmt::format(", {} crashes", naive.crashes) : "");
      naive.note = erase ? "the reference read freed memory, reused by the next insert"
                         : "the reference silently changed value under the reader";
    }
    naive.detector = checked_cell(erase, rounds);
    rows.push_back(naive);
  }

  for (const bool erase : {true, false}) {
    row safe;
    safe.scenario = "escaped_ref";
    safe.container = erase ? "locked_map find() copy, erase" : "locked_map find() copy, overwrite";
    run_rounds(
        safe, rounds, false, [erase] { return cases::ref_polymap(kIters, erase); }, opt);
    safe.outcome = polymap_verdict(safe);
    safe.outcome_text = fmt::format("{} wrong of {} reads", safe.wrong, std::int64_t{kIters} * rounds);
    rows.push_back(safe);
  }
  return rows;
}

const registrar reg{{"escaped_ref", "a reference escaping the lock, used after erase or overwrite", &run, 5}};

}  // namespace
}  // namespace polymap::lab

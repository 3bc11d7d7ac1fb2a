// Scenario 4, "masked_race": two threads write a plain map without any lock
// of its own, taking turns; both log through a mutex-protected logger before
// and after each write. The logger's mutex orders the writes, so
// ThreadSanitizer sees no race (the control, the same program without the
// log lines, is reported). guarded<> checks the rule instead of the schedule:
// every write without the map's own mutex is reported.
#include "hazard_cases.hpp"  // first: it selects checked references

#include <algorithm>

#include <fmt/format.h>

#include "lab.hpp"
#include "polymap/check/report.hpp"

namespace polymap::lab {
namespace {

constexpr int kTurns = 100;  // writes per thread and round (each a thread hand-off)

std::vector<row> run(const options& opt) {
  const int rounds = std::min(opt.rounds, 10);
  std::vector<row> rows;

  row naive;
  naive.scenario = "masked_race";
  naive.container = "unordered_map, unlocked; writers log via a mutex";
  const auto cells = measure_sanitizers("masked_race", opt);
  naive.asan = cells.asan;
  if (opt.sanitizer_children) {
    const auto control = run_sanitizer_child(sanitizer::thread, "masked_race_without_logger");
    naive.tsan =
        fmt::format("{} (control without the logger: {})", cells.tsan, sanitizer_verdict(control, sanitizer::thread));
  } else {
    naive.tsan = cells.tsan;
  }
  // Silent under TSan by construction, so it runs in-process in every build.
  run_rounds(
      naive, rounds, false, [] { return cases::masked_naive(kTurns, true); }, opt);
  naive.outcome = naive.crashes || naive.lost || naive.wrong ? verdict::anomaly : verdict::silent_ub;
  naive.note =
      "no anomaly: the logger happened to order the writes; remove it, or change the timing, and the race is live";

  row det = naive;
  det.reports = 0;
  run_rounds(
      det, rounds, false,
      [] {
        check::counting_handler h(0);
        check::scoped_report_handler scope(h);
        auto c = cases::masked_guarded(kTurns);
        c.reports = static_cast<std::int64_t>(h.count());
        return c;
      },
      options{});
  naive.reports = det.reports;
  naive.detector =
      fmt::format("guarded<>: reported {} of {} unguarded writes", det.reports, std::int64_t{2} * kTurns * rounds);
  rows.push_back(naive);

  row safe;
  safe.scenario = "masked_race";
  safe.container = "polymap::locked_map";
  run_rounds(
      safe, rounds, false, [] { return cases::masked_polymap(kTurns); }, opt);
  safe.outcome = polymap_verdict(safe);
  safe.outcome_text = fmt::format("{} lost of {} writes", safe.lost, std::int64_t{2} * kTurns * rounds);
  rows.push_back(safe);
  return rows;
}

const registrar reg{{"masked_race", "a race masked by incidental synchronization (a logger's mutex)", &run, 4}};

}  // namespace
}  // namespace polymap::lab

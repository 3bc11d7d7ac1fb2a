// Scenario 2, "torn": a {type tag, payload} value of two machine words,
// written with two plain stores while another thread reads it (Go's
// interface{} is such a pair). Reads that see a tag from one write and a
// payload from another are counted. The same program through checked<> is
// reported; polymap::value in a locked_map is never seen torn.
#include "hazard_cases.hpp"  // first: it selects checked references

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "lab.hpp"
#include "polymap/check/report.hpp"

namespace polymap::lab {
namespace {

constexpr int kReads = 200000;

std::vector<row> run(const options& opt) {
  const int rounds = std::min(opt.rounds, 20);
  std::vector<row> rows;

  row naive;
  naive.scenario = "torn";
  naive.container = "two words, plain stores";
  const auto cells = measure_sanitizers("torn", opt);
  naive.tsan = cells.tsan;
  naive.asan = cells.asan;
  if (auto why = skip_reason(true, false); !why.empty()) {
    naive.outcome = verdict::silent_ub;
    naive.outcome_text = "not run";
    naive.note = why;
    naive.detector = "not run (" + why + ")";
  } else {
    run_rounds(
        naive, rounds, true, [] { return cases::torn_naive(kReads); }, opt);
    naive.outcome = naive_verdict(naive);
    const double reads = static_cast<double>(naive.rounds - naive.crashes) * kReads;
    naive.outcome_text = fmt::format("{} torn of {:.0f} reads ({:.3f}%)", naive.wrong, reads,
                                     reads > 0 ? 100.0 * static_cast<double>(naive.wrong) / reads : 0.0);
    naive.note = "a torn read pairs one write's tag with another's payload: a crash waiting to happen";

    // The detector on the same pattern: a checked<std::unordered_map> written
    // and read by two threads without a lock.
    row det;
    det.scenario = naive.scenario;
    det.container = naive.container;
    const int det_rounds = std::min(rounds, 5);
    std::int64_t rounds_reported = 0;
    for (int i = 0; i < det_rounds; ++i) {
      row one = det;
      run_rounds(
          one, 1, true,
          [] {
            check::counting_handler h(0);
            check::scoped_report_handler scope(h);
            auto c = cases::torn_checked(kReads / 10, std::chrono::nanoseconds(0));
            c.reports = static_cast<std::int64_t>(h.count());
            return c;
          },
          options{});
      rounds_reported += one.reports > 0;
      det.reports += one.reports;
    }
    naive.reports = det.reports;
    naive.detector =
        fmt::format("checked<>: reported in {}/{} rounds ({} reports)", rounds_reported, det_rounds, det.reports);
  }
  rows.push_back(naive);

  row safe;
  safe.scenario = "torn";
  safe.container = "polymap::value in locked_map";
  run_rounds(
      safe, rounds, false, [] { return cases::torn_polymap(kReads / 4); }, opt);
  safe.outcome = polymap_verdict(safe);
  safe.outcome_text = fmt::format("{} torn of {} reads", safe.wrong, static_cast<std::int64_t>(rounds) * (kReads / 4));
  safe.note = safe.outcome == verdict::safe ? "type and payload always matched" : "polymap::value seen torn: a bug";
  rows.push_back(safe);
  return rows;
}

const registrar reg{{"torn", "torn {type tag, payload} reads of a two-word value without atomics", &run, 2}};

}  // namespace
}  // namespace polymap::lab

// Scenario 3, "check_then_act": a thread-safe map used in two calls where one
// was needed. `v = get(k); insert_or_assign(k, v + 1)` and
// `if (!contains(k)) insert(k, v)` lose updates although every call is
// locked: an atomicity violation, not a data race, so ThreadSanitizer, ASan
// and Clang's thread-safety analysis have nothing to say, and neither has
// checked<> (no two calls overlap inside the container). The fix is in the
// API: update() and insert_or_visit() do the whole step under one lock.
// The detector column runs the same programs on stale_checked<>, which reports
// each write based on a stale read (stale_detector.hpp).
#include "hazard_cases.hpp"  // first: it selects checked references

#include <algorithm>

#include <fmt/format.h>

#include "lab.hpp"
#include "stale_detector.hpp"

namespace polymap::lab {
namespace {

constexpr int kIncrements = 20000;  // per thread and round
constexpr int kKeys = 2000;         // keys claimed per round

std::vector<row> run(const options& opt) {
  const int rounds = std::min(opt.rounds, 10);
  std::vector<row> rows;
  // cases::widened_window: without it a busy machine may show nothing.
  const std::string widened = fmt::format(
      "window widened by a wait: every {}th step holds its check open until the other thread has acted (at most {} "
      "ms), "
      "so that the lost update shows in every run, also on a busy machine",
      cases::kWidenEvery, std::chrono::duration_cast<std::chrono::milliseconds>(cases::kWidenMaxWait).count());

  row gts;
  gts.scenario = "check_then_act";
  gts.container = "locked_map: get, then insert_or_assign";
  auto cells = measure_sanitizers("get_then_set", opt);
  gts.tsan = cells.tsan;
  gts.asan = cells.asan;
  gts.detector = stale::run_cell(rounds, [] { return stale::get_then_set(kIncrements); });
  run_rounds(
      gts, rounds, false, [] { return cases::get_then_set_naive(kIncrements); }, opt);
  gts.outcome = gts.lost ? verdict::anomaly : verdict::not_seen;
  gts.outcome_text = fmt::format("{} of {} increments lost", gts.lost, std::int64_t{2} * kIncrements * rounds);
  gts.note = fmt::format("every call was locked; the read-modify-write was not; {}", widened);
  rows.push_back(gts);

  row cti;
  cti.scenario = "check_then_act";
  cti.container = "locked_map: contains, then insert";
  cells = measure_sanitizers("contains_then_insert", opt);
  cti.tsan = cells.tsan;
  cti.asan = cells.asan;
  cti.detector = stale::run_cell(rounds, [] { return stale::contains_then_insert(kKeys); });
  run_rounds(
      cti, rounds, false, [] { return cases::contains_then_insert_naive(kKeys); }, opt);
  cti.outcome = cti.lost ? verdict::anomaly : verdict::not_seen;
  cti.outcome_text = fmt::format("{} of {} inserts believed done but lost", cti.lost, std::int64_t{kKeys} * rounds);
  cti.note = fmt::format("both threads saw the key absent; one insert silently failed; {}", widened);
  rows.push_back(cti);

  row upd;
  upd.scenario = "check_then_act";
  upd.container = "locked_map: update";
  run_rounds(
      upd, rounds, false, [] { return cases::get_then_set_polymap(kIncrements); }, opt);
  upd.outcome = polymap_verdict(upd);
  upd.outcome_text = fmt::format("{} lost", upd.lost);
  rows.push_back(upd);

  row iov;
  iov.scenario = "check_then_act";
  iov.container = "locked_map: insert_or_visit";
  run_rounds(
      iov, rounds, false, [] { return cases::contains_then_insert_polymap(kKeys); }, opt);
  iov.outcome = polymap_verdict(iov);
  iov.outcome_text = fmt::format("{} lost", iov.lost);
  rows.push_back(iov);
  return rows;
}

const registrar reg{{"check_then_act", "check-then-act lost updates through a mutex-protected map", &run, 3}};

}  // namespace
}  // namespace polymap::lab

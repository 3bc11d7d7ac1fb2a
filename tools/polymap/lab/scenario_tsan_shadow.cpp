// Scenario 7, "tsan_shadow": ThreadSanitizer's bounded memory (hazard 5 of
// seed/README.md). A struct's fields are protected by a mutex; two places
// forget it: thread A writes a field, later thread Z writes it again, nothing
// orders the two. TSan reports the race only if it still remembers A's write
// when Z's arrives, and its memory is bounded: a finite per-thread history
// (lost when A makes many other accesses in between: "far") and 4 shadow
// cells per 8 bytes (taken when other threads, correctly locked, write the
// other bytes of the same word in between: "crowded"). The lab runs the TSan
// child once per round on each program and on its control (the writes close
// together; the same helpers on another word) and counts the rounds reported,
// with the project compiler's runtime and, where built, clang++-14's. A miss
// rate is measured, not asserted: it depends on the runtime and the schedule.
// guarded<> checks the rule, not TSan's memory: both forgetful writes are
// reported in every round.
#include "hazard_cases.hpp"  // first: it selects checked references

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "lab.hpp"
#include "polymap/check/report.hpp"

namespace polymap::lab {
namespace {

using cases::shadow_mode;

// The TSan child run `runs` times on one case: how many runs reported.
struct tally {
  bool built = false;
  int runs = 0, reported = 0, stacks_lost = 0, inconclusive = 0;
};

tally run_tsan(const std::string& binary, std::string_view case_name, int runs, const options& opt) {
  tally t;
  t.built = !binary.empty();
  if (!t.built) return t;
  if (opt.progress) opt.progress(fmt::format("sanitizer children: {} x{} ({})", case_name, runs, binary));
  for (int i = 0; i < runs; ++i) {
    const child_run r = run_child_binary(binary, sanitizer::thread, case_name);
    ++t.runs;
    if (r.reports > 0) {
      ++t.reported;
      t.stacks_lost += r.stacks_lost > 0;
    } else if (!(r.exit_code == 0 && r.counts_ok)) {
      ++t.inconclusive;
    }
  }
  return t;
}

std::string tally_text(const tally& t) {
  if (!t.built) return "not run (no child built)";
  std::string s = fmt::format("reported {}/{}", t.reported, t.runs);
  if (t.stacks_lost) s += fmt::format(" ({} without A's stack)", t.stacks_lost);
  if (t.inconclusive) s += fmt::format(", {} inconclusive", t.inconclusive);
  return s;
}

// The project compiler's runtime (the polymap_lab_tsan child is built by the
// compiler that built this binary) and clang++-14's, on the case and its
// control.
std::string tsan_cell(std::string_view case_name, std::string_view control_name, int runs, const options& opt) {
  if (!opt.sanitizer_children) return "not run (sanitizer children disabled)";
#if defined(__clang__)
  const char* own = "clang";
#else
  const char* own = "g++";
#endif
  const std::string own_bin = find_sanitizer_child(sanitizer::thread);
  const std::string clang_bin = find_clang_tsan_child();
  const tally own_case = run_tsan(own_bin, case_name, runs, opt);
  const tally own_control = run_tsan(own_bin, control_name, runs, opt);
  std::string cell = fmt::format("{}: {}", own, tally_text(own_case));
  std::string control = fmt::format("{} {}", own, tally_text(own_control));
  if (!clang_bin.empty()) {
    const tally clang_case = run_tsan(clang_bin, case_name, runs, opt);
    const tally clang_control = run_tsan(clang_bin, control_name, runs, opt);
    cell += fmt::format("; clang++-14: {}", tally_text(clang_case));
    control += fmt::format(", clang++-14 {}", tally_text(clang_control));
  } else {
    cell += "; clang++-14: not run (no polymap_lab_tsan_clang built)";
  }
  return fmt::format("{} (control: {})", cell, control);
}

struct program {
  shadow_mode mode;
  const char* case_name;
  const char* control_name;
  const char* container;
  const char* note;
  long work;
  int helpers;
};

const program kPrograms[] = {
    {shadow_mode::far, "tsan_shadow_far", "tsan_shadow_close",
     "field written by A, then by Z, 1,000,000 other accesses of A apart (no lock)",
     "A's write is out of TSan's history when Z writes (control: the writes close together)", cases::kShadowFarWork, 0},
    {shadow_mode::crowded, "tsan_shadow_crowded", "tsan_shadow_crowded_control",
     "field written by A, then by Z; 4 locked threads write the other bytes of its word in between",
     "the helpers' accesses take the word's 4 shadow cells (control: the same helpers on another word)",
     cases::kShadowHelperWork, cases::kShadowHelpers},
};

std::vector<row> run(const options& opt) {
  const int rounds = std::min(opt.rounds, 10);
  std::vector<row> rows;

  for (const auto& p : kPrograms) {
    row naive;
    naive.scenario = "tsan_shadow";
    naive.container = p.container;
    naive.tsan = tsan_cell(p.case_name, p.control_name, rounds, opt);
    if (opt.sanitizer_children) {
      naive.asan = sanitizer_verdict(run_sanitizer_child(sanitizer::address, p.case_name), sanitizer::address);
    } else {
      naive.asan = "not run (sanitizer children disabled)";
    }
    if (auto why = skip_reason(true, false); !why.empty()) {
      naive.outcome = verdict::silent_ub;
      naive.outcome_text = "not run";
      naive.note = why;
      naive.detector = "not run (" + why + ")";
      rows.push_back(naive);
      continue;
    }
    run_rounds(
        naive, rounds, false, [&p] { return cases::shadow_naive(p.mode, p.work, p.helpers); }, opt);
    naive.outcome = naive_verdict(naive);
    naive.note = p.note;

    row det;
    det.scenario = naive.scenario;
    det.container = naive.container;
    run_rounds(
        det, rounds, false,
        [&p] {
          check::counting_handler h(0);
          check::scoped_report_handler scope(h);
          auto c = cases::shadow_guarded(p.mode, p.work, p.helpers);
          c.reports = static_cast<std::int64_t>(h.count());
          return c;
        },
        options{});
    naive.reports = det.reports;
    naive.detector =
        fmt::format("guarded<>: reported {} of {} unguarded writes", det.reports, std::int64_t{2} * rounds);
    rows.push_back(naive);
  }

  row safe;
  safe.scenario = "tsan_shadow";
  safe.container = "polymap::locked_map, both schedules";
  run_rounds(
      safe, rounds, false,
      [] {
        round_counts sum;
        for (const auto& p : kPrograms) {
          const round_counts c = cases::shadow_polymap(p.mode, p.work, p.helpers);
          sum.lost += c.lost;
          sum.wrong += c.wrong;
        }
        return sum;
      },
      opt);
  safe.outcome = polymap_verdict(safe);
  safe.outcome_text =
      fmt::format("{} lost or wrong of {} final values", safe.lost + safe.wrong, std::int64_t{2} * safe.rounds);
  rows.push_back(safe);
  return rows;
}

const registrar reg{
    {"tsan_shadow", "ThreadSanitizer's bounded memory: a race missed when its first access is forgotten", &run, 7}};

}  // namespace
}  // namespace polymap::lab

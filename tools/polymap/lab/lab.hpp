// tools/polymap/lab/lab.hpp — the hazard lab: scenarios, their result rows,
// and the child-process runner that contains crashes of naive containers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace polymap::lab {

// What a run of one scenario is asked to do.
struct options {
  int rounds = 200;
  bool sanitizer_children = true;                  // run polymap_lab_tsan / _asan for the TSan and ASan columns
  bool quiet_children = true;                      // send crashing children's stderr to /dev/null
  std::function<void(std::string_view)> progress;  // a line per step; may be empty
};

// The verdict of one row.
enum class verdict {
  anomaly,    // the container misbehaved: crash, lost entry, wrong type or torn value
  silent_ub,  // no visible anomaly, but the program is undefined behaviour: proves nothing
  safe,       // a polymap map: no anomaly, as required
  failed,     // a polymap map showed an anomaly: a bug in polymap
  not_seen,   // a naive program that is not UB (e.g. an atomicity violation): no anomaly this time
};
std::string_view to_string(verdict v);

// One row of the lab's table: one scenario against one container.
struct row {
  std::string scenario;
  std::string container;
  int rounds = 0;
  std::int64_t crashes = 0;  // rounds ended by a signal (hangs: SIGALRM)
  std::int64_t lost = 0;     // entries missing at the end of a round
  std::int64_t wrong = 0;    // entries of the wrong type, torn, or wrong payload
  verdict outcome = verdict::safe;
  std::string note;  // one line for the reader

  // The summary table's columns (scenarios 2-6 fill them; empty: "-").
  std::string outcome_text;  // the naive outcome in words when the counts alone do not say it
  std::string tsan;          // ThreadSanitizer on this row's program, as measured (sanitizer_verdict)
  std::string asan;          // AddressSanitizer on it, as measured
  std::string detector;      // polymap's detector (checked<>, guarded<>, checked_ref) on it, as measured
  std::int64_t reports = 0;  // detector reports counted for this row, if any
};

// A row of a polymap map (safe/failed), as opposed to a naive program.
bool is_polymap_row(const row& r);

struct scenario {
  std::string name;   // e.g. "article"
  std::string title;  // one line
  std::function<std::vector<row>(const options&)> run;
  int number = 0;  // the order in the table (scenario 1 leaves it 0)
};

std::vector<scenario>& scenarios();
struct registrar {
  explicit registrar(scenario s);
};

// Counts of one round, as a child process reports them back.
struct round_counts {
  std::int64_t lost = 0;
  std::int64_t wrong = 0;
  std::int64_t reports = 0;  // detector reports (polymap::check)
};

// Runs body() in a forked child with `timeout_s` to finish; a signal (or the
// timeout) is a crash. Returns false on a crash, else fills `out`.
bool run_contained(const std::function<round_counts()>& body, round_counts& out, bool quiet, unsigned timeout_s = 10);

// The verdict for a naive container (anomalies expected, silence proves
// nothing) or for a polymap map (anything but zero is a failure).
verdict naive_verdict(const row& r);
verdict polymap_verdict(const row& r);

// Output. render_table: the summary (one line per naive program: scenario |
// naive outcome | ThreadSanitizer | ASan | polymap detector | polymap map),
// then render_details (one line per row, with its counts) and the notes.
// Not `wide`: every line fits 120 columns; cells too long for their column
// are cut and numbered, their full text in the notes below the tables.
// `wide`: every cell in full (lines of 300 columns and more).
std::string render_table(const std::vector<row>& rows, bool wide = false);
std::string render_details(const std::vector<row>& rows);
std::string render_json(const std::vector<row>& rows);

// True when this binary was built with ThreadSanitizer or AddressSanitizer.
bool built_with_tsan();
bool built_with_asan();

// --- sanitizer children -------------------------------------------------------------
// polymap_lab_tsan and polymap_lab_asan run one case of hazard_cases.hpp under
// ThreadSanitizer / AddressSanitizer. They are looked for in $POLYMAP_LAB_TSAN /
// $POLYMAP_LAB_ASAN, next to this binary, then in ../tools/polymap/ (for tests).
enum class sanitizer { thread, address };
std::string_view child_name(sanitizer s);  // "polymap_lab_tsan" ...

// The child's path, or "" where none was built.
std::string find_sanitizer_child(sanitizer s);

struct child_run {
  bool ran = false;        // a child binary was found and started
  std::string binary;      // its path
  int exit_code = -1;      // -1 if it did not exit normally
  int signal = 0;          // the signal that ended it, 0 if none
  bool timed_out = false;  // ended by the time limit
  int reports = 0;         // sanitizer reports seen in its output
  int stacks_lost = 0;     // TSan: "[failed to restore the stack]" (the other access's history is gone)
  std::string headline;    // the first report's kind, e.g. "data race", "heap-use-after-free"
  bool counts_ok = false;  // the case finished and printed its counts
  round_counts counts;
};

// Runs `case_name` in the child (bounded by timeout_s, killed after).
child_run run_sanitizer_child(sanitizer s, std::string_view case_name, unsigned timeout_s = 60);

// polymap_lab_tsan_clang: the TSan child built by clang++-14 with LLVM's
// runtime (scenario 7 compares runtimes), where clang++-14 was found at
// configure time; $POLYMAP_LAB_TSAN_CLANG, then the same places as the
// others. "" where none was built.
std::string find_clang_tsan_child();

// Runs `case_name` in the given child binary (as run_sanitizer_child does);
// binary "" gives a run with ran = false.
child_run run_child_binary(const std::string& binary, sanitizer s, std::string_view case_name, unsigned timeout_s = 60);

// One cell of the table: "REPORTED: data race", "silent", "not run (...)".
std::string sanitizer_verdict(const child_run& r, sanitizer s);

// The naive outcome in words: "12 lost in 20 rounds" etc.
std::string counts_text(const row& r);

// Runs `rounds` rounds of body, adding their counts to r (crashes, lost,
// wrong, reports; r.rounds += rounds). contained: each round in a forked
// child (run_contained), a crash is counted. Progress every few rounds.
void run_rounds(row& r, int rounds, bool contained, const std::function<round_counts()>& body, const options& opt);

// The TSan and ASan cells for one case of the sanitizer children, measured
// now (or "not run (...)" with the reason).
struct sanitizer_cells {
  std::string tsan, asan;
  child_run tsan_run, asan_run;
};
sanitizer_cells measure_sanitizers(std::string_view case_name, const options& opt);

// Why this lab binary must not run a naive case in-process (its own sanitizer
// would stop it), or "" if it may. races: the case has a data race TSan
// reports; use_after_free: the case reads freed memory.
std::string skip_reason(bool races, bool use_after_free);

}  // namespace polymap::lab

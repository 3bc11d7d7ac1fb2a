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
  bool quiet_children = true;                      // send crashing children's stderr to /dev/null
  std::function<void(std::string_view)> progress;  // a line per step; may be empty
};

// The verdict of one row.
enum class verdict {
  anomaly,    // the container misbehaved: crash, lost entry, wrong type or torn value
  silent_ub,  // no visible anomaly, but the program is undefined behaviour: proves nothing
  safe,       // a polymap map: no anomaly, as required
  failed,     // a polymap map showed an anomaly: a bug in polymap
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
};

struct scenario {
  std::string name;   // e.g. "article"
  std::string title;  // one line
  std::function<std::vector<row>(const options&)> run;
};

std::vector<scenario>& scenarios();
struct registrar {
  explicit registrar(scenario s);
};

// Counts of one round, as a child process reports them back.
struct round_counts {
  std::int64_t lost = 0;
  std::int64_t wrong = 0;
};

// Runs body() in a forked child with `timeout_s` to finish; a signal (or the
// timeout) is a crash. Returns false on a crash, else fills `out`.
bool run_contained(const std::function<round_counts()>& body, round_counts& out, bool quiet, unsigned timeout_s = 10);

// The verdict for a naive container (anomalies expected, silence proves
// nothing) or for a polymap map (anything but zero is a failure).
verdict naive_verdict(const row& r);
verdict polymap_verdict(const row& r);

// Output.
std::string render_table(const std::vector<row>& rows);
std::string render_json(const std::vector<row>& rows);

// True when this binary was built with ThreadSanitizer or AddressSanitizer.
bool built_with_tsan();
bool built_with_asan();

}  // namespace polymap::lab

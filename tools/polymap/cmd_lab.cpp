// polymap lab — runs the hazard scenarios and prints their verdicts.
#include <algorithm>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "cli.hpp"
#include "lab/lab.hpp"
#include "output.hpp"

namespace {

struct lab_args {
  int rounds = 200;
  std::string json_path;
  std::string scenario;
  bool verbose = false;
  bool no_sanitizers = false;
  bool wide = false;
};

void run_lab(const lab_args& a) {
  using namespace polymap::lab;
  polymap::cli::check_outputs("lab", {{"--json", a.json_path}});
  std::FILE* out = polymap::cli::human({{"--json", a.json_path}});
  options opt;
  opt.rounds = a.rounds;
  opt.quiet_children = !a.verbose;
  opt.progress = [](std::string_view line) { fmt::print(stderr, "  .. {}\n", line); };

  opt.sanitizer_children = !a.no_sanitizers;
  std::vector<const scenario*> order;
  for (const auto& s : scenarios()) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](auto* x, auto* y) { return x->number < y->number; });

  std::vector<row> rows;
  bool ran = false;
  for (const auto* sp : order) {
    const auto& s = *sp;
    if (!a.scenario.empty() && s.name != a.scenario) continue;
    ran = true;
    fmt::print(stderr, "scenario {}: {}\n", s.name, s.title);
    auto r = s.run(opt);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  if (!ran) {
    std::string names;
    for (const auto& s : scenarios()) names += " " + s.name;
    fmt::print(stderr, "polymap lab: unknown scenario '{}'; known:{}\n", a.scenario, names);
    throw CLI::RuntimeError(2);
  }

  fmt::print(out, "{}", render_table(rows, a.wide));
  fmt::print(out,
             "\nHow to read this: a naive program's 'no anomaly seen' proves nothing; most are data races,\n"
             "undefined behaviour that may run silently for many rounds. Crashes, lost entries and wrong\n"
             "values are what they can do. ThreadSanitizer and ASan columns are measured by running the\n"
             "same code in polymap_lab_tsan / polymap_lab_asan ('not run' where none was built). Every\n"
             "polymap row must read 'safe'. docs/hazards.md explains each scenario.\n");
  if (built_with_tsan()) fmt::print(out, "(this lab binary was built with ThreadSanitizer)\n");
  if (!a.json_path.empty()) polymap::cli::write_output("lab", a.json_path, render_json(rows));
  for (const auto& r : rows) {
    if (r.outcome == verdict::failed) throw CLI::RuntimeError(1);
  }
}

void add_lab(CLI::App& root) {
  auto args = std::make_shared<lab_args>();
  auto* cmd = root.add_subcommand("lab", "Reproduce the article's hazards on naive containers and on polymap's maps");
  cmd->add_option("--rounds", args->rounds,
                  "Rounds per scenario and container (scenarios 2-6 cap it at their own, smaller, defaults)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--json", args->json_path,
                  "Also write every row as JSON to this file ('-': stdout, and the table goes to stderr)");
  cmd->add_option("--scenario", args->scenario, "Run only this scenario (default: all)");
  cmd->add_flag("--wide", args->wide,
                "Print every cell of the table in full (lines of 300 columns and more) instead of cutting long "
                "cells to fit 120 columns with numbered notes below");
  cmd->add_flag("--verbose", args->verbose, "Show the stderr of crashing child processes");
  cmd->add_flag("--no-sanitizers", args->no_sanitizers,
                "Do not run the ThreadSanitizer/ASan children (polymap_lab_tsan, polymap_lab_asan)");
  cmd->footer(polymap::cli::exit_codes("  (1 also: a polymap map showed an anomaly, a bug in polymap)\n"));
  cmd->callback([args] { run_lab(*args); });
}

const polymap::cli::registrar reg{"lab", &add_lab};

}  // namespace

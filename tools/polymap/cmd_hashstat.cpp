// polymap hashstat — the article's hash-distribution experiment, measured on
// real tables (see hashstat.hpp for the definitions and how each table is read).
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "hashstat.hpp"
#include "output.hpp"

namespace {

struct hashstat_args {
  std::size_t n = 100000;
  std::uint64_t seed = polymap::hashstat::options{}.seed;
  std::string json_path;
};

nlohmann::json to_json(const std::vector<polymap::hashstat::row>& rows, const hashstat_args& a,
                       const std::string& conclusion) {
  auto opt = [](const auto& x) -> nlohmann::json {
    if (x) return *x;
    return nullptr;
  };
  nlohmann::json out;
  out["experiment"] = "hashstat";
  out["n"] = a.n;
  out["seed"] = a.seed;
  out["rows"] = nlohmann::json::array();
  for (const auto& r : rows) {
    out["rows"].push_back({{"table", r.table},
                           {"hash", r.hash},
                           {"keys", r.keys},
                           {"values", r.values},
                           {"n", r.n},
                           {"capacity", r.capacity},
                           {"load_factor", r.load_factor},
                           {"avg_probe", opt(r.avg_probe)},
                           {"max_probe", opt(r.max_probe)},
                           {"tag_collision_rate", opt(r.tag_collision_rate)},
                           {"false_matches_per_lookup", opt(r.false_matches_per_lookup)},
                           {"avg_chain", opt(r.avg_chain)},
                           {"max_chain", opt(r.max_chain)},
                           {"available", r.available},
                           {"note", r.note}});
  }
  out["conclusion"] = conclusion;
  return out;
}

void run_hashstat(const hashstat_args& a) {
  polymap::cli::check_outputs("hashstat", {{"--json", a.json_path}});  // before minutes of work
  std::FILE* out = polymap::cli::human({{"--json", a.json_path}});
  polymap::hashstat::options opt;
  opt.n = a.n;
  opt.seed = a.seed;
  opt.progress = [](const std::string& line) { fmt::print(stderr, "  .. {}\n", line); };
  fmt::print(stderr, "hashstat: {} uint64 keys per table, sequential and random (seed {})\n", a.n, a.seed);
  const auto rows = polymap::hashstat::run(opt);
  const std::string conclusion = polymap::hashstat::conclusion(rows);

  fmt::print(out, "{}", polymap::hashstat::render_table(rows));
  fmt::print(
      out,
      "\nprobe = groups visited by a successful lookup (1 = found in the home group); tag_coll = share of lookups\n"
      "that compared at least one other key because its tag matched; false/lkp = such compares per lookup;\n"
      "chain = entries per non-empty bucket. polymap and Boost use 15-slot groups; polymap's tags are 7 bits,\n"
      "Boost's 8 bits.\n\nConclusion: {}\n",
      conclusion);
  if (!a.json_path.empty())
    polymap::cli::write_output("hashstat", a.json_path, to_json(rows, a, conclusion).dump(2) + "\n");
  for (const auto& r : rows) {
    if (!r.available) fmt::print(stderr, "polymap hashstat: {} / {}: {}\n", r.table, r.hash, r.note);
  }
}

void add_hashstat(CLI::App& root) {
  auto args = std::make_shared<hashstat_args>();
  auto* cmd = root.add_subcommand(
      "hashstat",
      "Measure what changes a hash table's distribution: the value type (no), the hash function and the key "
      "pattern (yes)");
  cmd->add_option("--n", args->n, "Keys inserted per table")->check(CLI::Range(1, 10000000))->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the random key set")->capture_default_str();
  cmd->add_option("--json", args->json_path,
                  "Also write the rows as JSON to this file ('-': stdout, and the table goes to stderr)");
  cmd->footer(polymap::cli::exit_codes());
  cmd->callback([args] { run_hashstat(*args); });
}

const polymap::cli::registrar reg{"hashstat", &add_hashstat};

}  // namespace

// polymap soak — every map under a mixed multi-type load, with the history
// recorder and the per-key linearizability checker on, for a fixed time.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "output.hpp"
#include "polymap/locked_map.hpp"
#include "polymap/verify/verify.hpp"

#if __has_include("polymap/concurrent_map.hpp")
#include "polymap/concurrent_map.hpp"
#define POLYMAP_SOAK_HAS_CONCURRENT_MAP 1
#endif
#if __has_include("polymap/snapshot_map.hpp")
#include "polymap/snapshot_map.hpp"
#define POLYMAP_SOAK_HAS_SNAPSHOT_MAP 1
#endif

namespace {

namespace pv = polymap::verify;

struct soak_args {
  int seconds = 60;
  std::string map = "all";
  int threads = 4;
  std::uint64_t seed = 1;
  std::string json_path;
};

struct totals {
  std::size_t operations = 0, rounds = 0, violating = 0, inconclusive = 0;
  std::string first_report;
};

// One map kept alive for the whole soak; each call runs one checked round.
// Its name is the one `polymap bench --maps` uses; `alias` is the short name
// soak used before, still accepted by --map.
struct soaked_map {
  std::string name, alias;
  std::function<void(const pv::stress_options&, totals&)> round;
};

template <class M>
soaked_map make_soaked(std::string name, std::string alias) {
  auto map = std::make_shared<M>();
  return {name, alias, [map, name](const pv::stress_options& o, totals& t) {
            auto r = pv::run_stress(*map, o);
            t.operations += r.operations;
            t.rounds += r.rounds;
            t.violating += r.violating_keys;
            t.inconclusive += r.inconclusive_keys;
            if (!r.ok() && t.first_report.empty()) t.first_report = name + ": " + r.report();
          }};
}

std::vector<soaked_map> all_maps() {
  std::vector<soaked_map> v;
  v.push_back(make_soaked<polymap::locked_map<>>("locked_map", "locked"));
#ifdef POLYMAP_SOAK_HAS_CONCURRENT_MAP
  v.push_back(make_soaked<polymap::concurrent_map<>>("concurrent_map", "concurrent"));
#endif
#ifdef POLYMAP_SOAK_HAS_SNAPSHOT_MAP
  v.push_back(make_soaked<polymap::snapshot_map<>>("snapshot_map", "snapshot"));
#endif
  return v;
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void run_soak(const soak_args& a) {
  auto maps = all_maps();
  std::string names;
  for (const auto& m : maps) names += fmt::format(" {} (or {})", m.name, m.alias);
  if (a.map != "all") {
    std::erase_if(maps, [&](const soaked_map& m) { return m.name != a.map && m.alias != a.map; });
    if (maps.empty()) {
      fmt::print(stderr, "polymap soak: unknown map '{}'; known: all,{}\n", a.map, names);
      throw CLI::RuntimeError(2);
    }
  }
  polymap::cli::check_outputs("soak", {{"--json", a.json_path}});
  std::FILE* out = polymap::cli::human({{"--json", a.json_path}});
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + std::chrono::seconds(a.seconds);
  auto last_progress = start;
  std::vector<totals> per(maps.size());
  fmt::print(
      stderr, "polymap soak: {} s, maps:{}, {} threads, seed {}; recorder and checker on\n", a.seconds,
      [&] {
        std::string s;
        for (const auto& m : maps) s += " " + m.name;
        return s;
      }(),
      a.threads, a.seed);
  std::uint64_t round = 0;
  while (clock::now() < deadline) {
    for (std::size_t i = 0; i < maps.size() && clock::now() < deadline; ++i, ++round) {
      pv::stress_options o;
      o.threads = static_cast<std::size_t>(a.threads);
      o.keys = round % 3 == 0 ? 2000 : (round % 3 == 1 ? 4 : 64);  // spread, hot, medium
      o.ops_per_thread = 20'000;
      o.round_ops = 20'000;
      o.seed = a.seed * 1'000'003 + round;
      o.perturb = round % 5 == 4;
      maps[i].round(o, per[i]);
    }
    if (clock::now() - last_progress >= std::chrono::seconds(1)) {
      last_progress = clock::now();
      const double el = std::chrono::duration<double>(last_progress - start).count();
      std::string line = fmt::format("  [{:6.1f}s]", el);
      for (std::size_t i = 0; i < maps.size(); ++i)
        line += fmt::format(" {}: {} ops, {} violations;", maps[i].name, per[i].operations, per[i].violating);
      fmt::print(stderr, "{} peak {:.1f} MiB\n", line, peak_rss_mib());
    }
  }
  const double el = std::chrono::duration<double>(clock::now() - start).count();
  std::size_t ops = 0, viol = 0, inc = 0;
  fmt::print(out, "polymap soak: {:.1f} s\n", el);
  fmt::print(out, "  {:<14} {:>14} {:>8} {:>11} {:>13}\n", "map", "ops checked", "rounds", "violations",
             "inconclusive");
  for (std::size_t i = 0; i < maps.size(); ++i) {
    fmt::print(out, "  {:<14} {:>14} {:>8} {:>11} {:>13}\n", maps[i].name, per[i].operations, per[i].rounds,
               per[i].violating, per[i].inconclusive);
    ops += per[i].operations;
    viol += per[i].violating;
    inc += per[i].inconclusive;
  }
  fmt::print(out,
             "operations checked: {}\nviolations: {} (expected 0)\ninconclusive keys: {}\npeak memory: {:.1f} MiB\n",
             ops, viol, inc, peak_rss_mib());
  bool failed = false;
  for (std::size_t i = 0; i < maps.size(); ++i) {
    if (!per[i].first_report.empty()) {
      fmt::print(out, "\n{}", per[i].first_report);
      failed = true;
    }
  }
  if (!a.json_path.empty()) {
    nlohmann::json j;
    j["command"] = "soak";
    j["seconds"] = el;
    j["threads"] = a.threads;
    j["seed"] = a.seed;
    j["maps"] = nlohmann::json::array();
    for (std::size_t i = 0; i < maps.size(); ++i)
      j["maps"].push_back({{"map", maps[i].name},
                           {"operations_checked", per[i].operations},
                           {"rounds", per[i].rounds},
                           {"violating_keys", per[i].violating},
                           {"inconclusive_keys", per[i].inconclusive},
                           {"first_report", per[i].first_report}});
    j["operations_checked"] = ops;
    j["violating_keys"] = viol;
    j["inconclusive_keys"] = inc;
    j["peak_rss_mib"] = peak_rss_mib();
    j["ok"] = !(failed || viol || inc);
    polymap::cli::write_output("soak", a.json_path, j.dump(2) + "\n");
  }
  if (failed || viol || inc) throw CLI::RuntimeError(1);
}

void add_soak(CLI::App& root) {
  auto args = std::make_shared<soak_args>();
  auto* cmd = root.add_subcommand(
      "soak", "Run the maps under a mixed multi-type load with the history recorder and linearizability checker on");
  cmd->add_option("--seconds", args->seconds, "How long to run")
      ->check(CLI::Range(1, 7 * 24 * 3600))
      ->capture_default_str();
  cmd->add_option("--map", args->map,
                  "Which map: all, locked_map, concurrent_map or snapshot_map (the names of `polymap bench --maps`; "
                  "the older short names locked, concurrent and snapshot are accepted as aliases)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads per round")->check(CLI::Range(1, 64))->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the first round (round r uses seed*1000003+r)")->capture_default_str();
  cmd->add_option("--json", args->json_path,
                  "Also write the summary as JSON to this file ('-': stdout, and the table goes to stderr)");
  cmd->footer(polymap::cli::exit_codes("  (1 also: a violation or an inconclusive key was found)\n"));
  cmd->callback([args] { run_soak(*args); });
}

const polymap::cli::registrar reg{"soak", &add_soak};

}  // namespace

// polymap bench — throughput of polymap's maps and the packaged peers over a
// matrix of workloads, with progress, a table, JSON, and an HTML report.
// `polymap bench report` renders the report again from a saved JSON;
// `polymap bench publish` (cmd_bench_publish.cpp) reads while a writer publishes;
// `polymap bench checked` (cmd_bench_checked.cpp) measures checked<>'s overhead;
// `polymap bench latency` (cmd_bench_latency.cpp) times single operations while maps grow.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"
#include "output.hpp"

#ifdef POLYMAP_HAVE_BENCH
#include <unistd.h>

#include "bench/driver.hpp"
#include "bench/report.hpp"
#endif

namespace polymap::cli {
// cmd_bench_publish.cpp: adds `bench publish` under `bench`.
CLI::App* add_bench_publish(CLI::App& bench);
// cmd_bench_checked.cpp: adds `bench checked` under `bench`.
CLI::App* add_bench_checked(CLI::App& bench);
// cmd_bench_latency.cpp: adds `bench latency` under `bench`.
CLI::App* add_bench_latency(CLI::App& bench);
}  // namespace polymap::cli

namespace {

struct bench_args {
  bool quick = false;
  bool list = false;
  bool no_memory = false;
  std::vector<std::string> maps, workloads, keys, dists;
  std::vector<int> threads;
  std::vector<std::size_t> ns;
  int repeats = 0;
  double seconds_per_run = 0;
  std::size_t ops_per_run = 0;
  std::string json_path, html_path, svg_path, hashstat_path, note;
  // bench report
  std::string from;
};

#ifdef POLYMAP_HAVE_BENCH
using namespace polymap::bench;

[[noreturn]] void fail(const std::string& msg, int code = 2) {
  fmt::print(stderr, "polymap bench: {}\n", msg);
  throw CLI::RuntimeError(code);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail("cannot read " + path, 1);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The outputs of `bench` and `bench report`, checked before the work starts.
std::FILE* check_outputs(const bench_args& a, std::string_view command) {
  polymap::cli::check_outputs(command, {{"--json", a.json_path}, {"--html", a.html_path}, {"--svg", a.svg_path}});
  return polymap::cli::human({{"--json", a.json_path}, {"--html", a.html_path}, {"--svg", a.svg_path}});
}

std::string duration(double s) {
  if (s < 90) return fmt::format("{:.0f} s", s);
  if (s < 5400) return fmt::format("{:.1f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}

// The --hashstat file, read before the work starts; null if none.
std::unique_ptr<nlohmann::json> read_hashstat(const bench_args& a) {
  std::unique_ptr<nlohmann::json> hashstat;
  if (!a.hashstat_path.empty()) {
    try {
      hashstat = std::make_unique<nlohmann::json>(nlohmann::json::parse(read_file(a.hashstat_path)));
    } catch (const nlohmann::json::exception& e) {
      fail(fmt::format("{} is not JSON: {}", a.hashstat_path, e.what()), 1);
    }
  }
  return hashstat;
}

void write_outputs(const results& r, const bench_args& a, const nlohmann::json* hashstat, std::string_view command) {
  using polymap::cli::write_output;
  if (!a.json_path.empty()) write_output(command, a.json_path, to_json(r).dump(1) + "\n");
  if (!a.html_path.empty()) write_output(command, a.html_path, render_html(r, hashstat));
  if (!a.svg_path.empty()) write_output(command, a.svg_path, render_throughput_svg(r));
}

void run_report(const bench_args& a) {
  std::FILE* out = check_outputs(a, "bench report");
  const auto hashstat = read_hashstat(a);
  const std::string text = read_file(a.from);
  results r;
  try {
    r = from_json(nlohmann::json::parse(text));
  } catch (const std::exception& e) {
    fail(fmt::format("cannot read {}: {}", a.from, e.what()), 1);
  }
  if (a.html_path.empty() && a.svg_path.empty() && a.json_path.empty())
    fmt::print(stderr, "polymap bench report: no --html/--svg given; printing the table only\n");
  fmt::print(out, "{}", render_table(r));
  write_outputs(r, a, hashstat.get(), "bench report");
}

template <class T, class P>
std::vector<T> parse_list(const std::vector<std::string>& in, P parse, const char* what) {
  std::vector<T> out;
  for (const auto& s : in) {
    auto v = parse(s);
    if (!v) fail(fmt::format("unknown {} '{}'", what, s));
    out.push_back(*v);
  }
  return out;
}

// The peers this build lacks and the package that brings each, on stderr.
void print_missing_peers() {
  const auto missing = missing_peers();
  if (missing.empty()) return;
  fmt::print(stderr,
             "polymap bench: {} peer(s) not in this build (their packages were not found when it was configured):\n",
             missing.size());
  for (const auto& p : missing) fmt::print(stderr, "  {:18} {:40} apt install {}\n", p.name, p.label, p.package);
  fmt::print(stderr, "  (all at once: scripts/setup.sh --with-peers; then rerun scripts/build.sh)\n");
}

void run_bench(const bench_args& a) {
  if (a.list) {
    for (const auto& m : available_maps())
      fmt::print("{:18} {}{}\n  {}\n", m.name, m.label, m.concurrent ? "" : " (one thread only)", m.description);
    print_missing_peers();
    return;
  }
  matrix m = a.quick ? quick_matrix() : matrix{};
  m.maps = a.maps;
  if (!a.workloads.empty()) m.workloads = parse_list<workload>(a.workloads, parse_workload, "workload");
  if (!a.keys.empty()) m.keys = parse_list<key_kind>(a.keys, parse_keys, "key type");
  if (!a.dists.empty()) m.dists = parse_list<distribution>(a.dists, parse_distribution, "distribution");
  if (!a.threads.empty()) m.threads = a.threads;
  if (!a.ns.empty()) m.ns = a.ns;
  if (a.repeats) m.repeats = a.repeats;
  if (a.seconds_per_run > 0) m.seconds_per_run = a.seconds_per_run;
  m.ops_per_run = a.ops_per_run;
  m.memory = !a.no_memory;
  if (auto bad = unknown_maps(m); !bad.empty()) {
    std::string known;
    for (const auto& i : available_maps()) known += " " + i.name;
    fail(fmt::format("map '{}' is not in this build; available:{}", bad.front(), known));
  }

  std::FILE* out = check_outputs(a, "bench");
  const auto hashstat = read_hashstat(a);
  if (m.maps.empty()) print_missing_peers();

  const double estimate = estimate_seconds(m);
  int max_threads = 1;
  for (int t : m.threads) max_threads = std::max(max_threads, t);
  const unsigned cores = std::thread::hardware_concurrency();
  fmt::print(
      stderr, "polymap bench: {} matrix, expected duration about {} ({} repeats, {})\n", a.quick ? "quick" : "selected",
      duration(estimate), m.repeats,
      m.ops_per_run ? fmt::format("{} ops per run", m.ops_per_run) : fmt::format("{} s per run", m.seconds_per_run));
  if (static_cast<unsigned>(max_threads) > cores)
    fmt::print(stderr, "note: {} threads on {} hardware threads oversubscribe the machine\n", max_threads, cores);

  std::map<std::string, double> baseline;  // config text -> baseline median
  auto on_progress = [&](const progress& p) {
    if (!p.last) {
      if (!p.note.empty()) fmt::print(stderr, "  .. {}\n", p.note);
      return;
    }
    const auto& c = p.last->cfg;
    const std::string cfg = fmt::format("{} {} N={} {} t={}", name(c.wl), name(c.keys), c.n,
                                        c.wl == workload::insert ? "-" : name(c.dist), c.threads);
    std::string ratio;
    if (c.map == baseline_map)
      baseline[cfg] = p.last->median;
    else if (auto it = baseline.find(cfg); it != baseline.end() && it->second > 0)
      ratio = fmt::format(" ({:.2f}x)", p.last->median / it->second);
    fmt::print(stderr, "[{:>4}/{}] {:<38} {:<17} {:>8.2f} Mops/s{:<9}  {} elapsed, ~{} left\n", p.done, p.total, cfg,
               c.map, p.last->median, ratio, duration(p.elapsed_seconds), duration(p.eta_seconds));
  };
  results r = run(m, on_progress);
  r.machine.note = a.note;
  if (static_cast<unsigned>(max_threads) > cores && a.note.find("oversubscribe") == std::string::npos)
    r.machine.note +=
        fmt::format("{}{} threads oversubscribe {} hardware threads.", a.note.empty() ? "" : " ", max_threads, cores);
  fmt::print(out, "{}", render_table(r));
  fmt::print(stderr, "done in {}\nhost: {}\n", duration(r.elapsed_seconds), describe_host(r.machine));
  write_outputs(r, a, hashstat.get(), "bench");
}
#endif

void add_bench(CLI::App& root) {
  auto args = std::make_shared<bench_args>();
  auto* cmd = root.add_subcommand("bench", "Benchmark polymap's maps against the packaged peers (report: HTML + JSON)");
  cmd->add_flag("--quick", args->quick, "A reduced matrix for a first look (under a minute)");
  cmd->add_flag("--list", args->list,
                "List the maps this build can run (and, on stderr, the peers it lacks with their Debian packages), "
                "and exit");
  cmd->add_option("--maps", args->maps, "Maps to run (default: all of --list but opt-in ones)")->delimiter(',');
  cmd->add_option("--workload", args->workloads, "find100, find95, find50, insert")->delimiter(',');
  cmd->add_option("--keys", args->keys, "u64, str")->delimiter(',');
  cmd->add_option("--n", args->ns, "Key counts (default 10000,2000000)")->delimiter(',')->check(CLI::Range(2, 1 << 30));
  cmd->add_option("--dist", args->dists, "Key choice: uniform, zipf")->delimiter(',');
  cmd->add_option("--threads", args->threads, "Thread counts (default 1,2,4)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  cmd->add_option("--repeats", args->repeats, "Repeats per configuration; the median is reported (default 3)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--seconds-per-run", args->seconds_per_run, "Wall time of one repeat (default 0.2)")
      ->check(CLI::Range(0.001, 600.0));
  cmd->add_option("--ops-per-run", args->ops_per_run, "A fixed operation count per repeat instead of a time");
  cmd->add_flag("--no-memory", args->no_memory, "Skip the bytes-per-entry measurement");
  cmd->add_option("--json", args->json_path, "Write the results as JSON ('-': stdout, and the table goes to stderr)");
  cmd->add_option("--html", args->html_path, "Write a self-contained HTML report with SVG charts ('-': stdout)");
  cmd->add_option("--svg", args->svg_path, "Write the headline throughput chart as an SVG file ('-': stdout)");
  cmd->add_option("--hashstat", args->hashstat_path, "Add charts of a `polymap hashstat --json` file");
  cmd->add_option("--note", args->note, "A remark about the machine stored with the results");
  cmd->footer(polymap::cli::exit_codes());

  auto* report = cmd->add_subcommand("report", "Render the report from a saved JSON");
  report->add_option("--from", args->from, "JSON written by `polymap bench --json`")->required();
  report->add_option("--html", args->html_path,
                     "Write the HTML report here ('-': stdout, and the table goes to stderr)");
  report->add_option("--svg", args->svg_path, "Write the headline throughput chart here ('-': stdout)");
  report->add_option("--json", args->json_path, "Write the results again as JSON ('-': stdout)");
  report->footer(polymap::cli::exit_codes());
  report->add_option("--hashstat", args->hashstat_path, "Add charts of a `polymap hashstat --json` file");
  auto* publish = polymap::cli::add_bench_publish(*cmd);
  auto* checked = polymap::cli::add_bench_checked(*cmd);
  auto* latency = polymap::cli::add_bench_latency(*cmd);

#ifdef POLYMAP_HAVE_BENCH
  report->callback([args] { run_report(*args); });
  cmd->callback([args, report, publish, checked, latency] {
    if (report->parsed() || publish->parsed() || checked->parsed() || latency->parsed()) return;
    run_bench(*args);
  });
#else
  report->callback([] { polymap::cli::bench_unavailable(); });
  cmd->callback([report, publish, checked, latency] {
    if (!report->parsed() && !publish->parsed() && !checked->parsed() && !latency->parsed())
      polymap::cli::bench_unavailable();
  });
#endif
}

const polymap::cli::registrar reg{"bench", &add_bench};

}  // namespace

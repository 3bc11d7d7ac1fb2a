// polymap bench latency — per-operation latency while maps grow from empty
// (bench/latency.hpp; issue 16). Added under `polymap bench` by cmd_bench.cpp.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"
#include "output.hpp"

#ifdef POLYMAP_HAVE_BENCH
#include "bench/latency.hpp"
#include "bench/report.hpp"
#endif

namespace polymap::cli {
namespace {

struct latency_args {
  std::size_t n = 2'000'000;
  int threads = 2;
  int runs = 5;
  std::vector<std::string> maps;
  bool no_mixed = false, list = false, reserve = false;
  std::uint64_t seed = 42;
  std::string json_path, html_path, note;
};

#ifdef POLYMAP_HAVE_BENCH
namespace bl = polymap::bench::latency;

[[noreturn]] void fail(const std::string& msg, int code = 2) {
  fmt::print(stderr, "polymap bench latency: {}\n", msg);
  throw CLI::RuntimeError(code);
}

std::string duration_text(double s) {
  if (s < 90) return fmt::format("{:.0f} s", s);
  return fmt::format("{:.1f} min", s / 60);
}

void run_latency(const latency_args& a) {
  if (a.list) {
    const auto defaults = bl::default_maps();
    for (const auto& m : bl::available_maps()) {
      const bool by_default = std::find(defaults.begin(), defaults.end(), m.name) != defaults.end();
      fmt::print("{:18} {}{}\n", m.name, m.label, by_default ? " (default)" : "");
    }
    return;
  }
  bl::settings s;
  s.n = a.n;
  s.threads = a.threads;
  s.runs = a.runs;
  s.maps = a.maps;
  s.mixed = !a.no_mixed;
  s.reserve = a.reserve;
  s.seed = a.seed;
  if (const std::string bad = bl::validate(s); !bad.empty()) fail(bad);
  polymap::cli::check_outputs("bench latency", {{"--json", a.json_path}, {"--html", a.html_path}});
  std::FILE* human = polymap::cli::human({{"--json", a.json_path}, {"--html", a.html_path}});

  const unsigned cores = std::thread::hardware_concurrency();
  fmt::print(stderr, "polymap bench latency: N = {}, {} thread(s), {} run(s); expected duration about {}\n", s.n,
             s.threads, s.runs, duration_text(bl::estimate_seconds(s)));
  if (static_cast<unsigned>(s.threads) > cores)
    fmt::print(stderr, "note: {} threads oversubscribe {} hardware threads\n", s.threads, cores);
  auto on_progress = [](const bl::progress& p) {
    fmt::print(stderr, "[{:>3}/{}] {}  ({} elapsed, ~{} left)\n", p.done, p.total, p.line,
               duration_text(p.elapsed_seconds), duration_text(p.eta_seconds));
  };
  bl::results r = bl::run(s, on_progress);
  r.machine.note = a.note;
  fmt::print(human, "{}", bl::render_table(r));
  fmt::print(stderr, "done in {} (load average at start: {}; clock: two reads take {} median)\nhost: {}\n",
             duration_text(r.elapsed_seconds), r.load_average, bl::format_ns(r.clock_p50_ns),
             polymap::bench::describe_host(r.machine));
  if (!a.json_path.empty()) polymap::cli::write_output("bench latency", a.json_path, bl::to_json(r).dump(1) + "\n");
  if (!a.html_path.empty())
    polymap::cli::write_output("bench latency", a.html_path, polymap::bench::render_latency_html(r));
  if (!r.errors.empty()) {
    for (const auto& e : r.errors) fmt::print(stderr, "error: {}\n", e);
    fail(fmt::format("{} error(s): a map lost, duplicated or missed keys", r.errors.size()), 1);
  }
}
#endif

}  // namespace

// Called by cmd_bench.cpp's add_bench; returns the subcommand so that `bench`
// can tell whether it ran.
CLI::App* add_bench_latency(CLI::App& bench) {
  auto a = std::make_shared<latency_args>();
  auto* cmd = bench.add_subcommand(
      "latency",
      "Per-operation latency while maps grow: N distinct u64 keys inserted into an EMPTY map (no reserve unless "
      "--reserve) by "
      "--threads threads, every insert timed alone; then 50/50 finds and inserts on a table crossing a growth, and "
      "finds after it. p50/p99/p99.9/p99.99/max per map and phase, each run's max (with its threads' involuntary "
      "context switches and time waited for a CPU), throughput");
  cmd->add_option("--n", a->n, "Keys inserted per run (100 to 2^31; default 2000000)");
  cmd->add_option("--threads", a->threads, "Threads inserting at once (1 to 256; default 2)");
  cmd->add_option("--runs", a->runs, "Runs per map, interleaved across maps; max is reported per run (default 5)");
  cmd->add_option("--maps", a->maps,
                  "Maps to run, comma-separated (default: the concurrent maps marked 'default' by --list)")
      ->delimiter(',');
  cmd->add_flag("--list", a->list, "List the maps this build can run, and exit");
  cmd->add_flag("--no-mixed", a->no_mixed, "Only the insert-from-empty phase");
  cmd->add_flag("--reserve", a->reserve,
                "Reserve N in each map before it fills (untimed), so no growth runs: the same inserts' floor "
                "without a resize (maps without reserve are refused)");
  cmd->add_option("--seed", a->seed, "Seed of the mixed and find phases' key choices (default 42)");
  cmd->add_option("--json", a->json_path, "Write the results as JSON ('-': stdout, and the table goes to stderr)");
  cmd->add_option("--html", a->html_path,
                  "Write an HTML page with latency-percentile charts (log scale) per map ('-': stdout)");
  cmd->add_option("--note", a->note, "A remark about the machine stored with the results");
  cmd->footer(polymap::cli::exit_codes("  (1 also: a map lost, duplicated or missed a key)\n"));
#ifdef POLYMAP_HAVE_BENCH
  cmd->callback([a] { run_latency(*a); });
#else
  cmd->callback([] { polymap::cli::bench_unavailable(); });
#endif
  return cmd;
}

}  // namespace polymap::cli

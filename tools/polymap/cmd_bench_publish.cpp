// polymap bench publish — read throughput of snapshot_map, concurrent_map and
// locked_map while one writer publishes on a schedule, and their single-key
// write latency at two sizes (bench/publish.hpp). Added under `polymap bench`
// by cmd_bench.cpp.
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"
#include "output.hpp"

#ifdef POLYMAP_HAVE_BENCH
#include "bench/publish.hpp"
#endif

namespace polymap::cli {
namespace {

struct publish_args {
  std::size_t size = 10'000;
  std::vector<int> readers = {1, 2};
  double duration = 1.0;
  std::uint64_t period_us = 1000;
  int repeats = 3;
  std::size_t batch = 1;
  std::vector<std::string> maps;
  std::vector<std::string> values = {"u64"};
  bool no_verify = false, no_throughput = false, no_latency = false;
  std::vector<std::size_t> latency_sizes = {10'000, 1'000'000};
  std::size_t latency_writes = 2000;
  std::uint64_t seed = 42;
  std::string json_path;
};

#ifdef POLYMAP_HAVE_BENCH
namespace pb = polymap::bench::publish;

[[noreturn]] void fail(const std::string& msg, int code = 2) {
  fmt::print(stderr, "polymap bench publish: {}\n", msg);
  throw CLI::RuntimeError(code);
}

std::string duration_text(double s) {
  if (s < 90) return fmt::format("{:.0f} s", s);
  return fmt::format("{:.1f} min", s / 60);
}

void run_publish(const publish_args& a) {
  pb::settings s;
  s.size = a.size;
  s.readers = a.readers;
  s.duration = a.duration;
  s.period_us = a.period_us;
  s.repeats = a.repeats;
  s.batch = a.batch;
  s.maps = a.maps;
  s.values.clear();
  for (const auto& v : a.values) {
    auto k = pb::parse_value_kind(v);
    if (!k) fail(fmt::format("--values: unknown value type '{}' (known: u64, value)", v));
    if (std::find(s.values.begin(), s.values.end(), *k) == s.values.end()) s.values.push_back(*k);
  }
  s.verify = !a.no_verify;
  s.throughput = !a.no_throughput;
  s.latency = !a.no_latency;
  s.latency_sizes = a.latency_sizes;
  s.latency_writes = a.latency_writes;
  s.seed = a.seed;
  if (const std::string bad = pb::validate(s); !bad.empty()) fail(bad);

  polymap::cli::check_outputs("bench publish", {{"--json", a.json_path}});
  const unsigned cores = std::thread::hardware_concurrency();
  const int max_readers = *std::max_element(s.readers.begin(), s.readers.end());
  fmt::print(stderr, "polymap bench publish: expected duration about {}\n", duration_text(pb::estimate_seconds(s)));
  if (s.throughput && static_cast<unsigned>(max_readers + 1) > cores)
    fmt::print(stderr, "note: {} readers and the writer oversubscribe {} hardware threads\n", max_readers, cores);

  auto on_progress = [](const pb::progress& p) {
    fmt::print(stderr, "[{:>3}/{}] {}  ({} elapsed, ~{} left)\n", p.done, p.total, p.line,
               duration_text(p.elapsed_seconds), duration_text(p.eta_seconds));
  };
  const pb::results r = pb::run(s, on_progress);
  const std::string table = pb::render_table(r);
  fmt::print(polymap::cli::human({{"--json", a.json_path}}), "{}", table);
  fmt::print(stderr, "done in {} (load average at start: {})\nhost: {}\n", duration_text(r.elapsed_seconds),
             r.load_average, polymap::bench::describe_host(r.machine));

  std::uint64_t violations = 0, misses = 0;
  for (const auto& c : r.cells) {
    violations += c.bad_values + c.violations;
    misses += c.misses;
  }
  if (!a.json_path.empty()) polymap::cli::write_output("bench publish", a.json_path, pb::to_json(r).dump(1) + "\n");
  // Every key is present for the whole run and every value carries its key's
  // index, so a miss or a violation means a map returned something wrong.
  if (violations || misses)
    fail(fmt::format("{} violation(s) and {} miss(es): a map returned a wrong result", violations, misses), 1);
}
#endif

}  // namespace

// Called by cmd_bench.cpp's add_bench; returns the subcommand so that `bench`
// can tell whether it ran.
CLI::App* add_bench_publish(CLI::App& bench) {
  auto a = std::make_shared<publish_args>();
  auto* cmd = bench.add_subcommand(
      "publish",
      "Read throughput of snapshot_map, concurrent_map and locked_map while one writer publishes every "
      "--period-us (and with no writer), then single-key write latency at --latency-sizes");
  cmd->add_option("--size", a->size, "Keys in each map for the throughput cells (1 to 2^30; default 10000)");
  cmd->add_option("--readers", a->readers, "Reader thread counts, comma-separated, each 1 to 256 (default 1,2)")
      ->delimiter(',');
  cmd->add_option("--duration", a->duration, "Seconds per repeat of each cell, over 0 and at most 600 (default 1.0)");
  cmd->add_option("--period-us", a->period_us,
                  "The writer publishes once every this many microseconds, on a fixed steady_clock schedule "
                  "(at least 1; default 1000)");
  cmd->add_option("--repeats", a->repeats, "Repeats per cell; the median is reported (1 to 1000; default 3)");
  cmd->add_option("--batch", a->batch,
                  "Keys written per publish (snapshot_map: one apply; the others: insert_or_assign each); "
                  "1 to --size (default 1)");
  cmd->add_option("--maps", a->maps, "Maps to run: snapshot_map, concurrent_map, locked_map (default all)")
      ->delimiter(',');
  cmd->add_option("--values", a->values,
                  "Value types: u64 (uint64_t), value (polymap::value holding an int64); default u64")
      ->delimiter(',');
  cmd->add_flag("--no-verify", a->no_verify,
                "Skip the readers' snapshot check that one apply's keys are seen together (batch > 1)");
  cmd->add_flag("--no-throughput", a->no_throughput, "Skip the read-throughput cells");
  cmd->add_flag("--no-latency", a->no_latency, "Skip the write-latency measurement");
  cmd->add_option("--latency-sizes", a->latency_sizes,
                  "Map sizes for the write latency, comma-separated (default 10000,1000000)")
      ->delimiter(',');
  cmd->add_option("--latency-writes", a->latency_writes, "Timed writes per map and size (default 2000)");
  cmd->add_option("--seed", a->seed, "Seed of the readers' and the latency writes' key choices (default 42)");
  cmd->add_option("--json", a->json_path,
                  "Write every repeat and row as JSON to this file ('-': stdout, and the table goes to stderr)");
  cmd->footer(polymap::cli::exit_codes("  (1 also: a map returned a wrong value or missed a key)\n"));
#ifdef POLYMAP_HAVE_BENCH
  cmd->callback([a] { run_publish(*a); });
#else
  cmd->callback([] { polymap::cli::bench_unavailable(); });
#endif
  return cmd;
}

}  // namespace polymap::cli

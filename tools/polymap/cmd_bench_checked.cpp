// polymap bench checked — what polymap::check::checked<M> costs on one
// thread: lookups and a 90/10 find/insert_or_assign mix on bare
// std::unordered_map and boost::unordered_flat_map against checked<> of each
// in both read modes, and bare polymap::locked_map against stale_checked<>
// of it (bench/checked_overhead.hpp). Added under `polymap bench` by
// cmd_bench.cpp.
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "cli.hpp"
#include "output.hpp"

#ifdef POLYMAP_HAVE_BENCH
#include "bench/checked_overhead.hpp"
#endif

namespace polymap::cli {
namespace {

struct checked_args {
  std::size_t size = 10'000;
  std::size_t ops = 2'000'000;
  int repeats = 5;
  std::string json_path;
};

#ifdef POLYMAP_HAVE_BENCH
void run_checked(const checked_args& a) {
  polymap::cli::check_outputs("bench checked", {{"--json", a.json_path}});
  polymap::bench::checked_overhead_options o;
  o.size = a.size;
  o.ops = a.ops;
  o.repeats = a.repeats;
  polymap::bench::checked_overhead_results r;
  try {
    r = polymap::bench::run_checked_overhead(o);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "polymap bench checked: {}\n", e.what());
    throw CLI::RuntimeError(2);
  }
  fmt::print(polymap::cli::human({{"--json", a.json_path}}), "{}", polymap::bench::render_checked_overhead_table(r));
  if (!a.json_path.empty())
    polymap::cli::write_output("bench checked", a.json_path, polymap::bench::to_json(r).dump(1) + "\n");
}
#endif

}  // namespace

// Called by cmd_bench.cpp's add_bench; returns the subcommand so that `bench`
// can tell whether it ran.
CLI::App* add_bench_checked(CLI::App& bench) {
  auto a = std::make_shared<checked_args>();
  auto* cmd = bench.add_subcommand(
      "checked",
      "Overhead of polymap::check::checked<> on one thread: find and contains hits and a 90% find / 10% "
      "insert_or_assign mix, on bare std::unordered_map and boost::unordered_flat_map (uint64 keys) and on "
      "checked<> of each in read_check::count and read_check::validate mode, and on bare polymap::locked_map and "
      "stale_checked<> of it (the stale-read detector); ns/op (median of --repeats) and the ratio to the bare "
      "container measured in the same run. A measurement: target ratio <= 1.10 (checked<>), <= 1.25 "
      "(stale_checked<>)");
  cmd->add_option("--size", a->size, "Keys in each map, all looked up as hits (1 to 2^30; default 10000)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  cmd->add_option("--ops", a->ops, "Operations per timed run (1 to 2^34; default 2000000)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 34));
  cmd->add_option("--repeats", a->repeats, "Timed runs per row; the median is reported (3 to 1000; default 5)")
      ->check(CLI::Range(3, 1000));
  cmd->add_option(
      "--json", a->json_path,
      "Write every run's ns/op, the medians and ratios as JSON ('-': stdout, and the table goes to stderr)");
  cmd->footer(polymap::cli::exit_codes());
#ifdef POLYMAP_HAVE_BENCH
  cmd->callback([a] { run_checked(*a); });
#else
  cmd->callback([] { polymap::cli::bench_unavailable(); });
#endif
  return cmd;
}

}  // namespace polymap::cli

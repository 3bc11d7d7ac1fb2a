// tools/polymap/cli.hpp — how a command file adds itself to the polymap CLI.
//
//   static void add_foo(CLI::App& root) { auto* c = root.add_subcommand("foo", "..."); ... }
//   static const polymap::cli::registrar reg{"foo", &add_foo};
//
// Each command sets its own callback; a callback returns by throwing
// CLI::RuntimeError(code) for a non-zero exit after printing its own message.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

namespace polymap::cli {

using command_adder = void (*)(CLI::App& root);

inline std::vector<std::pair<std::string, command_adder>>& commands() {
  static std::vector<std::pair<std::string, command_adder>> list;
  return list;
}

struct registrar {
  registrar(std::string name, command_adder add) { commands().emplace_back(std::move(name), add); }
};

// The callback of a `polymap bench` subcommand in a build without benchmarks.
[[noreturn]] inline void bench_unavailable() {
  fmt::print(stderr, "polymap bench: built without benchmarks (configure with -DPOLYMAP_BUILD_BENCH=ON)\n");
  throw CLI::RuntimeError(2);
}

}  // namespace polymap::cli

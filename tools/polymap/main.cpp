// polymap — the command-line lab: hazards, benchmarks, hash statistics, config.
#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "cli.hpp"
#include "polymap/polymap.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "polymap: many-typed maps shared between threads, and the lab that tests them.\n"
      "Run `polymap <command> --help` for a command's options."};
  app.set_version_flag("--version", polymap::version());
  app.require_subcommand(1);
  auto& cmds = polymap::cli::commands();
  std::sort(cmds.begin(), cmds.end());
  for (auto& [name, add] : cmds) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "polymap: error: {}\n", e.what());
    return 1;
  }
  return 0;
}

// tools/polymap/output.hpp — the output files of a command (--json, --html,
// --svg), shared by every command that writes them:
//   * '-' means stdout; then stdout carries only that file's text and every
//     human line (tables, notes) goes to stderr (human());
//   * every path is checked before the work starts (check_outputs()), so an
//     unwritable path fails in a second, not after a long run;
//   * write_output() writes one file and says so on stderr.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

namespace polymap::cli {

// One output of a command: its option ("--json") and the path given ("" if none).
struct output_path {
  std::string_view option;
  const std::string& path;
};

// Where human text goes: stderr when any output goes to stdout ('-'), else stdout.
inline std::FILE* human(std::initializer_list<output_path> outs) {
  for (const auto& o : outs) {
    if (o.path == "-") return stderr;
  }
  return stdout;
}

// Fails (exit 2) when two outputs go to stdout, and (exit 1) when a path cannot
// be opened for writing. A file that did not exist is removed again.
inline void check_outputs(std::string_view command, std::initializer_list<output_path> outs) {
  std::string_view to_stdout;
  for (const auto& o : outs) {
    if (o.path.empty()) continue;
    if (o.path == "-") {
      if (!to_stdout.empty()) {
        fmt::print(stderr, "polymap {}: {} and {} both write to stdout ('-'); give one of them a file\n", command,
                   to_stdout, o.option);
        throw CLI::RuntimeError(2);
      }
      to_stdout = o.option;
      continue;
    }
    const bool existed = ::access(o.path.c_str(), F_OK) == 0;
    std::FILE* f = std::fopen(o.path.c_str(), "a");  // "a": an existing file is not truncated by the check
    if (!f) {
      fmt::print(stderr, "polymap {}: cannot write {} {}: {}\n", command, o.option, o.path, std::strerror(errno));
      throw CLI::RuntimeError(1);
    }
    std::fclose(f);
    if (!existed) std::remove(o.path.c_str());
  }
}

// Writes `text` to `path` ('-': stdout); exit 1 with a message if it fails.
inline void write_output(std::string_view command, const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return;
  }
  std::ofstream f(path);
  if (!f || !(f << text) || !f.flush()) {
    fmt::print(stderr, "polymap {}: cannot write {}\n", command, path);
    throw CLI::RuntimeError(1);
  }
  fmt::print(stderr, "wrote {}\n", path);
}

// The --help footer on exit codes; `extra` adds command-specific lines.
inline std::string exit_codes(std::string_view extra = {}) {
  std::string s =
      "Exit codes:\n"
      "  0    success\n"
      "  1    the run found a failure, or a file could not be read or written\n"
      "  2    bad input named by polymap (unknown map, scenario, workload; two outputs on stdout)\n"
      "  104, 105  a bad value (not a number, out of range); 106 a required option missing;\n"
      "  109  an unknown option or argument (CLI11's parse errors)\n";
  if (!extra.empty()) s += extra;
  return s;
}

}  // namespace polymap::cli

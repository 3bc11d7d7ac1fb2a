#include "lab.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace polymap::lab {

std::vector<scenario>& scenarios() {
  static std::vector<scenario> list;
  return list;
}

registrar::registrar(scenario s) {
  scenarios().push_back(std::move(s));
}

std::string_view to_string(verdict v) {
  switch (v) {
    case verdict::anomaly:
      return "UNSAFE (anomalies seen)";
    case verdict::silent_ub:
      return "no anomaly seen (UB: proves nothing)";
    case verdict::safe:
      return "safe";
    case verdict::failed:
      return "FAILED (polymap bug)";
    case verdict::not_seen:
      return "no anomaly seen this time (proves nothing)";
  }
  return "?";
}

bool is_polymap_row(const row& r) {
  return r.outcome == verdict::safe || r.outcome == verdict::failed;
}

std::string counts_text(const row& r) {
  if (!r.outcome_text.empty()) return r.outcome_text;
  if (r.rounds == 0) return "not run";
  std::string parts;
  auto add = [&](std::int64_t n, std::string_view what) {
    if (!n) return;
    if (!parts.empty()) parts += ", ";
    parts += fmt::format("{} {}", n, what);
  };
  add(r.crashes, "crashes");
  add(r.lost, "lost");
  add(r.wrong, "wrong/torn");
  if (parts.empty()) parts = "0 anomalies";
  return fmt::format("{} in {} rounds", parts, r.rounds);
}

verdict naive_verdict(const row& r) {
  return (r.crashes || r.lost || r.wrong) ? verdict::anomaly : verdict::silent_ub;
}
verdict polymap_verdict(const row& r) {
  return (r.crashes || r.lost || r.wrong) ? verdict::failed : verdict::safe;
}

bool built_with_tsan() {
#if defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return true;
#endif
#endif
  return false;
}

bool built_with_asan() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

namespace {
bool write_all(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
}  // namespace

bool run_contained(const std::function<round_counts()>& body, round_counts& out, bool quiet, unsigned timeout_s) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::close(fds[0]);
    if (quiet) {
      int devnull = ::open("/dev/null", O_WRONLY);
      if (devnull >= 0) ::dup2(devnull, STDERR_FILENO);
    }
    ::alarm(timeout_s);  // a corrupted table can loop forever: SIGALRM ends it as a crash
    round_counts c = body();
    _exit(write_all(fds[1], &c, sizeof c) ? 0 : 3);
  }
  ::close(fds[1]);
  round_counts c;
  std::size_t got = 0;
  while (got < sizeof c) {
    ssize_t r = ::read(fds[0], reinterpret_cast<char*>(&c) + got, sizeof c - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got != sizeof c || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
  out = c;
  return true;
}

namespace {
std::string dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

// One line per naive row: scenario | naive outcome | TSan | ASan | detector |
// polymap map (the scenario's polymap rows).
std::string render_summary(const std::vector<row>& rows) {
  struct line_t {
    std::string cells[6];
  };
  std::vector<line_t> lines;
  lines.push_back(
      {{"scenario", "naive outcome (counts)", "ThreadSanitizer", "ASan", "polymap detector", "polymap map"}});
  for (const auto& r : rows) {
    if (is_polymap_row(r)) continue;
    std::string safe;
    for (const auto& p : rows) {
      if (p.scenario != r.scenario || !is_polymap_row(p)) continue;
      if (!safe.empty()) safe += "; ";
      safe += fmt::format("{}: {}", p.outcome == verdict::safe ? "safe" : "FAILED", counts_text(p));
    }
    std::string verdict_word = r.outcome == verdict::anomaly ? "UNSAFE: " : "";
    lines.push_back({{fmt::format("{} / {}", r.scenario, r.container), verdict_word + counts_text(r), dash(r.tsan),
                      dash(r.asan), dash(r.detector), dash(safe)}});
  }
  std::size_t w[6] = {};
  for (const auto& l : lines) {
    for (int i = 0; i < 6; ++i) w[i] = std::max(w[i], l.cells[i].size());
  }
  std::string out;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    out += "|";
    for (int i = 0; i < 6; ++i) out += fmt::format(" {:<{}} |", lines[n].cells[i], w[i]);
    out += "\n";
    if (n == 0) {
      out += "|";
      for (int i = 0; i < 6; ++i) out += fmt::format("{:-<{}}|", "", w[i] + 2);
      out += "\n";
    }
  }
  return out;
}
}  // namespace

std::string render_table(const std::vector<row>& rows) {
  std::string out = render_summary(rows);
  out += "\nDetails, one row per program:\n";
  out += render_details(rows);
  return out;
}

std::string render_details(const std::vector<row>& rows) {
  std::size_t w_s = 8, w_c = 9, w_v = 7;
  for (const auto& r : rows) {
    w_s = std::max(w_s, r.scenario.size());
    w_c = std::max(w_c, r.container.size());
    w_v = std::max(w_v, to_string(r.outcome).size());
  }
  std::string out;  // the details table
  auto line = [&](std::string_view s, std::string_view c, std::string_view rounds, std::string_view crashes,
                  std::string_view lost, std::string_view wrong, std::string_view v) {
    out += fmt::format("| {:<{}} | {:<{}} | {:>6} | {:>7} | {:>12} | {:>24} | {:<{}} |\n", s, w_s, c, w_c, rounds,
                       crashes, lost, wrong, v, w_v);
  };
  line("scenario", "container", "rounds", "crashes", "lost entries", "wrong-type or torn values", "verdict");
  out += fmt::format("|{:-<{}}|{:-<{}}|{:-<8}|{:-<9}|{:-<14}|{:-<26}|{:-<{}}|\n", "", w_s + 2, "", w_c + 2, "", "", "",
                     "", "", w_v + 2);
  for (const auto& r : rows) {
    line(r.scenario, r.container, fmt::format("{}", r.rounds), fmt::format("{}", r.crashes), fmt::format("{}", r.lost),
         fmt::format("{}", r.wrong), to_string(r.outcome));
  }
  for (const auto& r : rows) {
    if (!r.note.empty()) out += fmt::format("  * {} / {}: {}\n", r.scenario, r.container, r.note);
  }
  return out;
}

std::string render_json(const std::vector<row>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : rows) {
    j.push_back({{"scenario", r.scenario},
                 {"container", r.container},
                 {"rounds", r.rounds},
                 {"crashes", r.crashes},
                 {"lost_entries", r.lost},
                 {"wrong_or_torn", r.wrong},
                 {"verdict", std::string(to_string(r.outcome))},
                 {"anomaly", r.crashes + r.lost + r.wrong > 0},
                 {"polymap", is_polymap_row(r)},
                 {"naive_outcome", counts_text(r)},
                 {"tsan", r.tsan},
                 {"asan", r.asan},
                 {"detector", r.detector},
                 {"note", r.note}});
  }
  return j.dump(2) + "\n";
}

// --- sanitizer children ----------------------------------------------------------------

std::string_view child_name(sanitizer s) {
  return s == sanitizer::thread ? "polymap_lab_tsan" : "polymap_lab_asan";
}

namespace {
// $env if set (and executable), else `name` next to this binary, in the
// install tree's libexec/polymap/ relative to it, or in ../tools/polymap/ (for
// tests); "" if none.
std::string find_child(const char* env_name, std::string_view name) {
  namespace fs = std::filesystem;
  const char* env = std::getenv(env_name);
  if (env && *env) return ::access(env, X_OK) == 0 ? std::string(env) : std::string();
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const fs::path& dir : {self.parent_path(), self.parent_path() / POLYMAP_LAB_LIBEXEC_FROM_BIN,
                              self.parent_path() / ".." / "tools" / "polymap"}) {
    const fs::path p = dir / std::string(name);
    if (::access(p.c_str(), X_OK) == 0) return p.lexically_normal().string();
  }
  return {};
}
}  // namespace

std::string find_sanitizer_child(sanitizer s) {
  return find_child(s == sanitizer::thread ? "POLYMAP_LAB_TSAN" : "POLYMAP_LAB_ASAN", child_name(s));
}

std::string find_clang_tsan_child() {
  return find_child("POLYMAP_LAB_TSAN_CLANG", "polymap_lab_tsan_clang");
}

child_run run_sanitizer_child(sanitizer s, std::string_view case_name, unsigned timeout_s) {
  return run_child_binary(find_sanitizer_child(s), s, case_name, timeout_s);
}

child_run run_child_binary(const std::string& binary, sanitizer s, std::string_view case_name, unsigned timeout_s) {
  child_run r;
  r.binary = binary;
  if (r.binary.empty()) return r;
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  std::fflush(stdout);
  std::fflush(stderr);
  const std::string case_arg(case_name);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
    // The first report ends the child: the verdict needs one. Leaks are not
    // this lab's subject.
    ::setenv("TSAN_OPTIONS", "halt_on_error=1 exitcode=66 report_signal_unsafe=0", 1);
    ::setenv("ASAN_OPTIONS", "halt_on_error=1 detect_leaks=0 exitcode=67", 1);
    ::alarm(timeout_s);  // kept across exec: SIGALRM ends a child that runs too long
    ::execl(r.binary.c_str(), r.binary.c_str(), case_arg.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  r.ran = true;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < (1u << 20)) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
    r.timed_out = r.signal == SIGALRM;
  }
  const std::string_view marker = s == sanitizer::thread ? "WARNING: ThreadSanitizer: " : "ERROR: AddressSanitizer: ";
  for (std::size_t pos = out.find(marker); pos != std::string::npos; pos = out.find(marker, pos + 1)) {
    if (++r.reports == 1) {
      // "data race (pid=1)", "heap-use-after-free on address 0x..": the kind only.
      const std::size_t b = pos + marker.size();
      std::string line =
          out.substr(b, out.find('\n', b) == std::string::npos ? std::string::npos : out.find('\n', b) - b);
      for (std::string_view cut : {" (", " on address", " on unknown"}) {
        if (auto e = line.find(cut); e != std::string::npos) line.resize(e);
      }
      r.headline = line;
    }
  }
  for (std::size_t pos = out.find("[failed to restore the stack]"); pos != std::string::npos;
       pos = out.find("[failed to restore the stack]", pos + 1)) {
    ++r.stacks_lost;
  }
  long long lost = 0, wrong = 0, reports = 0;
  if (auto pos = out.find("counts lost=");
      pos != std::string::npos &&
      std::sscanf(out.c_str() + pos, "counts lost=%lld wrong=%lld reports=%lld", &lost, &wrong, &reports) == 3) {
    r.counts_ok = true;
    r.counts = {lost, wrong, reports};
  }
  return r;
}

std::string sanitizer_verdict(const child_run& r, sanitizer s) {
  if (!r.ran) return fmt::format("not run (no {} built)", child_name(s));
  if (r.reports > 0) return fmt::format("REPORTED: {}", r.headline.empty() ? "report" : r.headline);
  if (r.timed_out) return "inconclusive (timed out)";
  if (r.exit_code == 0 && r.counts_ok) return "silent";
  if (r.signal) return fmt::format("inconclusive (signal {}, no report)", r.signal);
  return fmt::format("inconclusive (exit {}, no report)", r.exit_code);
}

void run_rounds(row& r, int rounds, bool contained, const std::function<round_counts()>& body, const options& opt) {
  const int step = std::max(1, rounds / 4);
  for (int i = 0; i < rounds; ++i) {
    round_counts c;
    if (!contained) {
      c = body();
    } else if (!run_contained(body, c, opt.quiet_children, 60)) {
      ++r.crashes;
      c = {};
    }
    r.lost += c.lost;
    r.wrong += c.wrong;
    r.reports += c.reports;
    ++r.rounds;
    if (opt.progress && ((i + 1) % step == 0 || i + 1 == rounds)) {
      opt.progress(fmt::format("{} / {}: {}/{} rounds", r.scenario, r.container, i + 1, rounds));
    }
  }
}

sanitizer_cells measure_sanitizers(std::string_view case_name, const options& opt) {
  sanitizer_cells cells;
  if (!opt.sanitizer_children) {
    cells.tsan = cells.asan = "not run (sanitizer children disabled)";
    return cells;
  }
  if (opt.progress) opt.progress(fmt::format("sanitizer children: case {}", case_name));
  cells.tsan_run = run_sanitizer_child(sanitizer::thread, case_name);
  cells.asan_run = run_sanitizer_child(sanitizer::address, case_name);
  cells.tsan = sanitizer_verdict(cells.tsan_run, sanitizer::thread);
  cells.asan = sanitizer_verdict(cells.asan_run, sanitizer::address);
  return cells;
}

std::string skip_reason(bool races, bool use_after_free) {
  if (races && built_with_tsan())
    return "not run in-process in this ThreadSanitizer build (TSan would stop it; see the TSan column)";
  if (use_after_free && built_with_asan())
    return "not run in-process in this AddressSanitizer build (ASan would stop it; see the ASan column)";
  return {};
}

}  // namespace polymap::lab

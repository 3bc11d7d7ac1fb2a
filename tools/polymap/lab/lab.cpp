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

// The numbered notes below a narrow table: a cell too long for its column is
// cut at a word and points to the note that holds its full text. Equal texts
// share one note.
class notes {
 public:
  // `text` if it fits in `width`, else its head and " [n]".
  std::string fit(const std::string& text, std::size_t width) {
    if (text.size() <= width) return text;
    std::size_t n = 0;
    while (n < list_.size() && list_[n] != text) ++n;
    if (n == list_.size()) list_.push_back(text);
    const std::string ref = fmt::format(" [{}]", n + 1);
    const std::size_t room = width > ref.size() + 1 ? width - ref.size() - 1 : 0;  // 1: the ellipsis "~"
    std::size_t cut = text.rfind(' ', room);
    if (cut == std::string::npos || cut == 0) cut = room;
    std::string head = text.substr(0, cut);
    while (!head.empty() && std::string_view(",;:(/-").find(head.back()) != std::string_view::npos) head.pop_back();
    return head + "~" + ref;
  }
  // "[1] full text" lines, each wrapped to `width` columns.
  std::string render(std::size_t width) const {
    std::string out;
    for (std::size_t i = 0; i < list_.size(); ++i) out += wrap(fmt::format("[{}] {}", i + 1, list_[i]), width, 4);
    return out;
  }
  // `text` as lines of at most `width` columns, continuation lines indented.
  static std::string wrap(std::string_view text, std::size_t width, std::size_t indent) {
    std::string out, line;
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t end = text.find(' ', pos);
      if (end == std::string_view::npos) end = text.size();
      const std::string_view word = text.substr(pos, end - pos);
      if (!line.empty() && line.size() + 1 + word.size() > width) {
        out += line + "\n";
        line.assign(indent, ' ');
        line += word;
      } else {
        if (!line.empty() && line.find_first_not_of(' ') != std::string::npos) line += ' ';
        line += word;
      }
      pos = end + 1;
    }
    if (!line.empty()) out += line + "\n";
    return out;
  }

 private:
  std::vector<std::string> list_;
};

// A table of `cols` columns: a header, lines of cells, and section lines
// (a scenario's name) that span the table. Each column is as wide as its
// widest cell after fitting (notes::fit) to its limit.
struct text_table {
  std::vector<std::string> header;
  std::vector<std::size_t> limit;               // per column; 0: no limit
  std::vector<bool> right;                      // per column: right-aligned (numbers)
  std::vector<std::vector<std::string>> lines;  // one cell per column, or one cell: a section line

  std::string render(notes& n) {
    const std::size_t cols = header.size();
    for (auto& l : lines) {
      if (l.size() != cols) continue;
      for (std::size_t i = 0; i < cols; ++i) {
        if (limit[i]) l[i] = n.fit(l[i], limit[i]);
      }
    }
    std::vector<std::size_t> w(cols);
    for (std::size_t i = 0; i < cols; ++i) w[i] = header[i].size();
    for (const auto& l : lines) {
      if (l.size() != cols) continue;
      for (std::size_t i = 0; i < cols; ++i) w[i] = std::max(w[i], l[i].size());
    }
    std::size_t total = 1;
    for (auto x : w) total += x + 3;
    auto line = [&](const std::vector<std::string>& cells) {
      std::string out = "|";
      for (std::size_t i = 0; i < cols; ++i)
        out += right[i] ? fmt::format(" {:>{}} |", cells[i], w[i]) : fmt::format(" {:<{}} |", cells[i], w[i]);
      return out + "\n";
    };
    std::string out = line(header) + "|";
    for (std::size_t i = 0; i < cols; ++i) out += fmt::format("{:-<{}}|", "", w[i] + 2);
    out += "\n";
    for (const auto& l : lines) {
      if (l.size() == cols) {
        out += line(l);
      } else {
        const std::string text = n.fit(l.front(), total - 4);
        out += fmt::format("| {:<{}} |\n", text, total - 4);
      }
    }
    return out;
  }
};

constexpr std::size_t kWidth = 120;  // the terminal the narrow table is made for

// The polymap rows of r's scenario, in one cell: "safe: 0 anomalies in 3 rounds; ...".
std::string polymap_cell(const std::vector<row>& rows, const row& r) {
  std::string safe;
  for (const auto& p : rows) {
    if (p.scenario != r.scenario || !is_polymap_row(p)) continue;
    if (!safe.empty()) safe += "; ";
    safe += fmt::format("{}: {}", p.outcome == verdict::safe ? "safe" : "FAILED", counts_text(p));
  }
  return dash(safe);
}

// One line per naive row: scenario | naive outcome | TSan | ASan | detector |
// polymap map (the scenario's polymap rows). Wide: every cell in full.
// Narrow: a section line per scenario, cells cut to fit 120 columns, notes.
std::string render_summary(const std::vector<row>& rows, bool wide, notes& n) {
  text_table t;
  t.header = {wide ? "scenario / program" : "program",
              "naive outcome (counts)",
              "ThreadSanitizer",
              "ASan",
              "polymap detector",
              "polymap map"};
  // 101 columns of cells + 19 of borders = 120.
  t.limit = wide ? std::vector<std::size_t>(6, 0)
                 : std::vector<std::size_t>{23, 24, 15, 12, 16, 11};  // 11: the header "polymap map"
  t.right.assign(6, false);
  std::string section;
  for (const auto& r : rows) {
    if (is_polymap_row(r)) continue;
    if (!wide && r.scenario != section) {
      section = r.scenario;
      std::string title = r.scenario;
      for (const auto& s : scenarios()) {
        if (s.name == r.scenario) title = fmt::format("{} {}: {}", s.number ? s.number : 1, s.name, s.title);
      }
      t.lines.push_back({title});
    }
    std::string verdict_word = r.outcome == verdict::anomaly ? "UNSAFE: " : "";
    t.lines.push_back({wide ? fmt::format("{} / {}", r.scenario, r.container) : r.container,
                       verdict_word + counts_text(r), dash(r.tsan), dash(r.asan), dash(r.detector),
                       polymap_cell(rows, r)});
  }
  return t.render(n);
}

// One line per row with its counts; then each row's note.
std::string render_details(const std::vector<row>& rows, bool wide, notes& n) {
  text_table t;
  t.header = {"scenario", "container",    "rounds",
              "crashes",  "lost entries", wide ? "wrong-type or torn values" : "wrong/torn",
              "verdict"};
  // The longest scenario name is 14: 14 + 40 + 6 + 7 + 12 + 10 + 9 + 22 of borders = 120.
  t.limit = wide ? std::vector<std::size_t>(7, 0) : std::vector<std::size_t>{14, 40, 0, 0, 0, 0, 9};
  t.right = {false, false, true, true, true, true, false};
  for (const auto& r : rows) {
    t.lines.push_back({r.scenario, r.container, fmt::format("{}", r.rounds), fmt::format("{}", r.crashes),
                       fmt::format("{}", r.lost), fmt::format("{}", r.wrong), std::string(to_string(r.outcome))});
  }
  std::string out = t.render(n);
  for (const auto& r : rows) {
    if (r.note.empty()) continue;
    const std::string line = fmt::format("  * {} / {}: {}", r.scenario, r.container, r.note);
    out += wide ? line + "\n" : notes::wrap(line, kWidth, 6);
  }
  return out;
}
}  // namespace

std::string render_table(const std::vector<row>& rows, bool wide) {
  notes n;
  std::string out = render_summary(rows, wide, n);
  out += "\nDetails, one row per program:\n";
  out += render_details(rows, wide, n);
  if (!wide) {
    out += "\nNotes (cells cut short above; --wide prints the table in full, --json keeps everything):\n";
    out += n.render(kWidth);
  }
  return out;
}

std::string render_details(const std::vector<row>& rows) {
  notes n;
  return render_details(rows, true, n);
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

#include "lab.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

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
  }
  return "?";
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

std::string render_table(const std::vector<row>& rows) {
  std::size_t w_s = 8, w_c = 9, w_v = 7;
  for (const auto& r : rows) {
    w_s = std::max(w_s, r.scenario.size());
    w_c = std::max(w_c, r.container.size());
    w_v = std::max(w_v, to_string(r.outcome).size());
  }
  std::string out;
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
                 {"note", r.note}});
  }
  return j.dump(2) + "\n";
}

}  // namespace polymap::lab

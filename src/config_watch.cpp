// config_watch.cpp — safe reads of config files and the inotify watcher of
// file and directory sources; see config_watch.hpp for what is watched and
// when a change counts as complete.
#include "config_watch.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <tuple>

namespace polymap::config::detail {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

std::string read_regular(const fs::path& file, struct stat* before, struct stat* after) {
  const std::string name = file.string();
  auto fail = [&](const std::string& problem) { throw config_error(name, 0, "", problem); };
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
  const int fd = ::open(name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fail(fmt::format("cannot open: {}", std::strerror(errno)));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_it{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(fmt::format("cannot stat: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) fail("not a regular file (a FIFO, device or directory cannot be a config file)");
  if (static_cast<std::uint64_t>(st.st_size) > max_file_bytes)
    fail(fmt::format("file too large: {} bytes (the limit is {})", st.st_size, max_file_bytes));
  if (before) *before = st;
  std::string text;
  text.reserve(static_cast<std::size_t>(st.st_size));
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(fmt::format("cannot read: {}", std::strerror(errno)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_file_bytes) fail(fmt::format("file too large: over the limit of {} bytes", max_file_bytes));
  }
  if (after && ::fstat(fd, after) != 0) fail(fmt::format("cannot stat: {}", std::strerror(errno)));
  return text;
}

namespace {

// The pairs the kernel consults to resolve `p` (symlinks followed, at most
// 40 of them, as the kernel allows), directories as real paths. Stops at the
// first missing component (its pair included: its creation matters).
std::vector<std::pair<std::string, std::string>> consulted_pairs(const fs::path& p, std::string* resolved = nullptr) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  const fs::path abs = fs::absolute(p, ec);
  if (ec) return out;
  std::deque<std::string> rest;
  for (const auto& c : abs.relative_path()) rest.push_back(c.string());
  std::string dir = "/";
  int links = 0;
  auto join = [](const std::string& d, const std::string& n) { return d == "/" ? "/" + n : d + "/" + n; };
  while (!rest.empty()) {
    std::string c = std::move(rest.front());
    rest.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      dir = fs::path(dir).parent_path().string();
      if (dir.empty()) dir = "/";
      continue;
    }
    out.emplace_back(dir, c);
    const std::string full = join(dir, c);
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) {
      dir = full;
      for (auto& r : rest) dir = join(dir, r);
      if (resolved) *resolved = dir;
      return out;
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > 40) break;
      char target[PATH_MAX];
      const ssize_t n = ::readlink(full.c_str(), target, sizeof target - 1);
      if (n < 0) break;
      const fs::path t(std::string(target, static_cast<std::size_t>(n)));
      if (t.is_absolute()) dir = "/";
      std::vector<std::string> parts;
      for (const auto& tc : t.relative_path()) parts.push_back(tc.string());
      rest.insert(rest.begin(), parts.begin(), parts.end());
      continue;
    }
    dir = full;
  }
  if (resolved) *resolved = dir;
  return out;
}

// What "held still" compares: for each file, its identity, size and times.
using stamp = std::tuple<int, dev_t, ino_t, off_t, long, long, long, long>;
std::vector<stamp> stamps(const watch_plan& p) {
  std::vector<stamp> out;
  for (const auto& f : p.files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) {
      out.emplace_back(errno, 0, 0, 0, 0, 0, 0, 0);
      continue;
    }
    out.emplace_back(0, st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec,
                     st.st_ctim.tv_nsec);
  }
  return out;
}

bool same_content_stat(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// Events on a directory that holds a watched file (or is a conf.d).
constexpr std::uint32_t content_mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                       IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// Events on an ancestor: only changes of its entries (renames, creation, removal).
constexpr std::uint32_t structure_mask =
    IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

}  // namespace

captured fs_watcher::read_plan(const watch_plan& p) {
  captured c;
  c.when = clock::now();
  c.plan_error = p.error;
  for (const auto& f : p.files) {
    captured::file cf;
    cf.path = f.string();
    try {
      cf.text = read_regular(f);
    } catch (const config_error& e) {
      cf.error = e;
    }
    c.files.push_back(std::move(cf));
  }
  return c;
}

fs_watcher::fs_watcher(std::string what, std::function<watch_plan()> plan, std::function<bool(std::string_view)> accept,
                       timing t, std::function<void(captured)> done)
    : what_(std::move(what)), plan_(std::move(plan)), accept_(std::move(accept)), timing_(t), done_(std::move(done)) {}

fs_watcher::~fs_watcher() {
  stop();
}

void fs_watcher::start() {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0)
    throw config_error(what_, 0, "", fmt::format("cannot watch: inotify_init1: {}", std::strerror(errno)));
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    const int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    throw config_error(what_, 0, "", fmt::format("cannot watch: eventfd: {}", std::strerror(err)));
  }
  // The first watches are set here, before the caller's first read, so no
  // change made after start() returns is missed.
  rearm();
  thread_ = std::thread([this] { run(); });
}

void fs_watcher::rearm() {
  watch_plan p = plan_();
  std::map<std::string, dir_watch> want;  // by directory
  std::set<std::string> content;          // directories whose entries' content matters
  for (const auto& f : p.files) {
    const auto pairs = consulted_pairs(f);
    for (const auto& [d, n] : pairs) {
      want[d].dir = d;
      want[d].names.insert(n);
    }
    if (!pairs.empty()) content.insert(pairs.back().first);
  }
  for (const auto& d : p.dirs) {
    std::string real;
    for (const auto& [dd, n] : consulted_pairs(d, &real)) {
      want[dd].dir = dd;
      want[dd].names.insert(n);
    }
    want[real].dir = real;
    want[real].any = true;
    content.insert(real);
  }
  std::map<int, dir_watch> next;
  for (auto& [d, w] : want) {
    const std::uint32_t mask = content.count(d) ? content_mask : structure_mask;
    const int wd = ::inotify_add_watch(inotify_fd_, d.c_str(), mask);
    if (wd < 0) continue;  // missing or unreadable: the pair in its parent covers its creation
    auto& nw = next[wd];
    nw.dir = d;
    nw.names.merge(w.names);
    nw.any = nw.any || w.any;
  }
  for (const auto& [wd, w] : watches_) {
    if (!next.count(wd)) ::inotify_rm_watch(inotify_fd_, wd);
  }
  watches_ = std::move(next);
  plan_now_ = std::move(p);
}

bool fs_watcher::drain(std::set<std::string>& writers) {
  alignas(struct inotify_event) char buf[8192];
  bool relevant = false;
  for (;;) {
    const ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {  // events lost: assume the worst, forget open writers
        relevant = true;
        writers.clear();
        continue;
      }
      const auto it = watches_.find(ev->wd);
      if (it == watches_.end()) continue;  // a watch already replaced
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        relevant = true;  // a watched directory went away or moved: re-resolve
        continue;
      }
      if (ev->len == 0) continue;
      const std::string_view name(ev->name);
      const dir_watch& w = it->second;
      if (!w.names.count(name) && !(w.any && accept_(name))) continue;  // a neighbour
      relevant = true;
      std::string key = w.dir + "/";
      key += name;
      if (ev->mask & IN_MODIFY) {
        writers.insert(std::move(key));
      } else if (ev->mask & IN_CREATE) {
        struct stat st {};
        if (::lstat(key.c_str(), &st) == 0 && S_ISREG(st.st_mode)) writers.insert(std::move(key));
      } else if (ev->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)) {
        writers.erase(key);
      }
    }
  }
  return relevant;
}

void fs_watcher::run() {
  bool pending = false;     // a change not yet announced
  bool wait_close = false;  // past max_delay with a writer still open: wait for its close
  clock::time_point first{}, quiet_until{}, not_before{};
  std::set<std::string> writers;  // watched files modified and not yet closed
  std::vector<stamp> sample;
  auto note = [&](clock::time_point now) {  // after a relevant event
    if (!pending) {
      pending = true;
      first = now;
    }
    quiet_until = now + timing_.settle;
    wait_close = false;
    rearm();
    sample = stamps(plan_now_);
  };
  for (;;) {
    int timeout = -1;
    if (pending && !wait_close) {
      const auto deadline = std::max(std::min(quiet_until, first + timing_.max_delay), not_before);
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
      timeout = left <= 0 ? 0 : static_cast<int>(left);
    }
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const int r = ::poll(fds, 2, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with valid descriptors; stop watching rather than spin
    }
    if (fds[0].revents) return;
    if (r > 0) {
      if (drain(writers)) note(clock::now());
      continue;
    }
    // A deadline passed: quiet for `settle`, or the cap.
    const auto now = clock::now();
    const bool capped = now >= first + timing_.max_delay;
    if (!writers.empty()) {  // a writer still has a file open: never read it half-written
      if (capped)
        wait_close = true;
      else
        quiet_until = now + timing_.settle;
      continue;
    }
    if (!capped) {
      auto s = stamps(plan_now_);
      if (s != sample) {  // moved without an event we saw (yet): wait for it to hold still
        sample = std::move(s);
        quiet_until = now + timing_.settle;
        continue;
      }
    }
    // Read the files, then check that nothing moved while reading.
    captured c;
    c.when = now;
    c.plan_error = plan_now_.error;
    bool moved = false;
    for (const auto& f : plan_now_.files) {
      captured::file cf;
      cf.path = f.string();
      try {
        struct stat before {
        }, after{};
        cf.text = read_regular(f, &before, &after);
        if (!same_content_stat(before, after)) moved = true;
      } catch (const config_error& e) {
        cf.error = e;
      }
      c.files.push_back(std::move(cf));
    }
    if (drain(writers)) {
      note(clock::now());
      moved = true;
    }
    if (moved) {  // try again once things settle (its event is on its way)
      not_before = clock::now() + std::chrono::milliseconds(1);
      continue;
    }
    pending = false;
    wait_close = false;
    done_(std::move(c));
  }
}

void fs_watcher::stop() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    // A failed write could only mean a broken eventfd; the join would then
    // hang, so fail loudly rather than silently.
    if (::write(stop_fd_, &one, sizeof one) != static_cast<ssize_t>(sizeof one)) std::terminate();
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  inotify_fd_ = stop_fd_ = -1;
}

}  // namespace polymap::config::detail

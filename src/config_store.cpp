// config_store.cpp — loading, publishing, notifying, and the inotify watcher.
//
// RELOAD
//   load() runs under reload_mutex_: read + parse + validate the whole file
//   (no lock readers could see), diff it against the current snapshot, and
//   publish the differences as one snapshot_map::apply, so readers move from
//   one file's values to the next in one step. Subscribers are notified while
//   reload_mutex_ is still held, so notifications arrive in publish order.
//
// WATCHER
//   The watcher follows the file's directory, not the file: an atomic
//   replace by rename gives the file a new inode, which a watch on the old
//   inode would never see. Events naming the file (or a queue overflow) mark
//   a reload as pending; the reload runs once the directory has been quiet
//   for options::settle, so a writer's burst is coalesced and the reload
//   reads a finished file. poll() waits on the inotify descriptor and an
//   eventfd that the destructor signals to stop the thread.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "polymap/config/config_store.hpp"

namespace polymap::config {

namespace {
// Set while this thread notifies subscribers of one store, to catch a
// subscriber that calls reload() (it would wait on the mutex it runs under).
thread_local const config_store* notifying = nullptr;

// Any exception as a config_error about `file`.
config_error as_config_error(std::exception_ptr ep, const std::string& file) {
  try {
    std::rethrow_exception(ep);
  } catch (const config_error& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return config_error(file, 0, "", "out of memory while loading it");
  } catch (const std::exception& e) {
    return config_error(file, 0, "", fmt::format("unexpected error: {}", e.what()));
  } catch (...) {
    return config_error(file, 0, "", "unexpected error (a non-standard exception)");
  }
}
}  // namespace

config_store::config_store(std::filesystem::path file, config::schema s)
    : config_store(std::move(file), std::move(s), options{}) {}

config_store::config_store(std::filesystem::path file, config::schema s, options o)
    : file_(std::move(file)), schema_(std::move(s)), opts_(o) {
  if (opts_.watch) start_watch();  // before the first read: no change is missed
  std::optional<config_error> error;
  load(reload_event::cause::initial, &error);
  if (error) {
    if (watcher_.joinable()) {
      const std::uint64_t one = 1;
      if (::write(stop_fd_, &one, sizeof one) != static_cast<ssize_t>(sizeof one)) std::terminate();
      watcher_.join();
    }
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    throw std::move(*error);
  }
}

config_store::~config_store() {
  if (watcher_.joinable()) {
    const std::uint64_t one = 1;
    // A failed write could only mean a broken eventfd; the join would then
    // hang, so report it loudly rather than silently.
    if (::write(stop_fd_, &one, sizeof one) != static_cast<ssize_t>(sizeof one)) std::terminate();
    watcher_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void config_store::start_watch() {
  std::filesystem::path dir = file_.parent_path();
  if (dir.empty()) dir = ".";
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0)
    throw config_error(file_.string(), 0, "", fmt::format("cannot watch: inotify_init1: {}", std::strerror(errno)));
  const std::uint32_t mask =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
  if (::inotify_add_watch(inotify_fd_, dir.c_str(), mask) < 0) {
    const int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    throw config_error(file_.string(), 0, "",
                       fmt::format("cannot watch directory {}: {}", dir.string(), std::strerror(err)));
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    const int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    throw config_error(file_.string(), 0, "", fmt::format("cannot watch: eventfd: {}", std::strerror(err)));
  }
  watcher_ = std::thread([this] { watch_loop(); });
}

void config_store::watch_loop() {
  const std::string name = file_.filename().string();
  alignas(struct inotify_event) char buf[8192];
  bool pending = false;
  for (;;) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const int timeout = pending ? static_cast<int>(opts_.settle.count()) : -1;
    const int r = ::poll(fds, 2, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with valid descriptors; stop watching rather than spin
    }
    if (fds[0].revents) return;
    if (r == 0) {  // quiet for `settle`: the writer is done
      pending = false;
      try {
        load(reload_event::cause::watch);
      } catch (...) {
        // load() reports file problems as events; what escapes is bad_alloc
        // or a logic error. Keep the watcher alive; the config is unchanged.
      }
      continue;
    }
    for (;;) {
      const ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: drained
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF)) pending = true;
        if (ev->len > 0 && name == ev->name) pending = true;
      }
    }
  }
}

reload_event config_store::reload() {
  if (notifying == this)
    throw std::logic_error("polymap::config_store: reload() called from a subscriber of the same store");
  return load(reload_event::cause::manual);
}

reload_event config_store::load(reload_event::cause why, std::optional<config_error>* error_out) {
  std::lock_guard lock(reload_mutex_);
  reload_event ev;
  ev.trigger = why;
  std::vector<change> changes;
  try {
    document doc = load_document(file_, schema_, opts_.format, opts_.limits);
    auto current = map_.snapshot();
    map_type::batch b;
    std::map<std::string_view, const value*> fresh;
    for (const auto& e : doc.entries) {
      fresh.emplace(e.key, &e.val);
      auto old = current.find(e.key);
      if (old && *old == e.val) continue;
      b.insert_or_assign(e.key, e.val);
      changes.push_back({e.key, std::move(old), e.val, 0});
    }
    current.for_each([&](const std::string& k, const value& v) {
      if (!fresh.count(k)) {
        b.erase(k);
        changes.push_back({k, v, std::nullopt, 0});
      }
    });
    ev.version = b.empty() ? current.version() : map_.apply(b);
    ev.accepted = true;
    for (auto& c : changes) {
      c.version = ev.version;
      ev.changed_keys.push_back(c.key);
    }
    accepted_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  } catch (...) {
    // Every failure is a rejected reload (parse_document already turns its
    // own into config_error; this catches the publish step's bad_alloc).
    const config_error e = as_config_error(std::current_exception(), file_.string());
    ev.accepted = false;
    ev.error = e.what();
    if (error_out) error_out->emplace(e);
    ev.version = map_.version();
    changes.clear();
    rejected_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  }
  {
    std::lock_guard g(event_mutex_);
    last_event_ = ev;
  }
  notify(ev, changes);
  return ev;
}

void config_store::notify(const reload_event& ev, const std::vector<change>& changes) {
  std::vector<std::shared_ptr<const subscriber>> subs;
  {
    std::lock_guard g(subs_mutex_);
    subs = subs_;
  }
  const config_store* outer = notifying;
  notifying = this;
  auto guarded = [&](auto&& call) {
    try {
      call();
    } catch (const std::exception& e) {
      callback_errors_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      std::lock_guard g(event_mutex_);
      last_callback_error_ = e.what();
    } catch (...) {
      callback_errors_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      std::lock_guard g(event_mutex_);
      last_callback_error_ = "a non-std exception";
    }
  };
  for (const auto& c : changes) {
    for (const auto& s : subs) {
      if (s->on_change && (s->all || s->key == c.key)) guarded([&] { s->on_change(c); });
    }
  }
  for (const auto& s : subs) {
    if (s->on_event) guarded([&] { s->on_event(ev); });
  }
  notifying = outer;
}

reload_event config_store::last_event() const {
  std::lock_guard g(event_mutex_);
  return last_event_;
}

std::string config_store::last_callback_error() const {
  std::lock_guard g(event_mutex_);
  return last_callback_error_;
}

config_store::subscription config_store::subscribe(std::string key, std::function<void(const change&)> cb) {
  std::lock_guard g(subs_mutex_);
  auto s = std::make_shared<subscriber>();
  s->id = next_id_++;
  s->key = std::move(key);
  s->on_change = std::move(cb);
  subs_.push_back(std::move(s));
  return subs_.back()->id;
}

config_store::subscription config_store::subscribe_all(std::function<void(const change&)> cb) {
  std::lock_guard g(subs_mutex_);
  auto s = std::make_shared<subscriber>();
  s->id = next_id_++;
  s->all = true;
  s->on_change = std::move(cb);
  subs_.push_back(std::move(s));
  return subs_.back()->id;
}

config_store::subscription config_store::on_reload(std::function<void(const reload_event&)> cb) {
  std::lock_guard g(subs_mutex_);
  auto s = std::make_shared<subscriber>();
  s->id = next_id_++;
  s->on_event = std::move(cb);
  subs_.push_back(std::move(s));
  return subs_.back()->id;
}

void config_store::unsubscribe(subscription id) {
  std::lock_guard g(subs_mutex_);
  std::erase_if(subs_, [id](const auto& s) { return s->id == id; });
}

}  // namespace polymap::config

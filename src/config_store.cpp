// config_store.cpp — layers, loading, publishing, notifying.
//
// RELOAD
//   load() runs under reload_mutex_: load the sources that need it (every
//   one for the first load and reload(); on a watched change, the source
//   that announced it and any whose last load failed), merge the layers'
//   settings (a later source overrides an earlier one, key by key), validate
//   the whole (no lock readers could see), diff it against the current
//   snapshot, and publish the differences as one snapshot_map::apply, so
//   readers move from one complete config to the next in one step.
//   Subscribers are notified while reload_mutex_ is still held, so
//   notifications arrive in publish order. A rejected reload publishes
//   nothing; each layer keeps what its source last gave, so the next change
//   of any source is validated against every source's current content.
//
// WATCHING
//   Each source follows itself (config_source::watch; for files see
//   sources.hpp and config_watch.hpp) and calls on_change from its own
//   thread; the reload runs on that thread. The destructor stops every
//   source, which waits for its last callback, before anything is freed.
#include <chrono>
#include <cstring>
#include <map>

#include "polymap/config/config_store.hpp"
#include "polymap/config/sources.hpp"

namespace polymap::config {

namespace {
// Set while this thread notifies subscribers of one store, to catch a
// subscriber that calls reload() (it would wait on the mutex it runs under).
thread_local const config_store* notifying = nullptr;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

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
  layers_.push_back(
      {std::make_unique<file_source>(file_, opts_.format, watch_timing{opts_.settle, opts_.max_delay}, opts_.limits),
       std::nullopt, true});
  start();
}

config_store::config_store(std::vector<std::unique_ptr<config_source>> sources, config::schema s)
    : config_store(std::move(sources), std::move(s), options{}) {}

config_store::config_store(std::vector<std::unique_ptr<config_source>> sources, config::schema s, options o)
    : schema_(std::move(s)), opts_(o) {
  if (sources.empty()) throw std::invalid_argument("config_store: no sources");
  for (auto& src : sources) {
    if (!src) throw std::invalid_argument("config_store: a null source");
    layers_.push_back({std::move(src), std::nullopt, true});
  }
  start();
}

void config_store::start() {
  std::vector<const config_source*> srcs;
  for (const auto& l : layers_) srcs.push_back(l.src.get());
  name_ = layers_name(srcs);
  if (opts_.watch) {
    // Before the first read: no change made after the constructor started
    // is missed (one announced before the first load is covered by it).
    try {
      for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i].src->watch([this, i] { on_change(i); });
    } catch (...) {
      stop_sources();
      throw;
    }
    watching_ = true;
  }
  std::optional<config_error> error;
  load(reload_event::cause::initial, true, 0, &error);
  if (error) {
    stop_sources();
    throw std::move(*error);
  }
}

config_store::~config_store() {
  stop_sources();
}

void config_store::stop_sources() noexcept {
  for (auto& l : layers_) {
    try {
      l.src->stop();
    } catch (...) {
      // stop() must not throw; if one does, the others still stop.
    }
  }
}

void config_store::on_change(std::size_t layer) {
  try {
    load(reload_event::cause::watch, false, layer);
  } catch (...) {
    // load() reports source problems as events; what escapes is bad_alloc
    // or a logic error. Keep the source's watcher alive; the config stays.
  }
}

reload_event config_store::reload() {
  if (notifying == this)
    throw std::logic_error("polymap::config_store: reload() called from a subscriber of the same store");
  return load(reload_event::cause::manual, true);
}

reload_event config_store::load(reload_event::cause why, bool fresh, std::size_t changed,
                                std::optional<config_error>* error_out) {
  std::lock_guard lock(reload_mutex_);
  reload_event ev;
  ev.trigger = why;
  if (why == reload_event::cause::watch && !started_) return ev;  // the first load will read it
  started_ = true;
  std::vector<change> changes;
  std::optional<config_error> error;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    layer& l = layers_[i];
    if (!fresh && i != changed && !l.failed) continue;
    try {
      l.last = fresh ? l.src->load() : l.src->load_changed();
      l.failed = false;
    } catch (...) {
      // A source throws config_error; anything else (bad_alloc) becomes one.
      l.failed = true;
      if (!error) error = as_config_error(std::current_exception(), l.src->name());
    }
  }
  std::vector<entry> effective;
  if (!error) {
    try {
      std::vector<std::vector<raw_setting>> settings;
      for (const auto& l : layers_) settings.push_back(*l.last);
      document doc = validate_settings(merge_settings(std::move(settings)), schema_, name_, opts_.limits);
      auto current = map_.snapshot();
      map_type::batch b;
      std::map<std::string_view, const value*> fresh_keys;
      for (const auto& e : doc.entries) {
        fresh_keys.emplace(e.key, &e.val);
        auto old = current.find(e.key);
        if (old && *old == e.val) continue;
        b.insert_or_assign(e.key, e.val);
        changes.push_back({e.key, std::move(old), e.val, 0});
      }
      current.for_each([&](const std::string& k, const value& v) {
        if (!fresh_keys.count(k)) {
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
      effective = std::move(doc.entries);
      accepted_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    } catch (...) {
      // Every failure is a rejected reload (validate_settings turns its own
      // into config_error; this also catches the publish step's bad_alloc).
      error = as_config_error(std::current_exception(), name_);
    }
  }
  if (error) {
    ev.accepted = false;
    ev.error = error->what();
    if (error_out) error_out->emplace(*error);
    ev.version = map_.version();
    changes.clear();
    ev.changed_keys.clear();
    rejected_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  }
  {
    std::lock_guard g(event_mutex_);
    last_event_ = ev;
    layer_failed_.resize(layers_.size());
    for (std::size_t i = 0; i < layers_.size(); ++i) layer_failed_[i] = layers_[i].failed;
    if (ev.accepted) {
      last_accept_time_ = unix_now();
      effective_ = std::move(effective);
    } else {
      last_error_time_ = unix_now();
    }
  }
  notify(ev, changes);
  return ev;
}

std::vector<std::string> config_store::source_names() const {
  std::vector<std::string> out;
  for (const auto& l : layers_) out.push_back(l.src->name());
  return out;
}

std::vector<entry> config_store::effective() const {
  std::lock_guard g(event_mutex_);
  return effective_;
}

config_stats config_store::stats() const {
  config_stats st;
  st.reloads_accepted = reloads_accepted();
  st.reloads_rejected = reloads_rejected();
  st.version = version();
  st.callback_errors = callback_errors();
  {
    std::lock_guard g(event_mutex_);
    st.last_accepted_time = last_accept_time_;
    st.last_error_time = last_error_time_;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const bool failed = i < layer_failed_.size() && layer_failed_[i];
      st.sources.push_back({layers_[i].src->name(), !failed, 0, {}, {}});
    }
  }
  for (std::size_t i = 0; i < layers_.size(); ++i) {  // status() outside event_mutex_: it takes the source's lock
    const source_status ss = layers_[i].src->status();
    st.sources[i].ok = st.sources[i].ok && ss.st != source_status::state::failed;
    st.sources[i].revision = ss.revision;
    st.sources[i].state = state_name(ss.st);
    st.sources[i].last_error = ss.last_error;
  }
  return st;
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

// config_sources.cpp — file, directory and environment sources, and the
// merge of layers; see polymap/config/sources.hpp.
#include "polymap/config/sources.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>

#include "config_watch.hpp"

extern char** environ;

namespace polymap::config {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A conf.d entry that counts: *.json or *.toml, not hidden (Kubernetes'
// ..data and timestamped directories, editors' .swp files).
bool config_entry_name(std::string_view name) {
  return !name.empty() && name.front() != '.' && (ends_with(name, ".json") || ends_with(name, ".toml"));
}

}  // namespace

std::vector<raw_setting> merge_settings(std::vector<std::vector<raw_setting>> layers) {
  std::vector<raw_setting> out;
  std::map<std::string, std::size_t, std::less<>> at;
  for (auto& layer : layers) {
    for (auto& r : layer) {
      if (auto it = at.find(r.key); it != at.end()) {
        out[it->second] = std::move(r);
      } else {
        at.emplace(r.key, out.size());
        out.push_back(std::move(r));
      }
    }
  }
  return out;
}

// --- file and directory sources ------------------------------------------------

struct path_source::impl {
  std::string name;
  fs::path path;
  bool is_dir = false;
  file_format fmt = file_format::automatic;
  watch_timing timing;
  std::function<void()> changed;
  std::unique_ptr<detail::fs_watcher> watcher;

  mutable std::mutex m;  // Protects: capture, delivered, last_settings, last_error, last_texts, status.
  std::optional<detail::captured> capture;     // the last complete change the watcher read
  std::optional<clock::time_point> delivered;  // when what load*() last returned was read
  std::optional<std::vector<raw_setting>> last_settings;
  std::optional<config_error> last_error;
  std::vector<std::string> last_texts;
  source_status status;

  detail::watch_plan plan() const {
    detail::watch_plan p;
    if (!is_dir) {
      p.files.push_back(path);
      return p;
    }
    p.dirs.push_back(path);
    std::error_code ec;
    std::vector<fs::path> names;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string n = it->path().filename().string();
      if (config_entry_name(n)) names.push_back(it->path());
    }
    if (ec) {
      p.error = fmt::format("cannot list directory: {}", ec.message());
      return p;
    }
    std::sort(names.begin(), names.end());
    p.files = std::move(names);
    return p;
  }

  // Parses what was read; throws config_error.
  std::vector<raw_setting> parse(const detail::captured& c) const {
    if (!c.plan_error.empty()) throw config_error(path.string(), 0, "", c.plan_error);
    std::vector<std::vector<raw_setting>> layers;
    for (const auto& f : c.files) {
      if (f.error) throw *f.error;
      layers.push_back(parse_settings(f.text, format_for(f.path, fmt), f.path));
    }
    return merge_settings(std::move(layers));
  }

  // Records and returns what a load read (under m).
  std::vector<raw_setting> deliver(const detail::captured& c) {
    delivered = c.when;
    std::vector<std::string> texts;
    for (const auto& f : c.files) texts.push_back(f.text);
    try {
      auto s = parse(c);
      if (!last_settings || texts != last_texts) ++status.revision;
      last_texts = std::move(texts);
      last_settings = s;
      last_error.reset();
      status.st = watcher ? source_status::state::connected : source_status::state::idle;
      status.last_error.clear();
      return s;
    } catch (const config_error& e) {
      last_error = e;
      status.st = source_status::state::failed;
      status.last_error = e.what();
      throw;
    }
  }
};

path_source::path_source(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

path_source::~path_source() {
  stop();
}

std::string path_source::name() const {
  return impl_->name;
}

const fs::path& path_source::path() const noexcept {
  return impl_->path;
}

std::vector<raw_setting> path_source::load() {
  auto c = detail::fs_watcher::read_plan(impl_->plan());
  std::lock_guard g(impl_->m);
  return impl_->deliver(c);
}

std::vector<raw_setting> path_source::load_changed() {
  {
    std::lock_guard g(impl_->m);
    if (impl_->capture && (!impl_->delivered || impl_->capture->when > *impl_->delivered)) {
      auto c = std::move(*impl_->capture);
      impl_->capture.reset();
      return impl_->deliver(c);
    }
    // What the announcement checked was already overtaken by a fresher
    // load() (a reload()): that is the newest complete state.
    if (impl_->last_error) throw *impl_->last_error;
    if (impl_->last_settings) return *impl_->last_settings;
  }
  return load();
}

void path_source::watch(std::function<void()> changed) {
  if (impl_->watcher) return;
  impl_->changed = std::move(changed);
  detail::fs_watcher::timing t;
  t.settle = impl_->timing.settle;
  t.max_delay = impl_->timing.max_delay;
  auto w = std::make_unique<detail::fs_watcher>(
      impl_->path.string(), [p = impl_.get()] { return p->plan(); }, config_entry_name, t,
      [p = impl_.get()](detail::captured c) {
        {
          std::lock_guard g(p->m);
          p->capture = std::move(c);
        }
        p->changed();
      });
  w->start();
  std::lock_guard g(impl_->m);
  impl_->watcher = std::move(w);
  if (impl_->status.st == source_status::state::idle) impl_->status.st = source_status::state::connected;
}

void path_source::stop() {
  // The watcher thread takes m only briefly and never while calling
  // `changed`, so joining it here without m cannot deadlock.
  std::unique_ptr<detail::fs_watcher> w;
  {
    std::lock_guard g(impl_->m);
    w = std::move(impl_->watcher);
  }
  if (w) w->stop();
}

source_status path_source::status() const {
  std::lock_guard g(impl_->m);
  return impl_->status;
}

file_source::file_source(fs::path file, file_format fmt, watch_timing t)
    : path_source([&] {
        auto p = std::make_unique<impl>();
        p->name = "file:" + file.string();
        p->path = std::move(file);
        p->fmt = fmt;
        p->timing = t;
        return p;
      }()) {}

directory_source::directory_source(fs::path dir, watch_timing t)
    : path_source([&] {
        auto p = std::make_unique<impl>();
        p->name = "dir:" + dir.string();
        p->path = std::move(dir);
        p->is_dir = true;
        p->timing = t;
        return p;
      }()) {}

std::unique_ptr<config_source> make_path_source(const fs::path& p, file_format fmt, watch_timing t) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) return std::make_unique<directory_source>(p, t);
  return std::make_unique<file_source>(p, fmt, t);
}

// --- environment -----------------------------------------------------------------

env_source::env_source(std::string prefix) : prefix_(std::move(prefix)) {}

env_source::env_source(std::string prefix, std::vector<std::pair<std::string, std::string>> vars)
    : prefix_(std::move(prefix)), fixed_(true), vars_(std::move(vars)) {}

std::vector<raw_setting> env_source::load() {
  std::vector<std::pair<std::string, std::string>> vars;
  if (fixed_) {
    vars = vars_;
  } else {
    for (char** e = environ; e && *e; ++e) {
      const std::string_view kv(*e);
      const auto eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      vars.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  std::sort(vars.begin(), vars.end());
  std::vector<raw_setting> out;
  std::map<std::string, std::string> by_key;  // key -> variable, to name both of a clash
  for (auto& [var, val] : vars) {
    if (var.size() <= prefix_.size() || var.compare(0, prefix_.size(), prefix_) != 0) continue;
    const std::string origin = "env:" + var;
    std::string key;
    const std::string rest = var.substr(prefix_.size());
    for (std::size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '_' && i + 1 < rest.size() && rest[i + 1] == '_') {
        key += '.';
        ++i;
      } else {
        key += static_cast<char>(std::tolower(static_cast<unsigned char>(rest[i])));
      }
    }
    if (key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos)
      throw config_error(origin, 0, key, "an empty level in the variable name (use __ between levels)");
    if (auto [it, fresh] = by_key.emplace(key, var); !fresh)
      throw config_error(origin, 0, key, fmt::format("set twice (also by {})", it->second));
    raw_setting r;
    r.key = std::move(key);
    r.val = value(std::move(val));
    r.is_text = true;
    r.origin = origin;
    out.push_back(std::move(r));
  }
  return out;
}

// --- layers ------------------------------------------------------------------------

std::string layers_name(const std::vector<const config_source*>& sources) {
  if (sources.size() == 1) {
    if (const auto* p = dynamic_cast<const path_source*>(sources[0])) return p->path().string();
  }
  std::string name;
  for (const auto* src : sources) {
    if (!name.empty()) name += " + ";
    name += src->name();
  }
  return name;
}

document load_sources(const std::vector<std::unique_ptr<config_source>>& sources, const schema& s) {
  std::vector<std::vector<raw_setting>> layers;
  std::vector<const config_source*> srcs;
  for (const auto& src : sources) {
    layers.push_back(src->load());
    srcs.push_back(src.get());
  }
  return validate_settings(merge_settings(std::move(layers)), s, layers_name(srcs));
}

}  // namespace polymap::config

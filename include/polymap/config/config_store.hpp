// polymap/config/config_store.hpp — a typed configuration loaded from a JSON
// or TOML file (or a stack of sources: files, conf.d directories, environment
// variables, etcd) into a snapshot_map, reloaded when a source changes.
//
// CONTRACT
//   A schema names the keys a file may set: each a config_key<T> (T is bool,
//   std::int64_t, double or std::string) with a default (or `required`) and an
//   optional validator. Nested tables flatten to dotted names:
//   {"http": {"timeout_ms": 5}} and {"http.timeout_ms": 5} both set
//   "http.timeout_ms". An integer is accepted where a double is declared; no
//   other conversion is made. Arrays, nulls and TOML dates are rejected.
//   Unknown keys are rejected unless the schema allows them (then they are
//   kept with the type the file gives them): a typo must not pass silently.
//
//   The store's map always holds every schema key (defaults filled in) plus
//   any allowed unknown keys. A reload parses and validates the whole file
//   first; only a file that passes is published, as one snapshot_map version
//   (apply), so a reader that takes snapshot() sees one file's values, never
//   a mix of two. A rejected reload (unreadable, malformed or invalid file)
//   leaves the config in force as it was and reports an error naming the
//   file, the line where the parser gives one, and the key; every problem of
//   a file is reported at once (config_error::problems()).
//
//   Parsing is bounded and total (parse_limits): only regular files are read
//   (non-blocking open, fstat), up to max_file_bytes; nesting past max_depth,
//   keys past max_key_bytes and more than max_entries settings are errors;
//   no step recurses to a depth the input controls. Values are strict:
//   numbers past the double or int64 range, underflow to 0, inf/nan (unless
//   allowed per key), duplicate keys, NUL bytes and empty key names are
//   rejected. Nothing but config_error leaves parsing, loading or the
//   constructor for anything about the input; reload() throws nothing.
//
//   Reads (get, find, snapshot, version) are snapshot_map reads: lock-free,
//   safe from any thread, at any time, including during a reload.
//
//   Reloads happen on reload() or, with options::watch, when a source
//   announces a change (config_source::watch). A file source follows, with
//   inotify, every directory and symlink its path resolves through
//   (re-resolved after each change: Kubernetes `..data` swaps, a directory
//   replaced by mv, a file deleted and recreated), and announces a change
//   only once the file is complete: no writer that modified it still has it
//   open, and its size and mtime held still for options::settle; only events
//   for the watched names count, and the wait is capped by
//   options::max_delay (see sources.hpp). The destructor stops every source.
//
//   Layers: a store built from several sources merges them in order, a
//   later source overriding an earlier one key by key, then validates the
//   merged settings as one whole and publishes them as one version (or
//   rejects them and keeps the last good config). entry::origin says which
//   source set each effective value.
//
//   Subscribers run after each publish, on the thread that reloaded, in
//   publish order, one call per changed key with the old and new values
//   (nullopt for absent). A subscriber that throws is counted
//   (callback_errors()) and the others still run. A callback may read the
//   store and (un)subscribe, but must not call reload() (it would wait for
//   itself; this is detected and throws std::logic_error).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "polymap/config/source.hpp"
#include "polymap/result.hpp"
#include "polymap/snapshot_map.hpp"
#include "polymap/stats.hpp"
#include "polymap/value.hpp"

namespace polymap::config {

// One thing wrong with a file: where (file, line where known, key where it
// is about one) and what.
struct config_problem {
  std::string file;
  int line = 0;         // 0 when unknown
  std::string key;      // empty when not about one key
  std::string problem;  // what is wrong, e.g. "0 is out of range [1, 60000]"
  // "file:line: key 'k': problem" (the parts that are known).
  std::string message() const {
    std::string where = file;
    if (line > 0) where += fmt::format(":{}", line);
    if (key.empty()) return fmt::format("{}: {}", where, problem);
    return fmt::format("{}: key '{}': {}", where, key, problem);
  }
};

// A rejected file (or schema): every problem found, in file order (a syntax
// error stops the parse, so it comes alone or last). what() is one line per
// problem, the first line the first problem; file(), line(), key() and
// problem() describe the first. This is the only exception that
// parse_document, load_document, schema::from_json and config_store's
// constructor throw for anything about the input (including running out of
// memory on it).
class config_error : public std::runtime_error {
 public:
  config_error(std::string file, int line, std::string key, const std::string& problem)
      : config_error(std::vector<config_problem>{{std::move(file), line, std::move(key), problem}}) {}
  // `problems` must not be empty.
  explicit config_error(std::vector<config_problem> problems)
      : std::runtime_error(compose(problems)), problems_(std::move(problems)) {}
  const std::string& file() const noexcept { return problems_.front().file; }
  int line() const noexcept { return problems_.front().line; }               // 0 when unknown
  const std::string& key() const noexcept { return problems_.front().key; }  // empty when not about one key
  const std::string& problem() const noexcept { return problems_.front().problem; }
  const std::vector<config_problem>& problems() const noexcept { return problems_; }

 private:
  static std::string compose(const std::vector<config_problem>& problems) {
    if (problems.empty()) return "config_error without a problem";
    std::string out;
    for (const auto& p : problems) {
      if (!out.empty()) out += '\n';
      out += p.message();
    }
    return out;
  }
  std::vector<config_problem> problems_;
};

// Bounds on what a file may make the parser do (see docs/config.md,
// "Limits"). A file past any of them is rejected with a config_error that
// names the limit.
struct parse_limits {
  std::size_t max_file_bytes = std::size_t{4} << 20;  // 4 MiB; checked with fstat and while reading
  int max_depth = 64;                                 // nesting of tables, arrays and dotted key parts
  std::size_t max_key_bytes = 1024;                   // a whole dotted key
  std::size_t max_entries = 65536;                    // settings in one file
  std::size_t max_problems = 50;                      // reported in one config_error (the rest counted)
};

template <class T>
concept config_type = std::is_same_v<T, bool> || std::is_same_v<T, std::int64_t> || std::is_same_v<T, double> ||
    std::is_same_v<T, std::string>;

// A validator returns an empty string for a good value, else what is wrong.
template <class T>
using validator = std::function<std::string(const T&)>;

// lo <= v <= hi, for int64 and double keys; NaN is out of every range.
template <class L, class H>
auto in_range(L lo, H hi) {
  return [lo, hi](const auto& v) -> std::string {
    // Written so that NaN (which compares false with everything) fails.
    if (!(v >= lo && v <= hi)) return fmt::format("{} is out of range [{}, {}]", v, lo, hi);
    return {};
  };
}
// One of the listed strings.
inline validator<std::string> one_of(std::vector<std::string> allowed) {
  return [allowed = std::move(allowed)](const std::string& v) -> std::string {
    for (const auto& a : allowed)
      if (a == v) return {};
    return fmt::format("'{}' is not one of [{}]", v, fmt::join(allowed, ", "));
  };
}
// A non-empty string.
inline validator<std::string> non_empty() {
  return [](const std::string& v) -> std::string { return v.empty() ? "must not be empty" : ""; };
}

struct required_t {};
inline constexpr required_t required{};

// One schema entry, type-erased.
struct key_spec {
  std::string name;
  value::kind kind = value::kind::null;  // boolean, int64, float64 or string
  bool required = false;
  value default_value;                             // when !required
  std::function<std::string(const value&)> check;  // may be empty; called with a value of `kind`
  std::string description;
  bool allow_non_finite = false;  // double keys: accept TOML inf/nan (never JSON overflow such as 1e400)
  bool duration = false;          // int64 keys: milliseconds, also written as "250ms", "2s", "1m30s", "1h"
};

// A duration as a config file writes it: one or more <digits><unit> parts,
// units h, m, s, ms ("250ms", "2s", "1m30s", "1h"), to milliseconds.
// nullopt if malformed or past the int64 range.
std::optional<std::int64_t> parse_duration_ms(std::string_view text) noexcept;

// The kind name a schema and error messages use.
std::string_view kind_name(value::kind k) noexcept;

// A typed configuration key; also a polymap::key<T>, so store.get(k) and
// store.map().get(k) both return result<T>.
template <config_type T>
class config_key : public key<T> {
 public:
  config_key(std::string name, T default_value, validator<T> check = {}, std::string description = {})
      : key<T>(std::move(name)),
        default_(std::move(default_value)),
        check_(std::move(check)),
        description_(std::move(description)) {
    if (check_) {
      if (auto why = check_(*default_); !why.empty())
        throw std::invalid_argument(fmt::format("config_key '{}': default rejected: {}", this->name(), why));
    }
  }
  config_key(std::string name, required_t, validator<T> check = {}, std::string description = {})
      : key<T>(std::move(name)), check_(std::move(check)), description_(std::move(description)) {}
  // For string keys: a literal default.
  config_key(std::string name, const char* default_value, validator<T> check = {},
             std::string description = {}) requires std::is_same_v<T, std::string>
      : config_key(std::move(name), std::string(default_value), std::move(check), std::move(description)) {}

  bool is_required() const noexcept { return !default_.has_value(); }
  // Int64 keys: a duration in milliseconds, which files may also write as
  // "250ms", "2s", "1m30s" or "1h" (a bare integer is milliseconds).
  config_key& as_duration(bool yes = true) requires std::is_same_v<T, std::int64_t> {
    duration_ = yes;
    return *this;
  }
  // Double keys: accept inf and nan from TOML files (rejected by default).
  config_key& allow_non_finite(bool yes = true) requires std::is_same_v<T, double> {
    allow_non_finite_ = yes;
    return *this;
  }
  const std::optional<T>& default_value() const noexcept { return default_; }

  key_spec spec() const {
    key_spec s;
    s.name = this->name();
    s.kind = value(T{}).which();
    s.required = is_required();
    if (default_) s.default_value = value(*default_);
    if (check_) {
      s.check = [c = check_](const value& v) { return c(*v.get_if<T>()); };
    }
    s.description = description_;
    s.allow_non_finite = allow_non_finite_;
    s.duration = duration_;
    return s;
  }

 private:
  std::optional<T> default_;
  validator<T> check_;
  std::string description_;
  bool allow_non_finite_ = false;
  bool duration_ = false;
};

class schema {
 public:
  schema() = default;
  template <class... T>
  explicit schema(const config_key<T>&... keys) {
    (add(keys), ...);
  }

  template <class T>
  schema& add(const config_key<T>& k) {
    return add(k.spec());
  }
  schema& add(key_spec s);  // throws std::invalid_argument on a duplicate name or unsupported kind

  schema& allow_unknown(bool yes = true) noexcept {
    allow_unknown_ = yes;
    return *this;
  }
  bool allows_unknown() const noexcept { return allow_unknown_; }
  const std::vector<key_spec>& keys() const noexcept { return keys_; }
  const key_spec* find(std::string_view name) const noexcept;

  // A schema described in JSON (see docs/config.md); throws config_error.
  static schema from_json(std::string_view text, const std::string& origin);
  static schema from_json_file(const std::filesystem::path& file);
  // The demo schema of `polymap config check` (http.*, log.level, ...).
  static schema demo();
  // No keys, unknown keys allowed: checks syntax and supported types only.
  static schema any();

 private:
  std::vector<key_spec> keys_;
  bool allow_unknown_ = false;
};

enum class file_format { automatic, json, toml };

// One effective setting.
struct entry {
  std::string key;
  value val;
  bool from_file = false;  // false: the schema's default (set by a source: a file, env, etcd)
  int line = 0;            // where the file set it (TOML), 0 if unknown
  std::string origin;      // which source set it (a file path, "env:APP_X", ...); empty: the default
};

// A validated file: every schema key plus allowed unknown keys, sorted by key.
struct document {
  std::string file;
  std::vector<entry> entries;
};

// Parses and validates text; `origin` names it in errors. Throws config_error
// (and nothing else: a bad_alloc or any other failure becomes one), listing
// every problem found (see config_error).
document parse_document(std::string_view text, file_format fmt, const std::string& origin, const schema& s,
                        const parse_limits& limits = {});
// Reads, parses and validates a file (format from the extension: .json or
// .toml; otherwise sniffed). Only a regular file is read (a FIFO, device or
// directory is rejected at once, without blocking), and only up to
// limits.max_file_bytes. Throws config_error, and nothing else.
document load_document(const std::filesystem::path& file, const schema& s, file_format fmt = file_format::automatic,
                       const parse_limits& limits = {});
// Reads a whole regular file of at most `max_bytes` (the checks above).
// Throws config_error naming the file.
std::string read_config_file(const std::filesystem::path& file, std::size_t max_bytes);

// The two halves of parse_document, for sources and layers:
// parse_settings parses text into flat settings (origin set on each; a key
// set twice in one text is an error); validate_settings checks merged
// settings (each key once) against the schema, converts text settings
// (raw_setting::is_text) to the schema's type, fills defaults, and names
// each setting's own origin in errors. `name` becomes document::file.
std::vector<raw_setting> parse_settings(std::string_view text, file_format fmt, const std::string& origin,
                                        const parse_limits& limits = {});
document validate_settings(std::vector<raw_setting> settings, const schema& s, const std::string& name);
// The format a file's name implies (.json, .toml), else `fmt`.
file_format format_for(const std::filesystem::path& file, file_format fmt) noexcept;

// A change of one key, as subscribers see it.
struct change {
  std::string key;
  std::optional<value> old_value;  // nullopt: the key was absent
  std::optional<value> new_value;  // nullopt: the key was removed
  std::uint64_t version = 0;       // the version that made the change
};

// The outcome of one load or reload.
struct reload_event {
  enum class cause { initial, manual, watch };
  cause trigger = cause::manual;
  bool accepted = false;
  std::uint64_t version = 0;              // in force afterwards
  std::vector<std::string> changed_keys;  // empty when accepted unchanged or rejected
  std::string error;                      // rejected: what config_error said
};

class config_store {
 public:
  using map_type = snapshot_map<std::string, value>;
  using snapshot_type = map_type::snapshot_type;
  using subscription = std::uint64_t;

  struct options {
    bool watch = true;                            // follow the sources (inotify for files)
    std::chrono::milliseconds settle{20};         // quiet, stable time before a watched file reload
    std::chrono::milliseconds max_delay{2000};    // cap on that wait (see sources.hpp)
    file_format format = file_format::automatic;  // of the file (single-file constructor)
    parse_limits limits;                          // size, depth and key bounds on the file (single-file constructor)
  };

  // Loads the file (throws config_error if it is rejected, and nothing else
  // about the file), then starts the
  // watcher if asked; the watch is set up before the first read, so no change
  // made after the constructor started is missed. A one-source store.
  config_store(std::filesystem::path file, schema s);
  config_store(std::filesystem::path file, schema s, options o);
  // A store over several sources; a later source overrides an earlier one,
  // key by key. Loads them all (throws config_error naming the source if one
  // fails or the merged settings are rejected); with o.watch, watches each
  // (settle/max_delay/format in `o` are the sources' own business here).
  config_store(std::vector<std::unique_ptr<config_source>> sources, schema s);
  config_store(std::vector<std::unique_ptr<config_source>> sources, schema s, options o);
  ~config_store();
  config_store(const config_store&) = delete;
  config_store& operator=(const config_store&) = delete;

  // --- reads (lock-free) -------------------------------------------------------
  template <class T>
  result<T> get(const key<T>& k) const {
    return map_.get(k);
  }
  template <class T, class Q>
  requires(!polymap::detail::is_key<std::remove_cvref_t<Q>>::value) result<T> get(const Q& name)
  const { return map_.template get<T>(name); }
  std::optional<value> find(std::string_view name) const { return map_.find(name); }
  snapshot_type snapshot() const { return map_.snapshot(); }
  std::uint64_t version() const { return map_.version(); }
  const map_type& map() const noexcept { return map_; }

  // --- reloads -----------------------------------------------------------------
  // Reads the file now; publishes it if it passes. Never throws config_error:
  // a rejection is reported in the event (and to on_reload subscribers).
  // Reads every source now (load(), not load_changed()).
  reload_event reload();
  reload_event last_event() const;
  std::uint64_t reloads_accepted() const noexcept { return accepted_.load(std::memory_order_relaxed); }
  std::uint64_t reloads_rejected() const noexcept { return rejected_.load(std::memory_order_relaxed); }
  bool watching() const noexcept { return watching_; }
  // The file of the single-file constructor; empty for a store of sources.
  const std::filesystem::path& file() const noexcept { return file_; }
  const config::schema& schema() const noexcept { return schema_; }
  // The sources' names, in precedence order (last wins).
  std::vector<std::string> source_names() const;
  // The effective settings with their origins (what `config check` prints),
  // as of the last accepted reload.
  std::vector<entry> effective() const;
  // Reload counters and the sources' status; polymap::to_prometheus renders them.
  config_stats stats() const;

  // --- subscriptions -------------------------------------------------------------
  subscription subscribe(std::string key, std::function<void(const change&)> cb);
  subscription subscribe_all(std::function<void(const change&)> cb);
  subscription on_reload(std::function<void(const reload_event&)> cb);
  void unsubscribe(subscription id);
  // Subscriber calls that threw; the message of the last one.
  std::uint64_t callback_errors() const noexcept { return callback_errors_.load(std::memory_order_relaxed); }
  std::string last_callback_error() const;

 private:
  struct subscriber {
    subscription id;
    std::string key;  // empty: all keys
    bool all = false;
    std::function<void(const change&)> on_change;
    std::function<void(const reload_event&)> on_event;
  };

  // One source and what it last gave.
  struct layer {
    std::unique_ptr<config_source> src;
    std::optional<std::vector<raw_setting>> last;  // the last successful load
    bool failed = true;                            // the last load threw (or none yet)
  };

  void start();  // the constructors' common part: watch, first load, throw if rejected
  void stop_sources() noexcept;
  void on_change(std::size_t layer);  // a source's `changed` callback
  // fresh: every layer load()ed (initial, manual); else the layer `changed`
  // and any whose last load failed are load_changed()ed. Then merges,
  // validates, publishes, notifies.
  reload_event load(reload_event::cause why, bool fresh, std::size_t changed = 0,
                    std::optional<config_error>* error_out = nullptr);
  void notify(const reload_event& ev, const std::vector<change>& changes);

  std::filesystem::path file_;
  config::schema schema_;
  options opts_;
  map_type map_;

  std::mutex reload_mutex_;         // Protects: the load-validate-publish-notify sequence (one at a time, in
                                    // order), layers_[i].last and .failed.
  std::vector<layer> layers_;       // the vector itself and each src are fixed after construction
  std::string name_;                // the stack in errors: a lone file's path, else the sources' names
  bool started_ = false;            // the first load ran (a change announced before it is covered by it)
  mutable std::mutex event_mutex_;  // Protects: last_event_, last_callback_error_, last_*_time_, effective_,
                                    // layer_failed_.
  reload_event last_event_;
  std::string last_callback_error_;
  double last_error_time_ = 0, last_accept_time_ = 0;  // unix seconds, 0: never
  std::vector<entry> effective_;
  std::vector<bool> layer_failed_;  // a copy of layers_[i].failed, for stats()
  std::mutex subs_mutex_;           // Protects: subs_, next_id_.
  std::vector<std::shared_ptr<const subscriber>> subs_;
  subscription next_id_ = 1;
  // relaxed (all three): statistics, ordering nothing.
  std::atomic<std::uint64_t> accepted_{0}, rejected_{0}, callback_errors_{0};
  bool watching_ = false;  // set in the constructor only
};

}  // namespace polymap::config

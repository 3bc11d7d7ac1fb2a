// polymap config — check configuration files (or conf.d directories, and
// environment variables) against a schema, or watch them and print every
// reload the config_store accepts or rejects.
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "polymap/config/config_store.hpp"
#include "polymap/config/etcd_source.hpp"
#include "polymap/config/sources.hpp"

namespace {

namespace cfg = polymap::config;

struct config_args {
  std::vector<std::string> files;  // files or directories, lowest precedence first
  std::string env_prefix;          // empty: no environment source
  std::string schema_path;
  bool no_schema = false;
  double seconds = 0;
  std::string format = "auto";
  bool json = false;
};

// A setting's value as JSON (a non-finite double, which JSON cannot hold, as its text).
nlohmann::json json_of(const polymap::value& v) {
  if (const auto* b = v.get_if<bool>()) return *b;
  if (const auto* i = v.get_if<std::int64_t>()) return *i;
  if (const auto* d = v.get_if<double>()) return std::isfinite(*d) ? nlohmann::json(*d) : nlohmann::json(v.to_string());
  if (const auto* s = v.get_if<std::string>()) return *s;
  return v.to_string();
}

// check --json: {"ok": true, "source", "schema", "revision", "entries": [{key, value, type, from_file, line,
// origin}]} or {"ok": false, "source", "schema", "errors": [{file, line, key, problem, message}]}.
void print_json(const std::string& source, const std::string& schema, const std::vector<cfg::entry>* entries,
                std::uint64_t revision, const cfg::config_error* error) {
  nlohmann::json j = {{"source", source}, {"schema", schema}, {"ok", entries != nullptr}};
  if (entries != nullptr) {
    j["revision"] = revision;
    auto& out = j["entries"] = nlohmann::json::array();
    for (const auto& e : *entries)
      out.push_back({{"key", e.key},
                     {"value", json_of(e.val)},
                     {"type", e.val.type_name()},
                     {"from_file", e.from_file},
                     {"line", e.line},
                     {"origin", !e.from_file       ? "default"
                                : e.origin.empty() ? "file"
                                                   : e.origin}});
  } else if (error != nullptr) {
    auto& out = j["errors"] = nlohmann::json::array();
    for (const auto& p : error->problems())
      out.push_back(
          {{"file", p.file}, {"line", p.line}, {"key", p.key}, {"problem", p.problem}, {"message", p.message()}});
  }
  // Invalid UTF-8 in a key or value is replaced rather than failing the dump.
  fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

cfg::schema pick_schema(const config_args& a) {
  if (a.no_schema) return cfg::schema::any();
  if (!a.schema_path.empty()) return cfg::schema::from_json_file(a.schema_path);
  return cfg::schema::demo();
}

// FILE may be an etcd prefix (etcd://host:port/prefix/). Alone, it gets a
// store over one etcd_source (its revision is printed); among files it is one
// more layer.
bool is_single_etcd(const config_args& a) {
  return a.files.size() == 1 && cfg::etcd_url::is_etcd(a.files.front());
}

// A store over the one etcd_source of is_single_etcd(a). Throws config_error.
std::unique_ptr<cfg::config_store> etcd_store(const config_args& a, bool watch) {
  std::vector<std::unique_ptr<cfg::config_source>> sources;
  sources.push_back(std::make_unique<cfg::etcd_source>(a.files.front()));
  cfg::config_store::options o;
  o.watch = watch;
  return std::make_unique<cfg::config_store>(std::move(sources), pick_schema(a), o);
}

cfg::file_format pick_format(const std::string& f) {
  if (f == "json") return cfg::file_format::json;
  if (f == "toml") return cfg::file_format::toml;
  return cfg::file_format::automatic;
}

// The sources, in precedence order: the files and directories as given, then the environment.
std::vector<std::unique_ptr<cfg::config_source>> make_sources(const config_args& a) {
  std::vector<std::unique_ptr<cfg::config_source>> out;
  for (const auto& f : a.files) {
    if (cfg::etcd_url::is_etcd(f))
      out.push_back(std::make_unique<cfg::etcd_source>(f));
    else
      out.push_back(cfg::make_path_source(f, pick_format(a.format)));
  }
  if (!a.env_prefix.empty()) out.push_back(std::make_unique<cfg::env_source>(a.env_prefix));
  return out;
}

std::string sources_name(const std::vector<std::unique_ptr<cfg::config_source>>& srcs) {
  std::vector<const cfg::config_source*> v;
  for (const auto& s : srcs) v.push_back(s.get());
  return cfg::layers_name(v);
}

std::string schema_name(const config_args& a) {
  if (a.no_schema) return "none (syntax and types only)";
  if (!a.schema_path.empty()) return a.schema_path;
  return "built-in demo";
}

void run_check(const config_args& a) {
  if (is_single_etcd(a)) {
    try {
      const auto store = etcd_store(a, false);
      const auto entries = store->effective();
      const auto revision = store->stats().sources.at(0).revision;
      if (a.json) return print_json(a.files.front(), schema_name(a), &entries, revision, nullptr);
      fmt::print("{}: OK ({} keys at etcd revision {}; schema: {})\n", a.files.front(), entries.size(), revision,
                 schema_name(a));
      for (const auto& e : entries)
        fmt::print("  {} = {} ({}, {})\n", e.key, e.val, e.val.type_name(), e.from_file ? e.origin : "default");
      return;
    } catch (const cfg::config_error& e) {
      if (a.json) print_json(a.files.front(), schema_name(a), nullptr, 0, &e);
      fmt::print(stderr, "polymap config check: rejected: {}\n", e.what());
      throw CLI::RuntimeError(1);
    }
  }
  try {
    const auto s = pick_schema(a);
    const auto srcs = make_sources(a);
    const auto doc = cfg::load_sources(srcs, s);
    if (a.json) return print_json(sources_name(srcs), schema_name(a), &doc.entries, 0, nullptr);
    fmt::print("{}: OK ({} keys; schema: {})\n", sources_name(srcs), doc.entries.size(), schema_name(a));
    for (const auto& e : doc.entries) {
      std::string origin = !e.from_file ? "default" : e.line > 0 ? fmt::format("{}:{}", e.origin, e.line) : e.origin;
      fmt::print("  {} = {} ({}, from {})\n", e.key, e.val, e.val.type_name(), origin);
    }
  } catch (const cfg::config_error& e) {
    if (a.json) print_json(fmt::format("{}", fmt::join(a.files, ", ")), schema_name(a), nullptr, 0, &e);
    fmt::print(stderr, "polymap config check: rejected: {}\n", e.what());
    throw CLI::RuntimeError(1);
  }
}

void run_watch(const config_args& a) {
  // Without --seconds the command ends on SIGINT/SIGTERM, taken by sigwait
  // below; blocked before the watcher thread starts so that it inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (a.seconds <= 0) pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // Declared before the store: ~config_store waits for a callback in flight,
  // which takes this mutex, so the mutex must outlive the store.
  std::mutex out_mutex;  // Protects: stdout lines from the watcher thread.
  std::unique_ptr<cfg::config_store> store;
  try {
    store =
        is_single_etcd(a) ? etcd_store(a, true) : std::make_unique<cfg::config_store>(make_sources(a), pick_schema(a));
  } catch (const cfg::config_error& e) {
    fmt::print(stderr, "polymap config watch: rejected: {}\n", e.what());
    throw CLI::RuntimeError(1);
  }
  store->on_reload([&](const cfg::reload_event& ev) {
    std::lock_guard g(out_mutex);
    if (ev.accepted && ev.changed_keys.empty())
      fmt::print("accepted: no change (version {})\n", ev.version);
    else if (ev.accepted)
      fmt::print("accepted: version {}, {} key(s) changed\n", ev.version, ev.changed_keys.size());
    else
      fmt::print("rejected: {} (version {} stays in force)\n", ev.error, ev.version);
    std::fflush(stdout);
  });
  store->subscribe_all([&](const cfg::change& c) {
    std::lock_guard g(out_mutex);
    fmt::print("  {}: {} -> {}\n", c.key, c.old_value ? c.old_value->to_string() : "(absent)",
               c.new_value ? c.new_value->to_string() : "(absent)");
  });
  // Printed once the callbacks are in place, so a change made after this line
  // is always reported (printed first, a reload in between was lost). A
  // reload between the registrations and this line prints before it;
  // on_reload goes first, so a reload's change lines always get its verdict.
  {
    std::lock_guard g(out_mutex);
    const auto snap = store->snapshot();  // version and size of one version
    fmt::print("watching {} (schema: {}); version {} with {} keys\n", fmt::join(store->source_names(), " + "),
               schema_name(a), snap.version(), snap.size());
    std::fflush(stdout);
  }
  // Runs until --seconds pass (0: until interrupted).
  std::condition_variable never;
  std::mutex m;
  std::unique_lock lock(m);
  if (a.seconds > 0) {
    never.wait_for(lock, std::chrono::duration<double>(a.seconds), [] { return false; });
  } else {
    int sig = 0;
    sigwait(&stop_signals, &sig);
  }
  lock.unlock();
  std::lock_guard g(out_mutex);
  fmt::print("stopped after {} accepted and {} rejected reload(s)\n", store->reloads_accepted() - 1,
             store->reloads_rejected());
}

void add_common(CLI::App* c, config_args& a) {
  c->add_option("FILE", a.files,
                "Configuration files (.json or .toml), conf.d directories (their *.json and *.toml merged in "
                "name order) or etcd prefixes (etcd://host:port/prefix/); a later one overrides an earlier one, "
                "key by key")
      ->required();
  c->add_option("--env", a.env_prefix,
                "Also read environment variables PREFIX<KEY>, overriding the files: with --env APP_, "
                "APP_HTTP__TIMEOUT_MS=250 sets http.timeout_ms (\"__\" separates levels)");
  auto* schema = c->add_option("--schema", a.schema_path,
                               "A schema in JSON (see docs/config.md); default: the built-in demo schema");
  c->add_flag("--no-schema", a.no_schema, "Accept any keys: check syntax and supported types only")->excludes(schema);
  c->add_option("--format", a.format, "File format")
      ->check(CLI::IsMember({"auto", "json", "toml"}))
      ->capture_default_str();
}

void add_config(CLI::App& root) {
  auto* cmd =
      root.add_subcommand("config", "Check or watch configuration files, directories, environment (config_store)");
  cmd->require_subcommand(1);

  auto check_args = std::make_shared<config_args>();
  auto* check = cmd->add_subcommand(
      "check", "Validate FILE... (merged) against a schema and print the effective settings and where each came from");
  add_common(check, *check_args);
  check->add_flag("--json", check_args->json, "Print the result as JSON on stdout (errors too)");
  check->callback([check_args] { run_check(*check_args); });

  auto watch_args = std::make_shared<config_args>();
  auto* watch = cmd->add_subcommand("watch", "Load FILE, then print each accepted or rejected reload as it changes");
  add_common(watch, *watch_args);
  watch->add_option("--seconds", watch_args->seconds, "Stop after this many seconds (default: run until Ctrl-C)")
      ->check(CLI::Range(0.0, 1e6));
  watch->callback([watch_args] { run_watch(*watch_args); });
}

const polymap::cli::registrar reg{"config", &add_config};

}  // namespace

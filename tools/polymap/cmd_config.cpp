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
  bool json = false;  // check: print the result as JSON
};

cfg::schema pick_schema(const config_args& a) {
  if (a.no_schema) return cfg::schema::any();
  if (!a.schema_path.empty()) return cfg::schema::from_json_file(a.schema_path);
  return cfg::schema::demo();
}

cfg::file_format pick_format(const std::string& f) {
  if (f == "json") return cfg::file_format::json;
  if (f == "toml") return cfg::file_format::toml;
  return cfg::file_format::automatic;
}

// The sources, in precedence order: the files and directories as given, then the environment.
std::vector<std::unique_ptr<cfg::config_source>> make_sources(const config_args& a) {
  std::vector<std::unique_ptr<cfg::config_source>> out;
  for (const auto& f : a.files) out.push_back(cfg::make_path_source(f, pick_format(a.format)));
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

// A setting's value as JSON (a non-finite double, which JSON cannot hold, as its text).
nlohmann::json to_json(const polymap::value& v) {
  if (const auto* b = v.get_if<bool>()) return *b;
  if (const auto* i = v.get_if<std::int64_t>()) return *i;
  if (const auto* d = v.get_if<double>()) return std::isfinite(*d) ? nlohmann::json(*d) : nlohmann::json(v.to_string());
  if (const auto* s = v.get_if<std::string>()) return *s;
  return v.to_string();
}

// Where an effective value came from, as `check` prints it: "default", a
// source ("env:APP_X"), or a file and line.
std::string origin_text(const cfg::entry& e) {
  if (!e.from_file) return "default";
  return e.line > 0 ? fmt::format("{}:{}", e.origin, e.line) : e.origin;
}

// `check --json`: {"ok", "file", "sources", "schema", "entries": [...]} or
// {"ok": false, ..., "errors": [...]}.
void run_check_json(const config_args& a) {
  const auto srcs = make_sources(a);
  nlohmann::json out = {{"file", sources_name(srcs)}, {"sources", nlohmann::json::array()}, {"schema", schema_name(a)}};
  for (const auto& s : srcs) out["sources"].push_back(s->name());
  bool ok = false;
  try {
    const auto doc = cfg::load_sources(srcs, pick_schema(a));
    out["entries"] = nlohmann::json::array();
    for (const auto& e : doc.entries)
      out["entries"].push_back({{"key", e.key},
                                {"value", to_json(e.val)},
                                {"type", e.val.type_name()},
                                {"from_file", e.from_file},
                                {"origin", e.from_file ? e.origin : "default"},
                                {"line", e.line}});
    ok = true;
  } catch (const cfg::config_error& e) {
    out["errors"] = nlohmann::json::array();
    for (const auto& p : e.problems())
      out["errors"].push_back(
          {{"file", p.file}, {"line", p.line}, {"key", p.key}, {"problem", p.problem}, {"message", p.message()}});
  }
  out["ok"] = ok;
  // Invalid UTF-8 in a key or value is replaced rather than failing the dump.
  fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!ok) throw CLI::RuntimeError(1);
}

void run_check(const config_args& a) {
  if (a.json) return run_check_json(a);
  try {
    const auto s = pick_schema(a);
    const auto srcs = make_sources(a);
    const auto doc = cfg::load_sources(srcs, s);
    fmt::print("{}: OK ({} keys; schema: {})\n", sources_name(srcs), doc.entries.size(), schema_name(a));
    for (const auto& e : doc.entries)
      fmt::print("  {} = {} ({}, from {})\n", e.key, e.val, e.val.type_name(), origin_text(e));
  } catch (const cfg::config_error& e) {
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
  std::unique_ptr<cfg::config_store> store;
  try {
    store = std::make_unique<cfg::config_store>(make_sources(a), pick_schema(a));
  } catch (const cfg::config_error& e) {
    fmt::print(stderr, "polymap config watch: rejected: {}\n", e.what());
    throw CLI::RuntimeError(1);
  }
  std::mutex out_mutex;  // Protects: stdout lines from the watcher thread.
  fmt::print("watching {} (schema: {}); version {} with {} keys\n", fmt::join(store->source_names(), " + "),
             schema_name(a), store->version(), store->snapshot().size());
  std::fflush(stdout);
  store->subscribe_all([&](const cfg::change& c) {
    std::lock_guard g(out_mutex);
    fmt::print("  {}: {} -> {}\n", c.key, c.old_value ? c.old_value->to_string() : "(absent)",
               c.new_value ? c.new_value->to_string() : "(absent)");
  });
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
                "Configuration files (.json or .toml) or conf.d directories (their *.json and *.toml merged in "
                "name order); a later one overrides an earlier one, key by key")
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
  check->add_flag("--json", check_args->json,
                  "Print the result as JSON: {\"ok\", \"sources\", \"entries\": [{key, value, type, from_file, "
                  "origin, line}]} or {\"ok\": false, \"errors\": [{file, line, key, problem, message}]}; exit 1 "
                  "when rejected");
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

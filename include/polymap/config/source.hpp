// polymap/config/source.hpp — where settings come from: the config_source
// interface that config_store stacks (file, conf.d directory, environment,
// etcd).
//
// CONTRACT
//   A source reports its whole content as a flat list of settings (dotted
//   key -> raw value); config_store merges the sources in precedence order,
//   validates the merged result against the schema as one whole, and
//   publishes it as one snapshot_map version or rejects it (the last good
//   config stays in force).
//
//   load() returns one consistent state of the source (for etcd: the prefix
//   at one revision; for a file: one complete file). It throws config_error
//   naming the source (and file, line and key where known) and nothing else.
//
//   watch(changed) starts following the source: `changed` is called, from
//   any thread, whenever load() may now return something new. Calls may be
//   coalesced; config_store then calls load() again. stop() ends the watch
//   and returns only after the last `changed` call has returned; it is
//   called before the source is destroyed. A source whose changes need no
//   watching (environment variables) may leave watch() empty.
//
//   status() says how the source is doing (for stats, metrics and `polymap
//   config check`); it may be called from any thread at any time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "polymap/value.hpp"

namespace polymap::config {

// One setting as a source gives it.
struct raw_setting {
  std::string key;       // dotted name, e.g. "http.timeout_ms"
  value val;             // typed where the source has types (JSON, TOML)
  bool is_text = false;  // true: val is a string to be parsed by the schema's
                         // type (environment variables, etcd plain text)
  std::string origin;    // which source/file set it, e.g. "/etc/app/conf.d/10-a.toml"
  int line = 0;          // where in that file, 0 if unknown
};

// How a source is doing.
struct source_status {
  enum class state { idle, connected, retrying, failed };
  state st = state::idle;
  std::uint64_t revision = 0;  // the source's own version of what load() returned
                               // (etcd revision; file: a change counter)
  std::string last_error;      // empty if none
};

// "idle", "connected", "retrying" or "failed".
inline const char* state_name(source_status::state s) noexcept {
  switch (s) {
    case source_status::state::idle:
      return "idle";
    case source_status::state::connected:
      return "connected";
    case source_status::state::retrying:
      return "retrying";
    case source_status::state::failed:
      return "failed";
  }
  return "?";
}

class config_source {
 public:
  virtual ~config_source() = default;
  // A name for messages and `config check`, e.g. "file:/etc/app.json",
  // "env:APP_", "etcd://127.0.0.1:2379/app/".
  virtual std::string name() const = 0;
  // The source's whole content now. Throws config_error.
  virtual std::vector<raw_setting> load() = 0;
  // What the last `changed` call announced. A source that checks a change
  // before announcing it (a watched file source reads the file once it is
  // complete, with no writer left) returns that checked state here, so a
  // half-written file read later cannot slip in; config_store calls this
  // after `changed`, and load() for reload() and the first load. Default:
  // load(). Throws config_error.
  virtual std::vector<raw_setting> load_changed() { return load(); }
  // Start following the source (see CONTRACT). Default: nothing to follow.
  virtual void watch(std::function<void()> changed) { (void)changed; }
  // End the watch; returns after the last `changed` call returned.
  virtual void stop() {}
  virtual source_status status() const { return {}; }
};

}  // namespace polymap::config

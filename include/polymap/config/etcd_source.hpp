// polymap/config/etcd_source.hpp — a config_source that loads a key prefix
// from etcd v3 and follows it with a watch, so that a fleet of services takes
// one config from one place, atomically and in etcd's order.
//
// CONTRACT
//   etcd_source("etcd://127.0.0.1:2379/app/") serves the keys under the
//   prefix "/app/" (a prefix is taken as given, plus a trailing '/' if it
//   lacks one). A key's setting name is the key without the prefix, with '/'
//   turned into '.': "/app/http/timeout_ms" sets "http.timeout_ms". A value
//   that is a JSON scalar (250, 2.5, true, "text") is given typed; anything
//   else is given as text (raw_setting::is_text) for the schema's type to
//   parse. So a string key whose text looks like a number must be quoted in
//   etcd ("\"1.2\"") or left to the schema as text.
//
//   load() returns the prefix at one etcd revision. Before watch() (or after
//   stop()) it asks etcd (POST /v3/kv/range) and throws config_error naming
//   the source if etcd does not answer; while watching it returns the copy
//   that the watch keeps, without a network call.
//
//   watch(changed) starts one thread that loads the prefix if needed, then
//   streams POST /v3/watch from the copy's revision + 1. The events of one
//   etcd revision (one put, one delete or one transaction) are applied to the
//   copy together, under its mutex, so load() never sees half a transaction;
//   then `changed` is called. The copy only moves forward: an event at or
//   below its revision is skipped, so a resumed watch applies nothing twice.
//   A lost connection is retried with backoff (options::backoff_initial,
//   doubling to backoff_max) and the watch resumes from the copy's revision
//   + 1; when etcd answers that this revision is compacted, the prefix is
//   loaded whole again. When etcd is found behind the copy's revision (an
//   etcd restored from a backup, or a new cluster on the same address), the
//   prefix is loaded whole and taken even though its revision is older.
//   Throughout, load() returns the last state it had.
//
//   revision: the etcd revision of the copy, i.e. of the last change seen
//   under the prefix (or of the last whole load). Writes to other prefixes
//   move etcd's revision but not this one.
//
//   stop() returns promptly (it wakes the transfer and the backoff wait),
//   after the last `changed` call returned; watch() may be called again.
//
//   Not done yet: TLS and authentication (plain HTTP only, for loopback or a
//   trusted network).
//
// etcd_client is the small client the source is built on (the v3 JSON
// gateway over HTTP, libcurl): unary calls with a timeout, throwing
// etcd_error. Tests and tools use it to write.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polymap/config/source.hpp"

namespace polymap::config {

// A failed etcd call: cannot connect, timed out, or etcd's own error.
class etcd_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// etcd://host:port/prefix, parsed. Throws config_error on a malformed URL.
struct etcd_url {
  std::string host;
  int port = 2379;
  std::string prefix;  // ends with '/'
  static etcd_url parse(std::string_view url);
  static bool is_etcd(std::string_view url) noexcept { return url.starts_with("etcd://"); }
  std::string str() const;  // etcd://host:port/prefix
};

class etcd_client {
 public:
  struct kv {
    std::string key;
    std::string value;
    std::uint64_t mod_revision = 0;
  };
  struct range_result {
    std::uint64_t revision = 0;  // the store's revision the range was read at
    std::vector<kv> kvs;         // sorted by key
  };

  etcd_client(std::string host, int port, std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Each returns the revision it made (or read at). Throws etcd_error.
  std::uint64_t put(std::string_view key, std::string_view value);
  std::uint64_t erase(std::string_view key);
  // All puts in one transaction: one revision.
  std::uint64_t put_all(const std::vector<std::pair<std::string, std::string>>& kvs);
  range_result range_prefix(std::string_view prefix);
  std::uint64_t revision();  // the store's current revision
  void compact(std::uint64_t revision);

  // One gateway call: POST `path` (e.g. "/v3/kv/range") with a JSON body;
  // the JSON answer. Throws etcd_error (including etcd's {"error": ...}).
  std::string call(std::string_view path, std::string_view json_body);

  const std::string& base_url() const noexcept { return base_; }

 private:
  std::string base_;  // http://host:port
  std::chrono::milliseconds timeout_;
};

class etcd_source final : public config_source {
 public:
  struct options {
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds request_timeout{5000};  // a range; not the watch stream
    std::chrono::milliseconds backoff_initial{50};
    std::chrono::milliseconds backoff_max{2000};
  };
  // What the source did since it was made.
  struct counters {
    std::uint64_t revision = 0;           // of the copy
    std::uint64_t whole_loads = 0;        // ranges of the whole prefix (first load, compaction)
    std::uint64_t compactions = 0;        // watches refused as compacted (each forced a whole load)
    std::uint64_t revisions_applied = 0;  // revisions applied from the watch
    std::uint64_t reconnects = 0;         // watch connections lost or refused, then retried
    std::uint64_t rewinds = 0;            // etcd found behind the copy (restored, new cluster): whole loads
  };

  // Throws config_error on a malformed URL. Connects nothing yet.
  explicit etcd_source(std::string_view url);
  etcd_source(std::string_view url, options o);
  ~etcd_source() override;
  etcd_source(const etcd_source&) = delete;
  etcd_source& operator=(const etcd_source&) = delete;

  std::string name() const override;
  std::vector<raw_setting> load() override;
  void watch(std::function<void()> changed) override;
  void stop() override;
  source_status status() const override;

  counters stats() const;
  const etcd_url& url() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The setting name of an etcd key under `prefix` ("/app/http/port" ->
// "http.port"); and the value's raw_setting form (see CONTRACT).
std::string etcd_key_to_setting(std::string_view prefix, std::string_view key);
raw_setting etcd_value_to_setting(std::string name, std::string_view bytes, std::string origin);

}  // namespace polymap::config

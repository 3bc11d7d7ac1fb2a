// etcd_source.cpp — the etcd v3 JSON gateway over HTTP (libcurl), and the
// config_source that loads and watches a key prefix through it.
//
// GATEWAY
//   Every call is a POST of a JSON body; keys and values are base64 in both
//   directions and 64-bit numbers come as JSON strings. A watch is one long
//   POST /v3/watch whose answer is a stream of JSON objects, one per line:
//   first {"result": {"created": true}}, then one object per batch of events
//   (all the events of one revision come in one object; an object may carry
//   several revisions), or {"result": {"canceled": true, "compact_revision":
//   N}} when the start revision was compacted, or {"error": ...}.
//
// THREADS
//   The watcher thread runs its transfers in a curl multi handle so that
//   stop() can wake it (curl_multi_wakeup) wherever it waits; its backoff
//   waits on a condition variable. The copy (key -> value at `revision`) is
//   under impl::mutex; `changed` is called with no lock held.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "polymap/config/config_store.hpp"
#include "polymap/config/etcd_source.hpp"

namespace polymap::config {

namespace {

using json = nlohmann::json;

// --- base64 (RFC 4648, padded), for the gateway's bytes fields ----------------

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(b64_alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(b64_alphabet[(acc << (6 - bits)) & 63]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

std::string b64_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(b64_alphabet, c);
    if (c == '\0' || p == nullptr) throw etcd_error("etcd sent malformed base64");
    acc = (acc << 6) | static_cast<std::uint32_t>(p - b64_alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// The first key after every key that starts with `prefix` (etcd's range_end
// for a prefix): the prefix with its last byte below 0xff incremented.
std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// 64-bit numbers come as strings ("12") from the gateway; accept numbers too.
std::uint64_t as_u64(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()));
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size())
      throw etcd_error(fmt::format("etcd sent a bad {}: '{}'", field, s));
    return v;
  }
  throw etcd_error(fmt::format("etcd sent a bad {}", field));
}

std::string as_bytes(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return {};  // the gateway omits empty fields
  return b64_decode(it->get_ref<const std::string&>());
}

// etcd's error object: {"error": "text", "message": ...} for unary calls,
// {"error": {"message": ..., "grpc_code": ...}} in a stream.
std::optional<std::string> error_of(const json& j) {
  auto it = j.find("error");
  if (it == j.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("message") && (*it)["message"].is_string())
    return (*it)["message"].get<std::string>();
  return it->dump();
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw etcd_error("curl_global_init failed");
  });
}

// One POST with a JSON body. The body is handed to `sink` piece by piece as
// it arrives; a sink returning false aborts the transfer.
class http_post {
 public:
  using sink_fn = std::function<bool(std::string_view)>;

  http_post(const std::string& url, std::string body, std::chrono::milliseconds connect_timeout,
            std::chrono::milliseconds total_timeout, sink_fn sink)
      : body_(std::move(body)), sink_(std::move(sink)) {
    curl_init_once();
    easy_ = curl_easy_init();
    if (easy_ == nullptr) throw etcd_error("curl_easy_init failed");
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    errbuf_[0] = '\0';
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body_.c_str());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM
    curl_easy_setopt(easy_, CURLOPT_NOPROXY, "*");  // loopback or a trusted network, never a proxy
    curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(total_timeout.count()));  // 0: none
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPINTVL, 5L);
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, errbuf_);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &http_post::on_data);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
  }
  ~http_post() {
    curl_easy_cleanup(easy_);
    curl_slist_free_all(headers_);
  }
  http_post(const http_post&) = delete;
  http_post& operator=(const http_post&) = delete;

  CURL* handle() const noexcept { return easy_; }
  CURLcode perform() { return curl_easy_perform(easy_); }
  long status() const {
    long code = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &code);
    return code;
  }
  std::string error(CURLcode rc) const {
    return errbuf_[0] != '\0' ? std::string(errbuf_) : std::string(curl_easy_strerror(rc));
  }

 private:
  static size_t on_data(char* p, size_t size, size_t n, void* self) {
    auto* r = static_cast<http_post*>(self);
    return r->sink_(std::string_view(p, size * n)) ? size * n : 0;
  }
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::string body_;
  sink_fn sink_;
  char errbuf_[CURL_ERROR_SIZE];
};

json parse_answer(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw etcd_error(fmt::format("{}: etcd sent malformed JSON", what));
  if (auto e = error_of(j)) throw etcd_error(fmt::format("{}: {}", what, *e));
  return j;
}

etcd_client::range_result parse_range(const json& j) {
  etcd_client::range_result r;
  if (j.contains("header")) r.revision = as_u64(j["header"], "revision");
  if (auto it = j.find("kvs"); it != j.end() && it->is_array()) {
    for (const auto& kv : *it)
      r.kvs.push_back({as_bytes(kv, "key"), as_bytes(kv, "value"), as_u64(kv, "mod_revision")});
  }
  return r;
}

std::string range_body(std::string_view prefix) {
  return json{{"key", b64_encode(prefix)}, {"range_end", b64_encode(prefix_end(prefix))}}.dump();
}

}  // namespace

// --- etcd_url ------------------------------------------------------------------

etcd_url etcd_url::parse(std::string_view url) {
  const std::string whole(url);
  auto bad = [&](const std::string& why) { return config_error(whole, 0, "", "not an etcd URL: " + why); };
  if (!is_etcd(url)) throw bad("expected etcd://host:port/prefix");
  std::string_view rest = url.substr(7);
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  etcd_url u;
  u.prefix = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.prefix.back() != '/') u.prefix.push_back('/');
  const auto colon = authority.rfind(':');
  u.host = std::string(authority.substr(0, colon));
  if (u.host.empty()) throw bad("no host");
  if (u.host.find_first_of("@[]?#") != std::string::npos) throw bad("only host:port (no user, IPv6 or query)");
  if (colon != std::string_view::npos) {
    const auto port = authority.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), u.port);
    if (ec != std::errc() || p != port.data() + port.size() || u.port < 1 || u.port > 65535)
      throw bad(fmt::format("bad port '{}'", port));
  }
  return u;
}

std::string etcd_url::str() const {
  return fmt::format("etcd://{}:{}{}", host, port, prefix);
}

// --- etcd_client -----------------------------------------------------------------

etcd_client::etcd_client(std::string host, int port, std::chrono::milliseconds timeout)
    : base_(fmt::format("http://{}:{}", host, port)), timeout_(timeout) {}

std::string etcd_client::call(std::string_view path, std::string_view json_body) {
  std::string answer;
  http_post req(base_ + std::string(path), std::string(json_body), timeout_, timeout_, [&](std::string_view piece) {
    answer.append(piece);
    return true;
  });
  if (const CURLcode rc = req.perform(); rc != CURLE_OK)
    throw etcd_error(fmt::format("{}{}: {}", base_, path, req.error(rc)));
  // etcd's errors come with a JSON body; anything else without one is a bad gateway.
  if (req.status() != 200) {
    json j = json::parse(answer, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      if (auto e = error_of(j)) throw etcd_error(fmt::format("{}{}: {}", base_, path, *e));
    }
    throw etcd_error(fmt::format("{}{}: HTTP {}", base_, path, req.status()));
  }
  return answer;
}

std::uint64_t etcd_client::put(std::string_view key, std::string_view value) {
  const json j =
      parse_answer(call("/v3/kv/put", json{{"key", b64_encode(key)}, {"value", b64_encode(value)}}.dump()), "put");
  return as_u64(j.value("header", json::object()), "revision");
}

std::uint64_t etcd_client::erase(std::string_view key) {
  const json j = parse_answer(call("/v3/kv/deleterange", json{{"key", b64_encode(key)}}.dump()), "delete");
  return as_u64(j.value("header", json::object()), "revision");
}

std::uint64_t etcd_client::put_all(const std::vector<std::pair<std::string, std::string>>& kvs) {
  json ops = json::array();
  for (const auto& [k, v] : kvs) ops.push_back({{"request_put", {{"key", b64_encode(k)}, {"value", b64_encode(v)}}}});
  const json j = parse_answer(call("/v3/kv/txn", json{{"success", ops}}.dump()), "txn");
  return as_u64(j.value("header", json::object()), "revision");
}

etcd_client::range_result etcd_client::range_prefix(std::string_view prefix) {
  return parse_range(parse_answer(call("/v3/kv/range", range_body(prefix)), "range"));
}

std::uint64_t etcd_client::revision() {
  // A range that counts nothing still carries the store's revision.
  const json j = parse_answer(
      call("/v3/kv/range", json{{"key", b64_encode(std::string_view("\0", 1))}, {"count_only", true}}.dump()), "range");
  return as_u64(j.value("header", json::object()), "revision");
}

void etcd_client::compact(std::uint64_t revision) {
  parse_answer(call("/v3/kv/compaction", json{{"revision", std::to_string(revision)}, {"physical", true}}.dump()),
               "compaction");
}

// --- key and value mapping -----------------------------------------------------------

std::string etcd_key_to_setting(std::string_view prefix, std::string_view key) {
  if (!key.starts_with(prefix)) throw config_error(std::string(key), 0, "", "key is not under the prefix");
  std::string name(key.substr(prefix.size()));
  if (name.empty()) throw config_error(std::string(key), 0, "", "the prefix itself names no setting");
  std::replace(name.begin(), name.end(), '/', '.');
  if (name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos)
    throw config_error(std::string(key), 0, name, "an empty name segment (a doubled, leading or trailing '/')");
  return name;
}

raw_setting etcd_value_to_setting(std::string name, std::string_view bytes, std::string origin) {
  raw_setting s;
  s.key = std::move(name);
  s.origin = std::move(origin);
  json j;
  try {
    j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  } catch (...) {
    j = json(json::value_t::discarded);  // e.g. 1e400: not a JSON scalar we can hold; the schema decides
  }
  using t = json::value_t;
  switch (j.type()) {
    case t::boolean:
      s.val = value(j.get<bool>());
      return s;
    case t::number_integer:
      s.val = value(j.get<std::int64_t>());
      return s;
    case t::number_unsigned:
      if (j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) break;
      s.val = value(static_cast<std::int64_t>(j.get<std::uint64_t>()));
      return s;
    case t::number_float:
      // An integer literal too big for int64 comes back as a double: give it
      // as text, so that the schema names it as an integer out of range.
      if (bytes.find_first_of(".eE") == std::string_view::npos) break;
      s.val = value(j.get<double>());
      return s;
    case t::string:
      s.val = value(j.get<std::string>());
      return s;
    default:  // not JSON, an object, an array or null
      break;
  }
  s.val = value(std::string(bytes));
  s.is_text = true;
  return s;
}

// --- etcd_source ----------------------------------------------------------------------

struct etcd_source::impl {
  etcd_url url;
  options opts;
  std::string name;

  mutable std::mutex mutex;                     // Protects: the fields below up to `thread`.
  std::map<std::string, etcd_client::kv> copy;  // full key -> value at `st.revision`
  bool have_copy = false;
  source_status st;
  counters ctr;
  bool watching = false;
  std::condition_variable wake;  // the backoff wait, woken by stop()

  std::thread thread;
  CURLM* multi = nullptr;             // the watcher's; stop() wakes it
  std::atomic<bool> stopping{false};  // seq_cst: written by stop(), read by the watcher between waits
  std::function<void()> changed;

  impl(std::string_view u, options o) : url(etcd_url::parse(u)), opts(o), name(url.str()) {}

  // Installs a whole range if it is newer than the copy. True if installed.
  // `force`: install even an older revision (etcd's history was rewound).
  bool install(etcd_client::range_result&& r, bool force = false) {
    std::lock_guard g(mutex);
    if (have_copy && r.revision <= st.revision && !(force && r.revision != st.revision)) return false;
    copy.clear();
    for (auto& kv : r.kvs) {
      std::string k = kv.key;
      copy.emplace(std::move(k), std::move(kv));
    }
    have_copy = true;
    st.revision = r.revision;
    ctr.revision = r.revision;
    ++ctr.whole_loads;
    return true;
  }

  std::vector<raw_setting> settings() const {
    std::lock_guard g(mutex);
    std::vector<raw_setting> out;
    out.reserve(copy.size());
    std::map<std::string, std::string_view> seen;  // setting name -> key, to catch two keys naming one setting
    for (const auto& [k, kv] : copy) {
      std::string setting = etcd_key_to_setting(url.prefix, k);
      std::string origin = fmt::format("etcd://{}:{}{}", url.host, url.port, k);
      if (auto [it, fresh] = seen.emplace(setting, k); !fresh)
        throw config_error(origin, 0, setting, fmt::format("also set by the key {}", it->second));
      out.push_back(etcd_value_to_setting(std::move(setting), kv.value, std::move(origin)));
    }
    return out;
  }

  void set_error(source_status::state s, std::string what) {
    std::lock_guard g(mutex);
    st.st = s;
    st.last_error = std::move(what);
  }

  // Runs one transfer in the multi handle until it ends or stop() is called.
  CURLcode transfer(http_post& req) {
    curl_multi_add_handle(multi, req.handle());
    CURLcode result = CURLE_ABORTED_BY_CALLBACK;
    for (;;) {
      int running = 0;
      if (curl_multi_perform(multi, &running) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
      int left = 0;
      bool done = false;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg == CURLMSG_DONE) {
          result = m->data.result;
          done = true;
        }
      }
      if (done || stopping.load()) break;
      // Woken early by data or by stop()'s curl_multi_wakeup; the timeout only bounds a missed wakeup.
      curl_multi_poll(multi, nullptr, 0, 10000, nullptr);
    }
    curl_multi_remove_handle(multi, req.handle());
    return result;
  }

  // A range of the whole prefix from the watcher thread (stoppable).
  etcd_client::range_result range_now() {
    std::string answer;
    http_post req(fmt::format("http://{}:{}/v3/kv/range", url.host, url.port), range_body(url.prefix),
                  opts.connect_timeout, opts.request_timeout, [&](std::string_view piece) {
                    answer.append(piece);
                    return true;
                  });
    const CURLcode rc = transfer(req);
    if (stopping.load()) return {};
    if (rc != CURLE_OK) throw etcd_error(fmt::format("range: {}", req.error(rc)));
    return parse_range(parse_answer(answer, "range"));
  }

  enum class watch_end { stopped, compacted, rewound };

  // Streams one watch from the copy's revision + 1. Returns when stopped,
  // compacted, or when etcd is behind the copy (restored from a backup or
  // replaced by a new cluster: the watch would wait for revisions that will
  // never be ours); throws etcd_error when the stream fails or ends.
  watch_end watch_once(std::uint64_t& backoff_ms) {
    std::uint64_t from = 0;
    {
      std::lock_guard g(mutex);
      from = st.revision + 1;
    }
    const std::string body = json{{"create_request",
                                   {{"key", b64_encode(url.prefix)},
                                    {"range_end", b64_encode(prefix_end(url.prefix))},
                                    {"start_revision", std::to_string(from)}}}}
                                 .dump();
    std::string pending;  // an unfinished line
    std::optional<std::string> failure;
    bool compacted = false, rewound = false;
    auto on_message = [&](const json& m) -> bool {
      if (auto e = error_of(m)) {
        failure = "watch: " + *e;
        return false;
      }
      const json& r = m.contains("result") ? m["result"] : m;
      if (const auto compact = as_u64(r, "compact_revision"); compact > 0) {
        compacted = true;
        return false;
      }
      if (r.value("canceled", false)) {
        failure = "watch canceled by etcd: " + r.value("cancel_reason", std::string("no reason given"));
        return false;
      }
      if (r.value("created", false)) {
        if (r.contains("header") && as_u64(r["header"], "revision") + 1 < from) {
          rewound = true;
          return false;
        }
        std::lock_guard g(mutex);
        st.st = source_status::state::connected;
        backoff_ms = static_cast<std::uint64_t>(opts.backoff_initial.count());
      }
      if (apply_events(r)) changed();
      return true;
    };
    http_post req(fmt::format("http://{}:{}/v3/watch", url.host, url.port), body, opts.connect_timeout,
                  std::chrono::milliseconds(0), [&](std::string_view piece) {
                    pending.append(piece);
                    std::size_t start = 0;
                    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
                      const std::string_view line(pending.data() + start, nl - start);
                      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
                      json m = json::parse(line, nullptr, false);
                      if (m.is_discarded() || !m.is_object()) {
                        failure = "watch: etcd sent malformed JSON";
                        return false;
                      }
                      try {
                        if (!on_message(m)) return false;
                      } catch (const std::exception& e) {
                        failure = fmt::format("watch: {}", e.what());
                        return false;
                      }
                    }
                    pending.erase(0, start);
                    return true;
                  });
    const CURLcode rc = transfer(req);
    if (stopping.load()) return watch_end::stopped;
    if (compacted) return watch_end::compacted;
    if (rewound) return watch_end::rewound;
    if (failure) throw etcd_error(*failure);
    if (rc != CURLE_OK) throw etcd_error(fmt::format("watch: {}", req.error(rc)));
    if (req.status() != 200) throw etcd_error(fmt::format("watch: HTTP {}", req.status()));
    throw etcd_error("watch: etcd closed the stream");
  }

  // Applies a watch response's events, one revision at a time (each under the
  // mutex as one step), skipping revisions the copy already has. True if
  // anything was applied.
  bool apply_events(const json& r) {
    auto it = r.find("events");
    if (it == r.end() || !it->is_array() || it->empty()) return false;
    struct event {
      bool erase;
      etcd_client::kv kv;
    };
    std::vector<event> evs;
    for (const auto& e : *it) {
      const json& kv = e.at("kv");
      evs.push_back({e.value("type", std::string("PUT")) == "DELETE",
                     {as_bytes(kv, "key"), as_bytes(kv, "value"), as_u64(kv, "mod_revision")}});
    }
    // etcd sends events in revision order; keep it so (stable) even if not.
    std::stable_sort(evs.begin(), evs.end(),
                     [](const event& a, const event& b) { return a.kv.mod_revision < b.kv.mod_revision; });
    bool applied = false;
    for (std::size_t i = 0; i < evs.size();) {
      const std::uint64_t rev = evs[i].kv.mod_revision;
      std::size_t j = i;
      while (j < evs.size() && evs[j].kv.mod_revision == rev) ++j;
      std::lock_guard g(mutex);
      if (rev > st.revision) {
        for (std::size_t k = i; k < j; ++k) {
          if (evs[k].erase)
            copy.erase(evs[k].kv.key);
          else
            copy.insert_or_assign(evs[k].kv.key, evs[k].kv);
        }
        st.revision = rev;
        ctr.revision = rev;
        ++ctr.revisions_applied;
        applied = true;
      }
      i = j;
    }
    return applied;
  }

  void backoff_wait(std::uint64_t& backoff_ms) {
    std::unique_lock lock(mutex);
    wake.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping.load(); });
    backoff_ms = std::min<std::uint64_t>(backoff_ms * 2, static_cast<std::uint64_t>(opts.backoff_max.count()));
  }

  void run() {
    std::uint64_t backoff_ms = static_cast<std::uint64_t>(opts.backoff_initial.count());
    bool need_whole = false, force = false;
    while (!stopping.load()) {
      try {
        bool have = false;
        {
          std::lock_guard g(mutex);
          have = have_copy;
        }
        if (!have || need_whole) {
          auto r = range_now();
          if (stopping.load()) break;
          const bool fresh = install(std::move(r), force);
          need_whole = force = false;
          if (fresh) changed();
        }
        const watch_end end = watch_once(backoff_ms);
        if (end == watch_end::stopped) break;
        // Compacted: the revisions since the copy's are gone; load it whole.
        // Rewound: etcd's history is not the copy's; load it whole, older or not.
        std::lock_guard g(mutex);
        ++(end == watch_end::compacted ? ctr.compactions : ctr.rewinds);
        need_whole = true;
        force = end == watch_end::rewound;
      } catch (const std::exception& e) {
        {
          std::lock_guard g(mutex);
          st.st = source_status::state::retrying;
          st.last_error = e.what();
          ++ctr.reconnects;
        }
        backoff_wait(backoff_ms);
      }
    }
  }
};

etcd_source::etcd_source(std::string_view url) : etcd_source(url, options{}) {}
etcd_source::etcd_source(std::string_view url, options o) : impl_(std::make_unique<impl>(url, o)) {}
etcd_source::~etcd_source() {
  stop();
}

std::string etcd_source::name() const {
  return impl_->name;
}
const etcd_url& etcd_source::url() const noexcept {
  return impl_->url;
}

std::vector<raw_setting> etcd_source::load() {
  bool fetch = false;
  {
    std::lock_guard g(impl_->mutex);
    fetch = !impl_->watching || !impl_->have_copy;
  }
  if (fetch) {
    try {
      etcd_client c(impl_->url.host, impl_->url.port, impl_->opts.request_timeout);
      impl_->install(c.range_prefix(impl_->url.prefix));
      std::lock_guard g(impl_->mutex);
      if (!impl_->watching) impl_->st.st = source_status::state::idle;
    } catch (const etcd_error& e) {
      impl_->set_error(impl_->watching ? source_status::state::retrying : source_status::state::failed, e.what());
      throw config_error(impl_->name, 0, "", fmt::format("cannot load: {}", e.what()));
    } catch (const std::bad_alloc&) {
      throw config_error(impl_->name, 0, "", "cannot load: out of memory");
    }
  }
  return impl_->settings();
}

void etcd_source::watch(std::function<void()> changed) {
  stop();
  curl_init_once();
  impl_->multi = curl_multi_init();
  if (impl_->multi == nullptr) throw config_error(impl_->name, 0, "", "cannot watch: curl_multi_init failed");
  impl_->changed = changed ? std::move(changed) : [] {};
  impl_->stopping.store(false);
  {
    std::lock_guard g(impl_->mutex);
    impl_->watching = true;
    impl_->st.st = source_status::state::retrying;  // until the watch is created
  }
  impl_->thread = std::thread([this] { impl_->run(); });
}

void etcd_source::stop() {
  if (!impl_->thread.joinable()) return;
  {
    std::lock_guard g(impl_->mutex);
    impl_->stopping.store(true);
  }
  impl_->wake.notify_all();
  curl_multi_wakeup(impl_->multi);
  impl_->thread.join();
  curl_multi_cleanup(impl_->multi);
  impl_->multi = nullptr;
  std::lock_guard g(impl_->mutex);
  impl_->watching = false;
  impl_->st.st = source_status::state::idle;
}

source_status etcd_source::status() const {
  std::lock_guard g(impl_->mutex);
  return impl_->st;
}

etcd_source::counters etcd_source::stats() const {
  std::lock_guard g(impl_->mutex);
  return impl_->ctr;
}

}  // namespace polymap::config

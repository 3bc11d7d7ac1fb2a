// config_store over an etcd_source, against a real etcd (etcd_fixture.hpp):
// typed settings from etcd, transactions published whole to snapshot
// readers, invalid values rejected with the last good config kept, and the
// faults (SIGKILL and restart, SIGSTOP/SIGCONT) seen through subscribers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "etcd_fixture.hpp"
#include "polymap/config/config_store.hpp"
#include "polymap/config/etcd_source.hpp"
#include "sanitizer_scale.hpp"

namespace {

using namespace std::chrono_literals;
using polymap::config::config_error;
using polymap::config::config_key;
using polymap::config::config_store;
using polymap::config::etcd_source;
using polymap::config::in_range;
using polymap::config::schema;
using polymap::config::source_status;
using polymap::test::etcd_server;
using polymap::test::eventually;

constexpr int txn_rounds = polymap::testing::under_sanitizer ? 1000 : 3000;

etcd_source::options quick_retry() {
  etcd_source::options o;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  return o;
}

// A store over one etcd source; `src` is left pointing at the source (owned
// by the store) for its counters.
std::unique_ptr<config_store> etcd_store(const etcd_server& etcd, schema s, etcd_source** src = nullptr) {
  auto source = std::make_unique<etcd_source>(etcd.url("/app/"), quick_retry());
  if (src != nullptr) *src = source.get();
  std::vector<std::unique_ptr<polymap::config::config_source>> sources;
  sources.push_back(std::move(source));
  return std::make_unique<config_store>(std::move(sources), std::move(s));
}

const config_key<std::int64_t> timeout{"http.timeout_ms", 100, in_range(1, 60000)};
const config_key<std::string> level{"log.level", "info"};

TEST(EtcdStore, TypedSettingsFromEtcdAndTheirRevision) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  c.put("/app/http/timeout_ms", "250");
  const auto rev = c.put("/app/log/level", "debug");  // text, parsed as the schema's string
  // Declared before the store: its watcher thread may call the subscriber
  // until the store is destroyed, and an ASSERT may return early.
  std::mutex m;
  std::vector<std::string> changed;
  etcd_source* src = nullptr;
  auto store = etcd_store(etcd, schema(timeout, level), &src);
  EXPECT_EQ(store->get(timeout), std::int64_t{250});
  EXPECT_EQ(store->get(level), std::string("debug"));
  auto st = store->stats();
  ASSERT_EQ(st.sources.size(), 1u);
  EXPECT_EQ(st.sources[0].name, etcd.url("/app/"));
  EXPECT_EQ(st.sources[0].revision, rev);
  EXPECT_TRUE(st.sources[0].ok);
  EXPECT_TRUE(eventually([&] { return store->stats().sources[0].state == "connected"; }));

  store->subscribe_all([&](const polymap::config::change& ch) {
    std::lock_guard g(m);
    changed.push_back(ch.key);
  });
  c.put("/app/http/timeout_ms", "\"300\"");  // a JSON string is a string: wrong type, rejected
  ASSERT_TRUE(eventually([&] { return store->reloads_rejected() == 1; }));
  EXPECT_EQ(store->get(timeout), std::int64_t{250});
  c.put("/app/http/timeout_ms", "300");
  ASSERT_TRUE(eventually([&] { return store->get(timeout) == std::int64_t{300}; }));
  const auto last = c.erase("/app/log/level");  // back to the default
  ASSERT_TRUE(eventually([&] { return store->get(level) == std::string("info"); }));
  EXPECT_TRUE(eventually([&] { return store->stats().sources[0].revision == last; }));
  // A reader sees the new snapshot before its subscribers run (they are
  // told after the publish), so wait for the second change, then stop the
  // source so that no callback runs while the list is read.
  EXPECT_TRUE(eventually([&] {
    std::lock_guard g(m);
    return changed.size() >= 2;
  }));
  store.reset();
  std::lock_guard g(m);
  EXPECT_EQ(changed, (std::vector<std::string>{"http.timeout_ms", "log.level"}));
}

TEST(EtcdStore, InvalidValueIsRejectedAndTheOldOneStays) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  c.put("/app/http/timeout_ms", "250");
  std::mutex m;  // before the store: its watcher calls on_reload until it is destroyed
  std::vector<polymap::config::reload_event> events;
  auto store = etcd_store(etcd, schema(timeout, level));
  store->on_reload([&](const polymap::config::reload_event& ev) {
    std::lock_guard g(m);
    events.push_back(ev);
  });
  const auto version = store->version();
  for (const char* bad : {"0", "abc", "1e400", "99999999999999999999"}) {
    const auto rejected = store->reloads_rejected();
    c.put("/app/http/timeout_ms", bad);
    ASSERT_TRUE(eventually([&] { return store->reloads_rejected() > rejected; })) << bad;
    EXPECT_EQ(store->get(timeout), std::int64_t{250}) << bad;
    EXPECT_EQ(store->version(), version) << bad;
    const auto ev = store->last_event();
    EXPECT_FALSE(ev.accepted);
    EXPECT_NE(ev.error.find("http.timeout_ms"), std::string::npos) << ev.error;
  }
  c.put("/app/http/timeout_ms", "250");  // good again
  ASSERT_TRUE(eventually([&] { return store->last_event().accepted; }));
  c.put("/app/unknown/key", "1");  // not in the schema: rejected too
  ASSERT_TRUE(eventually([&] { return !store->last_event().accepted; }));
  EXPECT_NE(store->last_event().error.find("unknown.key"), std::string::npos) << store->last_event().error;
  c.erase("/app/unknown/key");
  c.put("/app/http/timeout_ms", "500");
  ASSERT_TRUE(eventually([&] { return store->get(timeout) == std::int64_t{500}; }));
  EXPECT_FALSE(store->stats().sources.empty());
  std::lock_guard g(m);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().accepted);
}

TEST(EtcdStore, ReadersNeverSeeATransactionHalfApplied) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  c.put_all({{"/app/a", "50"}, {"/app/b", "50"}});
  const config_key<std::int64_t> a{"a", 0}, b{"b", 0};
  auto store = etcd_store(etcd, schema(a, b));
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> broken{0}, checks{0};
  std::vector<std::thread> readers;
  std::vector<std::set<std::uint64_t>> versions(2);
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      while (!done.load()) {
        auto snap = store->snapshot();
        const auto va = snap.get(a), vb = snap.get(b);
        if (!va || !vb || *va + *vb != 100) broken.fetch_add(1);
        versions[t].insert(snap.version());
        checks.fetch_add(1);
      }
    });
  }
  std::uint64_t last = 0;
  for (int i = 0; i < txn_rounds; ++i)
    last = c.put_all({{"/app/a", std::to_string(i % 101)}, {"/app/b", std::to_string(100 - i % 101)}});
  const bool converged = eventually([&] { return store->stats().sources[0].revision == last; });
  done = true;
  for (auto& r : readers) r.join();
  ASSERT_TRUE(converged);
  EXPECT_EQ(broken.load(), 0u) << "a reader saw a + b != 100";
  EXPECT_EQ(store->get(a), std::int64_t{(txn_rounds - 1) % 101});
  // The readers saw the config move, not one frozen version.
  EXPECT_GT(versions[0].size() + versions[1].size(), 2u);
  EXPECT_GT(checks.load(), 0u);
}

// A writer puts /app/counter = 1..n (retrying a failed put with the same
// value); a subscriber records every value the store publishes. `fault` runs
// once the store has seen `at`.
template <class Fault>
void counter_through_fault(etcd_server& etcd, int n, int at, Fault fault) {
  const config_key<std::int64_t> counter{"counter", 0};
  auto c = etcd.client();
  c.put("/app/counter", "0");
  std::mutex m;  // before the store: its watcher calls the subscriber until it is destroyed
  std::vector<std::int64_t> seen;
  std::vector<std::uint64_t> versions;
  etcd_source* src = nullptr;
  auto store = etcd_store(etcd, schema(counter), &src);
  // The store starts its watch before its first load, so the watcher may
  // range the prefix too; once it is connected that range is done, and
  // nothing was written since, so `start` and whole_loads below are exact.
  // (A watcher held up past the writer's first puts installed a newer
  // copy: whole_loads 2 and revisions_applied short by the puts it
  // covered; one failure under ctest -j2, session 18.)
  ASSERT_TRUE(eventually([&] { return src->status().st == source_status::state::connected; }));
  const auto start = src->status().revision;
  store->subscribe("counter", [&](const polymap::config::change& ch) {
    std::lock_guard g(m);
    seen.push_back(ch.new_value ? *ch.new_value->get_if<std::int64_t>() : -1);
    versions.push_back(ch.version);
  });
  polymap::test::counter_writer writer(etcd.port(), "/app/counter", n);
  EXPECT_TRUE(eventually([&] { return store->get(counter).value_or(0) >= at; })) << "the watch saw nothing";
  fault();
  ASSERT_TRUE(writer.join()) << "etcd did not come back";
  const auto latest = c.revision();
  EXPECT_TRUE(eventually([&] { return store->stats().sources[0].revision == latest; }))
      << "store's source at " << store->stats().sources[0].revision << ", etcd at " << latest;
  EXPECT_TRUE(eventually([&] { return store->get(counter) == std::int64_t{n}; }));
  EXPECT_EQ(src->status().st, source_status::state::connected);
  // Every revision since the load is one put of the counter: each applied
  // once (a resumed watch that replayed or skipped revisions would miscount).
  EXPECT_EQ(src->stats().revisions_applied, latest - start);
  EXPECT_EQ(src->stats().whole_loads, 1u);
  store.reset();  // stops the source: no more callbacks
  std::lock_guard g(m);
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(std::adjacent_find(seen.begin(), seen.end(), std::greater_equal<>()) == seen.end())
      << "the counter was published out of order or twice";
  EXPECT_TRUE(std::adjacent_find(versions.begin(), versions.end(), std::greater_equal<>()) == versions.end());
  EXPECT_EQ(seen.back(), n);
}

TEST(EtcdStoreFaults, KilledAndRestartedOnTheSameDataMidWatch) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  counter_through_fault(etcd, 300, 50, [&] {
    etcd.kill9();
    etcd.start();
  });
}

TEST(EtcdStoreFaults, PausedAndResumedMidWatch) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  counter_through_fault(etcd, 300, 50, [&] {
    etcd.pause();
    std::this_thread::sleep_for(500ms);  // the fault's length, not a wait for a result
    etcd.resume();
  });
}

TEST(EtcdStore, UnreachableEtcdAtStartIsAConfigError) {
  const int port = polymap::test::free_port();  // nothing listens there
  std::vector<std::unique_ptr<polymap::config::config_source>> sources;
  sources.push_back(std::make_unique<etcd_source>(fmt::format("etcd://127.0.0.1:{}/app/", port)));
  try {
    config_store store(std::move(sources), schema(timeout, level));
    FAIL() << "the store started without its etcd";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("etcd://127.0.0.1:{}/app/", port)), std::string::npos) << e.what();
  }
}

// The CLI against the same etcd: check (text and --json), and a bounded
// watch that prints a change made while it runs. `on_line` sees each line
// of output as it comes.
std::string run_cli(const std::string& args, int* rc = nullptr,
                    const std::function<void(const std::string&)>& on_line = {}) {
#ifdef POLYMAP_CLI
  std::string out;
  FILE* p = ::popen((std::string(POLYMAP_CLI) + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return "popen failed";
  char line[4096];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    out += line;
    if (on_line) on_line(line);
  }
  const int status = ::pclose(p);
  if (rc != nullptr) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
#else
  (void)args;
  (void)rc;
  (void)on_line;
  return {};
#endif
}

TEST(EtcdCli, CheckAndWatchAnEtcdPrefix) {
  ETCD_OR_SKIP();
#ifndef POLYMAP_CLI
  GTEST_SKIP() << "the polymap CLI is not built (POLYMAP_BUILD_TOOLS=OFF)";
#endif
  etcd_server etcd;
  auto c = etcd.client();
  c.put("/app/http/timeout_ms", "250");
  const auto rev = c.put("/app/log/level", "debug");
  int rc = -1;
  auto out = run_cli(fmt::format("config check {}", etcd.url("/app/")), &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(fmt::format("at etcd revision {}", rev)), std::string::npos) << out;
  EXPECT_NE(out.find("http.timeout_ms = 250 (int64, " + etcd.url("/app/http/timeout_ms") + ")"), std::string::npos)
      << out;
  out = run_cli(fmt::format("config check {} --json", etcd.url("/app/")), &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"ok\": true"), std::string::npos) << out;
  EXPECT_NE(out.find("\"value\": \"debug\""), std::string::npos) << out;

  c.put("/app/http/timeout_ms", "0");  // out of the demo schema's range
  out = run_cli(fmt::format("config check {} --json", etcd.url("/app/")), &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("\"ok\": false"), std::string::npos) << out;
  EXPECT_NE(out.find("http.timeout_ms"), std::string::npos) << out;
  c.put("/app/http/timeout_ms", "250");

  // watch: a put made once it has printed its first line is printed.
  std::string watched;
  std::atomic<bool> started{false};
  std::thread watcher([&] {
    watched = run_cli(fmt::format("config watch {} --seconds 5", etcd.url("/app/")), &rc, [&](const std::string& line) {
      if (line.starts_with("watching")) started = true;
    });
  });
  const bool up = eventually([&] { return started.load(); }, 5s);
  c.put("/app/http/timeout_ms", "750");
  watcher.join();
  ASSERT_TRUE(up) << watched;
  EXPECT_EQ(rc, 0) << watched;
  EXPECT_NE(watched.find("http.timeout_ms: 250 -> 750"), std::string::npos) << watched;

  out = run_cli("config check etcd://127.0.0.1:1/app/", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("etcd://127.0.0.1:1/app/"), std::string::npos) << out;
}

}  // namespace

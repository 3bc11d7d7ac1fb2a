// etcd_source: URL, key and value mapping (no etcd), then the source against
// a real etcd (etcd_fixture.hpp): load, watch, stop, and faults (SIGKILL and
// restart, SIGSTOP/SIGCONT, compaction while disconnected).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "etcd_fixture.hpp"
#include "polymap/config/config_store.hpp"
#include "polymap/config/etcd_source.hpp"

namespace {

using namespace std::chrono_literals;
using polymap::value;
using polymap::config::config_error;
using polymap::config::etcd_source;
using polymap::config::etcd_url;
using polymap::config::raw_setting;
using polymap::config::source_status;
using polymap::test::etcd_server;
using polymap::test::eventually;

const raw_setting* find(const std::vector<raw_setting>& s, const std::string& key) {
  for (const auto& r : s)
    if (r.key == key) return &r;
  return nullptr;
}

std::optional<std::int64_t> int_of(etcd_source& src, const std::string& key) {
  auto s = src.load();
  auto* r = find(s, key);
  if (r == nullptr || r->val.which() != value::kind::int64) return std::nullopt;
  return *r->val.get_if<std::int64_t>();
}

etcd_source::options quick_retry() {
  etcd_source::options o;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  return o;
}

// --- no etcd needed -------------------------------------------------------------

TEST(EtcdUrl, ParsesHostPortAndPrefix) {
  auto u = etcd_url::parse("etcd://127.0.0.1:2379/app/");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 2379);
  EXPECT_EQ(u.prefix, "/app/");
  EXPECT_EQ(u.str(), "etcd://127.0.0.1:2379/app/");
  EXPECT_EQ(etcd_url::parse("etcd://localhost/app").prefix, "/app/");  // a trailing '/' is added
  EXPECT_EQ(etcd_url::parse("etcd://localhost").port, 2379);
  EXPECT_EQ(etcd_url::parse("etcd://localhost").prefix, "/");
}

TEST(EtcdUrl, RejectsMalformedUrls) {
  for (const char* bad : {"http://127.0.0.1:2379/app/", "etcd://", "etcd://:2379/a/", "etcd://h:0/a/",
                          "etcd://h:99999/a/", "etcd://h:12x/a/", "etcd://user@h:1/a/"}) {
    EXPECT_THROW(etcd_url::parse(bad), config_error) << bad;
  }
  try {
    etcd_url::parse("etcd://h:port/a/");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad port"), std::string::npos) << e.what();
  }
}

TEST(EtcdMapping, KeysLoseThePrefixAndSlashesBecomeDots) {
  using polymap::config::etcd_key_to_setting;
  EXPECT_EQ(etcd_key_to_setting("/app/", "/app/http/timeout_ms"), "http.timeout_ms");
  EXPECT_EQ(etcd_key_to_setting("/app/", "/app/name"), "name");
  EXPECT_THROW(etcd_key_to_setting("/app/", "/app/"), config_error);
  EXPECT_THROW(etcd_key_to_setting("/app/", "/app/a//b"), config_error);
  EXPECT_THROW(etcd_key_to_setting("/app/", "/app/a/"), config_error);
  EXPECT_THROW(etcd_key_to_setting("/app/", "/other/a"), config_error);
}

TEST(EtcdMapping, JsonScalarsAreTypedAndTheRestIsText) {
  using polymap::config::etcd_value_to_setting;
  auto typed = [](std::string_view bytes) { return etcd_value_to_setting("k", bytes, "o"); };
  EXPECT_EQ(typed("250").val, value(std::int64_t{250}));
  EXPECT_FALSE(typed("250").is_text);
  EXPECT_EQ(typed("2.5").val, value(2.5));
  EXPECT_EQ(typed("true").val, value(true));
  EXPECT_EQ(typed("\"1.2\"").val, value(std::string("1.2")));
  EXPECT_FALSE(typed("\"1.2\"").is_text);
  for (std::string_view text : {"debug", "250ms", "{\"a\": 1}", "[1]", "null", "1e400", "18446744073709551616", ""}) {
    auto s = typed(text);
    EXPECT_TRUE(s.is_text) << text;
    EXPECT_EQ(s.val, value(std::string(text))) << text;
  }
}

TEST(EtcdSource, UnreachableEtcdIsAConfigErrorNamingTheSource) {
  const int port = polymap::test::free_port();  // nothing listens there
  etcd_source::options o;
  o.request_timeout = 2s;
  etcd_source src(fmt::format("etcd://127.0.0.1:{}/app/", port), o);
  try {
    src.load();
    FAIL() << "load() did not throw";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("etcd://127.0.0.1:{}/app/", port)), std::string::npos) << e.what();
  }
  EXPECT_EQ(src.status().st, source_status::state::failed);
  EXPECT_FALSE(src.status().last_error.empty());
}

// --- a real etcd ------------------------------------------------------------------

TEST(EtcdSource, LoadsThePrefixAtOneRevision) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  c.put("/app/http/timeout_ms", "250");
  c.put("/app/log/level", "debug");
  c.put("/app/name", "\"svc\"");
  c.put("/apple", "1");  // shares the text prefix "/app" but is not under "/app/"
  const auto last = c.put("/other/x", "1");
  etcd_source src(etcd.url("/app/"));
  EXPECT_EQ(src.name(), etcd.url("/app/"));
  auto s = src.load();
  ASSERT_EQ(s.size(), 3u);
  ASSERT_NE(find(s, "http.timeout_ms"), nullptr);
  EXPECT_EQ(find(s, "http.timeout_ms")->val, value(std::int64_t{250}));
  EXPECT_EQ(find(s, "http.timeout_ms")->origin, etcd.url("/app/http/timeout_ms"));
  ASSERT_NE(find(s, "log.level"), nullptr);
  EXPECT_TRUE(find(s, "log.level")->is_text);
  EXPECT_EQ(find(s, "name")->val, value(std::string("svc")));
  EXPECT_EQ(src.status().revision, last);  // the range's header revision
}

TEST(EtcdSource, WatchSeesPutsAndDeletesInRevisionOrder) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  c.put("/app/a", "1");
  std::mutex m;                          // before the source: its watcher calls changed() until it stops
  std::vector<std::uint64_t> revisions;  // the source's revision at each changed()
  etcd_source src(etcd.url("/app/"));
  src.load();
  src.watch([&] {
    std::lock_guard g(m);
    revisions.push_back(src.status().revision);
  });
  ASSERT_TRUE(eventually([&] { return src.status().st == source_status::state::connected; }));
  c.put("/app/b", "x");
  const auto r = c.erase("/app/a");
  ASSERT_TRUE(eventually([&] { return src.status().revision == r; }));
  auto s = src.load();
  EXPECT_EQ(find(s, "a"), nullptr);
  ASSERT_NE(find(s, "b"), nullptr);
  EXPECT_EQ(find(s, "b")->val, value(std::string("x")));
  src.stop();
  std::lock_guard g(m);
  ASSERT_FALSE(revisions.empty());
  EXPECT_TRUE(std::is_sorted(revisions.begin(), revisions.end()));
  EXPECT_EQ(revisions.back(), r);
  EXPECT_EQ(src.stats().revisions_applied, 2u);
}

TEST(EtcdSource, ATransactionArrivesAsOneRevision) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  c.put_all({{"/app/a", "50"}, {"/app/b", "50"}});
  etcd_source src(etcd.url("/app/"));
  src.load();
  std::atomic<bool> broken{false};
  std::atomic<int> calls{0};
  src.watch([&] {
    // load() from the callback (as config_store does): one revision's state.
    auto s = src.load();
    const auto* a = find(s, "a");
    const auto* b = find(s, "b");
    if (a == nullptr || b == nullptr || *a->val.get_if<std::int64_t>() + *b->val.get_if<std::int64_t>() != 100)
      broken = true;
    calls.fetch_add(1);
  });
  std::uint64_t last = 0;
  for (int i = 0; i < 200; ++i) last = c.put_all({{"/app/a", std::to_string(i)}, {"/app/b", std::to_string(100 - i)}});
  ASSERT_TRUE(eventually([&] { return src.status().revision == last; }));
  src.stop();
  EXPECT_FALSE(broken.load());
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(int_of(src, "a"), 199);
}

TEST(EtcdSource, StopIsPromptWhileWatchingAndWhileRetrying) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  etcd_source::options o;
  o.backoff_initial = 2000ms;  // a retry wait far longer than the bound below
  o.backoff_max = 2000ms;
  etcd_source src(etcd.url("/app/"), o);
  src.watch({});
  ASSERT_TRUE(eventually([&] { return src.status().st == source_status::state::connected; }));
  auto t0 = std::chrono::steady_clock::now();
  src.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms) << "stop() waited for the idle watch stream";
  EXPECT_EQ(src.status().st, source_status::state::idle);
  etcd.kill9();
  src.watch({});  // watch() again after stop(): etcd is gone, so it retries
  ASSERT_TRUE(
      eventually([&] { return src.status().st == source_status::state::retrying && src.stats().reconnects > 0; }));
  t0 = std::chrono::steady_clock::now();
  src.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms) << "stop() waited out the backoff";
}

// A writer puts /app/counter = 1..n (retrying a put that failed); the
// source's changed() records each distinct value it sees. `fault` runs once
// the source has seen `at`.
template <class Fault>
void counter_through_fault(etcd_server& etcd, int n, int at, Fault fault) {
  std::mutex m;  // before the source: its watcher calls changed() until it stops
  std::vector<std::int64_t> seen;
  std::vector<std::uint64_t> revisions;
  etcd_source src(etcd.url("/app/"), quick_retry());
  src.load();
  const auto start = src.status().revision;
  src.watch([&] {
    auto v = int_of(src, "counter");
    const auto rev = src.status().revision;
    std::lock_guard g(m);
    revisions.push_back(rev);
    if (v && (seen.empty() || seen.back() != *v)) seen.push_back(*v);
  });
  polymap::test::counter_writer writer(etcd.port(), "/app/counter", n);
  EXPECT_TRUE(eventually([&] { return int_of(src, "counter").value_or(0) >= at; })) << "the watch saw nothing";
  fault();
  ASSERT_TRUE(writer.join()) << "etcd did not come back";
  const auto latest = etcd.client().revision();
  EXPECT_TRUE(eventually([&] { return src.status().revision == latest; }))
      << "source at " << src.status().revision << ", etcd at " << latest;
  EXPECT_EQ(int_of(src, "counter"), n);
  EXPECT_EQ(src.status().st, source_status::state::connected);
  // Every revision since the load is one put of the counter: each applied
  // exactly once (a resumed watch that replayed or skipped would miscount).
  EXPECT_EQ(src.stats().revisions_applied, latest - start);
  EXPECT_EQ(src.stats().whole_loads, 1u);
  src.stop();
  std::lock_guard g(m);
  EXPECT_TRUE(std::is_sorted(revisions.begin(), revisions.end())) << "a revision went backwards";
  EXPECT_TRUE(std::adjacent_find(seen.begin(), seen.end(), std::greater_equal<>()) == seen.end())
      << "the counter was seen out of order or twice";
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), n);
}

TEST(EtcdSourceFaults, KilledAndRestartedOnTheSameDataMidWatch) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  counter_through_fault(etcd, 300, 50, [&] {
    etcd.kill9();
    etcd.start();
  });
}

TEST(EtcdSourceFaults, PausedAndResumedMidWatch) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  counter_through_fault(etcd, 300, 50, [&] {
    etcd.pause();
    std::this_thread::sleep_for(500ms);  // the fault's length, not a wait for a result
    etcd.resume();
  });
}

TEST(EtcdSourceFaults, CompactionWhileDisconnectedReloadsThePrefixWhole) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  c.put("/app/a", "1");
  c.put("/app/gone", "1");
  etcd_source src(etcd.url("/app/"), quick_retry());
  src.load();
  src.watch({});
  ASSERT_TRUE(eventually([&] { return src.status().st == source_status::state::connected; }));
  const auto whole_before = src.stats().whole_loads;
  // etcd goes away; while the source retries its port, the same etcd (same
  // data) runs on another port, where the prefix changes and is compacted.
  etcd.kill9();
  const int side_port = polymap::test::free_port();
  etcd.start(side_port);
  polymap::config::etcd_client side("127.0.0.1", side_port);
  side.put("/app/a", "2");
  side.erase("/app/gone");
  side.put("/app/b", "3");
  side.compact(side.put("/app/c", "4"));
  etcd.kill9();
  etcd.start();  // back on the source's port
  const auto latest = etcd.client().revision();
  ASSERT_TRUE(eventually([&] { return src.status().revision == latest; }));
  auto s = src.load();
  EXPECT_EQ(find(s, "gone"), nullptr) << "a key deleted in compacted history survived";
  EXPECT_EQ(int_of(src, "a"), 2);
  EXPECT_EQ(int_of(src, "b"), 3);
  EXPECT_EQ(int_of(src, "c"), 4);
  EXPECT_GE(src.stats().compactions, 1u);
  EXPECT_EQ(src.stats().whole_loads, whole_before + src.stats().compactions);
  EXPECT_GT(src.stats().reconnects, 0u);
}

TEST(EtcdSourceFaults, AnEtcdBehindTheCopyIsLoadedWhole) {
  ETCD_OR_SKIP();
  etcd_server etcd;
  auto c = etcd.client();
  for (int i = 0; i < 10; ++i) c.put("/app/old", std::to_string(i));
  etcd_source src(etcd.url("/app/"), quick_retry());
  src.load();
  src.watch({});
  ASSERT_TRUE(eventually([&] { return src.status().st == source_status::state::connected; }));
  const auto before = src.status().revision;
  etcd.wipe();  // a new, empty cluster on the same address: its revisions start again at 1
  etcd.start();
  const auto r = c.put("/app/x", "1");
  ASSERT_LT(r, before);
  ASSERT_TRUE(eventually([&] { return src.status().revision == r; }));
  auto s = src.load();
  EXPECT_EQ(find(s, "old"), nullptr);
  EXPECT_EQ(int_of(src, "x"), 1);
  EXPECT_GE(src.stats().rewinds, 1u);
}

}  // namespace

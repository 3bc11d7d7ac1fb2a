// config_store over sources: only complete files are published (a slow
// two-chunk writer, a busy neighbour, a file rewritten non-stop), real
// deployments are followed (the exact Kubernetes ConfigMap `..data` swap, a
// symlinked file or directory re-pointed, a directory replaced by mv, a file
// deleted and recreated, a FIFO renamed over the file), layered sources
// (file, conf.d, environment) with their precedence and origins, and the
// reload counters in the Prometheus format. Every wait is on a reload event
// with a generous timeout.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "config_test_util.hpp"
#include "polymap/config/config_store.hpp"
#include "polymap/config/sources.hpp"
#include "polymap/metrics.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace polymap::config;
using namespace config_test;
using polymap::value;

const config_key<std::int64_t> key_a{"a", -1};
const config_key<std::int64_t> key_b{"b", -1};

// A TOML file whose two keys must be equal: a torn file (only the first
// chunk written) still parses, with b at its default -1, so a torn publish
// is visible.
std::string pair_text(int v) {
  return fmt::format("a = {}\n# {}\nb = {}\n", v, std::string(64, '-'), v);
}

config_store::options timing(std::chrono::milliseconds settle, std::chrono::milliseconds max_delay) {
  config_store::options o;
  o.settle = settle;
  o.max_delay = max_delay;
  return o;
}

// Records (a, b) as published by every accepted reload: read in the
// on_reload callback, which runs right after the publish it reports.
struct pair_log {
  std::mutex m;  // Protects: pairs.
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  void attach(config_store& s) {
    s.on_reload([this, &s](const reload_event& e) {
      if (!e.accepted) return;
      auto snap = s.snapshot();
      std::lock_guard g(m);
      pairs.emplace_back(snap.get<std::int64_t>("a").value_or(-2), snap.get<std::int64_t>("b").value_or(-2));
    });
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> torn() {
    std::lock_guard g(m);
    std::vector<std::pair<std::int64_t, std::int64_t>> out;
    for (auto& p : pairs)
      if (p.first != p.second) out.push_back(p);
    return out;
  }
};

bool published(reload_log& log, config_store& s, const config_key<std::int64_t>& k, std::int64_t v) {
  return log.wait([&](const auto&) { return s.get(k) == v; });
}

// A store on `file` (first written with `text` unless it is empty) with a
// reload log attached; the log is declared first, as the store's threads
// call it until the store is gone.
struct watched {
  reload_log log;
  config_store store;
  watched(const fs::path& file, const std::string& text, schema s, config_store::options o = {})
      : store((text.empty() ? void() : write_in_place(file, text), file), std::move(s), o) {
    log.attach(store);
  }
};

// --- only complete files are published ---------------------------------------------

// A writer that saves in two chunks with a pause longer than the settle time
// between them. Phase 1: rounds back to back (the next round truncates the
// file 5 ms after the last one closed it), with a short max_delay so the cap
// is hit mid-stream; phase 2: a round at a time, waiting for its publish.
// No published version may be torn. (The old watcher reloaded 20 ms after a
// close, in the middle of the next round's pause: a torn publish every round.)
TEST(ConfigComplete, SlowTwoChunkWriterIsNeverPublishedTorn) {
  temp_dir dir;
  const auto file = dir / "pair.toml";
  pair_log pairs;
  watched w(file, pair_text(0), schema(key_a, key_b), timing(20ms, 150ms));
  auto& store = w.store;
  auto& log = w.log;
  pairs.attach(store);
  auto round = [&](int v) {
    std::ofstream f(file, std::ios::trunc);
    const std::string text = pair_text(v);
    const auto half = text.find('#');
    f << text.substr(0, half);
    f.flush();                          // the first chunk is in the file now
    std::this_thread::sleep_for(60ms);  // the writer's pause (not a synchronisation)
    f << text.substr(half);
    f.close();
  };
  for (int v = 1; v <= 12; ++v) {
    round(v);
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(published(log, store, key_b, 12)) << "the last round was not published";
  for (int v = 13; v <= 16; ++v) {
    round(v);
    ASSERT_TRUE(published(log, store, key_b, v)) << "round " << v;
  }
  EXPECT_EQ(store.get(key_a), std::int64_t{16});
  const auto torn = pairs.torn();
  EXPECT_TRUE(torn.empty()) << torn.size() << " torn publish(es), first a=" << torn.front().first
                            << " b=" << torn.front().second;
}

// A neighbour file in the same directory rewritten every 5 ms must not hold
// back the reload of the watched file: it is published while the neighbour
// keeps writing (the old watcher waited for the whole directory to be quiet).
// The settle time (300 ms) is long next to the neighbour's period, so only a
// watcher that ignores the neighbour publishes while it runs.
TEST(ConfigComplete, BusyNeighbourDoesNotDelayTheReload) {
  temp_dir dir;
  const auto file = dir / "app.toml";
  watched w(file, pair_text(1), schema(key_a, key_b), timing(300ms, 10s));
  auto& store = w.store;
  auto& log = w.log;
  std::atomic<bool> stop{false};
  std::atomic<bool> neighbour_gave_up{false};
  std::thread neighbour([&] {
    const auto end = std::chrono::steady_clock::now() + 30s;
    for (int i = 0; !stop.load(); ++i) {
      if (std::chrono::steady_clock::now() > end) {
        neighbour_gave_up.store(true);
        return;
      }
      write_in_place(dir / "neighbour.toml", fmt::format("n = {}\n", i));
      std::this_thread::sleep_for(5ms);
    }
  });
  replace_by_rename(file, pair_text(2));
  const bool seen = published(log, store, key_a, 2);
  const bool neighbour_was_running = !neighbour_gave_up.load();
  stop.store(true);
  neighbour.join();
  EXPECT_TRUE(seen);
  EXPECT_TRUE(neighbour_was_running) << "published only after the neighbour stopped writing";
  EXPECT_EQ(store.get(key_b), std::int64_t{2});
}

// The watched file itself rewritten (completely, in place) every 5 ms, for
// ever: quiet never comes, so only the cap gets a reload out, and it must,
// while the writer goes on, with a complete file. (Settle 300 ms, cap
// 600 ms: a writer pausing 300 ms by accident is unlikely to rescue a
// watcher without a cap.)
TEST(ConfigComplete, FileRewrittenNonStopIsPublishedWithinTheCap) {
  temp_dir dir;
  const auto file = dir / "hot.toml";
  pair_log pairs;
  watched w(file, pair_text(0), schema(key_a, key_b), timing(300ms, 600ms));
  auto& store = w.store;
  auto& log = w.log;
  pairs.attach(store);
  std::atomic<bool> stop{false};
  std::atomic<bool> writer_gave_up{false};
  std::thread writer([&] {
    const auto end = std::chrono::steady_clock::now() + 30s;
    for (int i = 1; !stop.load(); ++i) {
      if (std::chrono::steady_clock::now() > end) {
        writer_gave_up.store(true);
        return;
      }
      write_in_place(file, pair_text(i));
      std::this_thread::sleep_for(5ms);
    }
  });
  const bool seen = log.wait([&](const auto&) { return store.get(key_a).value_or(0) > 0; });
  const bool writer_was_running = !writer_gave_up.load();
  stop.store(true);
  writer.join();
  EXPECT_TRUE(seen);
  EXPECT_TRUE(writer_was_running) << "published only after the writer stopped";
  EXPECT_TRUE(pairs.torn().empty());
}

// --- real deployments ----------------------------------------------------------------

// The layout and the update sequence of a Kubernetes ConfigMap volume
// (kubelet's AtomicWriter): files live in a timestamped directory, `..data`
// is a symlink to it, app.json is a symlink to ..data/app.json; an update
// writes a new timestamped directory, points a `..data_tmp` symlink at it,
// renames ..data_tmp over ..data, and removes the old directory.
class configmap {
 public:
  explicit configmap(fs::path mount) : mount_(std::move(mount)) {}
  void update(const std::string& app_json) {
    const std::string ts = fmt::format("..2026_12_03_10_00_{:02}.{:03}", serial_, 100 + serial_);
    ++serial_;
    fs::create_directory(mount_ / ts);
    write_in_place(mount_ / ts / "app.json", app_json);
    fs::permissions(mount_ / ts / "app.json", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    fs::create_symlink(ts, mount_ / "..data_tmp");
    fs::rename(mount_ / "..data_tmp", mount_ / "..data");
    if (!fs::exists(mount_ / "app.json", ec_) && !fs::is_symlink(mount_ / "app.json"))
      fs::create_symlink("..data/app.json", mount_ / "app.json");
    if (!old_.empty()) fs::remove_all(mount_ / old_);
    old_ = ts;
  }

 private:
  fs::path mount_;
  std::string old_;
  int serial_ = 0;
  std::error_code ec_;
};

std::string timeout_json(int v) {
  return fmt::format(R"({{"http": {{"timeout_ms": {}}}}})", v);
}
const config_key<std::int64_t> timeout{"http.timeout_ms", 3000, in_range(1, 60000)};

TEST(ConfigDeploy, KubernetesConfigMapSwapsAreAllSeen) {
  temp_dir dir;
  configmap cm(dir.path());
  cm.update(timeout_json(100));
  ASSERT_TRUE(fs::is_symlink(dir / "app.json"));
  watched w(dir / "app.json", "", schema(timeout));
  auto& store = w.store;
  auto& log = w.log;
  EXPECT_EQ(store.get(timeout), std::int64_t{100});
  for (int v = 101; v <= 104; ++v) {
    cm.update(timeout_json(v));
    EXPECT_TRUE(published(log, store, timeout, v)) << "swap to " << v << " not seen";
  }
  // A bad update is rejected and the config in force stays.
  const auto rejected = store.reloads_rejected();
  cm.update(timeout_json(0));
  EXPECT_TRUE(log.wait([&](const auto&) { return store.reloads_rejected() > rejected; }));
  EXPECT_EQ(store.get(timeout), std::int64_t{104});
  cm.update(timeout_json(105));
  EXPECT_TRUE(published(log, store, timeout, 105));
}

// A ConfigMap mounted as a conf.d directory: every file is a symlink into ..data.
TEST(ConfigDeploy, KubernetesConfigMapAsConfDirectory) {
  temp_dir dir;
  configmap cm(dir.path());
  cm.update(timeout_json(7));  // app.json, merged as the directory's only file
  reload_log log;
  std::vector<std::unique_ptr<config_source>> srcs;
  srcs.push_back(std::make_unique<directory_source>(dir.path()));
  config_store store(std::move(srcs), schema(timeout));
  log.attach(store);
  EXPECT_EQ(store.get(timeout), std::int64_t{7});
  for (int v = 8; v <= 10; ++v) {
    cm.update(timeout_json(v));
    EXPECT_TRUE(published(log, store, timeout, v)) << "swap to " << v << " not seen";
  }
}

// Re-points a symlink atomically (a new link renamed over the old one).
void repoint(const fs::path& link, const fs::path& target) {
  const fs::path tmp = link.string() + ".new";
  fs::create_symlink(target, tmp);
  fs::rename(tmp, link);
}

TEST(ConfigDeploy, SymlinkedFileIsReResolvedOnEveryChange) {
  temp_dir dir;
  fs::create_directories(dir / "real");
  write_in_place(dir / "real/v1.json", timeout_json(1));
  write_in_place(dir / "real/v2.json", timeout_json(2));
  fs::create_symlink("real/v1.json", dir / "app.json");
  watched w(dir / "app.json", "", schema(timeout));
  auto& store = w.store;
  auto& log = w.log;
  EXPECT_EQ(store.get(timeout), std::int64_t{1});
  repoint(dir / "app.json", "real/v2.json");
  EXPECT_TRUE(published(log, store, timeout, 2));
  // Now the link's new target is the file: an in-place write to it counts.
  write_in_place(dir / "real/v2.json", timeout_json(22));
  EXPECT_TRUE(published(log, store, timeout, 22));
  replace_by_rename(dir / "real/v2.json", timeout_json(23));
  EXPECT_TRUE(published(log, store, timeout, 23));
  repoint(dir / "app.json", "real/v1.json");
  EXPECT_TRUE(published(log, store, timeout, 1));
}

TEST(ConfigDeploy, SymlinkedDirectoryIsReResolvedOnEveryChange) {
  temp_dir dir;
  for (int v = 1; v <= 3; ++v) {
    fs::create_directories(dir / fmt::format("conf.v{}", v));
    write_in_place(dir / fmt::format("conf.v{}/app.json", v), timeout_json(v));
  }
  fs::create_directory_symlink("conf.v1", dir / "conf");
  watched w(dir / "conf/app.json", "", schema(timeout));
  auto& store = w.store;
  auto& log = w.log;
  EXPECT_EQ(store.get(timeout), std::int64_t{1});
  for (int v = 2; v <= 3; ++v) {
    repoint(dir / "conf", fmt::format("conf.v{}", v));
    EXPECT_TRUE(published(log, store, timeout, v)) << "re-pointed to conf.v" << v;
  }
  write_in_place(dir / "conf.v3/app.json", timeout_json(33));
  EXPECT_TRUE(published(log, store, timeout, 33));
}

// `mv conf conf.old; mv conf.new conf`, three times (the old watcher saw the
// first only).
TEST(ConfigDeploy, DirectoryReplacedByMvIsFollowed) {
  temp_dir dir;
  fs::create_directories(dir / "conf");
  watched w(dir / "conf/app.json", timeout_json(1), schema(timeout));
  auto& store = w.store;
  auto& log = w.log;
  for (int v = 2; v <= 4; ++v) {
    fs::create_directories(dir / "conf.new");
    write_in_place(dir / "conf.new/app.json", timeout_json(v));
    fs::remove_all(dir / "conf.old");
    fs::rename(dir / "conf", dir / "conf.old");
    fs::rename(dir / "conf.new", dir / "conf");
    EXPECT_TRUE(published(log, store, timeout, v)) << "replacement " << v - 1 << " not seen";
  }
  write_in_place(dir / "conf/app.json", timeout_json(5));
  EXPECT_TRUE(published(log, store, timeout, 5));
}

TEST(ConfigDeploy, FileDeletedAndRecreated) {
  temp_dir dir;
  const auto file = dir / "app.json";
  watched w(file, timeout_json(1), schema(timeout));
  auto& store = w.store;
  auto& log = w.log;
  for (int v = 2; v <= 4; ++v) {
    const auto seen = log.size();
    fs::remove(file);
    ASSERT_TRUE(log.wait([&](const auto& ev) {
      return ev.size() > seen && !ev.back().accepted && ev.back().error.find("No such file") != std::string::npos;
    }));
    EXPECT_EQ(store.get(timeout), std::int64_t{v - 1});  // the last good config stays
    write_in_place(file, timeout_json(v));
    EXPECT_TRUE(published(log, store, timeout, v));
  }
  // The whole directory removed and recreated.
  fs::remove_all(dir.path());
  fs::create_directories(dir.path());
  write_in_place(file, timeout_json(9));
  EXPECT_TRUE(published(log, store, timeout, 9));
}

// A FIFO renamed over the watched file: rejected at once (never opened for
// a blocking read), the watcher keeps going.
TEST(ConfigDeploy, FifoRenamedOverTheFileIsRejectedWithoutBlocking) {
  temp_dir dir;
  const auto file = dir / "app.json";
  watched w(file, timeout_json(1), schema(timeout));
  auto& store = w.store;
  auto& log = w.log;
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  fs::rename(dir / "fifo", file);
  ASSERT_TRUE(log.wait([&](const auto& ev) {
    return !ev.empty() && !ev.back().accepted && ev.back().error.find("not a regular file") != std::string::npos;
  }));
  EXPECT_EQ(store.get(timeout), std::int64_t{1});
  EXPECT_FALSE(store.reload().accepted);
  replace_by_rename(file, timeout_json(2));
  EXPECT_TRUE(published(log, store, timeout, 2));
}

// --- layered sources -------------------------------------------------------------------

const config_key<std::string> host{"http.host", "localhost", non_empty()};
const config_key<std::string> level{"log.level", "info", one_of({"debug", "info", "warn", "error"})};
const config_key<bool> flag{"feature.flag", false};
const config_key<double> ratio{"limits.ratio", 0.5, in_range(0.0, 1.0)};

schema layered_schema() {
  return schema(timeout, host, level, flag, ratio);
}

std::string origin_of(const config_store& s, const std::string& key) {
  for (const auto& e : s.effective())
    if (e.key == key) return e.from_file ? e.origin : "default";
  return "absent";
}

// base file < conf.d (name order) < environment.
TEST(ConfigLayers, PrecedenceAndOrigins) {
  temp_dir dir;
  write_in_place(dir / "base.toml", "[http]\ntimeout_ms = 100\nhost = \"base\"\n[log]\nlevel = \"warn\"\n");
  fs::create_directories(dir / "conf.d");
  write_in_place(dir / "conf.d/20-site.toml", "[http]\nhost = \"site\"\n");
  write_in_place(dir / "conf.d/10-team.json", R"({"http": {"host": "team", "timeout_ms": 200}})");
  write_in_place(dir / "conf.d/.hidden.toml", "http.host = \"hidden\"\n");
  write_in_place(dir / "conf.d/notes.txt", "not a config file\n");
  std::vector<std::unique_ptr<config_source>> srcs;
  srcs.push_back(std::make_unique<file_source>(dir / "base.toml"));
  srcs.push_back(std::make_unique<directory_source>(dir / "conf.d"));
  srcs.push_back(std::make_unique<env_source>(
      "APP_", std::vector<std::pair<std::string, std::string>>{
                  {"APP_HTTP__TIMEOUT_MS", "250"}, {"APP_FEATURE__FLAG", "true"}, {"OTHER_X", "1"}}));
  config_store store(std::move(srcs), layered_schema());
  EXPECT_EQ(store.get(timeout), std::int64_t{250});  // env over conf.d over base
  EXPECT_EQ(store.get(host), std::string("site"));   // 20-site over 10-team over base
  EXPECT_EQ(store.get(level), std::string("warn"));  // base only
  EXPECT_EQ(store.get(flag), true);                  // env text parsed as bool
  EXPECT_EQ(store.get(ratio), 0.5);                  // default
  EXPECT_EQ(origin_of(store, "http.timeout_ms"), "env:APP_HTTP__TIMEOUT_MS");
  EXPECT_EQ(origin_of(store, "http.host"), (dir / "conf.d/20-site.toml").string());
  EXPECT_EQ(origin_of(store, "log.level"), (dir / "base.toml").string());
  EXPECT_EQ(origin_of(store, "limits.ratio"), "default");
  EXPECT_EQ(store.source_names(), (std::vector<std::string>{"file:" + (dir / "base.toml").string(),
                                                            "dir:" + (dir / "conf.d").string(), "env:APP_"}));
  // The same through load_sources (what `polymap config check` prints).
  std::vector<std::unique_ptr<config_source>> again;
  again.push_back(std::make_unique<file_source>(dir / "base.toml"));
  again.push_back(std::make_unique<directory_source>(dir / "conf.d"));
  const auto doc = load_sources(again, layered_schema());
  for (const auto& e : doc.entries) {
    if (e.key == "http.host") {
      EXPECT_EQ(e.origin, (dir / "conf.d/20-site.toml").string());
    }
    if (e.key == "http.timeout_ms") {
      EXPECT_EQ(e.val, value(200));
    }
  }
}

// A change to one layer is validated with every other layer's content and
// published as one version, or rejected with the last good config kept.
TEST(ConfigLayers, ChangesAreValidatedWholeAndPublishedAtomically) {
  temp_dir dir;
  write_in_place(dir / "base.toml", "[http]\ntimeout_ms = 100\n");
  fs::create_directories(dir / "conf.d");
  write_in_place(dir / "conf.d/10-a.toml", "[log]\nlevel = \"debug\"\n");
  reload_log log;
  std::vector<std::unique_ptr<config_source>> srcs;
  srcs.push_back(std::make_unique<file_source>(dir / "base.toml"));
  srcs.push_back(std::make_unique<directory_source>(dir / "conf.d"));
  config_store store(std::move(srcs), layered_schema());
  log.attach(store);
  const auto v0 = store.version();

  // A new file in conf.d changes two keys at once: one version.
  replace_by_rename(dir / "conf.d/20-b.toml", "[http]\ntimeout_ms = 300\nhost = \"b\"\n");
  ASSERT_TRUE(published(log, store, timeout, 300));
  EXPECT_EQ(store.get(host), std::string("b"));
  EXPECT_EQ(store.version(), v0 + 1);
  EXPECT_EQ(origin_of(store, "http.timeout_ms"), (dir / "conf.d/20-b.toml").string());

  // A bad value in a conf.d file: rejected, naming that file; nothing changes.
  const auto rejected = store.reloads_rejected();
  const auto seen = log.size();
  replace_by_rename(dir / "conf.d/10-a.toml", "[log]\nlevel = \"loud\"\n");
  ASSERT_TRUE(log.wait_past(seen));
  auto ev = log.events().back();
  EXPECT_FALSE(ev.accepted);
  EXPECT_NE(ev.error.find("10-a.toml"), std::string::npos) << ev.error;
  EXPECT_NE(ev.error.find("log.level"), std::string::npos) << ev.error;
  EXPECT_EQ(store.reloads_rejected(), rejected + 1);
  EXPECT_EQ(store.get(level), std::string("debug"));
  EXPECT_EQ(store.version(), v0 + 1);
  EXPECT_GT(store.stats().last_error_time, 0.0);

  // While conf.d is bad, a change of the base file is validated with it:
  // still rejected.
  const auto seen2 = log.size();
  replace_by_rename(dir / "base.toml", "[http]\ntimeout_ms = 400\n");
  ASSERT_TRUE(log.wait_past(seen2));
  EXPECT_FALSE(log.events().back().accepted);
  EXPECT_EQ(store.get(timeout), std::int64_t{300});

  // Fixing conf.d publishes both layers' current content.
  replace_by_rename(dir / "conf.d/10-a.toml", "[log]\nlevel = \"error\"\n");
  ASSERT_TRUE(log.wait([&](const auto&) { return store.get(level) == std::string("error"); }));
  EXPECT_EQ(store.get(timeout), std::int64_t{300});  // 20-b.toml still overrides base's 400
  fs::remove(dir / "conf.d/20-b.toml");
  ASSERT_TRUE(published(log, store, timeout, 400));
  EXPECT_EQ(store.get(host), std::string("localhost"));
}

TEST(ConfigLayers, EnvironmentTextIsParsedByTheSchemaType) {
  auto env_store = [](std::vector<std::pair<std::string, std::string>> vars) {
    std::vector<std::unique_ptr<config_source>> srcs;
    srcs.push_back(std::make_unique<env_source>("APP_", std::move(vars)));
    config_store::options o;
    o.watch = false;
    return std::make_unique<config_store>(std::move(srcs), layered_schema(), o);
  };
  auto s = env_store({{"APP_LIMITS__RATIO", "0.25"}, {"APP_HTTP__HOST", "h"}, {"APP_FEATURE__FLAG", "0"}});
  EXPECT_EQ(s->get(ratio), 0.25);
  EXPECT_EQ(s->get(host), std::string("h"));
  EXPECT_EQ(s->get(flag), false);
  struct bad {
    const char* var;
    const char* val;
    const char* says;
  };
  for (const auto& b :
       {bad{"APP_HTTP__TIMEOUT_MS", "fast", "expected int64, found text 'fast'"},
        bad{"APP_HTTP__TIMEOUT_MS", "99999999999999999999", "out of the int64 range"},
        bad{"APP_HTTP__TIMEOUT_MS", "0", "out of range"}, bad{"APP_FEATURE__FLAG", "maybe", "expected bool"},
        bad{"APP_LIMITS__RATIO", "nan", "expected double"}, bad{"APP_HTTP__TIMOUT_MS", "5", "unknown key"},
        bad{"APP_HTTP____PORT", "5", "empty level"}}) {
    SCOPED_TRACE(b.var);
    try {
      env_store({{b.var, b.val}});
      ADD_FAILURE() << "accepted " << b.var << "=" << b.val;
    } catch (const config_error& e) {
      EXPECT_EQ(e.file(), std::string("env:") + b.var) << e.what();
      EXPECT_NE(std::string(e.what()).find(b.says), std::string::npos) << e.what();
    }
  }
  // The process environment.
  ASSERT_EQ(::setenv("POLYMAP_TEST_CFG_HTTP__TIMEOUT_MS", "777", 1), 0);
  std::vector<std::unique_ptr<config_source>> srcs;
  srcs.push_back(std::make_unique<env_source>("POLYMAP_TEST_CFG_"));
  const auto doc = load_sources(srcs, layered_schema());
  ::unsetenv("POLYMAP_TEST_CFG_HTTP__TIMEOUT_MS");
  bool found = false;
  for (const auto& e : doc.entries) {
    if (e.key != "http.timeout_ms") continue;
    found = true;
    EXPECT_EQ(e.val, value(777));
    EXPECT_EQ(e.origin, "env:POLYMAP_TEST_CFG_HTTP__TIMEOUT_MS");
  }
  EXPECT_TRUE(found);
}

TEST(ConfigLayers, MissingDirectoryOrBadFileFailsConstructionNamingIt) {
  temp_dir dir;
  {
    std::vector<std::unique_ptr<config_source>> srcs;
    srcs.push_back(std::make_unique<directory_source>(dir / "absent.d"));
    try {
      config_store store(std::move(srcs), layered_schema());
      ADD_FAILURE() << "constructed";
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find("absent.d"), std::string::npos) << e.what();
    }
  }
  fs::create_directories(dir / "conf.d");
  write_in_place(dir / "conf.d/10-a.toml", "[http]\ntimeout_ms = 5\n");
  write_in_place(dir / "conf.d/20-b.toml", "[http]\n\ntimeout_ms = 0\n");
  std::vector<std::unique_ptr<config_source>> srcs;
  srcs.push_back(std::make_unique<directory_source>(dir / "conf.d"));
  try {
    config_store store(std::move(srcs), layered_schema());
    ADD_FAILURE() << "constructed";
  } catch (const config_error& e) {
    EXPECT_EQ(e.file(), (dir / "conf.d/20-b.toml").string());
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.key(), "http.timeout_ms");
  }
}

// --- the hardened parser under the layers ---------------------------------------------

config_error load_error(std::unique_ptr<config_source> src, const schema& s) {
  std::vector<std::unique_ptr<config_source>> srcs;
  srcs.push_back(std::move(src));
  try {
    load_sources(srcs, s);
  } catch (const config_error& e) {
    return e;
  }
  ADD_FAILURE() << "accepted";
  return config_error("", 0, "", "accepted");
}

bool says(const config_error& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

// File and directory sources parse with parse_document's bounds and strict
// values (depth cap, duplicate keys with their line, non-finite numbers),
// and read through the one bounded reader with their own parse_limits.
TEST(ConfigLayersHostile, SourcesParseWithTheBoundsAndLimits) {
  temp_dir dir;
  fs::create_directories(dir / "conf.d");
  write_in_place(dir / "conf.d/10-a.toml", "[http]\ntimeout_ms = 5\n");
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1" + std::string(100000, '}');
  write_in_place(dir / "conf.d/20-deep.json", deep);
  auto e = load_error(std::make_unique<directory_source>(dir / "conf.d"), layered_schema());
  EXPECT_EQ(e.file(), (dir / "conf.d/20-deep.json").string()) << e.what();
  EXPECT_TRUE(says(e, "nested deeper than 64")) << e.what();

  write_in_place(dir / "conf.d/20-deep.json", "{\"http\": {\"timeout_ms\": 5,\n \"timeout_ms\": 6}}");
  e = load_error(std::make_unique<directory_source>(dir / "conf.d"), layered_schema());
  EXPECT_EQ(e.file(), (dir / "conf.d/20-deep.json").string());
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.key(), "http.timeout_ms");
  EXPECT_TRUE(says(e, "duplicate key")) << e.what();
  EXPECT_EQ(e.problems().size(), 1u) << e.what();  // reported once, not again as "set twice"

  fs::remove(dir / "conf.d/20-deep.json");
  write_in_place(dir / "conf.d/30-inf.toml", "[limits]\nratio = inf\n");
  e = load_error(std::make_unique<directory_source>(dir / "conf.d"), layered_schema());
  EXPECT_EQ(e.file(), (dir / "conf.d/30-inf.toml").string());
  EXPECT_TRUE(says(e, "not a finite number")) << e.what();
  fs::remove(dir / "conf.d/30-inf.toml");

  // A FIFO in conf.d: refused at once, never waited on.
  ASSERT_EQ(::mkfifo((dir / "conf.d/40-fifo.toml").c_str(), 0600), 0);
  e = load_error(std::make_unique<directory_source>(dir / "conf.d"), layered_schema());
  EXPECT_TRUE(says(e, "a FIFO, not a regular file")) << e.what();
  fs::remove(dir / "conf.d/40-fifo.toml");

  // The sources' own size cap, and the single-file store's options::limits.
  parse_limits small;
  small.max_file_bytes = 16;
  write_in_place(dir / "big.toml", "[http]\ntimeout_ms = 5\n# " + std::string(64, '-') + "\n");
  e = load_error(std::make_unique<file_source>(dir / "big.toml", file_format::automatic, watch_timing{}, small),
                 layered_schema());
  EXPECT_TRUE(says(e, "the limit is 16 (parse_limits::max_file_bytes)")) << e.what();
  e = load_error(make_path_source(dir / "conf.d", file_format::automatic, {}, small), layered_schema());
  EXPECT_TRUE(says(e, "parse_limits::max_file_bytes")) << e.what();
  config_store::options o;
  o.watch = false;
  o.limits = small;
  EXPECT_THROW(config_store(dir / "big.toml", layered_schema(), o), config_error);
  o.limits = {};
  config_store ok(dir / "big.toml", layered_schema(), o);
  EXPECT_EQ(ok.get(timeout), std::int64_t{5});
}

// A key set twice within one file, through a table and a dotted name, is an
// error in a file source too (the merge of layers must not let the second
// silently win).
TEST(ConfigLayersHostile, AKeySetTwiceInOneFileFailsItsSource) {
  temp_dir dir;
  write_in_place(dir / "app.json", "{\"http\": {\"timeout_ms\": 5},\n \"http.timeout_ms\": 6}");
  auto e = load_error(std::make_unique<file_source>(dir / "app.json"), layered_schema());
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.key(), "http.timeout_ms");
  EXPECT_TRUE(says(e, "set twice (first at line 1)")) << e.what();
  fs::create_directories(dir / "conf.d");
  write_in_place(dir / "conf.d/10-a.toml", "http.timeout_ms = 5\n[http]\ntimeout_ms = 6\n");
  e = load_error(std::make_unique<directory_source>(dir / "conf.d"), layered_schema());
  EXPECT_EQ(e.file(), (dir / "conf.d/10-a.toml").string()) << e.what();
}

// The merged settings are validated with the strict rules, every problem at
// once, each naming its own source (file and line, or variable).
TEST(ConfigLayersHostile, EveryProblemOfTheStackAtOnceNamingItsSource) {
  temp_dir dir;
  write_in_place(dir / "base.toml", "[http]\ntimout_ms = 5\n");
  std::vector<std::unique_ptr<config_source>> srcs;
  srcs.push_back(std::make_unique<file_source>(dir / "base.toml"));
  srcs.push_back(
      std::make_unique<env_source>("APP_", std::vector<std::pair<std::string, std::string>>{
                                               {"APP_LIMITS__RATIO", "1e400"}, {"APP_FEATURE__FLAG", "maybe"}}));
  try {
    load_sources(srcs, layered_schema());
    ADD_FAILURE() << "accepted";
  } catch (const config_error& e) {
    ASSERT_EQ(e.problems().size(), 3u) << e.what();
    EXPECT_EQ(e.problems()[0].file, (dir / "base.toml").string());
    EXPECT_EQ(e.problems()[0].line, 2);
    EXPECT_NE(e.problems()[0].problem.find("did you mean 'http.timeout_ms'"), std::string::npos) << e.what();
    EXPECT_EQ(e.problems()[1].file, "env:APP_FEATURE__FLAG");
    EXPECT_EQ(e.problems()[2].file, "env:APP_LIMITS__RATIO");
    EXPECT_NE(e.problems()[2].problem.find("out of the double range"), std::string::npos) << e.what();
  }
}

TEST(ConfigLayersHostile, EnvironmentDurationsAndNonFiniteFollowTheSchema) {
  config_key<std::int64_t> wait{"http.wait", 1000, in_range(1, 60'000)};
  wait.as_duration();
  config_key<double> big{"limits.big", 1.0};
  big.allow_non_finite();
  const schema s(wait, big, ratio);
  auto load = [&](std::vector<std::pair<std::string, std::string>> vars) {
    std::vector<std::unique_ptr<config_source>> srcs;
    srcs.push_back(std::make_unique<env_source>("APP_", std::move(vars)));
    return load_sources(srcs, s);
  };
  auto get = [](const document& d, const std::string& k) {
    for (const auto& e : d.entries)
      if (e.key == k) return e.val;
    return value();
  };
  EXPECT_EQ(get(load({{"APP_HTTP__WAIT", "1m"}}), "http.wait"), value(std::int64_t{60'000}));
  EXPECT_EQ(get(load({{"APP_HTTP__WAIT", "250"}}), "http.wait"), value(std::int64_t{250}));
  EXPECT_TRUE(std::isinf(*get(load({{"APP_LIMITS__BIG", "inf"}}), "limits.big").get_if<double>()));
  for (const auto& [var, val, text] :
       {std::tuple{"APP_HTTP__WAIT", "soon", "expected a duration, found text 'soon'"},
        std::tuple{"APP_HTTP__WAIT", "2m", "out of range"}, std::tuple{"APP_LIMITS__RATIO", "inf", "not a finite"},
        std::tuple{"APP_LIMITS__RATIO", "1e-400", "out of the double range"}}) {
    SCOPED_TRACE(var);
    try {
      load({{var, val}});
      ADD_FAILURE() << "accepted " << val;
    } catch (const config_error& e) {
      EXPECT_EQ(e.file(), std::string("env:") + var);
      EXPECT_TRUE(says(e, text)) << e.what();
    }
  }
}

// --- counters ----------------------------------------------------------------------------

TEST(ConfigStats, CountersAndPrometheusText) {
  temp_dir dir;
  const auto file = dir / "app.json";
  write_in_place(file, timeout_json(1));
  config_store::options o;
  o.watch = false;
  config_store store(file, schema(timeout), o);
  auto st = store.stats();
  EXPECT_EQ(st.reloads_accepted, 1u);
  EXPECT_EQ(st.reloads_rejected, 0u);
  EXPECT_EQ(st.version, store.version());
  EXPECT_GT(st.last_accepted_time, 0.0);
  EXPECT_EQ(st.last_error_time, 0.0);
  ASSERT_EQ(st.sources.size(), 1u);
  EXPECT_TRUE(st.sources[0].ok);
  const auto rev = st.sources[0].revision;
  write_in_place(file, timeout_json(0));
  EXPECT_FALSE(store.reload().accepted);
  write_in_place(file, timeout_json(2));
  EXPECT_TRUE(store.reload().accepted);
  write_in_place(file, "{");
  EXPECT_FALSE(store.reload().accepted);
  st = store.stats();
  EXPECT_EQ(st.reloads_accepted, 2u);
  EXPECT_EQ(st.reloads_rejected, 2u);
  EXPECT_GT(st.last_error_time, 0.0);
  EXPECT_FALSE(st.sources[0].ok);  // its file does not parse now
  EXPECT_GT(st.sources[0].revision, rev);

  const std::string text = polymap::to_prometheus(st, "app \"main\"");
  for (const char* family :
       {"polymap_config_reloads_accepted_total", "polymap_config_reloads_rejected_total", "polymap_config_version",
        "polymap_config_last_error_timestamp_seconds", "polymap_config_last_accepted_timestamp_seconds",
        "polymap_config_callback_errors_total", "polymap_config_source_ok"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family << "\n" << text;
  }
  EXPECT_NE(text.find("polymap_config_reloads_rejected_total{instance=\"app \\\"main\\\"\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find(fmt::format("polymap_config_source_ok{{instance=\"app \\\"main\\\"\",source=\"file:{}\"}} 0\n",
                                  file.string())),
            std::string::npos)
      << text;
  ASSERT_EQ(std::system("command -v promtool >/dev/null 2>&1"), 0)
      << "promtool is missing: run scripts/setup.sh --with-peers (Debian package 'prometheus')";
  const auto path = dir / "metrics.txt";
  write_in_place(path, text);
  const std::string cmd = "promtool check metrics < " + path.string() + " >" + (dir / "out.txt").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream out(dir / "out.txt");
  const std::string said((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << said << "\n--- text ---\n" << text;
}

}  // namespace

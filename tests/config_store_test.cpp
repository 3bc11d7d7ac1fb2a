// config_store: parsing (JSON, TOML), schema validation, rejection with the
// file, line and key named, reload on demand and by inotify (rename and
// in-place rewrite, bursts), subscriptions, and readers that never see two
// files mixed while reloads run (run under tsan as well).
#include "polymap/config/config_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "config_test_util.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using polymap::value;
using namespace polymap::config;
using namespace config_test;

// Polls pred every 2 ms for up to `limit`; true once it holds.
template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 20s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

const config_key<std::int64_t> timeout{"http.timeout_ms", 3000, in_range(1, 60000)};
const config_key<std::string> host{"http.host", "localhost", non_empty()};
const config_key<std::string> level{"log.level", "info", one_of({"debug", "info", "warn", "error"})};
const config_key<double> ratio{"limits.ratio", 0.5, in_range(0.0, 1.0)};
const config_key<bool> flag{"feature.flag", false};

schema test_schema() {
  return schema(timeout, host, level, ratio, flag);
}

config_store::options no_watch() {
  config_store::options o;
  o.watch = false;
  return o;
}

TEST(ConfigParse, JsonFlattensAndFillsDefaults) {
  auto doc = parse_document(R"({"http": {"timeout_ms": 250, "host": "example.org"}, "limits.ratio": 1})",
                            file_format::json, "mem.json", test_schema());
  ASSERT_EQ(doc.entries.size(), 5u);
  std::map<std::string, entry> by_key;
  for (auto& e : doc.entries) by_key[e.key] = e;
  EXPECT_EQ(by_key["http.timeout_ms"].val, value(250));
  EXPECT_TRUE(by_key["http.timeout_ms"].from_file);
  EXPECT_EQ(by_key["http.host"].val, value("example.org"));
  EXPECT_EQ(by_key["limits.ratio"].val, value(1.0));  // an integer where a double is declared
  EXPECT_EQ(by_key["log.level"].val, value("info"));
  EXPECT_FALSE(by_key["log.level"].from_file);
  EXPECT_EQ(by_key["feature.flag"].val, value(false));
}

TEST(ConfigParse, TomlFlattensAndKeepsLines) {
  const char* text =
      "# comment\n"
      "[http]\n"
      "timeout_ms = 7\n"
      "host = \"h\"\n"
      "[feature]\n"
      "flag = true\n";
  auto doc = parse_document(text, file_format::toml, "mem.toml", test_schema());
  bool seen = false;
  for (auto& e : doc.entries) {
    if (e.key == "http.timeout_ms") {
      EXPECT_EQ(e.val, value(7));
      EXPECT_EQ(e.line, 3);
      seen = true;
    }
    if (e.key == "feature.flag") {
      EXPECT_EQ(e.val, value(true));
    }
  }
  EXPECT_TRUE(seen);
}

// Each bad document is rejected with the file, the line where known, and the key.
TEST(ConfigParse, RejectionsNameFileLineAndKey) {
  struct bad {
    const char* text;
    file_format fmt;
    int line;
    const char* key;
    const char* says;
  };
  // JSON values are reported on their key's line.
  const bad cases[] = {
      {"{\n  \"http\": {\n    \"timeout_ms\": ,\n  }\n}", file_format::json, 3, "", "malformed JSON"},
      {"{\"http\": {\"timeout_ms\": 0}}", file_format::json, 1, "http.timeout_ms", "out of range"},
      {"{\"http\": {\"timeout_ms\": \"fast\"}}", file_format::json, 1, "http.timeout_ms",
       "expected int64, found string"},
      {"{\"http\": {\"timout_ms\": 5}}", file_format::json, 1, "http.timout_ms", "unknown key"},
      {"{\"log\": {\"level\": \"loud\"}}", file_format::json, 1, "log.level", "not one of"},
      {"{\"limits\": {\"ratio\": [1, 2]}}", file_format::json, 1, "limits.ratio", "arrays"},
      {"{\"http\": {\"host\": null}}", file_format::json, 1, "http.host", "null"},
      {"[1, 2]", file_format::json, 1, "", "top level"},
      {"", file_format::json, 1, "", "malformed JSON"},
      {"[http]\ntimeout_ms = 5\nhost = \n", file_format::toml, 3, "", "malformed TOML"},
      {"[http]\n\ntimeout_ms = 99999999\n", file_format::toml, 3, "http.timeout_ms", "out of range"},
      {"[limits]\nratio = 1.5\n", file_format::toml, 2, "limits.ratio", "out of range"},
      {"[feature]\nflag = 1979-05-27\n", file_format::toml, 2, "feature.flag", "dates"},
      {"[http]\nhost = \"\"\n", file_format::toml, 2, "http.host", "empty"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    try {
      (void)parse_document(c.text, c.fmt, "conf/app.cfg", test_schema());
      ADD_FAILURE() << "accepted";
    } catch (const config_error& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.file(), "conf/app.cfg");
      EXPECT_EQ(what.rfind("conf/app.cfg", 0), 0u) << what;
      EXPECT_EQ(e.line(), c.line) << what;
      EXPECT_EQ(e.key(), c.key) << what;
      EXPECT_NE(what.find(c.says), std::string::npos) << what;
      if (c.line > 0) {
        EXPECT_NE(what.find("conf/app.cfg:" + std::to_string(c.line)), std::string::npos) << what;
      }
      if (*c.key) {
        EXPECT_NE(what.find(std::string("'") + c.key + "'"), std::string::npos) << what;
      }
    }
  }
}

TEST(ConfigParse, RequiredKeysAndUnknownKeysPolicy) {
  schema s;
  s.add(config_key<std::string>("db.url", required, non_empty()));
  EXPECT_THROW((void)parse_document("{}", file_format::json, "f", s), config_error);
  auto doc = parse_document(R"({"db": {"url": "x"}})", file_format::json, "f", s);
  EXPECT_EQ(doc.entries.at(0).val, value("x"));
  EXPECT_THROW((void)parse_document(R"({"db": {"url": "x"}, "extra": 1})", file_format::json, "f", s), config_error);
  s.allow_unknown();
  doc = parse_document(R"({"db": {"url": "x"}, "extra": 1})", file_format::json, "f", s);
  ASSERT_EQ(doc.entries.size(), 2u);
  EXPECT_EQ(doc.entries.at(1).val, value(1));
  EXPECT_THROW(config_key<std::int64_t>("bad.default", 0, in_range(1, 2)), std::invalid_argument);
  EXPECT_THROW(schema(timeout, timeout), std::invalid_argument);
}

TEST(ConfigParse, SchemaFromJson) {
  auto s = schema::from_json(R"({
    "allow_unknown": false,
    "keys": {
      "http.timeout_ms": {"type": "int64", "default": 3000, "min": 1, "max": 60000},
      "log.level": {"type": "string", "default": "info", "one_of": ["debug", "info"]},
      "db.url": {"type": "string", "required": true, "non_empty": true},
      "ratio": {"type": "double", "default": 0.5, "max": 1}
    }})",
                             "schema.json");
  EXPECT_EQ(s.keys().size(), 4u);
  auto doc = parse_document(R"({"db": {"url": "u"}, "ratio": 1})", file_format::json, "f", s);
  EXPECT_EQ(doc.entries.size(), 4u);
  EXPECT_THROW((void)parse_document(R"({"db": {"url": "u"}, "ratio": 2})", file_format::json, "f", s), config_error);
  EXPECT_THROW((void)parse_document(R"({"db": {"url": ""}})", file_format::json, "f", s), config_error);
  EXPECT_THROW((void)parse_document(R"({"db": {"url": "u"}, "log": {"level": "x"}})", file_format::json, "f", s),
               config_error);
  EXPECT_THROW(schema::from_json(R"({"keys": {"a": {"type": "int64"}}})", "s"), config_error);  // no default
  EXPECT_THROW(schema::from_json(R"({"keys": {"a": {"type": "list", "default": 1}}})", "s"), config_error);
  EXPECT_THROW(schema::from_json(R"({"keys": {"a": {"type": "int64", "default": 0, "min": 1}}})", "s"), config_error);
  EXPECT_THROW(schema::from_json(R"({"keys": {"a": {"type": "int64", "default": 0, "mni": 1}}})", "s"), config_error);
  EXPECT_THROW(schema::from_json("{", "s"), config_error);
}

TEST(ConfigStore, LoadsTypedKeysAndReloadsOnDemand) {
  temp_dir dir;
  const auto file = dir / "app.json";
  write_in_place(file, R"({"http": {"timeout_ms": 100}})");
  config_store store(file, test_schema(), no_watch());
  EXPECT_EQ(store.get(timeout), std::int64_t{100});
  EXPECT_EQ(store.get(host), std::string("localhost"));  // default: absent from the file
  EXPECT_EQ(store.get(level), std::string("info"));
  EXPECT_EQ(store.get<double>("limits.ratio"), 0.5);
  EXPECT_EQ(store.get<double>("http.timeout_ms").error(), polymap::errc::type_mismatch);
  EXPECT_EQ(store.get<std::int64_t>("nope").error(), polymap::errc::not_found);
  const auto v1 = store.version();

  std::vector<change> seen_timeout, seen_all;
  std::vector<reload_event> events;
  store.subscribe("http.timeout_ms", [&](const change& c) { seen_timeout.push_back(c); });
  store.subscribe("http.timeout_ms", [&](const change&) { throw std::runtime_error("subscriber failed"); });
  store.subscribe_all([&](const change& c) { seen_all.push_back(c); });
  store.on_reload([&](const reload_event& e) { events.push_back(e); });

  write_in_place(file, R"({"http": {"timeout_ms": 200, "host": "h"}})");
  auto ev = store.reload();
  EXPECT_TRUE(ev.accepted) << ev.error;
  EXPECT_EQ(ev.version, v1 + 1);
  EXPECT_EQ(ev.changed_keys, (std::vector<std::string>{"http.host", "http.timeout_ms"}));
  EXPECT_EQ(store.get(timeout), std::int64_t{200});
  ASSERT_EQ(seen_timeout.size(), 1u);
  EXPECT_EQ(seen_timeout[0].old_value, value(100));
  EXPECT_EQ(seen_timeout[0].new_value, value(200));
  EXPECT_EQ(seen_timeout[0].version, v1 + 1);
  EXPECT_EQ(seen_all.size(), 2u);  // the throwing subscriber stopped nobody
  EXPECT_EQ(store.callback_errors(), 1u);
  EXPECT_EQ(store.last_callback_error(), "subscriber failed");
  ASSERT_EQ(events.size(), 1u);

  // Same content: accepted, nothing published.
  ev = store.reload();
  EXPECT_TRUE(ev.accepted);
  EXPECT_TRUE(ev.changed_keys.empty());
  EXPECT_EQ(store.version(), v1 + 1);

  // Malformed: rejected, nothing lost.
  write_in_place(file, "{\"http\": {\"timeout_ms\": 300,\n");
  ev = store.reload();
  EXPECT_FALSE(ev.accepted);
  EXPECT_NE(ev.error.find(file.string()), std::string::npos) << ev.error;
  EXPECT_EQ(store.get(timeout), std::int64_t{200});
  EXPECT_EQ(store.get(host), std::string("h"));
  EXPECT_EQ(store.version(), v1 + 1);
  EXPECT_EQ(store.reloads_rejected(), 1u);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_FALSE(events.back().accepted);

  // Missing: rejected, nothing lost.
  fs::remove(file);
  ev = store.reload();
  EXPECT_FALSE(ev.accepted);
  EXPECT_NE(ev.error.find("No such file"), std::string::npos) << ev.error;
  EXPECT_EQ(store.get(timeout), std::int64_t{200});

  // A subscriber may not reload the store it runs for.
  write_in_place(file, R"({"http": {"timeout_ms": 1}})");
  store.subscribe_all([&](const change&) { store.reload(); });
  ev = store.reload();
  EXPECT_TRUE(ev.accepted);
  EXPECT_EQ(store.get(timeout), std::int64_t{1});
  EXPECT_NE(store.last_callback_error().find("reload() called from a subscriber"), std::string::npos);
}

TEST(ConfigStore, MissingOrBadFileFailsConstruction) {
  temp_dir dir;
  try {
    config_store store(dir / "absent.toml", test_schema());
    ADD_FAILURE() << "constructed";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.toml"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  write_in_place(dir / "bad.toml", "[http]\ntimeout_ms = -4\n");
  try {
    config_store store(dir / "bad.toml", test_schema());
    ADD_FAILURE() << "constructed";
  } catch (const config_error& e) {
    EXPECT_EQ(e.line(), 2);
    EXPECT_EQ(e.key(), "http.timeout_ms");
  }
}

// Root reads files whatever their mode, so as root the check runs in a child
// that drops to an unprivileged user; it is skipped (with a message) where
// that is impossible.
TEST(ConfigStore, PermissionDeniedIsRejectedAndKeepsConfig) {
  temp_dir dir;
  const auto file = dir / "secret.json";
  write_in_place(file, R"({"http": {"timeout_ms": 42}})");
  auto check = [&]() -> int {  // 0: ok, 1: wrong, run in this process or the child
    config_store store(file, test_schema(), no_watch());
    if (store.get(timeout) != std::int64_t{42}) return 1;
    if (::geteuid() == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 77;
    } else {
      ::chmod(file.c_str(), 0);
    }
    auto ev = store.reload();
    if (ev.accepted || ev.error.find("Permission denied") == std::string::npos ||
        ev.error.find("secret.json") == std::string::npos)
      return 1;
    return store.get(timeout) == std::int64_t{42} ? 0 : 1;
  };
  if (::geteuid() != 0) {
    EXPECT_EQ(check(), 0);
    return;
  }
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int rc = 1;
    try {
      rc = check();
    } catch (...) {
    }
    ::_exit(rc);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "running as root and cannot setuid(65534): permission check skipped";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "permission-denied check failed in the unprivileged child";
}

TEST(ConfigStore, WatchSeesRenameAndInPlaceRewrite) {
  temp_dir dir;
  const auto file = dir / "app.toml";
  write_in_place(file, "[http]\ntimeout_ms = 1\n");
  config_store store(file, test_schema());
  ASSERT_TRUE(store.watching());
  EXPECT_EQ(store.get(timeout), std::int64_t{1});

  replace_by_rename(file, "[http]\ntimeout_ms = 2\n");
  EXPECT_TRUE(eventually([&] { return store.get(timeout) == std::int64_t{2}; })) << "rename not seen";

  write_in_place(file, "[http]\ntimeout_ms = 3\n");
  EXPECT_TRUE(eventually([&] { return store.get(timeout) == std::int64_t{3}; })) << "in-place rewrite not seen";

  // A rejected file keeps the config; the next good one is taken.
  const auto rejected = store.reloads_rejected();
  write_in_place(file, "[http]\ntimeout_ms = 0\n");
  EXPECT_TRUE(eventually([&] { return store.reloads_rejected() > rejected; }));
  EXPECT_EQ(store.get(timeout), std::int64_t{3});
  EXPECT_NE(store.last_event().error.find("out of range"), std::string::npos) << store.last_event().error;
  EXPECT_EQ(store.last_event().trigger, reload_event::cause::watch);

  fs::remove(file);
  EXPECT_TRUE(eventually([&] { return store.last_event().error.find("No such file") != std::string::npos; }));
  EXPECT_EQ(store.get(timeout), std::int64_t{3});
  replace_by_rename(file, "[http]\ntimeout_ms = 4\n");
  EXPECT_TRUE(eventually([&] { return store.get(timeout) == std::int64_t{4}; }));
}

// 100 changes as fast as possible, alternating rename and in-place rewrite:
// the watcher coalesces them, never goes backwards, and ends on the last.
TEST(ConfigStore, BurstOfHundredChangesEndsOnTheLast) {
  temp_dir dir;
  const auto file = dir / "burst.json";
  write_in_place(file, R"({"http": {"timeout_ms": 1000}})");
  // Declared before the store: the watcher thread calls the subscriber until
  // the store's destructor stops it, so what it writes must outlive the store.
  std::vector<std::int64_t> seen;
  std::mutex seen_mutex;
  config_store store(file, test_schema());
  store.subscribe("http.timeout_ms", [&](const change& c) {
    std::lock_guard g(seen_mutex);
    seen.push_back(*c.new_value->get<std::int64_t>());
  });
  for (int i = 1; i <= 100; ++i) {
    const std::string text = R"({"http": {"timeout_ms": )" + std::to_string(1000 + i) + "}}";
    if (i % 2)
      replace_by_rename(file, text);
    else
      write_in_place(file, text);
  }
  EXPECT_TRUE(eventually([&] { return store.get(timeout) == std::int64_t{1100}; }))
      << "final value " << store.get(timeout).value_or(-1);
  // Subscribers run after the new snapshot is published (notify follows the
  // swap), so the last notification can trail the value seen above.
  EXPECT_TRUE(eventually([&] {
    std::lock_guard g(seen_mutex);
    return !seen.empty() && seen.back() == 1100;
  }));
  std::lock_guard g(seen_mutex);
  ASSERT_FALSE(seen.empty());
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]);
  EXPECT_LE(seen.size(), 100u);
}

// A writer publishes files whose keys all carry one generation, by rename
// (the watcher reloads) and by reload() calls; readers' snapshots must never
// mix two generations, and the generation must never go backwards.
TEST(ConfigStore, ReadersNeverSeeTwoFilesMixed) {
  temp_dir dir;
  const auto file = dir / "gen.json";
  auto text = [](int g) {
    return fmt::format(R"({{"a": {{"x": {0}, "y": {0}}}, "b": {{"z": {0}, "s": "gen-{0}"}}}})", g);
  };
  write_in_place(file, text(0));
  config_store store(file, schema::any());
  constexpr int gens = 150;
  std::atomic<bool> done{false};
  std::atomic<long> mixed{0}, backwards{0}, reads{0};
  std::latch start(3);
  std::thread writer([&] {
    start.arrive_and_wait();
    for (int g = 1; g <= gens; ++g) {
      replace_by_rename(file, text(g));
      if (g % 3 == 0) store.reload();
    }
    store.reload();
    done.store(true);
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      start.arrive_and_wait();
      std::int64_t last = 0;
      do {  // at least one read, even if the writers finish first
        auto s = store.snapshot();
        const auto x = s.get<std::int64_t>("a.x").value_or(-1);
        if (s.get<std::int64_t>("a.y").value_or(-2) != x || s.get<std::int64_t>("b.z").value_or(-3) != x ||
            s.get<std::string>("b.s").value_or("") != "gen-" + std::to_string(x))
          mixed.fetch_add(1);
        if (x < last) backwards.fetch_add(1);
        last = x;
        reads.fetch_add(1, std::memory_order_relaxed);
      } while (!done.load());
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_EQ(backwards.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(store.get<std::int64_t>("a.x"), gens);
}

TEST(ConfigStore, DestructorStopsTheWatcherPromptly) {
  temp_dir dir;
  const auto file = dir / "c.json";
  write_in_place(file, "{}");
  for (int i = 0; i < 20; ++i) {
    config_store store(file, schema::any());
    if (i % 2) write_in_place(file, R"({"n": )" + std::to_string(i) + "}");
  }
  SUCCEED();
}

}  // namespace

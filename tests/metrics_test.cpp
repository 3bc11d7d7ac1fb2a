// polymap::to_prometheus: the text exposition format, checked by promtool.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#include "polymap/locked_map.hpp"
#include "polymap/metrics.hpp"
#if __has_include("polymap/concurrent_map.hpp")
#include "polymap/concurrent_map.hpp"
#endif
#if __has_include("polymap/snapshot_map.hpp")
#include "polymap/snapshot_map.hpp"
#endif

namespace {

struct tool_result {
  int status = -1;
  std::string output;
};

// Runs `promtool check metrics` on text; status 127 when promtool is missing.
tool_result promtool_check(const std::string& text) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) return {127, "promtool not found"};
  char path[] = "/tmp/polymap_metrics_XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return {-1, "mkstemp failed"};
  ::close(fd);
  std::ofstream(path) << text;
  tool_result r;
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    std::array<char, 512> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p)) r.output += buf.data();
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::remove(path);
  return r;
}

polymap::stats_t sample_stats() {
  polymap::stats_t s;
  s.map = "concurrent_map";
  s.size = 750;
  s.capacity = 1024;
  s.load_factor = 750.0 / 1024.0;
  s.probe_length_histogram = {700, 40, 9, 1};
  s.growths = 3;
  s.lock_waits = 12;
  s.bytes = 1024 * 33;
  return s;
}

void expect_valid(const std::string& text) {
  const auto r = promtool_check(text);
  ASSERT_NE(r.status, 127) << "promtool is missing: run scripts/setup.sh --with-peers (Debian package "
                              "'prometheus'); the test command installs it";
  EXPECT_EQ(r.status, 0) << "promtool check metrics rejected the text:\n" << r.output << "\n--- text ---\n" << text;
}

TEST(Metrics, OneMapHasEveryFamilyAndPassesPromtool) {
  const std::string text = polymap::to_prometheus(sample_stats(), "sessions");
  for (const char* family :
       {"polymap_map_entries", "polymap_map_capacity", "polymap_map_load_factor", "polymap_map_memory_bytes",
        "polymap_map_growths_total", "polymap_map_lock_waits_total", "polymap_map_probe_length"}) {
    EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  }
  EXPECT_NE(text.find("polymap_map_entries{instance=\"sessions\",type=\"concurrent_map\"} 750\n"), std::string::npos);
  EXPECT_NE(text.find("polymap_map_growths_total{instance=\"sessions\",type=\"concurrent_map\"} 3\n"),
            std::string::npos);
  expect_valid(text);
}

TEST(Metrics, HistogramIsCumulativeWithSumAndCount) {
  const std::string text = polymap::to_prometheus(sample_stats(), "m");
  const std::string l = "instance=\"m\",type=\"concurrent_map\"";
  EXPECT_NE(text.find("polymap_map_probe_length_bucket{" + l + ",le=\"1\"} 700\n"), std::string::npos) << text;
  EXPECT_NE(text.find("polymap_map_probe_length_bucket{" + l + ",le=\"2\"} 740\n"), std::string::npos);
  EXPECT_NE(text.find("polymap_map_probe_length_bucket{" + l + ",le=\"4\"} 750\n"), std::string::npos);
  EXPECT_NE(text.find("polymap_map_probe_length_bucket{" + l + ",le=\"+Inf\"} 750\n"), std::string::npos);
  // 700*1 + 40*2 + 9*3 + 1*4
  EXPECT_NE(text.find("polymap_map_probe_length_sum{" + l + "} 811\n"), std::string::npos);
  EXPECT_NE(text.find("polymap_map_probe_length_count{" + l + "} 750\n"), std::string::npos);
}

TEST(Metrics, SeveralMapsShareOneHelpBlockAndLabelsAreEscaped) {
  polymap::locked_map<> live;
  for (int i = 0; i < 100; ++i) live.insert_or_assign("k" + std::to_string(i), i);
  auto odd = sample_stats();
  odd.probe_length_histogram.clear();  // a map that cannot measure probes
  const std::string text = polymap::to_prometheus({{"config \"main\"\\\nx", live.stats()}, {"empty-histogram", odd}});
  EXPECT_NE(text.find("instance=\"config \\\"main\\\"\\\\\\nx\",type=\"locked_map\""), std::string::npos) << text;
  std::size_t helps = 0;
  for (auto pos = text.find("# HELP polymap_map_entries "); pos != std::string::npos;
       pos = text.find("# HELP polymap_map_entries ", pos + 1))
    ++helps;
  EXPECT_EQ(helps, 1u);
  EXPECT_NE(text.find("polymap_map_entries{instance=\"empty-histogram\",type=\"concurrent_map\"} 750"),
            std::string::npos);
  EXPECT_NE(text.find("polymap_map_probe_length_count{instance=\"empty-histogram\",type=\"concurrent_map\"} 0"),
            std::string::npos);
  expect_valid(text);
}

// Every map's own stats() on one page, as a service would expose them.
TEST(Metrics, EveryMapsStatsPassPromtool) {
  std::vector<polymap::named_stats> page;
  polymap::locked_map<> locked;
  for (int i = 0; i < 1000; ++i) locked.insert_or_assign("k" + std::to_string(i), i);
  page.push_back({"locked", locked.stats()});
#if __has_include("polymap/concurrent_map.hpp")
  polymap::concurrent_map<> concurrent;
  for (int i = 0; i < 1000; ++i) concurrent.insert_or_assign("k" + std::to_string(i), i);
  page.push_back({"concurrent", concurrent.stats()});
#endif
#if __has_include("polymap/snapshot_map.hpp")
  polymap::snapshot_map<> snapshot;
  for (int i = 0; i < 1000; ++i) snapshot.insert_or_assign("k" + std::to_string(i), i);
  page.push_back({"snapshot", snapshot.stats()});
#endif
  const std::string text = polymap::to_prometheus(page);
  for (const auto& m : page) {
    EXPECT_NE(text.find("polymap_map_entries{instance=\"" + m.instance + "\",type=\"" + m.stats.map + "\"} 1000\n"),
              std::string::npos)
        << text;
  }
  expect_valid(text);
}

}  // namespace

// The read-while-publishing benchmark (bench/publish.hpp): bad settings are
// refused with the option's name, and a tiny run fills every cell and row
// with correct reads. Speed is never checked here.
#include <gtest/gtest.h>

#ifdef POLYMAP_HAVE_BENCH

#include <stdexcept>
#include <string>

#include "bench/publish.hpp"

namespace {

namespace pb = polymap::bench::publish;

TEST(BenchPublish, ValidateNamesTheBadOption) {
  EXPECT_EQ(pb::validate(pb::settings{}), "");
  auto bad = [](auto change) {
    pb::settings s;
    change(s);
    return pb::validate(s);
  };
  EXPECT_NE(bad([](pb::settings& s) { s.readers = {1, 0}; }).find("--readers"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) { s.readers = {}; }).find("--readers"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) { s.period_us = 0; }).find("--period-us"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) { s.duration = 0; }).find("--duration"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) { s.repeats = 0; }).find("--repeats"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) { s.size = 0; }).find("--size"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) {
              s.size = 10;
              s.batch = 11;
            }).find("--batch"),
            std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) { s.maps = {"nosuch"}; }).find("nosuch"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) { s.latency_sizes = {0}; }).find("--latency-sizes"), std::string::npos);
  EXPECT_NE(bad([](pb::settings& s) {
              s.throughput = false;
              s.latency = false;
            }),
            "");
  EXPECT_EQ(bad([](pb::settings& s) {
              s.latency_sizes = {};
              s.latency = false;
            }),
            "");
  pb::settings s;
  s.period_us = 0;
  EXPECT_THROW(pb::run(s), std::invalid_argument);
}

TEST(BenchPublish, ParsesValueKinds) {
  EXPECT_EQ(pb::parse_value_kind("u64"), pb::value_kind::u64);
  EXPECT_EQ(pb::parse_value_kind("value"), pb::value_kind::value);
  EXPECT_FALSE(pb::parse_value_kind("double").has_value());
}

TEST(BenchPublish, TinyRunFillsEveryCellWithCorrectReads) {
  pb::settings s;
  s.size = 1000;
  s.readers = {1, 2};
  s.duration = 0.02;
  s.period_us = 500;
  s.repeats = 2;
  s.batch = 8;  // snapshot_map's readers check whole batches
  s.values = {pb::value_kind::u64, pb::value_kind::value};
  s.latency_sizes = {300, 700};
  s.latency_writes = 50;
  std::size_t progress_calls = 0;
  const pb::results r = pb::run(s, [&](const pb::progress& p) {
    ++progress_calls;
    EXPECT_LE(p.done, p.total);
  });
  EXPECT_GT(progress_calls, 0u);

  // 2 value types x 3 maps x 2 reader counts x writer off/on.
  ASSERT_EQ(r.cells.size(), 2u * 3 * 2 * 2);
  for (const auto& c : r.cells) {
    SCOPED_TRACE(c.map + " readers=" + std::to_string(c.readers) + (c.writer ? " writer" : " idle"));
    ASSERT_EQ(c.samples.size(), 2u);
    for (const auto& smp : c.samples) {
      ASSERT_EQ(smp.reader_mops.size(), static_cast<std::size_t>(c.readers));
      EXPECT_GE(smp.ops, 256u * static_cast<unsigned>(c.readers));  // each reader polls after 256 finds
      EXPECT_EQ(smp.hits, smp.ops);                                 // every key is present throughout
      if (!c.writer) {
        EXPECT_EQ(smp.publishes, 0u);
        EXPECT_EQ(smp.checks, 0u);
      }
      // A slot is written only once it is due, so never more than the window holds
      // (plus the one the writer may start as the stop is raised).
      EXPECT_LE(smp.publishes, smp.scheduled + 1);
    }
    EXPECT_EQ(c.misses, 0u);
    EXPECT_EQ(c.bad_values, 0u);
    EXPECT_EQ(c.violations, 0u);
    if (c.map != "snapshot_map") {
      EXPECT_EQ(c.checks, 0u);
    }
    EXPECT_EQ(c.vs_idle.has_value(), c.writer && c.mops > 0);
    if (c.map == pb::reference_map && c.mops > 0) {
      ASSERT_TRUE(c.vs_reference.has_value());
      EXPECT_DOUBLE_EQ(*c.vs_reference, 1.0);
    }
  }

  // 2 value types x 2 sizes x 3 maps.
  ASSERT_EQ(r.latency.size(), 2u * 2 * 3);
  for (const auto& l : r.latency) {
    EXPECT_EQ(l.writes, 50u);
    EXPECT_LE(l.median_us, l.p99_us);
    EXPECT_LE(l.p99_us, l.max_us);
  }

  const std::string table = pb::render_table(r);
  for (const char* m : {"snapshot_map", "concurrent_map", "locked_map"}) EXPECT_NE(table.find(m), std::string::npos);
  EXPECT_NE(table.find("insert_or_assign latency"), std::string::npos);

  const auto j = nlohmann::json::parse(pb::to_json(r).dump());
  EXPECT_EQ(j.at("schema"), "polymap-bench-publish/1");
  EXPECT_EQ(j.at("throughput").size(), r.cells.size());
  EXPECT_EQ(j.at("write_latency").size(), r.latency.size());
  EXPECT_EQ(j.at("throughput").at(0).at("repeats").size(), 2u);
}

TEST(BenchPublish, MapsFilterKeepsTableOrder) {
  pb::settings s;
  s.size = 100;
  s.readers = {1};
  s.duration = 0.005;
  s.repeats = 1;
  s.maps = {"locked_map", "snapshot_map"};
  s.latency = false;
  const auto r = pb::run(s);
  ASSERT_EQ(r.cells.size(), 4u);
  EXPECT_EQ(r.cells[0].map, "snapshot_map");
  EXPECT_EQ(r.cells[2].map, "locked_map");
  EXPECT_TRUE(r.latency.empty());
}

}  // namespace

#endif  // POLYMAP_HAVE_BENCH

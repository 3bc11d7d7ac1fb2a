// The lab's verdicts: polymap's maps must read "safe"; the naive container's
// row must be counted honestly (its outcome varies run to run: it is UB).
#include <gtest/gtest.h>

#include "lab/lab.hpp"

namespace lab = polymap::lab;

namespace {
const lab::scenario& find_scenario(const std::string& name) {
  for (const auto& s : lab::scenarios()) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no scenario " + name);
}
}  // namespace

TEST(Lab, ArticleScenarioLockedMapIsSafe) {
  lab::options opt;
  opt.rounds = 20;
  auto rows = find_scenario("article").run(opt);
  ASSERT_EQ(rows.size(), 2u);
  const auto& naive = rows[0];
  const auto& locked = rows[1];
  EXPECT_EQ(locked.container, "polymap::locked_map");
  EXPECT_EQ(locked.rounds, 20);
  EXPECT_EQ(locked.crashes + locked.lost + locked.wrong, 0);
  EXPECT_EQ(locked.outcome, lab::verdict::safe);
  if (lab::built_with_tsan()) {
    EXPECT_EQ(naive.rounds, 0);  // skipped: TSan would report the race itself
  } else {
    EXPECT_EQ(naive.rounds, 20);
    // Either verdict is honest; which one depends on the schedule. It must
    // match the counts.
    EXPECT_EQ(naive.outcome == lab::verdict::anomaly, naive.crashes + naive.lost + naive.wrong > 0);
  }
}

TEST(Lab, ContainedCrashIsCounted) {
  lab::round_counts c;
  EXPECT_FALSE(lab::run_contained([]() -> lab::round_counts { std::abort(); }, c, true));
  EXPECT_TRUE(lab::run_contained([] { return lab::round_counts{2, 3}; }, c, true));
  EXPECT_EQ(c.lost, 2);
  EXPECT_EQ(c.wrong, 3);
}

TEST(Lab, VerdictsFollowCounts) {
  lab::row r;
  EXPECT_EQ(lab::polymap_verdict(r), lab::verdict::safe);
  EXPECT_EQ(lab::naive_verdict(r), lab::verdict::silent_ub);
  r.lost = 1;
  EXPECT_EQ(lab::polymap_verdict(r), lab::verdict::failed);
  EXPECT_EQ(lab::naive_verdict(r), lab::verdict::anomaly);
  auto table = lab::render_table({r});
  EXPECT_NE(table.find("lost entries"), std::string::npos);
  auto json = lab::render_json({r});
  EXPECT_NE(json.find("\"lost_entries\": 1"), std::string::npos);
}

// The check_then_act scenario's detector column (tools/polymap/lab/
// stale_detector.hpp): stale_checked<> on the naive check-then-act programs.
// Whether updates are lost depends on scheduling; what is asserted is that
// every loss is explained by the reports, whatever it is.
#include "lab/hazard_cases.hpp"  // first: it selects checked references
#include "lab/stale_detector.hpp"

#include <gtest/gtest.h>

#include <string>

#include "lab/lab.hpp"

namespace {

using namespace polymap::lab;

TEST(LabStaleDetector, GetThenSetLossIsExplainedByReports) {
  const auto c = stale::get_then_set(5000);
  EXPECT_EQ(c.attempts, 10000);
  EXPECT_GE(c.overwritten, c.lost);
  EXPECT_GE(c.overwritten, c.reports);  // each report overwrote at least one write
  if (c.lost > 0) {
    EXPECT_GE(c.reports, 1);
  }
}

TEST(LabStaleDetector, ContainsThenInsertReportsEveryFailedClaim) {
  const auto c = stale::contains_then_insert(2000);
  // Each lost claim is one insert that found the key another thread created
  // after this thread's contains(): one report each, nothing else reported.
  EXPECT_EQ(c.reports, c.lost);
  EXPECT_EQ(c.overwritten, c.lost);
}

TEST(LabStaleDetector, ScenarioRowsShowTheDetector) {
  options o;
  o.rounds = 2;
  o.sanitizer_children = false;
  const scenario* s = nullptr;
  for (const auto& x : scenarios()) {
    if (x.name == "check_then_act") s = &x;
  }
  ASSERT_NE(s, nullptr);
  const auto rows = s->run(o);
  int naive = 0;
  for (const auto& r : rows) {
    if (is_polymap_row(r)) continue;
    ++naive;
    EXPECT_EQ(r.detector.rfind("stale_checked<>: reported ", 0), 0u) << r.detector;
  }
  EXPECT_EQ(naive, 2);
}

}  // namespace

// The lab's check-then-act demonstration shows lost updates in every run,
// also while another thread keeps a core busy (a 2-core machine with a build
// running): its window is widened deterministically (cases::widened_window).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "lab/hazard_cases.hpp"
#include "lab/lab.hpp"

namespace lab = polymap::lab;

namespace {

// Keeps one core busy for its lifetime.
class busy_core {
 public:
  busy_core()
      : t_([this] {
          // relaxed: a stop flag; nothing else is published through it
          while (!stop_.load(std::memory_order_relaxed)) spins_.fetch_add(1, std::memory_order_relaxed);
        }) {}
  ~busy_core() {
    stop_.store(true, std::memory_order_relaxed);  // relaxed: see the loop
    t_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> spins_{0};
  std::thread t_;
};

const lab::scenario& check_then_act() {
  for (const auto& s : lab::scenarios()) {
    if (s.name == "check_then_act") return s;
  }
  throw std::runtime_error("no scenario check_then_act");
}

TEST(LabCheckThenAct, EveryRoundLosesUpdatesWithACoreBusy) {
  busy_core busy;
  for (int i = 0; i < 5; ++i) {
    EXPECT_GT(lab::cases::get_then_set_naive(2000).lost, 0) << "round " << i;
    EXPECT_GT(lab::cases::contains_then_insert_naive(1000).lost, 0) << "round " << i;
  }
}

TEST(LabCheckThenAct, ScenarioReportsLostUpdatesAndSaysTheWindowIsWidened) {
  busy_core busy;
  lab::options opt;
  opt.rounds = 1;
  opt.sanitizer_children = false;
  const auto rows = check_then_act().run(opt);
  ASSERT_EQ(rows.size(), 4u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_GT(rows[i].lost, 0) << rows[i].container;
    EXPECT_EQ(rows[i].outcome, lab::verdict::anomaly) << rows[i].container;
    EXPECT_NE(rows[i].note.find("window widened"), std::string::npos) << rows[i].note;
  }
  for (int i = 2; i < 4; ++i) {
    EXPECT_EQ(rows[i].lost, 0) << rows[i].container;  // update() and insert_or_visit(): one step under one lock
    EXPECT_EQ(rows[i].outcome, lab::verdict::safe) << rows[i].container;
  }
}

}  // namespace

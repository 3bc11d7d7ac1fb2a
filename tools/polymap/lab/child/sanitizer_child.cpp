// polymap_lab_tsan / polymap_lab_asan — one naive case of the hazard lab, run
// under ThreadSanitizer or AddressSanitizer (the same source, built twice).
//
//   polymap_lab_tsan CASE     runs one round of CASE, prints
//                             "counts lost=N wrong=N reports=N", exits 0
//   polymap_lab_tsan --list   lists the cases
//
// The lab (lab.cpp, run_sanitizer_child) starts it, reads its output and
// turns the sanitizer's reports, or their absence, into the table's TSan and
// ASan columns. Sizes are small: a sanitizer needs one occurrence, not
// statistics, and the child must stay fast under instrumentation.
#include <any>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "hazard_cases.hpp"

namespace cases = polymap::lab::cases;
using polymap::lab::round_counts;

namespace {

// The article's program (scenario 1): 50 threads write one unlocked map.
round_counts article() {
  std::unordered_map<std::string, std::any> m;
  std::latch start(50);
  std::vector<std::thread> threads;
  for (int id = 0; id < 50; ++id) {
    threads.emplace_back([&, id] {
      start.arrive_and_wait();
      if (id % 2 == 0)
        m["key-" + std::to_string(id)] = std::int64_t{id};
      else
        m["key-" + std::to_string(id)] = std::vector<std::uint8_t>(2048, 1);
    });
  }
  for (auto& t : threads) t.join();
  round_counts c;
  c.lost = 50 - static_cast<std::int64_t>(m.size());
  return c;
}

struct case_entry {
  const char* name;
  round_counts (*run)();
};

const case_entry kCases[] = {
    {"article", &article},
    {"torn", [] { return cases::torn_naive(20000); }},
    {"get_then_set", [] { return cases::get_then_set_naive(2000); }},
    {"contains_then_insert", [] { return cases::contains_then_insert_naive(500); }},
    {"masked_race", [] { return cases::masked_naive(100, true); }},
    {"masked_race_without_logger", [] { return cases::masked_naive(100, false); }},
    {"ref_after_erase", [] { return cases::ref_after_erase_naive(50); }},
    {"ref_after_overwrite", [] { return cases::ref_after_overwrite_naive(50); }},
    {"shared_in_place", [] { return cases::shared_in_place_naive(2000); }},
    {"load_then_store", [] { return cases::load_then_store_naive(2000); }},
    // Scenario 7: one racing pair per run; the lab runs the child once per round.
    {"tsan_shadow_close", [] { return cases::shadow_naive(cases::shadow_mode::close, 0, 0); }},
    {"tsan_shadow_far", [] { return cases::shadow_naive(cases::shadow_mode::far, cases::kShadowFarWork, 0); }},
    {"tsan_shadow_crowded",
     [] { return cases::shadow_naive(cases::shadow_mode::crowded, cases::kShadowHelperWork, cases::kShadowHelpers); }},
    {"tsan_shadow_crowded_control",
     [] {
       return cases::shadow_naive(cases::shadow_mode::crowded_control, cases::kShadowHelperWork, cases::kShadowHelpers);
     }},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: %s CASE | --list\n", argv[0]);
    return argc == 2 ? 0 : 2;
  }
  const std::string_view want = argv[1];
  for (const auto& c : kCases) {
    if (want == "--list") {
      std::printf("%s\n", c.name);
    } else if (want == c.name) {
      const round_counts r = c.run();
      std::printf("counts lost=%lld wrong=%lld reports=%lld\n", static_cast<long long>(r.lost),
                  static_cast<long long>(r.wrong), static_cast<long long>(r.reports));
      return 0;
    }
  }
  if (want == "--list") return 0;
  std::fprintf(stderr, "%s: unknown case '%s' (try --list)\n", argv[0], argv[1]);
  return 2;
}

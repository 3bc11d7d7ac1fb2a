// Scenario 6, "shared_object": the article's sync.Map case. The map holds a
// pointer to a counter object; the map's lock makes the key -> pointer step
// atomic, not what happens to the object. Mutating it in place after the read
// is a data race (ThreadSanitizer reports it) and loses updates; copying,
// modifying and storing a new object is race-free but still loses updates
// between the load and the store (TSan silent). polymap's values are
// immutable and update() makes the read-modify-write one step: 0 lost.
#include "hazard_cases.hpp"  // first: it selects checked references

#include <algorithm>

#include <fmt/format.h>

#include "lab.hpp"

namespace polymap::lab {
namespace {

constexpr int kIncrements = 20000;  // per thread and round

std::vector<row> run(const options& opt) {
  const int rounds = std::min(opt.rounds, 10);
  std::vector<row> rows;

  for (const bool in_place : {true, false}) {
    row naive;
    naive.scenario = "shared_object";
    naive.container = in_place ? "shared_ptr value mutated in place" : "load, copy, store new object";
    const auto cells = measure_sanitizers(in_place ? "shared_in_place" : "load_then_store", opt);
    naive.tsan = cells.tsan;
    naive.asan = cells.asan;
    naive.detector = in_place ? "none applies: the write is to the object, not a map access"
                              : "none applies: not a data race (an atomicity violation)";
    if (auto why = skip_reason(in_place, false); !why.empty()) {
      naive.outcome = verdict::silent_ub;
      naive.outcome_text = "not run";
      naive.note = why;
    } else {
      run_rounds(
          naive, rounds, in_place,
          [in_place] {
            return in_place ? cases::shared_in_place_naive(kIncrements) : cases::load_then_store_naive(kIncrements);
          },
          opt);
      naive.outcome = naive.crashes || naive.lost || naive.wrong ? verdict::anomaly
                      : in_place                                 ? verdict::silent_ub
                                                                 : verdict::not_seen;
      naive.outcome_text =
          fmt::format("{} of {} increments lost", naive.lost, std::int64_t{2} * kIncrements * naive.rounds);
    }
    rows.push_back(naive);
  }

  row safe;
  safe.scenario = "shared_object";
  safe.container = "immutable value + locked_map::update";
  run_rounds(
      safe, rounds, false, [] { return cases::shared_polymap(kIncrements); }, opt);
  safe.outcome = polymap_verdict(safe);
  safe.outcome_text = fmt::format("{} of {} increments lost", safe.lost, std::int64_t{2} * kIncrements * rounds);
  rows.push_back(safe);
  return rows;
}

const registrar reg{
    {"shared_object", "a value object shared by pointer and mutated after being read (sync.Map)", &run, 6}};

}  // namespace
}  // namespace polymap::lab

// Differential fuzzing of locked_map against std::unordered_map (differential.hpp).
#include "differential.hpp"
#include "polymap/locked_map.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  polymap::fuzz::run_differential<polymap::locked_map<>>(data, size);
  return 0;
}

// Differential fuzzing of concurrent_map<std::uint64_t, std::uint64_t> (word
// keys and values in the slots) against std::unordered_map (differential.hpp);
// the key pool has 0, all ones and keys equal in their low 32 bits.
#include "differential.hpp"
#include "polymap/concurrent_map.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  polymap::fuzz::run_differential<polymap::concurrent_map<std::uint64_t, std::uint64_t>>(data, size);
  // Free the retired tables, so every input ends with as many frees as
  // mallocs (see fuzz_concurrent_map.cpp).
  polymap::detail::epoch_domain::global().barrier();
  return 0;
}

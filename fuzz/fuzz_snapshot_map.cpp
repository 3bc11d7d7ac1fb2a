// Differential fuzzing of snapshot_map against std::unordered_map (differential.hpp).
#include "differential.hpp"
#include "polymap/snapshot_map.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  polymap::fuzz::run_differential<polymap::snapshot_map<>>(data, size);
  // Free what the map retired to its epoch domain, so that every input ends
  // with as many frees as mallocs (otherwise libFuzzer runs a leak check after
  // each input, a hundredfold slowdown) and real leaks still show.
  polymap::detail::epoch_domain::global().barrier();
  return 0;
}

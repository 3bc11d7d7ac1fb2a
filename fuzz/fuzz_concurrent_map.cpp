// Differential fuzzing of concurrent_map against std::unordered_map (differential.hpp).
#include "differential.hpp"
#include "polymap/concurrent_map.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  polymap::fuzz::run_differential<polymap::concurrent_map<>>(data, size);
  // The same input with short string keys in their slots (inline_string_key).
  polymap::fuzz::run_differential<
      polymap::concurrent_map<std::string, polymap::value, polymap::hash<std::string>, polymap::key_equal<std::string>,
                              polymap::inline_string_traits>>(data, size);
  // Free what the map retired to its epoch domain, so that every input ends
  // with as many frees as mallocs (otherwise libFuzzer runs a leak check after
  // each input, a hundredfold slowdown) and real leaks still show.
  polymap::detail::epoch_domain::global().barrier();
  return 0;
}

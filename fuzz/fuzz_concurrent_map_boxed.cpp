// Differential fuzzing of concurrent_map with a 64-byte value (the boxed
// codec: an immutable box behind the slot's word) against std::unordered_map
// (differential.hpp). The first byte chooses the key: odd, std::string keys
// from the pool (short and long: key blocks); even, a two-word key (boxed_key).
#include "../tests/wide_types.hpp"
#include "differential.hpp"
#include "polymap/concurrent_map.hpp"

template <>
struct polymap::fuzz::fuzz_keys<polymap::testing::pair_key> {
  // Pairs that share one word, and the extremes.
  static polymap::testing::pair_key of(unsigned i) {
    i %= 16;
    return {i / 4 == 3 ? ~std::uint64_t{0} : i / 4, i % 4 == 3 ? ~std::uint64_t{0} : i % 4};
  }
};

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using polymap::testing::big_value;
  if (size == 0) return 0;
  if (data[0] & 1)
    polymap::fuzz::run_differential<polymap::concurrent_map<std::string, big_value>>(data + 1, size - 1);
  else
    polymap::fuzz::run_differential<polymap::concurrent_map<polymap::testing::pair_key, big_value>>(data + 1, size - 1);
  // Free the retired boxes, key blocks and tables, so every input ends with
  // as many frees as mallocs (see fuzz_concurrent_map.cpp).
  polymap::detail::epoch_domain::global().barrier();
  return 0;
}

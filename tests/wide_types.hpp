// tests/wide_types.hpp — a key and a value too wide for a slot word, so that
// concurrent_map keeps them behind a word (boxed_key, boxed_codec): used by
// the typed conformance suite and the linearizability stress.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "polymap/detail/hash.hpp"

namespace polymap::testing {

// A 64-byte trivially copyable value; every word is derived from the first,
// so a value pieced together from two writes shows as a mismatch.
struct big_value {
  std::uint64_t w[8] = {};
  static big_value of(std::uint64_t n) noexcept {
    big_value b;
    for (std::uint64_t j = 0; j < 8; ++j) b.w[j] = n ^ (j * 0x9E3779B97F4A7C15ull);
    return b;
  }
  std::uint64_t number() const noexcept { return w[0]; }
  bool operator==(const big_value&) const = default;
};
static_assert(sizeof(big_value) == 64);

// Two words of key: neither word-sized nor a string.
struct pair_key {
  std::uint64_t a = 0, b = 0;
  bool operator==(const pair_key&) const = default;
};

}  // namespace polymap::testing

template <>
struct std::hash<polymap::testing::pair_key> {
  std::size_t operator()(const polymap::testing::pair_key& k) const noexcept {
    return polymap::detail::mix64(k.a * 0x9E3779B97F4A7C15ull + k.b);
  }
};
template <>
struct std::hash<polymap::testing::big_value> {
  std::size_t operator()(const polymap::testing::big_value& v) const noexcept { return polymap::detail::mix64(v.w[0]); }
};

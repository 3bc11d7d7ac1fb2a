// polymap/detail/hash.hpp — the default hash: strong mixing for every key type.
//
// Open addressing takes its probe start from the low bits and its 7-bit tag
// from the high bits of one 64-bit hash, so every bit must depend on every key
// bit. libstdc++'s std::hash of an integer is the identity, which puts
// sequential keys in sequential slots and gives every key the same tag; so
// integers go through a 128-bit multiply-fold mixer, strings through XXH3, and
// anything else through std::hash and then the mixer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace polymap {
namespace detail {

// Multiply by a 64-bit odd constant (2^64 / golden ratio) into 128 bits and fold
// the halves: a bijection-quality avalanche in two instructions (mul, xor).
__extension__ typedef unsigned __int128 uint128;  // GCC and Clang both have it

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  const uint128 r = static_cast<uint128>(x) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

template <class K>
constexpr bool is_string_like = std::is_convertible_v<const K&, std::string_view>;

}  // namespace detail

// polymap::hash<K>: transparent for strings (std::string, std::string_view and
// const char* hash alike), and avalanching: Boost.Unordered reads the
// is_avalanching marker and skips its own post-mix.
template <class K, class = void>
struct hash {
  using is_avalanching = void;
  std::size_t operator()(const K& k) const noexcept(noexcept(std::hash<K>{}(k))) {
    if constexpr (std::is_integral_v<K> || std::is_enum_v<K> || std::is_pointer_v<K>) {
      std::uint64_t bits;
      if constexpr (std::is_pointer_v<K>)
        bits = reinterpret_cast<std::uintptr_t>(k);
      else
        bits = static_cast<std::uint64_t>(k);
      return detail::mix64(bits);
    } else {
      return detail::mix64(std::hash<K>{}(k));
    }
  }
};

template <class K>
struct hash<K, std::enable_if_t<detail::is_string_like<K>>> {
  using is_transparent = void;
  using is_avalanching = void;
  std::size_t operator()(std::string_view s) const noexcept { return XXH3_64bits(s.data(), s.size()); }
};

// The default key equality: transparent for strings.
template <class K>
using key_equal = std::conditional_t<detail::is_string_like<K>, std::equal_to<>, std::equal_to<K>>;

// The identity hash libstdc++ gives integers; for experiments (hashstat) only.
template <class K>
struct identity_hash {
  std::size_t operator()(const K& k) const noexcept { return static_cast<std::size_t>(k); }
};

}  // namespace polymap

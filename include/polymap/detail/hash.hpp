// polymap/detail/hash.hpp — the default hash: strong mixing for every key type.
//
// Open addressing takes its probe start from the low bits and its 7-bit tag
// from the high bits of one 64-bit hash, so every bit must depend on every key
// bit. libstdc++'s std::hash of an integer is the identity, which puts
// sequential keys in sequential slots and gives every key the same tag; so
// integers go through a 128-bit multiply-fold mixer, strings through XXH3, and
// anything else through std::hash and then the mixer.
//
// SEED
//   Every polymap::hash object carries a 64-bit seed, taken when it is
//   constructed from the process seed: random per process (getrandom), or
//   POLYMAP_HASH_SEED from the environment (decimal or 0x-hex) for
//   reproducible tests and benchmarks, or set_hash_seed() at startup. A map
//   keeps its hasher, so it keeps its seed for life. Why: without a seed, keys
//   crafted offline to share their low hash bits turn every lookup into a
//   long probe (measured before seeding: 3,000 such keys made lookups 20x
//   slower); with one, an attacker who cannot read the seed cannot aim.
//   As in Abseil and Go, the seed defends against offline crafting, not
//   against an attacker who can time lookups adaptively.
#pragma once

#include <sys/random.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
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

// The process seed: POLYMAP_HASH_SEED if set and valid, else random.
inline std::uint64_t initial_hash_seed() noexcept {
  if (const char* env = std::getenv("POLYMAP_HASH_SEED"); env && *env) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 0);
    if (end && *end == '\0') return v;
  }
  std::uint64_t s = 0;
  if (::getrandom(&s, sizeof s, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof s)) {
    // No entropy yet (early boot): the address of a local and the clock
    // still differ between processes, which is what the seed is for.
    std::uint64_t local = 0;
    s = reinterpret_cast<std::uintptr_t>(&local) ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return s;
}

inline std::atomic<std::uint64_t>& hash_seed_word() noexcept {
  static std::atomic<std::uint64_t> seed{initial_hash_seed()};
  return seed;
}

}  // namespace detail

// The seed that hash objects constructed from now on take.
// relaxed: the seed is a value, not a publication; a hasher that reads an
// older seed is still a consistent hasher (it keeps what it read).
inline std::uint64_t hash_seed() noexcept {
  return detail::hash_seed_word().load(std::memory_order_relaxed);
}
// Sets the process seed for hash objects (and so maps) constructed after the
// call; existing maps keep theirs. Call it at startup, before any map exists:
// code that hashes with temporary hash objects (a user's own, or the bench's
// sharded adapter) would disagree with maps created before the change.
inline void set_hash_seed(std::uint64_t seed) noexcept {
  detail::hash_seed_word().store(seed, std::memory_order_relaxed);
}

// polymap::hash<K>: transparent for strings (std::string, std::string_view and
// const char* hash alike), and avalanching: Boost.Unordered reads the
// is_avalanching marker and skips its own post-mix.
// Integers: the seed is xor-ed in before the mixer (a bijection per seed, so
// no two keys collide in all 64 bits; which keys share low bits depends on
// the seed). Strings: XXH3's own seeded variant.
template <class K, class = void>
struct hash {
  using is_avalanching = void;
  std::uint64_t seed = hash_seed();
  std::size_t operator()(const K& k) const noexcept(noexcept(std::hash<K>{}(k))) {
    if constexpr (std::is_integral_v<K> || std::is_enum_v<K> || std::is_pointer_v<K>) {
      std::uint64_t bits;
      if constexpr (std::is_pointer_v<K>)
        bits = reinterpret_cast<std::uintptr_t>(k);
      else
        bits = static_cast<std::uint64_t>(k);
      return detail::mix64(bits ^ seed);
    } else {
      return detail::mix64(std::hash<K>{}(k) ^ seed);
    }
  }
};

template <class K>
struct hash<K, std::enable_if_t<detail::is_string_like<K>>> {
  using is_transparent = void;
  using is_avalanching = void;
  std::uint64_t seed = hash_seed();
  std::size_t operator()(std::string_view s) const noexcept { return XXH3_64bits_withSeed(s.data(), s.size(), seed); }
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

// polymap/detail/slot_codec.hpp — what concurrent_map's slot words hold:
// the value codecs (word_codec, value_codec, boxed_codec) and the key
// policies (word_key, string_key, inline_string_key, boxed_key) that
// inline_table.hpp is parameterized on: one table core, the slot layout a
// policy (issue 15).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "polymap/detail/hash.hpp"
#include "polymap/detail/inline.hpp"
#include "polymap/value.hpp"

namespace polymap::detail {

// A type that travels as one 64-bit word: trivially copyable, at most 8
// bytes, not string-like (a const char* key compares by pointer).
template <class T>
inline constexpr bool word_sized_v = std::is_trivially_copyable_v<T>&& std::is_default_constructible_v<T> &&
                                     sizeof(T) <= 8 && !is_string_like<T>;

// How a key or a word-sized value becomes words and back.
template <class T>
struct word_codec {
  static constexpr std::size_t kWords = 1;
  using words = std::array<std::uint64_t, 1>;
  static constexpr bool kOwns = false;  // nothing to release or retire

  static words take(T&& x) noexcept { return encode(x); }
  static words encode(const T& x) noexcept {
    words w{0};
    std::memcpy(&w[0], &x, sizeof(T));
    return w;
  }
  static T decode(const words& w) noexcept {
    T x{};
    std::memcpy(&x, &w[0], sizeof(T));
    return x;
  }
  static T copy(const words& w) noexcept { return decode(w); }
  template <class F>
  static decltype(auto) borrow(const words& w, F&& f) {
    const T x = decode(w);
    return std::forward<F>(f)(x);
  }
  static void release(const words&) noexcept {}
  static void* payload(const words&) noexcept { return nullptr; }
  static void drop(void*) noexcept {}
};

// polymap::value: {payload word, kind}. The words own one payload reference.
struct value_codec {
  static constexpr std::size_t kWords = 2;
  using words = value_bits::words;
  static constexpr bool kOwns = true;

  static words take(value&& v) noexcept { return value_bits::take(std::move(v)); }
  // Precondition (copy, borrow): the caller is pinned in the epoch domain
  // that retires the table's references, so the payload is alive.
  static value copy(const words& w) noexcept { return value_bits::copy(w); }
  // Calls f(const value&) on a value that shares the words' payload without
  // taking a reference (no write to the payload): built in storage that is
  // never destroyed, so it never drops the reference it did not take.
  template <class F>
  static decltype(auto) borrow(const words& w, F&& f) {
    union holder {
      holder() {}
      ~holder() {}
      value v;
    } h;
    new (&h.v) value(value_bits::adopt(w));
    return std::forward<F>(f)(static_cast<const value&>(h.v));
  }
  static void release(const words& w) noexcept {
    const value v = value_bits::adopt(w);  // drops the words' reference when it goes
    (void)v;
  }
  static void* payload(const words& w) noexcept { return value_bits::payload(w); }
  static void drop(void* p) noexcept { value_bits::drop(p); }
};

// Any other V: an immutable box behind one word. A write stores a new box
// and retires the old one (as a node was); readers copy or borrow the box
// they validated, kept alive by the epoch pin.
template <class V>
struct boxed_codec {
  static constexpr std::size_t kWords = 1;
  using words = std::array<std::uint64_t, 1>;
  static constexpr bool kOwns = true;

  static words take(V&& v) { return {reinterpret_cast<std::uintptr_t>(new V(std::move(v)))}; }  // may throw
  static const V& get(const words& w) noexcept { return *static_cast<const V*>(payload(w)); }
  static V copy(const words& w) { return get(w); }
  template <class F>
  static decltype(auto) borrow(const words& w, F&& f) {
    return std::forward<F>(f)(get(w));
  }
  static void release(const words& w) noexcept { drop(payload(w)); }
  static void* payload(const words& w) noexcept { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(w[0])); }
  static void drop(void* p) noexcept { delete static_cast<V*>(p); }
};

template <class V>
using value_codec_for = std::conditional_t<std::is_same_v<V, value>, value_codec,
                                           std::conditional_t<word_sized_v<V>, word_codec<V>, boxed_codec<V>>>;

// KEY POLICIES: how a key becomes the slot's key word, and how a lookup
// tests a key word (only on words validated by the seqlock, or under the
// group lock).
//   word_key<K>: the key's bits (word_sized_v keys).
//   string_key : a pointer to an immutable key_block {hash, size, bytes},
//     allocated once when the key is inserted and never replaced while the
//     key lives (an overwrite stores value words only). Erase retires the
//     block through the epoch, as a value payload. Why a block and not the
//     bytes in the slot: a slot stays 8 + 8 * VW bytes whatever the key's
//     length, and the stored hash rejects most tag collisions before the
//     bytes are read.
//   A reader that loaded a key word and validated its group's version may
//   dereference it: the block was in the table at that instant and the
//   reader was pinned before it, so it is not freed before the reader unpins.
template <class K>
struct word_key {
  using kword = std::uint64_t;            // the slot's key: one word (inline_string_key: more)
  static constexpr bool kOwns = false;    // nothing to free or retire
  static constexpr bool kHashed = false;  // the hash is recomputed from the key
  static std::uint64_t make(const K& k, std::size_t) noexcept { return word_codec<K>::encode(k)[0]; }
  static K decode(std::uint64_t w) noexcept { return word_codec<K>::decode({w}); }
  static K key_of(std::uint64_t w) noexcept { return decode(w); }
  template <class Q, class Eq>
  POLYMAP_ALWAYS_INLINE static bool match(std::uint64_t w, std::size_t, const Q& q, const Eq& eq) {
    return eq(decode(w), q);
  }
  static std::size_t stored_hash(std::uint64_t) noexcept { return 0; }
  static std::size_t bytes(std::uint64_t) noexcept { return 0; }
  static void free(std::uint64_t) noexcept {}
  static void* block_ptr(std::uint64_t) noexcept { return nullptr; }
  static void drop(void*) noexcept {}
};

struct string_key {
  struct key_block {
    std::size_t hash;
    std::size_t size;
    const char* data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  };
  static_assert(sizeof(key_block) == 16, "key block header: hash and size, then the bytes");
  using kword = std::uint64_t;
  static constexpr bool kOwns = true;
  static constexpr bool kHashed = true;

  // Allocates the block (may throw bad_alloc; nothing else changed yet).
  static std::uint64_t make(std::string_view k, std::size_t hash) {
    void* p = ::operator new(sizeof(key_block) + k.size());
    auto* b = new (p) key_block{hash, k.size()};
    if (!k.empty()) std::memcpy(const_cast<char*>(b->data()), k.data(), k.size());
    return reinterpret_cast<std::uintptr_t>(b);
  }
  POLYMAP_ALWAYS_INLINE static const key_block* block(std::uint64_t w) noexcept {
    return reinterpret_cast<const key_block*>(static_cast<std::uintptr_t>(w));
  }
  static std::string_view key_of(std::uint64_t w) noexcept { return {block(w)->data(), block(w)->size}; }
  static std::string decode(std::uint64_t w) { return std::string(key_of(w)); }
  template <class Q, class Eq>
  POLYMAP_ALWAYS_INLINE static bool match(std::uint64_t w, std::size_t hash, const Q& q, const Eq& eq) {
    const key_block* b = block(w);
    return b->hash == hash && eq(std::string_view(b->data(), b->size), q);
  }
  static bool has_stored_hash(std::uint64_t) noexcept { return true; }
  static std::size_t stored_hash(std::uint64_t w) noexcept { return block(w)->hash; }
  static std::size_t bytes(std::uint64_t w) noexcept { return sizeof(key_block) + block(w)->size; }
  static void* block_ptr(std::uint64_t w) noexcept { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(w)); }
  static void free(std::uint64_t w) noexcept { drop(block_ptr(w)); }
  static void drop(void* p) noexcept { ::operator delete(p); }
};

// A std::string key whose bytes live in its slot when there are at most
// kInlineBytes of them (issue 15): the key word is {hash bits 8-63, size
// << 1, 1} and the bytes fill kExtraWords more words of the slot, read
// with the key word under the seqlock. A longer key is a string_key block
// (bit 0 clear: operator new aligns it). Why: a hit then reads its group's
// first line and its slot's line and nothing else (string_key's block was a
// third dependent miss, 27% of a 1-thread string find's samples). Why 32
// bytes: {key word, 4 byte words, 2 value words, slot lock} is one line.
// A growth rehashes an inline key from its bytes (no stored hash; reading
// 32 local bytes costs less than a block's miss).
struct inline_string_key {
  static constexpr std::size_t kExtraWords = 4;
  static constexpr std::size_t kInlineBytes = 8 * kExtraWords;
  static_assert(std::endian::native == std::endian::little, "equal_words reads the bytes as little-endian words");
  struct kword {
    std::uint64_t w = 0;                // the key word: a block pointer, or {hash bits 8-63, size << 1, 1}
    std::uint64_t b[kExtraWords] = {};  // an inline key's bytes (zero past its size)
    bool operator==(const kword&) const = default;
  };
  static constexpr bool kOwns = true;    // a long key's block
  static constexpr bool kHashed = true;  // a long key's block stores its hash; an inline key is rehashed

  POLYMAP_ALWAYS_INLINE static bool is_inline(const kword& k) noexcept { return (k.w & 1) != 0; }
  // Allocates a block for a long key (may throw bad_alloc; nothing else changed yet).
  static kword make(std::string_view k, std::size_t hash) {
    kword r;
    if (k.size() <= kInlineBytes) {
      r.w = (static_cast<std::uint64_t>(hash) & ~std::uint64_t{0xFF}) | (k.size() << 1) | 1;
      if (!k.empty()) std::memcpy(r.b, k.data(), k.size());
    } else {
      r.w = string_key::make(k, hash);
    }
    return r;
  }
  // A view of the key's bytes: into k itself for an inline key (k must
  // outlive it), into the block for a long one.
  POLYMAP_ALWAYS_INLINE static std::string_view key_of(const kword& k) noexcept {
    if (is_inline(k)) return {reinterpret_cast<const char*>(k.b), static_cast<std::size_t>((k.w >> 1) & 0x7F)};
    return string_key::key_of(k.w);
  }
  static std::string decode(const kword& k) { return std::string(key_of(k)); }
  template <class Q, class Eq>
  POLYMAP_ALWAYS_INLINE static bool match(const kword& k, std::size_t hash, const Q& q, const Eq& eq) {
    if (!is_inline(k)) return string_key::match(k.w, hash, q, eq);
    if (((k.w ^ static_cast<std::uint64_t>(hash)) >> 8) != 0) return false;
    if constexpr (std::is_same_v<Eq, std::equal_to<>> && std::is_convertible_v<const Q&, std::string_view>) {
      const std::string_view s(q);
      return s.size() == ((k.w >> 1) & 0x7F) && equal_words(k, s.data(), s.size());
    } else {
      return eq(key_of(k), q);
    }
  }
  // Whether the n <= kInlineBytes bytes at p are k's (whose bytes past n
  // are zero): word compares against k's words, which stay in registers
  // (a byte compare takes their address, and the copies through memory
  // then missed store-to-load forwarding: 20% of a string find's samples).
  POLYMAP_ALWAYS_INLINE static bool equal_words(const kword& k, const char* p, std::size_t n) noexcept {
    const std::size_t full = n / 8;
#pragma GCC unroll 4
    for (std::size_t i = 0; i < kExtraWords; ++i) {
      if (i < full) {
        if (load8(p + 8 * i) != k.b[i]) return false;
      } else {
        return tail_word(p, n) == k.b[i];
      }
    }
    return true;  // n == kInlineBytes
  }
  // The last n % 8 bytes at p, in a word's low bytes (little-endian, as
  // make's memcpy put them), reading only [p, p + n).
  POLYMAP_ALWAYS_INLINE static std::uint64_t tail_word(const char* p, std::size_t n) noexcept {
    const std::size_t t = n % 8;
    if (t == 0) return 0;
    if (n >= 8) return load8(p + n - 8) >> (64 - 8 * t);
    if (t >= 4) return load4(p) | (std::uint64_t{load4(p + t - 4)} << (8 * (t - 4)));
    const auto byte = [p](std::size_t i) { return std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i); };
    return byte(0) | byte(t / 2) | byte(t - 1);
  }
  POLYMAP_ALWAYS_INLINE static std::uint64_t load8(const char* p) noexcept {
    std::uint64_t x;
    std::memcpy(&x, p, 8);
    return x;
  }
  POLYMAP_ALWAYS_INLINE static std::uint32_t load4(const char* p) noexcept {
    std::uint32_t x;
    std::memcpy(&x, p, 4);
    return x;
  }
  static bool has_stored_hash(const kword& k) noexcept {
    return !is_inline(k);
  }
  static std::size_t stored_hash(const kword& k) noexcept {
    return string_key::stored_hash(k.w);
  }
  static std::size_t bytes(const kword& k) noexcept {
    return is_inline(k) ? 0 : string_key::bytes(k.w);
  }
  static void* block_ptr(const kword& k) noexcept {
    return is_inline(k) ? nullptr : string_key::block_ptr(k.w);
  }
  static void free(const kword& k) noexcept {
    if (!is_inline(k)) string_key::free(k.w);
  }
  static void drop(void* p) noexcept {
    string_key::drop(p);
  }
};

// Any other key: an immutable block {hash, K} behind the word, as a string
// key's (make copies the caller's K).
template <class K>
struct boxed_key {
  struct key_block {
    std::size_t hash;
    K key;
  };
  using kword = std::uint64_t;
  static constexpr bool kOwns = true;
  static constexpr bool kHashed = true;
  static std::uint64_t make(const K& k, std::size_t hash) {  // may throw
    return reinterpret_cast<std::uintptr_t>(new key_block{hash, k});
  }
  POLYMAP_ALWAYS_INLINE static const key_block* block(std::uint64_t w) noexcept {
    return reinterpret_cast<const key_block*>(static_cast<std::uintptr_t>(w));
  }
  static const K& key_of(std::uint64_t w) noexcept { return block(w)->key; }
  static K decode(std::uint64_t w) { return block(w)->key; }
  template <class Q, class Eq>
  POLYMAP_ALWAYS_INLINE static bool match(std::uint64_t w, std::size_t hash, const Q& q, const Eq& eq) {
    const key_block* b = block(w);
    return b->hash == hash && eq(b->key, q);
  }
  static bool has_stored_hash(std::uint64_t) noexcept { return true; }
  static std::size_t stored_hash(std::uint64_t w) noexcept { return block(w)->hash; }
  static std::size_t bytes(std::uint64_t) noexcept { return sizeof(key_block); }
  static void* block_ptr(std::uint64_t w) noexcept { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(w)); }
  static void free(std::uint64_t w) noexcept { delete block(w); }
  static void drop(void* p) noexcept { delete static_cast<key_block*>(p); }
};

// string_key serves std::string keys whose Eq compares string_views (the
// default, std::equal_to<>).
template <class K, class Eq>
inline constexpr bool string_key_v =
    std::is_same_v<K, std::string>&& std::is_invocable_r_v<bool, const Eq&, std::string_view, std::string_view>;

// InlineStrings: short string keys in the slot (inline_string_key), else
// every string key in a block (string_key).
template <class K, class Eq, bool InlineStrings = false>
using key_policy_for =
    std::conditional_t<string_key_v<K, Eq>, std::conditional_t<InlineStrings, inline_string_key, string_key>,
                       std::conditional_t<word_sized_v<K>, word_key<K>, boxed_key<K>>>;

// The words a key policy adds to each slot after its key word (0 but for
// inline_string_key).
template <class KeyPolicy>
constexpr std::size_t key_extra_words_of() {
  if constexpr (requires { KeyPolicy::kExtraWords; })
    return KeyPolicy::kExtraWords;
  else
    return 0;
}

// Whether a map's value lives in its slot's words (no box per write) and its
// key in the key word or a string key block.
template <class K, class V, class Eq = key_equal<K>>
inline constexpr bool inline_slots_v = (word_sized_v<K> || string_key_v<K, Eq>)&&(word_sized_v<V> ||
                                                                                  std::is_same_v<V, value>);

}  // namespace polymap::detail

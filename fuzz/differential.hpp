// fuzz/differential.hpp — a byte stream decoded into map operations, each
// checked against a std::unordered_map model (differential fuzzing).
//
// Input format (any bytes are valid): a sequence of operations,
//   op byte: the operation (op % 16), key index (op >> 4)
//   then, for operations that take a value, one byte choosing it.
// Keys come from a small pool with the awkward ones in it (strings: empty,
// embedded NUL, short and long; words: 0, all ones, high bits only), so
// operations collide on keys often. Any disagreement with the model aborts
// with a message, which libFuzzer reports as a crash. Typed on the map:
// fuzz_keys<K> and fuzz_values<V> say how bytes become its keys and values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "polymap/value.hpp"

namespace polymap::fuzz {

[[noreturn]] inline void mismatch(const char* what, std::size_t step) {
  std::fprintf(stderr, "polymap fuzz: mismatch with the model at operation %zu: %s\n", step, what);
  std::abort();
}

inline const std::string& string_key_of(unsigned i) {
  static const std::string keys[16] = {"",
                                       "a",
                                       std::string("a\0b", 3),
                                       std::string(1, '\0'),
                                       "k4",
                                       "k5",
                                       "k6",
                                       "k7",
                                       std::string(32, 'p'),  // inline_string_key's longest inline key
                                       std::string(33, 'p'),  // and one byte more: a key block
                                       "key-ten",
                                       std::string(300, 'L'),
                                       "\xff\xfe",
                                       "a\0",
                                       "UPPER",
                                       std::string(40, 'm')};
  return keys[i % 16];
}

inline polymap::value value_of(std::uint8_t b) {
  switch (b % 8) {
    case 0:
    case 1:
      return polymap::value(static_cast<std::int64_t>(b >> 3));
    case 2:
      return polymap::value(static_cast<double>(b >> 3) / 2.0);
    case 3:
      return (b >> 3) == 0 ? polymap::value(__builtin_nan("")) : polymap::value(-0.0);
    case 4:
      return polymap::value(std::string(b >> 3, 's'));
    case 5:
      return polymap::value(polymap::make_bytes(b >> 3, std::byte{0x42}));
    case 6:
      return polymap::value((b >> 3) % 2 == 0);
    default:
      return polymap::value(polymap::null);
  }
}

template <class K, class = void>
struct fuzz_keys {
  static const std::string& of(unsigned i) { return string_key_of(i); }
};
template <class K>
struct fuzz_keys<K, std::enable_if_t<std::is_integral_v<K>>> {
  static K of(unsigned i) {
    constexpr std::uint64_t max = ~std::uint64_t{0};
    // Small numbers, the extremes, and keys equal in their low 32 bits.
    static constexpr std::uint64_t keys[16] = {
        0,          1,          2,          15,         16,         max,        max - 1,    1ull << 63,
        1ull << 32, 2ull << 32, 3ull << 32, 0xffffffff, 0x80000000, 0xdeadbeef, 1ull << 40, (1ull << 40) + 1};
    return static_cast<K>(keys[i % 16]);
  }
};

// Values from one byte; add is update's function (current + d, or d if
// absent or not a number); kind sorts values into a few classes for
// erase_if; bump is insert_or_visit's change to a present value.
template <class V, class = void>
struct fuzz_values;

template <>
struct fuzz_values<polymap::value> {
  using V = polymap::value;
  static V of(std::uint8_t b) { return value_of(b); }
  static V add(const V* cur, std::int64_t d) {
    const auto* c = cur ? cur->get_if<std::int64_t>() : nullptr;
    return V(c ? static_cast<std::int64_t>(static_cast<std::uint64_t>(*c) + static_cast<std::uint64_t>(d)) : d);
  }
  static unsigned kind(const V& v) { return static_cast<unsigned>(v.which()); }
  static void bump(V& cur) { cur = V(cur.type_name()); }
};

template <class V>
struct fuzz_values<V, std::enable_if_t<std::is_integral_v<V>>> {
  static V of(std::uint8_t b) { return static_cast<V>(b % 32); }  // few values: compare_exchange often matches
  static V add(const V* cur, std::int64_t d) {
    return static_cast<V>(cur ? *cur + static_cast<V>(d) : static_cast<V>(d));
  }
  static unsigned kind(const V& v) { return static_cast<unsigned>(v % 7); }
  static void bump(V& cur) { cur = static_cast<V>(cur * 3 + 1); }
};

// Any V with V::of(n) and number() (a wide, boxed value).
template <class V>
struct fuzz_values<V, std::void_t<decltype(V::of(std::uint64_t{})), decltype(std::declval<const V&>().number())>> {
  static V of(std::uint8_t b) { return V::of(b % 32); }
  static V add(const V* cur, std::int64_t d) {
    return V::of((cur ? cur->number() : 0) + static_cast<std::uint64_t>(d));
  }
  static unsigned kind(const V& v) { return static_cast<unsigned>(v.number() % 7); }
  static void bump(V& cur) { cur = V::of(cur.number() * 3 + 1); }
};

// Reads the stream; returns false at its end.
struct reader {
  const std::uint8_t* p;
  std::size_t n;
  bool next(std::uint8_t& b) {
    if (n == 0) return false;
    b = *p++;
    --n;
    return true;
  }
};

template <class M>
void run_differential(const std::uint8_t* data, std::size_t size) {
  using K = typename M::key_type;
  using V = typename M::mapped_type;
  using vals = fuzz_values<V>;
  M map;
  std::unordered_map<K, V> model;
  reader in{data, size};
  std::uint8_t op, arg;
  for (std::size_t step = 0; in.next(op); ++step) {
    const K k = fuzz_keys<K>::of(op >> 4);
    switch (op % 16) {
      case 0: {  // insert
        if (!in.next(arg)) return;
        const V v = vals::of(arg);
        if (map.insert(k, v) != model.emplace(k, v).second) mismatch("insert", step);
        break;
      }
      case 1: {  // insert_or_assign
        if (!in.next(arg)) return;
        const V v = vals::of(arg);
        if (map.insert_or_assign(k, v) != model.insert_or_assign(k, v).second) mismatch("insert_or_assign", step);
        break;
      }
      case 2: {  // find
        auto got = map.find(k);
        auto it = model.find(k);
        if (got.has_value() != (it != model.end()) || (got && !(*got == it->second))) mismatch("find", step);
        break;
      }
      case 3:  // contains
        if (map.contains(k) != (model.count(k) > 0)) mismatch("contains", step);
        break;
      case 4:  // erase
        if (map.erase(k) != (model.erase(k) > 0)) mismatch("erase", step);
        break;
      case 5: {  // update: add
        if (!in.next(arg)) return;
        const std::int64_t d = arg;
        const V got = map.update(k, [&](const V* cur) { return vals::add(cur, d); });
        auto it = model.find(k);
        const V want = vals::add(it == model.end() ? nullptr : &it->second, d);
        model.insert_or_assign(k, want);
        if (!(got == want)) mismatch("update", step);
        break;
      }
      case 6: {  // compare_exchange, expecting the current value half the time
        if (!in.next(arg)) return;
        auto it = model.find(k);
        const V expected = (arg & 1) && it != model.end() ? it->second : vals::of(arg >> 1);
        const V desired = vals::of(arg ^ 0x5a);
        const bool want = it != model.end() && it->second == expected;
        if (want) it->second = desired;
        if (map.compare_exchange(k, expected, desired) != want) mismatch("compare_exchange", step);
        break;
      }
      case 7: {  // insert_or_visit
        if (!in.next(arg)) return;
        const V v = vals::of(arg);
        auto f = [](V& cur) { vals::bump(cur); };
        auto it = model.find(k);
        const bool want = it == model.end();
        if (want)
          model.emplace(k, v);
        else
          f(it->second);
        if (map.insert_or_visit(k, v, f) != want) mismatch("insert_or_visit", step);
        break;
      }
      case 8: {  // typed read (polymap::value), else a read after a write of another key
        auto it = model.find(k);
        if constexpr (std::is_same_v<V, polymap::value>) {
          auto r = map.template get<std::int64_t>(k);
          const polymap::errc want = it == model.end()                        ? polymap::errc::not_found
                                     : it->second.template is<std::int64_t>() ? polymap::errc::ok
                                                                              : polymap::errc::type_mismatch;
          if (r.code() != want) mismatch("get<int64>", step);
          if (r && *r != *it->second.template get_if<std::int64_t>()) mismatch("get<int64> value", step);
        } else {
          const K other = fuzz_keys<K>::of((op >> 4) + 1);
          const V w = vals::of(op);
          if (map.insert_or_assign(other, w) != model.insert_or_assign(other, w).second)
            mismatch("insert_or_assign of the next key", step);
          it = model.find(k);
          auto got = map.find(k);
          if (got.has_value() != (it != model.end()) || (got && !(*got == it->second))) mismatch("find after", step);
        }
        break;
      }
      case 9: {  // erase_if by value kind
        if (!in.next(arg)) return;
        const unsigned kind = arg % 7u;
        std::size_t want = 0;
        for (auto it = model.begin(); it != model.end();) {
          if (vals::kind(it->second) == kind) {
            it = model.erase(it);
            ++want;
          } else {
            ++it;
          }
        }
        if (map.erase_if([&](const K&, const V& v) { return vals::kind(v) == kind; }) != want)
          mismatch("erase_if", step);
        break;
      }
      case 10: {  // whole-map comparison
        std::unordered_map<K, V> b;
        map.for_each([&](const K& key, const V& v) {
          if (!b.emplace(key, v).second) mismatch("for_each showed a key twice", step);
        });
        if (b != model) mismatch("for_each", step);
        if (map.size() != model.size()) mismatch("size", step);
        break;
      }
      case 11:
        if ((op >> 4) == 0) {  // clear, rarely
          map.clear();
          model.clear();
        }
        break;
      case 12:
        map.reserve(static_cast<std::size_t>(op >> 4) * 8);
        break;
      case 13: {  // visit
        bool seen = false;
        const bool found = map.visit(k, [&](const V& v) {
          seen = true;
          auto it = model.find(k);
          if (it == model.end() || !(it->second == v)) mismatch("visit value", step);
        });
        if (found != seen || found != (model.count(k) > 0)) mismatch("visit", step);
        break;
      }
      default:  // size
        if (map.size() != model.size()) mismatch("size", step);
        break;
    }
  }
}

}  // namespace polymap::fuzz

// fuzz/differential.hpp — a byte stream decoded into map operations, each
// checked against a std::unordered_map model (differential fuzzing).
//
// Input format (any bytes are valid): a sequence of operations,
//   op byte: the operation (op % 16), key index (op >> 4)
//   then, for operations that take a value, one byte choosing it.
// Keys come from a small pool with the awkward ones in it (empty, embedded
// NUL, long), so operations collide on keys often. Any disagreement with the
// model aborts with a message, which libFuzzer reports as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "polymap/value.hpp"

namespace polymap::fuzz {

[[noreturn]] inline void mismatch(const char* what, std::size_t step) {
  std::fprintf(stderr, "polymap fuzz: mismatch with the model at operation %zu: %s\n", step, what);
  std::abort();
}

inline const std::string& key_of(unsigned i) {
  static const std::string keys[16] = {"",
                                       "a",
                                       std::string("a\0b", 3),
                                       std::string(1, '\0'),
                                       "k4",
                                       "k5",
                                       "k6",
                                       "k7",
                                       "k8",
                                       "k9",
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
  using polymap::value;
  M map;
  std::unordered_map<std::string, value> model;
  reader in{data, size};
  std::uint8_t op, arg;
  auto add = [](const value* cur, std::int64_t d) {
    const auto* c = cur ? cur->get_if<std::int64_t>() : nullptr;
    return value(c ? static_cast<std::int64_t>(static_cast<std::uint64_t>(*c) + static_cast<std::uint64_t>(d)) : d);
  };
  for (std::size_t step = 0; in.next(op); ++step) {
    const std::string& k = key_of(op >> 4);
    switch (op % 16) {
      case 0: {  // insert
        if (!in.next(arg)) return;
        const value v = value_of(arg);
        if (map.insert(k, v) != model.emplace(k, v).second) mismatch("insert", step);
        break;
      }
      case 1: {  // insert_or_assign
        if (!in.next(arg)) return;
        const value v = value_of(arg);
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
        const value got = map.update(k, [&](const value* cur) { return add(cur, d); });
        auto it = model.find(k);
        const value want = add(it == model.end() ? nullptr : &it->second, d);
        model.insert_or_assign(k, want);
        if (!(got == want)) mismatch("update", step);
        break;
      }
      case 6: {  // compare_exchange, expecting the current value half the time
        if (!in.next(arg)) return;
        auto it = model.find(k);
        const value expected = (arg & 1) && it != model.end() ? it->second : value_of(arg >> 1);
        const value desired = value_of(arg ^ 0x5a);
        const bool want = it != model.end() && it->second == expected;
        if (want) it->second = desired;
        if (map.compare_exchange(k, expected, desired) != want) mismatch("compare_exchange", step);
        break;
      }
      case 7: {  // insert_or_visit
        if (!in.next(arg)) return;
        const value v = value_of(arg);
        auto f = [](value& cur) { cur = value(cur.type_name()); };
        auto it = model.find(k);
        const bool want = it == model.end();
        if (want)
          model.emplace(k, v);
        else
          f(it->second);
        if (map.insert_or_visit(k, v, f) != want) mismatch("insert_or_visit", step);
        break;
      }
      case 8: {  // typed read
        auto r = map.template get<std::int64_t>(k);
        auto it = model.find(k);
        const polymap::errc want = it == model.end()               ? polymap::errc::not_found
                                   : it->second.is<std::int64_t>() ? polymap::errc::ok
                                                                   : polymap::errc::type_mismatch;
        if (r.code() != want) mismatch("get<int64>", step);
        if (r && *r != *it->second.get_if<std::int64_t>()) mismatch("get<int64> value", step);
        break;
      }
      case 9: {  // erase_if by value kind
        if (!in.next(arg)) return;
        const auto kind = static_cast<polymap::value::kind>(arg % 7);
        std::size_t want = 0;
        for (auto it = model.begin(); it != model.end();) {
          if (it->second.which() == kind) {
            it = model.erase(it);
            ++want;
          } else {
            ++it;
          }
        }
        if (map.erase_if([&](const std::string&, const value& v) { return v.which() == kind; }) != want)
          mismatch("erase_if", step);
        break;
      }
      case 10: {  // whole-map comparison
        std::map<std::string, value> a(model.begin(), model.end()), b;
        map.for_each([&](const std::string& key, const value& v) {
          if (!b.emplace(key, v).second) mismatch("for_each showed a key twice", step);
        });
        if (a != b) mismatch("for_each", step);
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
        const bool found = map.visit(k, [&](const value& v) {
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

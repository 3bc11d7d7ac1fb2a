// polymap/verify/model.hpp — the sequential specification of one key.
//
// The checker splits a history by key (operations on different keys commute,
// so a history is linearizable iff each key's sub-history is: the
// P-compositionality Porcupine relies on) and replays each key's operations
// against this model. A key's state is std::optional<V>: absent, or a value.
//
// update(k, f) with an arbitrary f cannot be replayed, so histories use two
// forms: update_add, whose f is "current + delta, or delta if absent or not a
// number" (fully checked), and update, an opaque f whose stored value is
// taken as the new state (checked only in that later reads must agree).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "polymap/detail/hash.hpp"
#include "polymap/value.hpp"
#include "polymap/verify/history.hpp"

namespace polymap::verify {

// How the model adds, hashes and prints a V. Specialize it for your own V if
// it is neither arithmetic nor polymap::value.
template <class V, class = void>
struct value_traits {
  static V add(const V* cur, const V& delta) { return cur ? static_cast<V>(*cur + delta) : delta; }
  static std::size_t hash(const V& v) { return std::hash<V>{}(v); }
  static std::string show(const V& v) {
    if constexpr (fmt::is_formattable<V>::value)
      return fmt::format("{}", v);
    else
      return "<value>";
  }
};

template <>
struct value_traits<polymap::value> {
  // int64 + int64; anything else (absent, another type) becomes the delta.
  static polymap::value add(const polymap::value* cur, const polymap::value& delta) {
    const auto* c = cur ? cur->get_if<std::int64_t>() : nullptr;
    const auto* d = delta.get_if<std::int64_t>();
    if (c && d)
      return polymap::value(static_cast<std::int64_t>(static_cast<std::uint64_t>(*c) + static_cast<std::uint64_t>(*d)));
    return delta;
  }
  static std::size_t hash(const polymap::value& v) {
    using kind = polymap::value::kind;
    const std::size_t k = static_cast<std::size_t>(v.which()) * 0x9E3779B97F4A7C15ull;
    switch (v.which()) {
      case kind::null:
        return k;
      case kind::boolean:
        return k ^ (*v.get_if<bool>() ? 1u : 2u);
      case kind::int64:
        return k ^ detail::mix64(static_cast<std::uint64_t>(*v.get_if<std::int64_t>()));
      case kind::float64: {
        const double d = *v.get_if<double>();
        if (d != d) return k ^ 7;  // every NaN equals every NaN
        if (d == 0.0) return k;    // +0.0 == -0.0
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        return k ^ detail::mix64(bits);
      }
      case kind::string:
        return k ^ polymap::hash<std::string>{}(*v.get_if<std::string>());
      case kind::bytes: {
        const auto& b = *v.get_if<polymap::bytes>();
        return k ^ polymap::hash<std::string>{}(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
      }
      default:
        return k ^ std::hash<std::string_view>{}(v.type_name());  // equality decides within a type
    }
  }
  static std::string show(const polymap::value& v) {
    std::string s = v.to_string();
    if (s.size() > 48) s = s.substr(0, 45) + "...";
    if (v.which() == polymap::value::kind::string) return fmt::format("\"{}\"", s);
    if (v.which() == polymap::value::kind::float64) return fmt::format("{}d", s);
    return s;
  }
};

template <class K>
std::string show_key(const K& k) {
  std::string s;
  if constexpr (std::is_convertible_v<const K&, std::string_view>) {
    std::string_view sv(k);
    s.reserve(std::min<std::size_t>(sv.size(), 64) + 2);
    for (char c : sv.substr(0, 60)) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        s += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
      else
        s += c;
    }
    if (sv.size() > 60) s += fmt::format("...({} bytes)", sv.size());
    return "'" + s + "'";
  } else if constexpr (fmt::is_formattable<K>::value) {
    return fmt::format("{}", k);
  } else {
    return "<key>";
  }
}

// The state of one key and the step function of the specification.
template <class V>
struct model {
  using state = std::optional<V>;
  using traits = value_traits<V>;

  // Applies `o` to `s`: returns false if `o`'s recorded result is impossible
  // from `s`; otherwise sets `next` to the state after `o`.
  template <class K>
  static bool step(const state& s, const operation<K, V>& o, state& next) {
    switch (o.kind) {
      case op_kind::insert:
        if (s) {
          if (o.ok) return false;
          next = s;
        } else {
          if (!o.ok) return false;
          next = o.arg;
        }
        return true;
      case op_kind::insert_or_assign:
        if (o.ok != !s.has_value()) return false;
        next = o.arg;
        return true;
      case op_kind::find:
        if (!(o.out == s)) return false;
        next = s;
        return true;
      case op_kind::contains:
        if (o.ok != s.has_value()) return false;
        next = s;
        return true;
      case op_kind::erase:
        if (o.ok != s.has_value()) return false;
        next.reset();
        return true;
      case op_kind::update_add: {
        V stored = traits::add(s ? &*s : nullptr, o.arg);
        if (!o.out || !(*o.out == stored)) return false;
        next = std::move(stored);
        return true;
      }
      case op_kind::update:
        if (!o.out) return false;
        next = o.out;
        return true;
      case op_kind::compare_exchange:
        if (s && *s == o.expected) {
          if (!o.ok) return false;
          next = o.arg;
        } else {
          if (o.ok) return false;
          next = s;
        }
        return true;
    }
    return false;
  }

  static std::size_t hash(const state& s) { return s ? traits::hash(*s) * 31 + 1 : 0; }

  template <class K>
  static std::string describe(const operation<K, V>& o) {
    const std::string k = show_key(o.key);
    auto shown = [](const std::optional<V>& v) { return v ? traits::show(*v) : std::string("absent"); };
    switch (o.kind) {
      case op_kind::insert:
      case op_kind::insert_or_assign:
        return fmt::format("{}({}, {}) -> {}", to_string(o.kind), k, traits::show(o.arg), o.ok);
      case op_kind::find:
        return fmt::format("find({}) -> {}", k, shown(o.out));
      case op_kind::contains:
      case op_kind::erase:
        return fmt::format("{}({}) -> {}", to_string(o.kind), k, o.ok);
      case op_kind::update_add:
        return fmt::format("update({}, add {}) -> {}", k, traits::show(o.arg), shown(o.out));
      case op_kind::update:
        return fmt::format("update({}, f) -> {}", k, shown(o.out));
      case op_kind::compare_exchange:
        return fmt::format("compare_exchange({}, {}, {}) -> {}", k, traits::show(o.expected), traits::show(o.arg),
                           o.ok);
    }
    return "?";
  }
};

}  // namespace polymap::verify

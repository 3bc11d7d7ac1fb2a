// polymap/detail/map_api.hpp — the parts of the stable API that every map
// derives from its own primitives, written once.
//
// A map M provides visit(q, f) and insert_or_assign(k, v); typed_access<M>
// adds get<T>(q), get(key<T>) and set(key<T>, x) on top of them, so typed
// reads and writes behave the same in every map: a missing key is
// errc::not_found naming the key, a wrong type errc::type_mismatch naming the
// key, the stored type and the requested one.
#pragma once

#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "polymap/result.hpp"
#include "polymap/value.hpp"

namespace polymap {

template <class T>
class key;

namespace detail {

template <class T>
struct is_key : std::false_type {};
template <class T>
struct is_key<key<T>> : std::true_type {};

// A lookup argument in the form the table wants: strings of any kind become
// std::string_view when the map's key is string-like (transparent lookup).
template <class K, class Q>
decltype(auto) lookup_arg(const Q& q) {
  if constexpr (std::is_convertible_v<const K&, std::string_view> &&
                std::is_convertible_v<const Q&, std::string_view>) {
    return std::string_view(q);
  } else {
    return (q);
  }
}

// A key as an error message shows it.
template <class Q>
std::string describe_key(const Q& q) {
  if constexpr (std::is_convertible_v<const Q&, std::string_view>)
    return std::string(std::string_view(q));
  else if constexpr (fmt::is_formattable<Q>::value)
    return fmt::format("{}", q);
  else
    return "<key>";
}

inline error not_found_error(std::string_view k) {
  return error(errc::not_found, fmt::format("key '{}' not found", k));
}

// Calls f(k, v), or f(pair) for callbacks written for std::pair elements.
template <class F, class K, class V>
decltype(auto) invoke_entry(F& f, const K& k, const V& v) {
  if constexpr (std::is_invocable_v<F&, const K&, const V&>) {
    return f(k, v);
  } else {
    static_assert(std::is_invocable_v<F&, const std::pair<const K, V>&>,
                  "polymap: a for_each/erase_if callback takes (const K&, const V&)");
    return f(std::pair<const K, V>(k, v));
  }
}

template <class Derived, class K, class V>
class typed_access {
 public:
  // Typed read by any key: the value copied out as T, or an error.
  template <class T, class Q>
  requires(std::is_same_v<V, value> && !is_key<std::remove_cvref_t<Q>>::value) result<T> get(const Q& q)
  const {
    std::optional<result<T>> out;
    const bool found = self().visit(q, [&](const value& v) {
      if (const T* p = v.template get_if<T>())
        out.emplace(*p);
      else
        out.emplace(v.template mismatch<T>(describe_key(q)));
    });
    if (!found) return not_found_error(describe_key(q));
    return std::move(*out);
  }

  // Typed read by a typed key: T comes from the key.
  template <class T>
  requires std::is_same_v<V, value> result<T> get(const key<T>& k)
  const { return get<T>(std::string_view(k.name())); }

  // Typed write: compiles only for an x that converts to T without narrowing.
  // Returns true if the key was inserted, false if it was assigned.
  template <class T, class U>
  requires(std::is_same_v<V, value>&& non_narrowing<U, T>) bool set(const key<T>& k, U&& x) {
    return self().insert_or_assign(K(k.name()), V(T{std::forward<U>(x)}));
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
  Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace detail
}  // namespace polymap

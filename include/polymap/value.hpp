// polymap/value.hpp — polymap::value, the immutable many-typed value, and key<T>.
//
// CONTRACT
//   A value holds exactly one of: null, bool, int64, double, string, bytes, or
//   any copyable user type T. It is 16 bytes: an 8-byte payload word and a kind
//   byte. Scalars live inline, so copying one never allocates. Strings, bytes and
//   user types live in an immutable, reference-counted heap payload that is
//   shared by copies and never written after construction; that is what makes a
//   value safe to copy out of a map while other threads copy it too.
//
//   No silent conversions: an int64 is not a double, an int is stored as int64,
//   a uint64 does not compile (it may not fit; convert explicitly), a const char*
//   is a string. A read of the wrong type is errc::type_mismatch, whose message
//   names both the stored and the requested type.
//
//   Equality is an equivalence relation: same kind and same contents; doubles
//   compare with ==, except that NaN equals NaN (so compare_exchange on a NaN
//   entry can succeed). User types compare with their operator== where they have
//   one, by payload identity otherwise.
//
//   A `value` object itself is a regular type: assigning to a value that another
//   thread reads is a data race, as for any C++ object. Maps make that safe.
//
// LAYOUT
//   +-------------------------------+---------+-----------+
//   | word: bool|int64|double|ptr   | kind u8 | padding   |
//   +-------------------------------+---------+-----------+
//   ptr -> payload_header { refs, type_entry* } followed by the T
#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "polymap/result.hpp"

namespace polymap {

// The byte-buffer kind. A std::vector<std::byte>; build one with make_bytes().
using bytes = std::vector<std::byte>;

inline bytes make_bytes(const void* data, std::size_t n) {
  const auto* p = static_cast<const std::byte*>(data);
  return bytes(p, p + n);
}
inline bytes make_bytes(std::size_t n, std::byte fill) {
  return bytes(n, fill);
}

struct null_t {
  friend constexpr bool operator==(null_t, null_t) noexcept { return true; }
};
inline constexpr null_t null{};

namespace detail {

// A readable type name from the compiler's pretty function, e.g. "demo::point".
template <class T>
constexpr std::string_view raw_type_name() noexcept {
#if defined(__clang__)
  std::string_view p = __PRETTY_FUNCTION__;  // "... raw_type_name() [T = demo::point]"
  auto b = p.find("T = ") + 4;
  return p.substr(b, p.rfind(']') - b);
#elif defined(__GNUC__)
  std::string_view p = __PRETTY_FUNCTION__;  // "... [with T = demo::point; std::string_view = ...]"
  auto b = p.find("T = ") + 4;
  auto e = p.find(';', b);
  if (e == std::string_view::npos) e = p.rfind(']');
  return p.substr(b, e - b);
#else
  return "user type";
#endif
}

}  // namespace detail

// The name of T as value::type_name() reports it.
template <class T>
constexpr std::string_view type_name_of() noexcept {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, null_t> || std::is_same_v<U, std::nullptr_t>)
    return "null";
  else if constexpr (std::is_same_v<U, bool>)
    return "bool";
  else if constexpr (std::is_same_v<U, std::int64_t>)
    return "int64";
  else if constexpr (std::is_same_v<U, double>)
    return "double";
  else if constexpr (std::is_same_v<U, std::string>)
    return "string";
  else if constexpr (std::is_same_v<U, bytes>)
    return "bytes";
  else
    return detail::raw_type_name<U>();
}

namespace detail {

enum class kind : std::uint8_t { null, boolean, int64, float64, string, bytes, object };

struct payload_header;
struct value_bits;

// One per stored type: how to destroy, compare and print its payload.
struct type_entry {
  std::string_view name;
  void (*destroy)(payload_header*) noexcept;
  bool (*equal)(const payload_header*, const payload_header*) noexcept;
  void (*format)(const payload_header*, fmt::memory_buffer&);
};

struct payload_header {
  // Counts the values sharing this payload. Increments are relaxed: a new
  // reference is made from an existing one, which already keeps the payload
  // alive. The decrement is acq_rel: the release orders this owner's reads of
  // the payload before the count drops; the acquire, taken by the last owner,
  // pairs with those releases so destruction follows every other owner's use.
  mutable std::atomic<std::size_t> refs{1};
  const type_entry* type;
};

template <class T>
struct payload final : payload_header {
  T item;
  template <class... A>
  explicit payload(const type_entry* t, A&&... a) : payload_header{{1}, t}, item(std::forward<A>(a)...) {}
};

template <class T>
constexpr bool has_equality = requires(const T& a, const T& b) {
  { a == b } -> std::convertible_to<bool>;
};

template <class T>
struct type_entry_for {
  static void destroy(payload_header* h) noexcept { delete static_cast<payload<T>*>(h); }
  static bool equal(const payload_header* a, const payload_header* b) noexcept {
    if (a == b) return true;
    if constexpr (has_equality<T>) {
      return static_cast<const payload<T>*>(a)->item == static_cast<const payload<T>*>(b)->item;
    } else {
      return false;
    }
  }
  static void format(const payload_header* h, fmt::memory_buffer& out) {
    const T& item = static_cast<const payload<T>*>(h)->item;
    if constexpr (std::is_same_v<T, std::string>) {
      fmt::format_to(std::back_inserter(out), "{}", item);
    } else if constexpr (std::is_same_v<T, bytes>) {
      fmt::format_to(std::back_inserter(out), "bytes[{}]", item.size());
    } else if constexpr (fmt::is_formattable<T>::value) {
      fmt::format_to(std::back_inserter(out), "{}", item);
    } else {
      fmt::format_to(std::back_inserter(out), "<{}>", type_name_of<T>());
    }
  }
  static inline const type_entry entry{type_name_of<T>(), &destroy, &equal, &format};
};

template <class T>
constexpr bool is_char_type = std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
                              std::is_same_v<T, unsigned char> || std::is_same_v<T, wchar_t> ||
                              std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;

// Integers that fit int64 without loss: every signed type, unsigned up to 32 bits.
template <class T>
constexpr bool fits_int64 = std::is_integral_v<T> && !std::is_same_v<T, bool> && !is_char_type<T> &&
                            (std::is_signed_v<T> || sizeof(T) < sizeof(std::int64_t));

template <class T>
constexpr bool is_builtin_kind =
    std::is_same_v<T, null_t> || std::is_same_v<T, std::nullptr_t> || std::is_same_v<T, bool> ||
    std::is_arithmetic_v<T> || std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view> ||
    std::is_same_v<T, bytes> || std::is_convertible_v<T, std::string_view> || std::is_pointer_v<T> ||
    std::is_array_v<T>;

}  // namespace detail

// Types stored in a shared immutable payload (anything not a built-in kind).
// Only cheap traits here: asking whether T is copyable inside the constraint
// recurses when the standard library probes wrapper types; the constructor
// checks it with a static_assert instead.
template <class T>
concept user_payload =
    !detail::is_builtin_kind<std::remove_cvref_t<T>> && !std::is_same_v<std::remove_cvref_t<T>, class value>;

class value {
  friend struct detail::value_bits;

 public:
  using kind = detail::kind;

  // --- construction: one constructor per kind, no silent conversions ---------
  constexpr value() noexcept : word_{}, kind_(kind::null) {}
  constexpr value(null_t) noexcept : value() {}                   // NOLINT
  constexpr value(std::nullptr_t) noexcept : value() {}           // NOLINT
  value(bool b) noexcept : kind_(kind::boolean) { word_.b = b; }  // NOLINT

  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) value(I i)
  noexcept : kind_(kind::int64) {  // NOLINT
    static_assert(!detail::is_char_type<I>,
                  "polymap::value: a char is not an integer here; store std::string(1, c) or int64");
    static_assert(detail::fits_int64<I>,
                  "polymap::value: an unsigned 64-bit integer may not fit int64; convert explicitly "
                  "(static_cast<std::int64_t>) or store it as a user type");
    word_.i = static_cast<std::int64_t>(i);
  }
  template <class F>
  requires std::is_floating_point_v<F> value(F d)
  noexcept : kind_(kind::float64) {  // NOLINT
    static_assert(!std::is_same_v<F, long double>, "polymap::value: long double would be narrowed to double");
    word_.d = static_cast<double>(d);
  }
  value(const char* s) : value(std::string_view(s)) {}                                                 // NOLINT
  value(std::string_view s) : kind_(kind::string) { word_.p = make_payload<std::string>(s); }          // NOLINT
  value(const std::string& s) : kind_(kind::string) { word_.p = make_payload<std::string>(s); }        // NOLINT
  value(std::string&& s) : kind_(kind::string) { word_.p = make_payload<std::string>(std::move(s)); }  // NOLINT
  value(const bytes& b) : kind_(kind::bytes) { word_.p = make_payload<bytes>(b); }                     // NOLINT
  value(bytes&& b) : kind_(kind::bytes) { word_.p = make_payload<bytes>(std::move(b)); }               // NOLINT

  template <user_payload T>
  value(T&& t) : kind_(kind::object) {  // NOLINT
    static_assert(std::is_copy_constructible_v<std::remove_cvref_t<T>>,
                  "polymap::value holds copyable types only (payloads are shared, never moved from)");
    word_.p = make_payload<std::remove_cvref_t<T>>(std::forward<T>(t));
  }

  // Builds a T in place in a new payload.
  template <class T, class... A>
  static value make(A&&... a) {
    if constexpr (user_payload<T>) {
      value v;
      v.word_.p = make_payload<T>(std::forward<A>(a)...);
      v.kind_ = kind::object;
      return v;
    } else {
      return value(T(std::forward<A>(a)...));
    }
  }

  value(const value& o) noexcept : word_(o.word_), kind_(o.kind_) {
    if (o.has_payload()) word_.p->refs.fetch_add(1, std::memory_order_relaxed);  // see payload_header
  }
  value(value&& o) noexcept : word_(o.word_), kind_(o.kind_) { o.kind_ = kind::null; }
  value& operator=(const value& o) noexcept {
    value tmp(o);
    swap(tmp);
    return *this;
  }
  value& operator=(value&& o) noexcept {
    value tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~value() { release(); }

  void swap(value& o) noexcept {
    std::swap(word_, o.word_);
    std::swap(kind_, o.kind_);
  }

  // --- inspection ------------------------------------------------------------
  kind which() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == kind::null; }

  std::string_view type_name() const noexcept {
    switch (kind_) {
      case kind::null:
        return "null";
      case kind::boolean:
        return "bool";
      case kind::int64:
        return "int64";
      case kind::float64:
        return "double";
      case kind::string:
        return "string";
      case kind::bytes:
        return "bytes";
      case kind::object:
        return word_.p->type->name;
    }
    return "?";
  }

  template <class T>
  bool is() const noexcept {
    using U = std::remove_cvref_t<T>;
    check_readable<U>();
    if constexpr (std::is_same_v<U, null_t> || std::is_same_v<U, std::nullptr_t>)
      return kind_ == kind::null;
    else if constexpr (std::is_same_v<U, bool>)
      return kind_ == kind::boolean;
    else if constexpr (std::is_same_v<U, std::int64_t>)
      return kind_ == kind::int64;
    else if constexpr (std::is_same_v<U, double>)
      return kind_ == kind::float64;
    else if constexpr (std::is_same_v<U, std::string>)
      return kind_ == kind::string;
    else if constexpr (std::is_same_v<U, bytes>)
      return kind_ == kind::bytes;
    else
      return kind_ == kind::object && word_.p->type == &detail::type_entry_for<U>::entry;
  }

  // A pointer to the stored T, or nullptr if the value holds another type.
  // Valid while this value (or any copy sharing its payload) lives.
  template <class T>
  const T* get_if() const noexcept {
    using U = std::remove_cvref_t<T>;
    if (!is<U>()) return nullptr;
    if constexpr (std::is_same_v<U, bool>)
      return &word_.b;
    else if constexpr (std::is_same_v<U, std::int64_t>)
      return &word_.i;
    else if constexpr (std::is_same_v<U, double>)
      return &word_.d;
    else if constexpr (std::is_same_v<U, null_t> || std::is_same_v<U, std::nullptr_t>)
      return nullptr;
    else
      return &static_cast<const detail::payload<U>*>(word_.p)->item;
  }

  // A copy of the stored T, or errc::type_mismatch naming both types.
  template <class T>
  result<std::remove_cvref_t<T>> get() const {
    using U = std::remove_cvref_t<T>;
    if (const U* p = get_if<U>()) return *p;
    return mismatch<U>({});
  }

  // The error a wrong-type read reports; `what` names the key where known.
  template <class T>
  polymap::error mismatch(std::string_view what) const {
    std::string msg = what.empty() ? std::string("value") : fmt::format("key '{}'", what);
    return polymap::error(errc::type_mismatch,
                          fmt::format("{} holds {}, requested {}", msg, type_name(), type_name_of<T>()));
  }

  friend bool operator==(const value& a, const value& b) noexcept {
    if (a.kind_ != b.kind_) return false;
    switch (a.kind_) {
      case kind::null:
        return true;
      case kind::boolean:
        return a.word_.b == b.word_.b;
      case kind::int64:
        return a.word_.i == b.word_.i;
      case kind::float64:
        return a.word_.d == b.word_.d || (std::isnan(a.word_.d) && std::isnan(b.word_.d));
      default:
        return a.word_.p->type == b.word_.p->type && a.word_.p->type->equal(a.word_.p, b.word_.p);
    }
  }

  // Appends the printable form: null, true, 42, 1.5, text, bytes[n], or the
  // user type's fmt form (its name in <> if it has none).
  void format_to(fmt::memory_buffer& out) const {
    switch (kind_) {
      case kind::null:
        fmt::format_to(std::back_inserter(out), "null");
        break;
      case kind::boolean:
        fmt::format_to(std::back_inserter(out), "{}", word_.b);
        break;
      case kind::int64:
        fmt::format_to(std::back_inserter(out), "{}", word_.i);
        break;
      case kind::float64:
        fmt::format_to(std::back_inserter(out), "{}", word_.d);
        break;
      default:
        word_.p->type->format(word_.p, out);
        break;
    }
  }
  std::string to_string() const {
    fmt::memory_buffer b;
    format_to(b);
    return fmt::to_string(b);
  }
  friend std::ostream& operator<<(std::ostream& os, const value& v) { return os << v.to_string(); }

  // Identity of the shared payload (nullptr for scalars); for tests and detectors.
  const void* payload_identity() const noexcept { return has_payload() ? word_.p : nullptr; }

 private:
  template <class T>
  static constexpr void check_readable() noexcept {
    static_assert(!(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, std::int64_t>),
                  "polymap::value stores every integer as std::int64_t: read get<std::int64_t>()");
    static_assert(!std::is_same_v<T, float>, "polymap::value stores floating point as double: read get<double>()");
    static_assert(!std::is_same_v<T, std::string_view> && !std::is_same_v<T, const char*>,
                  "polymap::value stores text as std::string: read get<std::string>() or get_if<std::string>()");
  }

  template <class T, class... A>
  static detail::payload_header* make_payload(A&&... a) {
    return new detail::payload<T>(&detail::type_entry_for<T>::entry, std::forward<A>(a)...);
  }

  bool has_payload() const noexcept { return kind_ >= kind::string; }

  void release() noexcept {
    if (has_payload() && word_.p->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      word_.p->type->destroy(word_.p);  // acq_rel: see payload_header
    }
  }

  union word {
    bool b;
    std::int64_t i;
    double d;
    detail::payload_header* p;
  } word_;
  kind kind_;
};

static_assert(sizeof(value) == 16, "polymap::value must stay two words");

namespace detail {

// A value as two plain words {payload word, kind}, for tables that keep
// values inline in atomic words (concurrent_map's inline layout). The words
// own one reference to the payload, if any, exactly as the value did.
struct value_bits {
  using words = std::array<std::uint64_t, 2>;

  // Moves v's reference into the words; v is left null.
  static words take(value&& v) noexcept {
    words w{payload_word(v), static_cast<std::uint64_t>(v.kind_)};
    v.kind_ = kind::null;
    return w;
  }
  // A new value sharing the words' payload (one more reference). The caller
  // guarantees the payload is alive meanwhile (the table's reference is
  // dropped only a grace period after the words leave the table).
  static value copy(const words& w) noexcept {
    value v = adopt(w);
    // relaxed: a new reference made from the words' one, which keeps it alive (see payload_header).
    if (v.has_payload()) v.word_.p->refs.fetch_add(1, std::memory_order_relaxed);
    return v;
  }
  // A value that takes over the words' reference.
  static value adopt(const words& w) noexcept {
    value v;
    v.kind_ = static_cast<kind>(w[1]);
    if (v.kind_ == kind::boolean)
      v.word_.b = w[0] != 0;
    else
      std::memcpy(&v.word_, &w[0], sizeof(v.word_));
    return v;
  }
  static bool has_payload(const words& w) noexcept { return w[1] >= static_cast<std::uint64_t>(kind::string); }
  // The payload the words refer to (nullptr for a scalar).
  static void* payload(const words& w) noexcept { return has_payload(w) ? reinterpret_cast<void*>(w[0]) : nullptr; }
  // Drops one reference to a payload returned by payload() (a retire callback).
  static void drop(void* p) noexcept {
    auto* h = static_cast<payload_header*>(p);
    if (h->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) h->type->destroy(h);  // acq_rel: see payload_header
  }

 private:
  static std::uint64_t payload_word(const value& v) noexcept {
    if (v.kind_ == kind::null) return 0;
    if (v.kind_ == kind::boolean) return v.word_.b ? 1 : 0;
    std::uint64_t x;
    std::memcpy(&x, &v.word_, sizeof x);
    return x;
  }
};

}  // namespace detail

// A typed key constant:  inline const polymap::key<std::int64_t> timeout{"timeout"};
// map.get(timeout) returns result<std::int64_t>; map.set(timeout, x) compiles
// only for an x that converts to T without narrowing.
template <class T>
class key {
 public:
  using value_type = T;
  explicit key(std::string name) : name_(std::move(name)) {}
  key(const char* name) : name_(name) {}  // NOLINT: key<int64_t> k{"timeout"} and = "timeout"
  const std::string& name() const noexcept { return name_; }
  operator std::string_view() const noexcept { return name_; }  // NOLINT

 private:
  std::string name_;
};

// U converts to T without narrowing (T{u} is well-formed).
template <class U, class T>
concept non_narrowing = requires(U&& u) {
  T{std::forward<U>(u)};
};

}  // namespace polymap

template <>
struct fmt::formatter<polymap::value> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const polymap::value& v, Ctx& ctx) const {
    fmt::memory_buffer b;
    v.format_to(b);
    return fmt::formatter<std::string_view>::format(std::string_view(b.data(), b.size()), ctx);
  }
};

// polymap/result.hpp — errc, error and result<T>: a small expected-like type.
//
// std::expected is C++23 and absent from clang 14's library here, so polymap
// carries its own. A result<T> holds either a T or an `error`; the error has a
// machine-readable code (errc) and a human message that names the key and, for
// a type mismatch, both the stored type and the requested one.
#pragma once

#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace polymap {

enum class errc : unsigned char {
  ok = 0,
  not_found,      // the key is absent
  type_mismatch,  // the key holds a value of another type
};

constexpr std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::not_found:
      return "not_found";
    case errc::type_mismatch:
      return "type_mismatch";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, errc e) {
  return os << to_string(e);
}

// The error half of a result: a code plus a message for people.
class error {
 public:
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // `r.error() == errc::not_found` and `switch (r.error())` both read naturally.
  operator errc() const noexcept { return code_; }  // NOLINT(google-explicit-constructor)
  friend bool operator==(const error& a, errc b) noexcept { return a.code_ == b; }
  friend bool operator==(const error& a, const error& b) noexcept { return a.code_ == b.code_; }
  friend std::ostream& operator<<(std::ostream& os, const error& e) {
    return os << to_string(e.code_) << ": " << e.message_;
  }

 private:
  errc code_;
  std::string message_;
};

// Thrown by result<T>::value() on an error; what() is the error's message.
class bad_result_access : public std::runtime_error {
 public:
  explicit bad_result_access(const polymap::error& e)
      : std::runtime_error(std::string(to_string(e.code())) + ": " + e.message()), error_(e) {}
  const polymap::error& error() const noexcept { return error_; }

 private:
  polymap::error error_;
};

template <class T>
class result {
  static_assert(!std::is_reference_v<T>, "result<T&> is not supported: return a copy or use visit()");

 public:
  using value_type = T;

  result(const T& v) : state_(std::in_place_index<0>, v) {}                   // NOLINT
  result(T&& v) : state_(std::in_place_index<0>, std::move(v)) {}             // NOLINT
  result(polymap::error e) : state_(std::in_place_index<1>, std::move(e)) {}  // NOLINT

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  const T& value() const& {
    if (!has_value()) throw bad_result_access(std::get<1>(state_));
    return std::get<0>(state_);
  }
  T& value() & {
    if (!has_value()) throw bad_result_access(std::get<1>(state_));
    return std::get<0>(state_);
  }
  T&& value() && {
    if (!has_value()) throw bad_result_access(std::get<1>(state_));
    return std::get<0>(std::move(state_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

  // Precondition: !has_value(). Throws std::logic_error otherwise.
  const polymap::error& error() const {
    if (has_value()) throw std::logic_error("polymap::result::error() called on a value");
    return std::get<1>(state_);
  }
  // errc::ok when a value is present.
  errc code() const noexcept { return has_value() ? errc::ok : std::get<1>(state_).code(); }

  friend bool operator==(const result& r, const T& v) { return r.has_value() && *r == v; }

 private:
  std::variant<T, polymap::error> state_;
};

}  // namespace polymap

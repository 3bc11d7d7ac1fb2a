// polymap/check/site.hpp — source locations that work on every supported
// compiler, and a slot that remembers the last site of some kind.
//
// std::source_location needs __builtin_source_location, which clang 14 lacks
// (libstdc++ 12 then leaves std::source_location undefined). The builtins
// __builtin_FILE/__builtin_FUNCTION/__builtin_LINE exist in g++ and clang
// alike and, used as default arguments, are evaluated at the caller: that is
// all a detector needs. polymap::check::source_location is that, with the same
// member names as std::source_location.
//
// site_slot stores a site in relaxed atomics so that a detector can name "the
// other side" of a conflict: the writer that holds a container, the reader
// that last entered it, the write that last invalidated references. Relaxed on
// purpose (see checked.hpp, "WHY RELAXED"): the slots must never create a
// happens-before edge between the threads being watched.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>

#include "polymap/check/report.hpp"

// A detector's fast path: always inlined under g++ and clang, so that a
// checked call costs its few instructions and no call.
#if defined(__GNUC__) || defined(__clang__)
#define POLYMAP_CHECK_INLINE [[gnu::always_inline]] inline
#else
#define POLYMAP_CHECK_INLINE inline
#endif

namespace polymap::check {

namespace detail {
// The calling thread's id, cached per thread: std::this_thread::get_id() is a
// call into the C library (pthread_self), too much for a fast path that runs
// on every call. constinit: no dynamic initialization, so reading it is a
// plain thread-local load (no TLS guard). A fork()ed child keeps the parent
// thread's id, as pthread_self() does.
constinit inline thread_local std::optional<std::thread::id> cached_thread_id{};

[[gnu::noinline]] inline std::thread::id cache_thread_id() noexcept {
  cached_thread_id = std::this_thread::get_id();
  return *cached_thread_id;
}

POLYMAP_CHECK_INLINE std::thread::id this_thread_id() noexcept {
  if (cached_thread_id) [[likely]]
    return *cached_thread_id;
  return cache_thread_id();
}
}  // namespace detail

class source_location {
 public:
  static constexpr source_location current(const char* file = __builtin_FILE(),
                                           const char* function = __builtin_FUNCTION(),
                                           std::uint_least32_t line = __builtin_LINE()) noexcept {
    source_location l;
    l.file_ = file;
    l.function_ = function;
    l.line_ = line;
    return l;
  }
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return 0; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
};

// One remembered site. store() and load() may run on different threads at
// once; a load may then mix two stores' fields (the slot is a hint for the
// report, never used for a decision).
class site_slot {
 public:
  POLYMAP_CHECK_INLINE void store(const char* op, const source_location& where) noexcept {
    // relaxed, all five: read only by load() below when a report is being
    // made; must not synchronize the watched threads (see the file comment).
    op_.store(op, std::memory_order_relaxed);
    file_.store(where.file_name(), std::memory_order_relaxed);
    function_.store(where.function_name(), std::memory_order_relaxed);
    line_.store(where.line(), std::memory_order_relaxed);
    thread_.store(detail::this_thread_id(), std::memory_order_relaxed);
  }
  site load() const noexcept {
    site s;
    const char* op = op_.load(std::memory_order_relaxed);  // relaxed: pairs with store(), a hint
    if (!op) return s;
    s.op = op;
    s.where = {file_.load(std::memory_order_relaxed), function_.load(std::memory_order_relaxed),
               line_.load(std::memory_order_relaxed)};
    s.thread = thread_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::atomic<const char*> op_{nullptr};
  std::atomic<const char*> file_{""};
  std::atomic<const char*> function_{""};
  std::atomic<std::uint_least32_t> line_{0};
  std::atomic<std::thread::id> thread_{};
};

inline site make_site(const char* op, const source_location& where) noexcept {
  site s;
  s.op = op;
  s.where = {where.file_name(), where.function_name(), where.line()};
  s.thread = std::this_thread::get_id();
  return s;
}

}  // namespace polymap::check

// polymap/detail/reentry.hpp — a callback that calls back into the map it
// runs under gets a clear error instead of a silent deadlock.
//
// Maps whose callbacks run holding a lock (locked_map: its reader-writer
// lock; snapshot_map: its writer mutex) open a callback_scope naming that
// lock, and whether it is held exclusive, around each callback. Before taking
// the lock, an operation asks callback_scope::check(lock, exclusive): if this
// thread is inside a callback that holds it and either side is exclusive,
// the call could only deadlock, so it throws std::logic_error naming the map,
// the operation whose callback it is, and the rule. A read inside a read
// callback (shared inside shared: locked_map's visit or for_each calling
// contains) is allowed: glibc's rwlock, under std::shared_mutex, prefers
// readers, so the nested shared lock cannot wait for a queued writer. The callback's own operation
// then unwinds as for any throwing callback: the map is left unchanged.
//
// COST: the scope is two stores to thread-local words; check() outside any
// callback is one thread-local load and a branch.
#pragma once

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace polymap::detail {

class callback_scope {
 public:
  callback_scope(const void* lock, const char* map, const char* op, bool exclusive = true) noexcept {
    if (depth_ < kMaxFrames) frames_[depth_] = frame{lock, map, op, exclusive};
    ++depth_;
  }
  ~callback_scope() { --depth_; }
  callback_scope(const callback_scope&) = delete;
  callback_scope& operator=(const callback_scope&) = delete;

  // Throws std::logic_error if this thread runs a callback holding `lock`
  // and taking it again (`exclusive`: as a writer) could deadlock.
  static void check(const void* lock, bool exclusive = true) {
    if (depth_ == 0) [[likely]]
      return;
    const unsigned n = std::min(depth_, kMaxFrames);
    for (unsigned i = 0; i < n; ++i)
      if (frames_[i].lock == lock && (exclusive || frames_[i].exclusive)) violation(frames_[i]);
  }
  static bool inside_any() noexcept { return depth_ != 0; }

 private:
  struct frame {
    const void* lock;
    const char* map;
    const char* op;
    bool exclusive;
  };
  [[noreturn]] static void violation(const frame& f) {
    throw std::logic_error(fmt::format(
        "polymap::{} ({}): the callback of {}() called back into the same map; a callback runs holding the "
        "map's lock and must not call the map (it would deadlock). Compute what you need inside the callback "
        "and write after it returns, or do both in one update().",
        f.map, f.lock, f.op));
  }
  // Nesting deeper than this (callbacks of different maps inside each other)
  // still counts; frames beyond it are not checked.
  static constexpr unsigned kMaxFrames = 16;
  static inline thread_local constinit frame frames_[kMaxFrames]{};
  static inline thread_local constinit unsigned depth_ = 0;
};

}  // namespace polymap::detail

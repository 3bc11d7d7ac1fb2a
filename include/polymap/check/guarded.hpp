// polymap/check/guarded.hpp — guarded<M, Mutex>: a container that declares
// its mutex and reports every access made without holding it.
//
// WHAT IT CATCHES THAT THREADSANITIZER DOES NOT
//   ThreadSanitizer reports a race only when the two accesses are unordered
//   by happens-before in the run it watched. Two threads that write a shared
//   map without its lock but both lock some unrelated mutex (a logger) in
//   between are ordered by that mutex in most schedules, and TSan (gcc's and
//   clang's runtimes, Helgrind, DRD) stays silent: hazard 2 of
//   seed/README.md. guarded<> does not look at time or ordering at all. It
//   checks the rule itself (a lockset check, as in Eraser): every access must
//   hold *this container's* mutex. The first unguarded access is reported,
//   in every schedule, even single-threaded.
//
// HOW THE MUTEX KNOWS ITS HOLDER
//   A standard mutex cannot say whether the calling thread holds it, so the
//   mutex is wrapped: owned_mutex<Base> records the owner's thread id after
//   lock() and clears it before unlock(); owned_shared_mutex<Base> also keeps,
//   per thread, the list of shared_mutexes the thread holds shared. The checks
//   compare against the calling thread's own id, which is why relaxed atomics
//   suffice: a thread always sees its own last store to owner_, and no other
//   thread ever stores this thread's id there.
//
// COMPILE-TIME CHECKS UNDER CLANG
//   The mutexes are Clang "capabilities", the container member is
//   GUARDED_BY(mutex_) and get()/get_shared() REQUIRE it, so
//   `clang++ -Wthread-safety` rejects an unlocked caller before it runs
//   (tests/tsa/ holds the negative-compile tests; under clang 14 operator->
//   is checked at run time only, see POLYMAP_ARROW_REQUIRES). Lock
//   with polymap::check::lock_guard / shared_lock_guard (annotated); the
//   standard std::lock_guard works at run time but clang's analysis cannot see
//   through it. Under g++ the annotations are empty and the run-time check
//   does the work.
//
// COST
//   One thread-id compare (exclusive) per access; for shared access a scan of
//   the thread's short list of shared holds.
//
// USE
//   guarded<std::unordered_map<std::string, int>> m;
//   { lock_guard g(m.mutex()); m.get()["a"] = 1; }          // fine
//   m.get()["b"] = 2;                                         // reported
#pragma once

#include <algorithm>
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "polymap/check/annotations.hpp"
#include "polymap/check/report.hpp"
#include "polymap/check/site.hpp"

// clang 14's analysis does not bind `this` to the object of an overloaded
// operator call: `g->size()` with g.mutex() held is rejected ("requires
// holding mutex 'mutex_'", found near match 'g.mutex_'), so annotating
// operator-> would make correct code fail under -Werror. There operator-> is
// checked at run time only; get() and get_shared() are checked at compile
// time (tests/tsa). Seen with clang 14; if a newer clang rejects
// tests/tsa/good.cpp the same way, widen this condition.
#if defined(__clang__) && __clang_major__ <= 14
#define POLYMAP_ARROW_REQUIRES(x) POLYMAP_NO_THREAD_SAFETY_ANALYSIS
#define POLYMAP_ARROW_REQUIRES_SHARED(x) POLYMAP_NO_THREAD_SAFETY_ANALYSIS
#else
#define POLYMAP_ARROW_REQUIRES(x) POLYMAP_REQUIRES(x)
#define POLYMAP_ARROW_REQUIRES_SHARED(x) POLYMAP_REQUIRES_SHARED(x)
#endif

namespace polymap::check {

// An exclusive mutex that knows its owner. Base: any BasicLockable.
template <class Base = std::mutex>
class POLYMAP_CAPABILITY("mutex") owned_mutex {
 public:
  void lock() POLYMAP_ACQUIRE() {
    base_.lock();
    // relaxed: only compared by this same thread in held_by_me() (see "HOW THE
    // MUTEX KNOWS ITS HOLDER"); base_ orders everything else.
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  bool try_lock() POLYMAP_TRY_ACQUIRE(true) {
    if (!base_.try_lock()) return false;
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);  // relaxed: as in lock()
    return true;
  }
  void unlock() POLYMAP_RELEASE() {
    owner_.store(std::thread::id{}, std::memory_order_relaxed);  // relaxed: as in lock()
    base_.unlock();
  }
  bool held_by_me() const noexcept {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();  // relaxed: as in lock()
  }
  bool held_shared_by_me() const noexcept { return held_by_me(); }
  // The holder's id as last seen (a hint for reports), or id{} if free.
  std::thread::id owner_hint() const noexcept {
    return owner_.load(std::memory_order_relaxed);  // relaxed: a hint, as in lock()
  }

 private:
  Base base_;  // Protects: whatever its users guard with it.
  std::atomic<std::thread::id> owner_{};
};

namespace detail {
// The shared_mutexes this thread holds shared (with repeats). Short: a thread
// rarely holds more than a few locks.
inline std::vector<const void*>& shared_holds() {
  thread_local std::vector<const void*> holds;
  return holds;
}
}  // namespace detail

// A reader-writer mutex that knows its exclusive owner and its shared holders.
template <class Base = std::shared_mutex>
class POLYMAP_CAPABILITY("mutex") owned_shared_mutex {
 public:
  void lock() POLYMAP_ACQUIRE() {
    base_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);  // relaxed: see owned_mutex::lock
  }
  bool try_lock() POLYMAP_TRY_ACQUIRE(true) {
    if (!base_.try_lock()) return false;
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);  // relaxed: see owned_mutex::lock
    return true;
  }
  void unlock() POLYMAP_RELEASE() {
    owner_.store(std::thread::id{}, std::memory_order_relaxed);  // relaxed: see owned_mutex::lock
    base_.unlock();
  }
  void lock_shared() POLYMAP_ACQUIRE_SHARED() {
    base_.lock_shared();
    detail::shared_holds().push_back(this);
  }
  bool try_lock_shared() POLYMAP_TRY_ACQUIRE_SHARED(true) {
    if (!base_.try_lock_shared()) return false;
    detail::shared_holds().push_back(this);
    return true;
  }
  void unlock_shared() POLYMAP_RELEASE_SHARED() {
    auto& h = detail::shared_holds();
    if (auto it = std::find(h.rbegin(), h.rend(), this); it != h.rend()) h.erase(std::next(it).base());
    base_.unlock_shared();
  }
  bool held_by_me() const noexcept {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();  // relaxed: see owned_mutex
  }
  bool held_shared_by_me() const noexcept {
    if (held_by_me()) return true;
    const auto& h = detail::shared_holds();
    return std::find(h.begin(), h.end(), this) != h.end();
  }
  std::thread::id owner_hint() const noexcept {
    return owner_.load(std::memory_order_relaxed);  // relaxed: a hint
  }

 private:
  Base base_;  // Protects: whatever its users guard with it.
  std::atomic<std::thread::id> owner_{};
};

// Annotated scoped locks (std::lock_guard is invisible to clang's analysis).
template <class Mutex>
class POLYMAP_SCOPED_CAPABILITY lock_guard {
 public:
  explicit lock_guard(Mutex& m) POLYMAP_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~lock_guard() POLYMAP_RELEASE() { m_.unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  Mutex& m_;
};

template <class Mutex>
class POLYMAP_SCOPED_CAPABILITY shared_lock_guard {
 public:
  explicit shared_lock_guard(Mutex& m) POLYMAP_ACQUIRE_SHARED(m) : m_(m) { m_.lock_shared(); }
  ~shared_lock_guard() POLYMAP_RELEASE() { m_.unlock_shared(); }
  shared_lock_guard(const shared_lock_guard&) = delete;
  shared_lock_guard& operator=(const shared_lock_guard&) = delete;

 private:
  Mutex& m_;
};

template <class Mutex>
concept ownership_aware = requires(const Mutex& m) {
  { m.held_by_me() } -> std::convertible_to<bool>;
  { m.held_shared_by_me() } -> std::convertible_to<bool>;
};

template <class M, class Mutex = owned_mutex<>>
class guarded {
  static_assert(ownership_aware<Mutex>,
                "polymap::check::guarded<M, Mutex>: Mutex must say whether the calling thread holds it "
                "(held_by_me, held_shared_by_me); wrap your mutex: owned_mutex<YourMutex> or "
                "owned_shared_mutex<YourSharedMutex>");

 public:
  using container_type = M;
  using mutex_type = Mutex;
  using loc = source_location;

  guarded() = default;
  template <class... A>
  explicit guarded(std::in_place_t, A&&... a) : map_(std::forward<A>(a)...) {}
  guarded(const guarded&) = delete;
  guarded& operator=(const guarded&) = delete;

  // The mutex that protects the container: lock it, then use get().
  Mutex& mutex() const POLYMAP_RETURN_CAPABILITY(mutex_) { return mutex_; }

  // The container, for a caller that holds mutex() exclusively. Reports
  // conflict::unlocked_access otherwise (and still returns the container: the
  // handler decides whether the program goes on).
  M& get(loc l = loc::current()) POLYMAP_REQUIRES(mutex_) {
    if (!mutex_.held_by_me()) unlocked("get", l, "hold mutex() exclusively (polymap::check::lock_guard) to write");
    return map_;
  }
  // The container for reading, for a caller that holds mutex() shared or
  // exclusively.
  const M& get_shared(loc l = loc::current()) const POLYMAP_REQUIRES_SHARED(mutex_) {
    if (!mutex_.held_shared_by_me()) unlocked("get_shared", l, "hold mutex() (shared is enough) to read");
    return map_;
  }
  // g->find(k): get() / get_shared() with an unknown call site. See
  // POLYMAP_ARROW_REQUIRES below for clang 14.
  M* operator->() POLYMAP_ARROW_REQUIRES(mutex_) { return &get(loc::current("(unknown)", "guarded::operator->", 0)); }
  const M* operator->() const POLYMAP_ARROW_REQUIRES_SHARED(mutex_) {
    return &get_shared(loc::current("(unknown)", "guarded::operator->", 0));
  }

  // Runs f(M&) with mutex() held; returns what f returns.
  template <class F>
  decltype(auto) with_lock(F f) POLYMAP_EXCLUDES(mutex_) {
    lock_guard<Mutex> g(mutex_);
    return f(map_);
  }
  // Runs f(const M&) with mutex() held shared (exclusively for a plain mutex).
  template <class F>
  decltype(auto) with_shared_lock(F f) const POLYMAP_EXCLUDES(mutex_) {
    if constexpr (requires(Mutex & m) { m.lock_shared(); }) {
      shared_lock_guard<Mutex> g(mutex_);
      return f(static_cast<const M&>(map_));
    } else {
      lock_guard<Mutex> g(mutex_);
      return f(static_cast<const M&>(map_));
    }
  }

  // The container without any check: single-threaded setup and teardown only.
  M& unguarded() noexcept POLYMAP_NO_THREAD_SAFETY_ANALYSIS { return map_; }

 private:
  [[gnu::noinline, gnu::cold]] void unlocked(const char* op, const loc& l, const char* what) const {
    report r;
    r.kind = conflict::unlocked_access;
    r.object = this;
    r.object_type = "guarded<M, Mutex>";
    r.here = make_site(op, l);
    if constexpr (requires(const Mutex& m) { m.owner_hint(); }) {
      if (const auto holder = mutex_.owner_hint(); holder != std::thread::id{}) {
        r.other.op = "mutex holder";
        r.other.thread = holder;
      }
    }
    r.detail = std::string("the calling thread does not hold the container's mutex: ") + what;
    deliver(r);
  }

  mutable Mutex mutex_;  // Protects: map_.
  M map_ POLYMAP_GUARDED_BY(mutex_);
};

}  // namespace polymap::check

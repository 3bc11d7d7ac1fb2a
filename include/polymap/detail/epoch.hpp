// polymap/detail/epoch.hpp — epoch-based memory reclamation (EBR).
//
// WHY HAND-WRITTEN
//   liburcu would do, but its read side wants every thread registered with a
//   C API and its flavours differ in what a read-side section may do; we need
//   a small header-only scheme whose read side is one store to a per-thread
//   word, whose orderings are commented, and which ThreadSanitizer can follow
//   (it does not model std::atomic_thread_fence, so every happens-before edge
//   the free depends on is carried by an acquire/release pair, not a fence).
//
// TERMS
//   global epoch  G: a counter, starts at 1, only ever advanced by CAS.
//   record      : one per (thread, domain): an announcement word (0 = not
//                 pinned, else the epoch the thread pinned at), a nesting
//                 count, and a bag of retired objects. Aligned to a cache line
//                 so a pin writes only the thread's own line.
//   retire(p)   : p was unlinked from every shared structure; tag it with G.
//
// INVARIANTS
//   1. G advances from g to g+1 only when every pinned record announces g.
//   2. An object retired with tag t is freed only when G >= t + 2.
//   From 1 and 2: a thread that could still hold a pointer to an object
//   pinned at an epoch <= t; while it stays pinned G cannot pass t + 1.
//
// HAPPENS-BEFORE FOR THE FREE (what TSan checks)
//   reader's accesses -> its unpin (release store of 0) or next pin (release
//   store of a new epoch) -> advancer's acquire load of that announcement ->
//   advancer's CAS on G (acq_rel; all advances are RMWs, so they form one
//   release sequence) -> the freeing thread's acquire load of G -> free.
//
// VISIBILITY (store-buffer pattern, what the fences are for)
//   reader: store announce; fence; load pointer.  writer: unlink (store);
//   fence; load announcements (in try_advance). The two fences ensure that
//   either the reader sees the unlink or the advancer sees the pin. They are
//   asymmetric where the kernel allows (asymmetric_fence): a compiler barrier
//   in pin, membarrier(2) in try_advance, as liburcu's "memb" flavour does.
//
// THE RETIRE TAG (why retire() has no fence where membarrier works)
//   retire() must not tag an object older than its unlink: on x86 the load of
//   G can complete while the unlink store still sits in the store buffer. If
//   it reads t and G then advances to t+1, a reader pinning at t+1 can still
//   load the old pointer; tagged t, the object would be freed at G = t+2,
//   which that reader (announcing t+1) does not hold back. Two cures:
//   - a full fence between the unlink and the load of G (the tag is then the
//     epoch at the unlink): used where membarrier is unavailable, and under
//     TSan;
//   - tag t+1 with no fence, where every advance runs membarrier first: a
//     membarrier drains the store buffer of every running thread (and a
//     descheduled thread's was drained when it was switched out), so the
//     unlink is visible before G can pass t+1, and the readers that may hold
//     the object announce at most t+1; freed at G >= t+3, they have all
//     unpinned. The object waits one epoch longer; the writer saves an mfence
//     (~20-30 ns) per retire. EpochTest.RetireTagOutlivesAReaderPinnedOneEpochLater
//     fails if the tag rule is weakened to t.
//
// BACKLOG
//   A thread that stays pinned (a visit callback that blocks) holds G back for
//   every map of the domain, so nothing retired anywhere is freed meanwhile.
//   pending() and pending_bytes() make the backlog visible (maps report them in
//   stats(), as retired_pending and retired_pending_bytes, and metrics export
//   them); the rule for callers is in each map's CONTRACT: do not block inside
//   a read-side callback.
//
// COSTS
//   pin: a relaxed load of G, a store to the thread's own line, a compiler
//   barrier (a full fence where membarrier is unavailable).
//   retire: a push under the thread's own (uncontended) bag mutex; every
//   `kCollectEvery` retires the thread tries to advance and free, at once if
//   it is not pinned, else at its outermost unpin (never while pinned).
//
// WHO FREES A BAG
//   A collection frees its own thread's bag (per-thread node pools stay
//   balanced, see collect), the bags of exited threads, and the ready objects
//   of live threads that have not collected for kIdleCollectNs: a thread that
//   retired and then went quiet (a config thread asleep between reloads)
//   would otherwise keep its bag until it retires again. Every bag access
//   holds the bag's mutex (the owner's push too), so any collector may take
//   from any bag; ownership only decides who usually does. try_reclaim() and
//   barrier() take from every bag.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "polymap/detail/inline.hpp"

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define POLYMAP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define POLYMAP_TSAN 1
#endif
#endif

namespace polymap::detail {

// A full fence. ThreadSanitizer does not model std::atomic_thread_fence (and
// warns about it), so under TSan a seq_cst RMW on a private word stands in:
// TSan checks happens-before, which never rests on these fences (see the
// essay), and the fence's visibility role is x86's locked instruction either way.
inline void full_fence() noexcept {
#if defined(POLYMAP_TSAN)
  thread_local std::atomic<int> dummy{0};
  dummy.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// Asymmetric fences: the frequent side (a reader's pin) needs only a compiler
// barrier when the rare side (try_advance) runs membarrier(2), which makes
// every running thread of this process execute a full barrier. That takes the
// ~20 ns mfence out of every lookup. Where membarrier's private expedited
// command is unavailable (old kernels, some sandboxes) or under TSan, both
// sides use full fences.
class asymmetric_fence {
 public:
  POLYMAP_ALWAYS_INLINE static bool enabled() noexcept {
    static const bool on = init();
    return on;
  }
  // The reclaimer's side.
  static void heavy() noexcept {
#if defined(__linux__) && !defined(POLYMAP_TSAN)
    if (enabled() && ::syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
#endif
    full_fence();
  }

 private:
  static bool init() noexcept {
#if defined(__linux__) && !defined(POLYMAP_TSAN) && !defined(POLYMAP_NO_MEMBARRIER)
    const long cmds = ::syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return ::syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
  }
};

template <class T>
union never_destroyed;

class epoch_domain {
  struct retired {
    void* ptr;
    void (*reclaim)(void*) noexcept;
    std::uint64_t tag;
    std::size_t bytes;  // what the caller said it holds (0 if unknown), for pending_bytes()
  };

  struct alignas(64) record {
    // 0 when not pinned, else the epoch pinned at. Written by the owner only.
    std::atomic<std::uint64_t> announce{0};
    // True while a live thread owns this record.
    std::atomic<bool> claimed{false};
    // steady_clock nanoseconds of the owner's last collect() (or of its claim).
    // Written by the owner, read by other collectors as a hint: see free_ready.
    std::atomic<std::int64_t> collected_ns{0};
    record* next = nullptr;    // immutable once the record is published
    unsigned nest = 0;         // owner only
    unsigned polls = 0;        // owner only: poll() calls, see poll()
    bool reclaim_due = false;  // owner only: retire() asked for a collection while pinned
    // Owner only: asymmetric_fence::enabled(), copied at claim so that pin()
    // reads it from the line it writes anyway, not through a static's guard.
    bool light_fence = false;
    std::uint64_t scanned_at = 0;  // owner only: the epoch of this thread's last collection
    std::mutex bag_mutex;          // Protects: bag. Owner and collectors.
    std::vector<retired> bag;
    // Objects retired into this bag and not yet freed (pending() sums them).
    // Per record, so that writers on different cores do not bounce one
    // shared counter line on every retire.
    std::atomic<std::size_t> held{0};
    std::atomic<std::size_t> held_bytes{0};  // the bytes of those objects, as retire() was told
  };

  struct state {
    std::atomic<std::uint64_t> global{1};
    // steady_clock nanoseconds before which collect() does not try to advance.
    std::atomic<std::int64_t> next_advance{0};
    std::atomic<record*> head{nullptr};
    ~state() {
      record* r = head.load(std::memory_order_acquire);
      while (r) {
        record* next = r->next;
        for (auto& x : r->bag) x.reclaim(x.ptr);
        delete r;
        r = next;
      }
    }
  };

  // The calling thread's records, released when the thread exits.
  struct thread_records {
    struct entry {
      std::shared_ptr<state> owner;
      record* rec;
    };
    std::vector<entry> entries;
    ~thread_records() {
      cache_ = tls_cache{nullptr, nullptr};
      // release: pairs with the acquire CAS in claim() of the next owner.
      for (auto& e : entries) e.rec->claimed.store(false, std::memory_order_release);
    }
  };

  // The last (domain, record) pair this thread used: pin()'s fast path is one
  // compare instead of a scan of `entries`. Trivially destructible and
  // constant-initialized, so reading it needs no TLS init guard. It may name a
  // state only while this thread holds an entry for it (that entry's
  // shared_ptr keeps the state, hence the address, alive; global()'s state is
  // static and never freed), so a hit can never be a reused address:
  // ~epoch_domain and ~thread_records clear it when they drop the entry.
  struct tls_cache {
    const state* s;
    record* r;
  };
  static inline thread_local constinit tls_cache cache_{nullptr, nullptr};

  static thread_records& tls() {
    thread_local thread_records t;
    return t;
  }

 public:
  static constexpr std::size_t kCollectEvery = 64;

  epoch_domain() : owner_(std::make_shared<state>()), st_(owner_.get()) {}

  // Frees everything still retired. Precondition: no other thread uses the
  // domain any more (as for any object being destroyed). Records stay with
  // the shared state until the threads that used them exit.
  ~epoch_domain() {
    for (record* r = st_->head.load(std::memory_order_acquire); r; r = r->next) {
      std::vector<retired> bag;
      {
        std::lock_guard lock(r->bag_mutex);
        bag.swap(r->bag);
        r->held.store(0, std::memory_order_relaxed);        // relaxed: no other user left
        r->held_bytes.store(0, std::memory_order_relaxed);  // relaxed: as above
      }
      for (auto& x : bag) x.reclaim(x.ptr);
    }
    if (cache_.s == st_) cache_ = tls_cache{nullptr, nullptr};
    auto& entries = tls().entries;
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      if (it->owner.get() == st_) {
        it->rec->claimed.store(false, std::memory_order_release);  // release: as in ~thread_records
        entries.erase(it);
        break;
      }
    }
  }
  epoch_domain(const epoch_domain&) = delete;
  epoch_domain& operator=(const epoch_domain&) = delete;

  // The process-wide domain. Never torn down, so threads that outlive main's
  // statics can still unpin safely; what is pending at exit stays reachable.
  [[gnu::always_inline]] static epoch_domain& global() noexcept;

  class guard {
   public:
    guard() = default;
    guard(guard&& o) noexcept : dom_(o.dom_), rec_(std::exchange(o.rec_, nullptr)) {}
    guard& operator=(guard&& o) noexcept {
      if (this != &o) {
        unpin();
        dom_ = o.dom_;
        rec_ = std::exchange(o.rec_, nullptr);
      }
      return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    [[gnu::always_inline]] ~guard() { unpin(); }

    [[gnu::always_inline]] void unpin() noexcept {
      if (!rec_) return;
      record* r = std::exchange(rec_, nullptr);
      if (--r->nest == 0) {
        // release: the reader's accesses happen before an advancer's acquire
        // load of this announcement (see HAPPENS-BEFORE above).
        r->announce.store(0, std::memory_order_release);
        // A collection retire() deferred: run it now, unpinned, so that this
        // thread's announcement does not hold the epoch back while it frees.
        if (r->reclaim_due) [[unlikely]] {
          r->reclaim_due = false;
          dom_->collect(r);
        }
      }
    }
    bool pinned() const noexcept { return rec_ != nullptr; }

   private:
    friend class epoch_domain;
    guard(epoch_domain* d, record* r) : dom_(d), rec_(r) {}
    epoch_domain* dom_ = nullptr;
    record* rec_ = nullptr;
  };

  // Inlined into every lookup (the harness's loop showed GCC leaving it out
  // of line once the lookup grew, which cost the overlap of misses between
  // consecutive lookups); the rare parts (local_slow, collect) stay out.
  [[nodiscard, gnu::always_inline]] guard pin() {
    record* r = local();
    if (r->nest++ == 0) {
      // relaxed: a stale epoch is safe (it only holds G back, invariant 1).
      const std::uint64_t e = st_->global.load(std::memory_order_relaxed);
      // release: as in unpin, carries the previous section's accesses.
      r->announce.store(e, std::memory_order_release);
      // Store-buffer pairing with try_advance's heavy fence (VISIBILITY): the
      // reader's side of asymmetric_fence, enabled() read from the record.
      if (r->light_fence)
        std::atomic_signal_fence(std::memory_order_seq_cst);
      else
        full_fence();
    }
    return guard(this, r);
  }

  // Never throws: callers retire after publishing, when a failure could no
  // longer be undone. The bag keeps spare capacity (reserved at the record's
  // creation and after each push), so the push does not allocate; only if an
  // earlier top-up failed and the bag is full does it need memory, and if that
  // allocation fails too the object is leaked (counted in leaked()) rather
  // than freed early.
  // `bytes`: what the object holds, for pending_bytes() (0 if unknown).
  void retire(void* p, void (*reclaim)(void*) noexcept, std::size_t bytes = 0) noexcept {
    record* r;
    try {
      r = local();
    } catch (...) {
      leaked_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      return;
    }
    // THE RETIRE TAG above: never older than the caller's unlink.
    std::uint64_t tag;
    if (asymmetric_fence::enabled()) {
      // acquire: as below; the +1 stands in for the fence (membarrier in
      // every advance bounds how stale this load can be to one epoch).
      tag = st_->global.load(std::memory_order_acquire) + 1;
    } else {
      // seq_cst fence: orders the caller's unlink before reading the tag epoch.
      full_fence();
      tag = st_->global.load(std::memory_order_acquire);
    }
    std::size_t n;
    {
      std::lock_guard lock(r->bag_mutex);
      try {
        r->bag.push_back({p, reclaim, tag, bytes});
      } catch (...) {
        leaked_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        return;
      }
      n = r->bag.size();
      if (n == r->bag.capacity()) {
        try {
          r->bag.reserve(2 * n);
        } catch (...) {  // retried at the next push
        }
      }
    }
    // relaxed: a statistic (barrier() polls it; the frees it waits for are
    // ordered by the bag mutex and the epoch, not by this counter).
    r->held.fetch_add(1, std::memory_order_relaxed);
    if (bytes) r->held_bytes.fetch_add(bytes, std::memory_order_relaxed);  // relaxed: a statistic
    if (n % kCollectEvery == 0) {
      // A writer usually retires while pinned (it unlinked the object inside
      // its read-side section). Collecting then would keep this thread's
      // announcement at an old epoch for the whole collection (a membarrier
      // and frees), and two writers doing so block each other's advances:
      // measured with 2 writer threads, the epoch advanced once per ~600
      // retires and the bags grew to ~10,000 objects, each collection
      // scanning them all. So a pinned thread only marks the collection due;
      // its outermost unpin runs it.
      if (r->nest > 0) {
        r->reclaim_due = true;
      } else {
        collect(r);
      }
    }
  }

  // For a writer that retired nothing this time (concurrent_map's inline
  // layout storing scalars retires only its old tables): counts one write
  // toward the periodic collection, so what the thread did retire is freed
  // while it keeps writing. retire() alone collects only every kCollectEvery
  // objects in the bag, so a growing map's old tables (one per growth) would
  // otherwise stay until the map's owner retired 64 of them. Cheap when the
  // thread holds nothing: a thread-local lookup and one relaxed load.
  POLYMAP_ALWAYS_INLINE void poll() noexcept {
    record* r;
    try {
      r = local();
    } catch (...) {
      return;
    }
    poll_record(r);
  }
  // poll() for a thread that holds g, a pin of this domain: g has the
  // thread's record, so no lookup (a write's fast path polls this way).
  POLYMAP_ALWAYS_INLINE void poll(const guard& g) noexcept {
    assert(g.dom_ == this && g.rec_ != nullptr);
    poll_record(g.rec_);
  }

 private:
  POLYMAP_ALWAYS_INLINE void poll_record(record* r) noexcept {
    // relaxed: the owner's own counter, read as a hint (see free_ready).
    if (r->held.load(std::memory_order_relaxed) == 0) return;
    if (++r->polls % kCollectEvery != 0) return;
    if (r->nest > 0)
      r->reclaim_due = true;  // as in retire(): collect at the outermost unpin
    else
      collect(r);
  }

 public:
  // Objects that retire() could not record for lack of memory (never freed).
  std::size_t leaked() const { return leaked_.load(std::memory_order_relaxed); }

  template <class T>
  void retire(T* p) {
    retire(
        static_cast<void*>(p), [](void* q) noexcept { delete static_cast<T*>(q); }, sizeof(T));
  }

  // Tries to advance the epoch, then frees what invariant 2 allows, from every
  // thread's bag. Returns how many objects were freed.
  std::size_t try_reclaim() {
    try_advance();
    // acquire: pairs with the advancing CAS (HAPPENS-BEFORE above).
    return free_ready(st_->global.load(std::memory_order_acquire));
  }

  // At most one advance attempt per this interval, process-wide per domain.
  // An attempt costs a membarrier(2): an interrupt to every CPU running this
  // process, several microseconds in a VM, and concurrent callers serialize
  // on a kernel mutex. Unthrottled (every 64 retires of every thread), two
  // writer threads spent over half their time in it and ran at a third of
  // one thread's rate. With the throttle, objects wait a few hundred
  // microseconds longer; bags stay bounded by the retire rate times that.
  static constexpr std::int64_t kAdvanceIntervalNs = 100'000;

  // ... and, after an attempt that took c nanoseconds, none for
  // kAdvanceCostRatio * c (at most kMaxAdvanceIntervalNs), so advancing costs
  // at most 1/kAdvanceCostRatio of one thread's time wherever membarrier is
  // slow. Measured on this project's 2-vCPU VMs: 15-30 us per call while the
  // other vCPU runs (p99 40-60 us); at one attempt per 100 us, two threads
  // inserting from empty (which retire a table per growth, so keep asking)
  // spent about half their samples in membarrier's IPI wait and its kernel
  // mutex. With the ratio an attempt comes every ~1 ms there, so retired
  // objects wait that much longer; bags stay bounded by the retire rate
  // times the interval.
  static constexpr std::int64_t kAdvanceCostRatio = 40;
  static constexpr std::int64_t kMaxAdvanceIntervalNs = 5'000'000;

  // A live thread that has not collected for this long has its ready objects
  // freed by other threads' collections. Far above the collection period of
  // a thread that keeps writing (kCollectEvery retires take tens of
  // microseconds), so writers still free their own bags; a thread that went
  // quiet keeps its objects at most about this long past their grace period
  // (while some other thread collects).
  static constexpr std::int64_t kIdleCollectNs = 1'000'000;

 private:
  // The periodic collection of retire() (or of the unpin it was deferred
  // to). Never throws: out of memory, reclamation waits for the next try.
  [[gnu::noinline]] void collect(record* r) noexcept {
    try {
      const std::int64_t now = now_ns();
      // relaxed: a hint for other collectors (free_ready); it pairs with
      // nothing, since no free depends on it (the bag mutex and the tags do).
      r->collected_ns.store(now, std::memory_order_relaxed);
      // relaxed: a throttle; the CAS only elects one attempt per interval.
      std::int64_t next = st_->next_advance.load(std::memory_order_relaxed);
      // The winner holds the next slot at the longest interval while its
      // attempt runs (a membarrier can outlast kAdvanceIntervalNs in a VM,
      // and a second caller then spins on the kernel's membarrier mutex),
      // then sets it from the attempt's cost.
      if (now >= next &&
          st_->next_advance.compare_exchange_strong(next, now + kMaxAdvanceIntervalNs, std::memory_order_relaxed)) {
        try_advance();
        const std::int64_t cost = now_ns() - now;
        // relaxed: a throttle, as above; no other thread writes it before
        // now + kMaxAdvanceIntervalNs.
        st_->next_advance.store(now + std::clamp(kAdvanceCostRatio * cost, kAdvanceIntervalNs, kMaxAdvanceIntervalNs),
                                std::memory_order_relaxed);
      }
      // acquire: pairs with the advancing CAS (HAPPENS-BEFORE above).
      const std::uint64_t g = st_->global.load(std::memory_order_acquire);
      if (g == r->scanned_at) return;  // nothing became free since this thread last looked
      r->scanned_at = g;
      // This thread's bag, those of exited threads, and those of live threads
      // idle for kIdleCollectNs: each thread frees about as many nodes as it
      // retires, so per-thread allocator caches (node_pool.hpp) stay
      // balanced, and collectors rarely take other threads' bag mutexes.
      free_ready(g, r, now - kIdleCollectNs);
    } catch (...) {
    }
  }

 public:
  // Frees what invariant 2 allows at epoch g, from every thread's bag, or
  // (own != nullptr) from own's bag, the bags of exited threads, and the bags
  // of live threads whose last collection was before idle_before (steady_clock
  // nanoseconds). Taking from a live thread's bag is safe at any time: the
  // owner pushes under the same mutex, and an object leaves a bag only under
  // it, so each is freed once; readiness rests on its tag and g alone.
  std::size_t free_ready(std::uint64_t g, record* own = nullptr, std::int64_t idle_before = 0) {
    std::vector<retired> ready;
    struct take {
      record* r;
      std::size_t count, bytes;
    };
    std::vector<take> taken;  // per record: how many of ready, and their bytes
    for (record* r = st_->head.load(std::memory_order_acquire); r; r = r->next) {
      if (own && r != own) {
        // relaxed, all three: hints, paired with nothing; the bag itself is
        // read under its mutex. A stale value only changes who frees (or
        // delays it to a later collection), never whether a free is safe.
        if (r->held.load(std::memory_order_relaxed) == 0) continue;
        if (r->claimed.load(std::memory_order_relaxed) &&
            r->collected_ns.load(std::memory_order_relaxed) >= idle_before)
          continue;  // a live owner that collects: it frees its own bag
      }
      std::lock_guard lock(r->bag_mutex);
      std::size_t count = 0, bytes = 0;
      for (const auto& x : r->bag)
        if (x.tag + 2 <= g) ++count, bytes += x.bytes;
      if (count == 0) continue;
      taken.reserve(taken.size() + 1);      // may throw: nothing moved yet
      ready.reserve(ready.size() + count);  // may throw: nothing moved yet
      taken.push_back({r, count, bytes});
      auto keep = r->bag.begin();
      for (auto& x : r->bag) {
        if (x.tag + 2 <= g)
          ready.push_back(x);
        else
          *keep++ = x;
      }
      r->bag.erase(keep, r->bag.end());
    }
    for (auto& x : ready) x.reclaim(x.ptr);
    for (const auto& t : taken) {
      t.r->held.fetch_sub(t.count, std::memory_order_relaxed);                     // relaxed: a statistic
      if (t.bytes) t.r->held_bytes.fetch_sub(t.bytes, std::memory_order_relaxed);  // relaxed: a statistic
    }
    return ready.size();
  }

  // Frees everything retired so far. Waits for every pinned thread to move on;
  // must not be called while the calling thread is pinned in this domain.
  void barrier() {
    while (pending() != 0) {
      if (try_reclaim() == 0) std::this_thread::yield();
    }
  }

  // Objects retired and not yet freed, summed over the records.
  std::size_t pending() const {
    std::size_t n = 0;
    for (record* r = st_->head.load(std::memory_order_acquire); r; r = r->next)
      n += r->held.load(std::memory_order_relaxed);  // relaxed: a statistic
    return n;
  }
  // The bytes of those objects, as retire() was told them (a lower bound:
  // objects retired with bytes = 0 count nothing).
  std::size_t pending_bytes() const {
    std::size_t n = 0;
    for (record* r = st_->head.load(std::memory_order_acquire); r; r = r->next)
      n += r->held_bytes.load(std::memory_order_relaxed);  // relaxed: a statistic
    return n;
  }
  std::uint64_t epoch() const { return st_->global.load(std::memory_order_relaxed); }

 private:
  bool try_advance() {
    // Store-buffer pairing with pin's light fence (VISIBILITY above).
    asymmetric_fence::heavy();
    std::uint64_t g = st_->global.load(std::memory_order_acquire);
    for (record* r = st_->head.load(std::memory_order_acquire); r; r = r->next) {
      // acquire: pairs with the release stores in pin/unpin.
      const std::uint64_t a = r->announce.load(std::memory_order_acquire);
      if (a != 0 && a != g) return false;
    }
    return st_->global.compare_exchange_strong(g, g + 1, std::memory_order_acq_rel);
  }

  // The calling thread's record in this domain (claimed on first use).
  [[gnu::always_inline]] record* local() {
    const tls_cache c = cache_;
    if (c.s == st_) [[likely]]
      return c.r;
    return local_slow();
  }

  [[gnu::noinline]] record* local_slow() {
    auto& t = tls();
    record* r = nullptr;
    for (auto& e : t.entries) {
      if (e.owner.get() == st_) r = e.rec;
    }
    if (!r) {
      r = claim();
      try {
        // The global domain's state is static (owner_ empty): a non-owning pointer.
        t.entries.push_back({owner_ ? owner_ : std::shared_ptr<state>(std::shared_ptr<state>(), st_), r});
      } catch (...) {
        r->claimed.store(false, std::memory_order_release);  // release: as in ~thread_records
        throw;
      }
    }
    cache_ = tls_cache{st_, r};
    return r;
  }

  record* claim() {
    for (record* r = st_->head.load(std::memory_order_acquire); r; r = r->next) {
      bool expected = false;
      // acquire: pairs with the release store in ~thread_records.
      if (r->claimed.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        // relaxed: a hint, as in collect(); the new owner counts as fresh.
        r->collected_ns.store(now_ns(), std::memory_order_relaxed);
        r->light_fence = asymmetric_fence::enabled();
        return r;
      }
    }
    auto r = std::make_unique<record>();
    r->bag.reserve(kCollectEvery);                               // spare capacity: retire() must not allocate
    r->claimed.store(true, std::memory_order_relaxed);           // relaxed: not yet published
    r->collected_ns.store(now_ns(), std::memory_order_relaxed);  // relaxed: not yet published
    r->light_fence = asymmetric_fence::enabled();
    record* head = st_->head.load(std::memory_order_relaxed);
    do {
      r->next = head;
      // release: publishes the record's fields to readers of head (acquire).
    } while (!st_->head.compare_exchange_weak(head, r.get(), std::memory_order_release, std::memory_order_relaxed));
    return r.release();
  }

  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // global()'s domain, on a state in static storage.
  template <class T>
  friend union never_destroyed;
  constexpr explicit epoch_domain(state* s) noexcept : st_(s) {}
  static never_destroyed<state> global_state_;
  static never_destroyed<epoch_domain> global_;

  std::shared_ptr<state> owner_;  // empty for global(), whose state is never freed
  state* st_;                     // owner_.get(), or global()'s static state
  std::atomic<std::size_t> leaked_{0};
};

// global()'s storage: constant-initialized (no init guard on the pin path,
// and no order-of-initialization hazard for maps that other statics'
// constructors build) and never torn down: the union's destructor is empty
// (registered at exit, it does nothing), so threads that outlive main's
// statics can still unpin safely, as with libstdc++'s own constant_init.
template <class T>
union never_destroyed {
  T v;
  template <class... A>
  constexpr explicit never_destroyed(A&&... a) : v(std::forward<A>(a)...) {}
  ~never_destroyed() {}
};
inline constinit never_destroyed<epoch_domain::state> epoch_domain::global_state_{};
inline constinit never_destroyed<epoch_domain> epoch_domain::global_{&global_state_.v};
inline epoch_domain& epoch_domain::global() noexcept {
  return global_.v;
}

}  // namespace polymap::detail

// polymap/detail/group.hpp — the pieces of a SwissTable-style group that do
// not depend on what a slot holds: tags, the metadata word, its SSE2 match,
// the overflow byte, the prober over groups, and the group lock (a version
// word that is also a seqlock).
//
// TERMS
//   group      : kGroupSlots (15) slots that share one 16-byte metadata word.
//   tag        : one metadata byte per slot. 0x00 = empty; a full slot holds
//                0x80 | (the hash's top 7 bits), so a full slot never reads as
//                empty and a tag compare is one byte compare.
//   overflow   : byte 15 of the metadata word, 8 bits. Bit (hash >> 48) & 7 is
//                set in a group when an insert of that hash found the group
//                full and went on to the next group. A lookup stops at the
//                first group whose overflow bit for its hash is clear (Boost
//                foa's scheme): no tombstones, an erase only clears a tag.
//                Bits are never cleared until the table is rebuilt.
//   probe      : triangular over groups, pos_i = home + i(i+1)/2 mod groups;
//                with a power-of-two group count it visits every group once.
//
// METADATA WORD, as two 64-bit atomic words (little-endian byte order)
//   byte:  0   1   2  ...  14   15
//        +---+---+---+-...-+---+----------+
//        |t0 |t1 |t2 | ... |t14| overflow |
//        +---+---+---+-...-+---+----------+
//   A reader loads the two words (two plain loads on x86) and matches all 15
//   tags at once with one SSE2 compare. The two loads are not one atomic
//   16-byte read; each tag byte is still read whole, which is all a lookup
//   needs (see concurrent_map.hpp, READ PROTOCOL).
//
// Atomics are a template parameter: std::atomic for the concurrent table,
// plain_atomic (no synchronization at all) for the sequential one, and a
// counting wrapper in the tests.
#pragma once

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>

#include "polymap/detail/inline.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#define POLYMAP_GROUP_SSE2 1
#endif

namespace polymap::detail {

inline constexpr std::size_t kGroupSlots = 15;
inline constexpr std::uint32_t kSlotMask = (1u << kGroupSlots) - 1;

inline constexpr std::uint8_t tag_of(std::size_t hash) noexcept {
  return static_cast<std::uint8_t>(0x80u | (static_cast<std::uint64_t>(hash) >> 57));
}
inline constexpr std::uint8_t overflow_bit_of(std::size_t hash) noexcept {
  return static_cast<std::uint8_t>(1u << ((static_cast<std::uint64_t>(hash) >> 48) & 7u));
}

// The std::atomic interface over a plain T, for single-threaded tables: the
// same core code compiles to plain loads and stores.
template <class T>
class plain_atomic {
 public:
  plain_atomic() noexcept = default;
  constexpr plain_atomic(T v) noexcept : v_(v) {}  // NOLINT
  T load(std::memory_order = std::memory_order_seq_cst) const noexcept { return v_; }
  void store(T v, std::memory_order = std::memory_order_seq_cst) noexcept { v_ = v; }
  T exchange(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    T old = v_;
    v_ = v;
    return old;
  }
  T fetch_add(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    T old = v_;
    v_ = static_cast<T>(v_ + d);
    return old;
  }
  T fetch_sub(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    T old = v_;
    v_ = static_cast<T>(v_ - d);
    return old;
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order = std::memory_order_seq_cst,
                               std::memory_order = std::memory_order_seq_cst) noexcept {
    if (v_ == expected) {
      v_ = desired;
      return true;
    }
    expected = v_;
    return false;
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order a = std::memory_order_seq_cst,
                             std::memory_order b = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired, a, b);
  }

 private:
  T v_{};
};

// A snapshot of one group's metadata, matched in registers.
class group_bits {
 public:
  POLYMAP_ALWAYS_INLINE group_bits(std::uint64_t lo, std::uint64_t hi) noexcept : lo_(lo), hi_(hi) {}

  // Bit i set: slot i holds tag t.
  POLYMAP_ALWAYS_INLINE std::uint32_t match(std::uint8_t t) const noexcept {
#if defined(POLYMAP_GROUP_SSE2)
    const __m128i m = _mm_set_epi64x(static_cast<long long>(hi_), static_cast<long long>(lo_));
    const __m128i eq = _mm_cmpeq_epi8(m, _mm_set1_epi8(static_cast<char>(t)));
    return static_cast<std::uint32_t>(_mm_movemask_epi8(eq)) & kSlotMask;
#else
    std::uint32_t r = 0;
    for (std::size_t i = 0; i < kGroupSlots; ++i) r |= static_cast<std::uint32_t>(byte(i) == t) << i;
    return r;
#endif
  }
  POLYMAP_ALWAYS_INLINE std::uint32_t match_empty() const noexcept {
    return match(0);
  }
  POLYMAP_ALWAYS_INLINE std::uint32_t match_full() const noexcept {
    return ~match_empty() & kSlotMask;
  }
  POLYMAP_ALWAYS_INLINE std::uint8_t overflow() const noexcept {
    return static_cast<std::uint8_t>(hi_ >> 56);
  }
  POLYMAP_ALWAYS_INLINE bool overflowed(std::size_t hash) const noexcept {
    return (overflow() & overflow_bit_of(hash)) != 0;
  }
  std::uint8_t byte(std::size_t i) const noexcept {
    return static_cast<std::uint8_t>((i < 8 ? lo_ >> (8 * i) : hi_ >> (8 * (i - 8))) & 0xFF);
  }

 private:
  std::uint64_t lo_, hi_;
};

// One group's metadata word. Written only by the holder of the group's lock
// (or by the single thread of a sequential table), read by anyone.
template <template <class> class Atomic>
struct alignas(16) group_meta {
  Atomic<std::uint64_t> lo{0}, hi{0};

  POLYMAP_ALWAYS_INLINE group_bits load() const noexcept {
    // acquire: pairs with the release stores in set_tag/set_overflow, so a
    // reader that sees a tag also sees the slot pointer stored before it.
    return group_bits(lo.load(std::memory_order_acquire), hi.load(std::memory_order_acquire));
  }
  // Precondition: the group's lock is held (or the table is private).
  POLYMAP_ALWAYS_INLINE void set_tag(std::size_t i, std::uint8_t t) noexcept {
    auto& w = tag_word(i);
    // relaxed: only the lock holder writes this word, so it reads its own last store.
    std::uint64_t x = w.load(std::memory_order_relaxed);
    x = (x & ~(std::uint64_t{0xFF} << tag_shift(i))) | (std::uint64_t{t} << tag_shift(i));
    // release: pairs with the acquire loads in load(); publishes the slot
    // pointer stored just before (insert) or orders the tag clear first (erase).
    w.store(x, std::memory_order_release);
  }
  // set_tag for a slot whose tag is empty (0, as match_empty found it): an
  // insert's tag needs no mask.
  POLYMAP_ALWAYS_INLINE void fill_tag(std::size_t i, std::uint8_t t) noexcept {
    auto& w = tag_word(i);
    // relaxed: as in set_tag.
    const std::uint64_t x = w.load(std::memory_order_relaxed);
    assert(((x >> tag_shift(i)) & 0xFF) == 0);
    // release: as in set_tag (publishes the slot's words stored before).
    w.store(x | (std::uint64_t{t} << tag_shift(i)), std::memory_order_release);
  }
  // Slot i's tag byte (i < 16): byte i & 7 of lo (i < 8) or hi.
  POLYMAP_ALWAYS_INLINE Atomic<std::uint64_t>& tag_word(std::size_t i) noexcept { return (i & 8) ? hi : lo; }
  static constexpr unsigned tag_shift(std::size_t i) noexcept { return static_cast<unsigned>(8 * (i & 7)); }
  // Precondition: the group's lock is held (or the table is private).
  POLYMAP_ALWAYS_INLINE void set_overflow(std::size_t hash) noexcept {
    const std::uint64_t bit = std::uint64_t{overflow_bit_of(hash)} << 56;
    std::uint64_t x = hi.load(std::memory_order_relaxed);  // relaxed: as in set_tag
    // release: pairs with the acquire load in load(); the bit is set before the
    // insert that passed this group publishes its tag further along.
    if (!(x & bit)) hi.store(x | bit, std::memory_order_release);
  }
};

// Table sizing shared by table_core and inline_table: at most 7/8 of the
// slots full (as Boost foa and abseil), a power-of-two group count.
struct table_sizing {
  static constexpr std::size_t kMaxLoadNum = 7, kMaxLoadDen = 8;
  // The smallest power-of-two group count whose maximum load holds n entries.
  static std::size_t groups_for(std::size_t n) noexcept {
    const std::size_t per_group_max = kGroupSlots * kMaxLoadNum / kMaxLoadDen;  // 13
    const std::size_t g = (n + per_group_max - 1) / per_group_max;
    return std::bit_ceil(g > 1 ? g : std::size_t{1});
  }
  static std::size_t max_load_of(std::size_t capacity) noexcept { return capacity * kMaxLoadNum / kMaxLoadDen; }
};

// Triangular probing over 2^k groups.
class prober {
 public:
  POLYMAP_ALWAYS_INLINE prober(std::size_t hash, std::size_t group_mask) noexcept
      : pos_(hash & group_mask), mask_(group_mask) {}
  std::size_t get() const noexcept { return pos_; }
  std::size_t length() const noexcept { return step_ + 1; }  // groups visited so far
  // Moves to the next group; false once every group has been visited.
  POLYMAP_ALWAYS_INLINE bool next() noexcept {
    if (step_ >= mask_) return false;
    ++step_;
    pos_ = (pos_ + step_) & mask_;
    return true;
  }

 private:
  std::size_t pos_, mask_, step_ = 0;
};

// Spin politely: pause, then yield (2 cores: a spinning waiter can starve the
// holder it waits for).
class backoff {
 public:
  void pause() noexcept {
    if (n_ < 16) {
      for (unsigned i = 0; i < (1u << (n_ / 4)); ++i) cpu_relax();
      ++n_;
    } else {
      std::this_thread::yield();
    }
  }
  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

 private:
  unsigned n_ = 0;
};

// Asks for the cache line holding p in a state this core may write
// (PREFETCHW), so that a load followed by a store or CAS on that line costs
// one coherence transaction, not a shared fetch and then an upgrade. A hint:
// on x86-64 processors without PRFCHW (Intel before Broadwell) the opcode
// executes as a NOP.
POLYMAP_ALWAYS_INLINE void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

// The group lock: one 32-bit version word per group.
//   bit 0 : locked by a writer (the group's slots and metadata may change)
//   bit 1 : frozen: the table is being migrated; the group will never change
//           again and writers must move to the next table
//   bit 2 : moved (only with bit 1): an incremental migration has copied
//           every entry of the group into the next table (concurrent_map.hpp,
//           GROWTH); readers that meet it look there
//   bits 3..: a counter bumped by every unlock and by freeze
// It is a seqlock: a reader that needs a consistent multi-word view loads the
// word (acquire), reads, and checks the word unchanged and unlocked
// (read_begin/read_valid). Readers of the node layout do not need that (see
// concurrent_map.hpp), so they never touch this word at all.
template <template <class> class Atomic>
class version_lock {
 public:
  enum class acquired { locked, frozen };

  // Takes the lock, or reports that the group is frozen (not locked then).
  // `waits` counts a wait when the lock was found taken.
  template <class Counter>
  POLYMAP_ALWAYS_INLINE acquired lock(Counter& waits) noexcept {
    prefetch_for_write(&word_);  // the load below would fetch the line shared, the CAS upgrade it
    // relaxed: only a hint for the CAS below, which carries the ordering.
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    // seq_cst (acquire would pair with the release store in unlock() and
    // freeze(), making the previous holder's writes visible): also orders the
    // CAS before the key-lock check of concurrent_map's write fast path
    // (inline_table.hpp, J7). A locked CMPXCHG either way on x86.
    if (!(w & (kLocked | kFrozen)) &&
        word_.compare_exchange_weak(w, w | kLocked, std::memory_order_seq_cst, std::memory_order_relaxed)) [[likely]]
      return acquired::locked;
    return lock_slow(waits);
  }
  POLYMAP_ALWAYS_INLINE void unlock() noexcept {
    // relaxed: we hold the lock; nobody else changes the word.
    const std::uint32_t w = word_.load(std::memory_order_relaxed);
    // release: pairs with lock()'s acquire CAS and readers' read_begin/read_valid.
    word_.store((w & ~kLocked) + kStep, std::memory_order_release);
  }
  // unlock() for a holder that changed nothing: the version goes back to
  // what it was before lock(), so a reader that began before the lock and
  // validates after it succeeds (it read words nobody wrote).
  POLYMAP_ALWAYS_INLINE void unlock_unchanged() noexcept {
    // relaxed: we hold the lock; nobody else changes the word.
    const std::uint32_t w = word_.load(std::memory_order_relaxed);
    // release: as in unlock(), for the next holder's acquire CAS.
    word_.store(w & ~kLocked, std::memory_order_release);
  }
  // Waits for the lock to be free and marks the group frozen for good.
  void freeze() noexcept { (void)freeze_claim(); }
  // freeze() that says whether this call froze the group (false: it was
  // frozen already, by another thread). The thread that froze a group in an
  // incremental migration copies it.
  bool freeze_claim() noexcept {
    backoff b;
    for (;;) {
      std::uint32_t w = word_.load(std::memory_order_relaxed);  // relaxed: a hint for the CAS
      if (w & kFrozen) return false;
      // seq_cst: acquire pairs with unlock()'s release (the last writer's
      // slot writes are visible to the migrating thread), release with
      // lock()'s acquire load of the frozen word; seq_cst also orders the
      // freeze before the freezer's checks of the slot locks (J8 in
      // inline_table.hpp). A locked CMPXCHG either way on x86.
      if (!(w & kLocked) &&
          word_.compare_exchange_weak(w, (w | kFrozen) + kStep, std::memory_order_seq_cst, std::memory_order_relaxed))
        return true;
      b.pause();
    }
  }
  // Precondition: frozen by this thread's freeze_claim(), and the group's
  // entries copied into the next table.
  void mark_moved() noexcept {
    const std::uint32_t w = word_.load(std::memory_order_relaxed);  // relaxed: only the freezer writes now
    // release: pairs with the acquire loads of readers (read_begin) and of
    // moved(): whoever sees the bit sees the copies in the next table.
    word_.store(w | kMoved, std::memory_order_release);
  }
  bool moved() const noexcept {
    return word_.load(std::memory_order_acquire) & kMoved;  // acquire: pairs with mark_moved()
  }
  // Whether a version word read by read_begin says the group was moved.
  static constexpr bool moved(std::uint32_t version) noexcept { return (version & kMoved) != 0; }
  // Precondition: frozen by this thread, which still holds the table-wide
  // rebuild mutex. Writers that saw the group frozen wait for that mutex.
  void thaw() noexcept {
    const std::uint32_t w = word_.load(std::memory_order_relaxed);  // relaxed: only the freezer writes now
    // release: pairs with lock()'s acquire CAS.
    word_.store((w & ~kFrozen) + kStep, std::memory_order_release);
  }
  bool frozen() const noexcept {
    return word_.load(std::memory_order_acquire) & kFrozen;  // acquire: pairs with freeze()
  }
  // Seqlock read side, for layouts that read several words per slot.
  POLYMAP_ALWAYS_INLINE std::uint32_t read_begin() const noexcept {
    return word_.load(std::memory_order_acquire);  // acquire: pairs with unlock()'s release
  }
  // read_begin for concurrent_map's key-lock writers (J7 in
  // inline_table.hpp): seq_cst, so it is ordered after their key-lock CAS
  // against a fast writer's group-lock CAS and key-lock check. A plain load
  // on x86; readers keep the acquire load above.
  POLYMAP_ALWAYS_INLINE std::uint32_t read_begin_seq_cst() const noexcept {
    return word_.load(std::memory_order_seq_cst);
  }
  // Whether a version word read by read_begin was taken by a writer.
  static constexpr bool locked(std::uint32_t version) noexcept { return (version & kLocked) != 0; }
  // Whether a group with this version word may be written: not locked, not frozen.
  static constexpr bool open(std::uint32_t version) noexcept { return (version & (kLocked | kFrozen)) == 0; }
  POLYMAP_ALWAYS_INLINE bool read_valid(std::uint32_t begin) const noexcept {
    // Callers read the protected words with acquire loads, so this load cannot
    // move above them; relaxed is enough for the word itself.
    return !(begin & kLocked) && word_.load(std::memory_order_relaxed) == begin;
  }
  std::uint32_t raw() const noexcept { return word_.load(std::memory_order_relaxed); }  // relaxed: tests only

  // lock()'s loop, out of line: the inlined fast path stays one load and
  // one CAS.
  template <class Counter>
  [[gnu::noinline]] acquired lock_slow(Counter& waits) noexcept {
    backoff b;
    bool counted = false;
    for (;;) {
      // relaxed: only a hint for the CAS below, which carries the ordering.
      std::uint32_t w = word_.load(std::memory_order_relaxed);
      if (w & kFrozen) {
        // acquire: pairs with freeze()'s release CAS (the frozen state is final).
        (void)word_.load(std::memory_order_acquire);
        return acquired::frozen;
      }
      // seq_cst: as in lock().
      if (!(w & kLocked) &&
          word_.compare_exchange_weak(w, w | kLocked, std::memory_order_seq_cst, std::memory_order_relaxed))
        return acquired::locked;
      if (!counted) {
        // relaxed: a statistic.
        waits.fetch_add(1, std::memory_order_relaxed);
        counted = true;
      }
      b.pause();
    }
  }

 private:
  static constexpr std::uint32_t kLocked = 1, kFrozen = 2, kMoved = 4, kStep = 8;
  Atomic<std::uint32_t> word_{0};
};

// A test-and-test-and-set spin lock with backoff: the key stripes of
// concurrent_map. Held for one key's write, never across a call that waits
// for another stripe.
template <template <class> class Atomic>
class spin_lock {
 public:
  template <class Counter>
  POLYMAP_ALWAYS_INLINE void lock(Counter& waits) noexcept {
    std::uint32_t expected = 0;
    // seq_cst: acquire pairs with unlock()'s release store, so the previous
    // holder's writes are visible; seq_cst also orders the CAS before the
    // lookup's read_begin for concurrent_map's write fast path (J7 in
    // inline_table.hpp). The contended loop is out of line.
    if (!word_.compare_exchange_weak(expected, 1, std::memory_order_seq_cst, std::memory_order_relaxed)) [[unlikely]]
      lock_slow(waits);
  }
  // Whether some thread holds the lock. seq_cst: see J7 in inline_table.hpp.
  POLYMAP_ALWAYS_INLINE bool held() const noexcept { return word_.load(std::memory_order_seq_cst) != 0; }
  POLYMAP_ALWAYS_INLINE void unlock() noexcept {
    word_.store(0, std::memory_order_release);
  }  // release: pairs with lock()'s CAS

 private:
  template <class Counter>
  [[gnu::noinline]] void lock_slow(Counter& waits) noexcept {
    backoff b;
    bool counted = false;
    for (;;) {
      std::uint32_t expected = 0;
      // relaxed load: a hint only (test and test-and-set); seq_cst CAS: as in lock().
      if (word_.load(std::memory_order_relaxed) == 0 &&
          word_.compare_exchange_weak(expected, 1, std::memory_order_seq_cst, std::memory_order_relaxed))
        return;
      if (!counted) {
        waits.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        counted = true;
      }
      b.pause();
    }
  }
  Atomic<std::uint32_t> word_{0};
};

// The lock of a single-threaded table: never taken, never frozen.
template <template <class> class Atomic>
class null_group_lock {
 public:
  enum class acquired { locked, frozen };
  template <class Counter>
  acquired lock(Counter&) noexcept {
    return acquired::locked;
  }
  void unlock() noexcept {}
  void freeze() noexcept {}
  void thaw() noexcept {}
  bool frozen() const noexcept { return false; }
  std::uint32_t raw() const noexcept { return 0; }
};

}  // namespace polymap::detail

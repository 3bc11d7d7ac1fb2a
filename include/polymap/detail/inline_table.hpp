// polymap/detail/inline_table.hpp — concurrent_map's table for small
// trivially copyable keys and values: each slot holds the key and the value
// themselves, as two 64-bit atomic words, read under the group's seqlock.
//
// It is table_core's sibling (same groups, tags, overflow bytes, probing,
// growth trigger and status codes; see table_core.hpp), with two differences:
// a slot is {key word, value word} instead of a node pointer, and the version
// word sits next to the metadata because every lookup that matches a tag
// reads it. It knows words only: the front end turns K and V into words
// (to_word/from_word) and passes a key predicate and a hasher where needed.
//
// LAYOUT (one allocation; G = group count, a power of two)
//   +------------------------------------+--------------------------------------+
//   | header[G], 32 B each:              | slot[G * 15], 16 B each:             |
//   | group_meta (16 B) | version (4 B)  | {key word, value word} of slot i of  |
//   |   | padding (12 B)                 | group g at slots[g * 15 + i]         |
//   +------------------------------------+--------------------------------------+
//   Two headers per cache line: a lookup's tag match and its seqlock word come
//   in one miss, its slot in a second (a 16-byte slot never straddles a line).
//   That is the same two misses as boost::unordered_flat_map (metadata, then
//   element); the node layout needs three (metadata, slot pointer, node).
//   The alternative of one 272-byte block per group (header, then slots) costs
//   the same misses and pads worse; 14 slots per group (256 B with the
//   header) would break kGroupSlots, which the metadata word is built on.
//
// INVARIANTS (as table_core's, restated for words)
//   J1. A slot is full iff its tag is nonzero. Its key and value words are
//       stored (kSeqlockStore) before its tag is set, and change only while
//       the group's lock is held; an erase clears only the tag (the words of
//       an empty slot are never read as an entry).
//   J2-J4 are table_core's I2-I4 (one slot per key; overflow bits; size_
//       changes only under a group lock, so it is exact once all are frozen).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "polymap/detail/group.hpp"
#include "polymap/detail/hash.hpp"

namespace polymap::detail {

// Whether concurrent_map<K, V> keeps K and V inline in its slots: both must be
// copied as plain bytes into one 64-bit word each (and back into a default-
// constructed object), and a string-like K (const char*) is excluded because
// its equality and hash look at the characters, not the pointer.
template <class K, class V>
inline constexpr bool inline_slots_v =
    std::conjunction_v<std::is_trivially_copyable<K>, std::is_trivially_copyable<V>, std::is_default_constructible<K>,
                       std::is_default_constructible<V>> &&
    sizeof(K) <= 8 && sizeof(V) <= 8 && !is_string_like<K>;

template <class T>
std::uint64_t to_word(const T& x) noexcept {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
  std::uint64_t w = 0;
  std::memcpy(&w, &x, sizeof(T));
  return w;
}
template <class T>
T from_word(std::uint64_t w) noexcept {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
  T x{};
  std::memcpy(&x, &w, sizeof(T));
  return x;
}

template <template <class> class Atomic, class GroupLock>
struct alignas(32) inline_group_header {
  group_meta<Atomic> meta;
  GroupLock lock;  // Protects: meta and the group's 15 slots (J1); the seqlock.
};

template <template <class> class Atomic>
struct inline_slot {
  Atomic<std::uint64_t> key{0};
  Atomic<std::uint64_t> value{0};
};

template <template <class> class Atomic, class GroupLock>
class alignas(64) inline_table {
  using header = inline_group_header<Atomic, GroupLock>;
  using slot = inline_slot<Atomic>;

 public:
  static constexpr std::size_t kMaxLoadNum = 7, kMaxLoadDen = 8;  // as table_core

  // One entry as words.
  struct entry {
    std::uint64_t key = 0;
    std::uint64_t value = 0;
  };
  // A consistent (seqlock-validated) read of one slot.
  struct location {
    bool found = false;
    std::uint64_t key = 0;
    std::uint64_t value = 0;
    std::size_t group = 0;
    std::size_t slot = 0;
    explicit operator bool() const noexcept { return found; }
  };
  enum class status { done, frozen, full, gone };

  static std::size_t groups_for(std::size_t n) noexcept {
    const std::size_t per_group_max = kGroupSlots * kMaxLoadNum / kMaxLoadDen;  // 13
    const std::size_t g = (n + per_group_max - 1) / per_group_max;
    return std::bit_ceil(std::max<std::size_t>(g, 1));
  }

  explicit inline_table(std::size_t groups) : groups_(groups), mask_(groups - 1) {
    bytes_ = groups * (sizeof(header) + kGroupSlots * sizeof(slot));
    block_ = static_cast<unsigned char*>(::operator new (bytes_, std::align_val_t{64}));
    headers_ = reinterpret_cast<header*>(block_);
    slots_ = reinterpret_cast<slot*>(block_ + groups * sizeof(header));
    for (std::size_t g = 0; g < groups; ++g) new (&headers_[g]) header();
    for (std::size_t i = 0; i < groups * kGroupSlots; ++i) new (&slots_[i]) slot();
  }
  inline_table(const inline_table&) = delete;
  inline_table& operator=(const inline_table&) = delete;
  ~inline_table() { ::operator delete (block_, std::align_val_t{64}); }

  std::size_t groups() const noexcept { return groups_; }
  std::size_t capacity() const noexcept { return groups_ * kGroupSlots; }
  std::size_t max_load() const noexcept { return capacity() * kMaxLoadNum / kMaxLoadDen; }
  std::size_t bytes() const noexcept { return bytes_; }
  // relaxed (size, dirty): statistics and growth triggers, as in table_core.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  std::size_t dirty() const noexcept { return dirty_.load(std::memory_order_relaxed); }
  bool needs_rebuild() const noexcept { return size() + dirty() >= max_load(); }

  GroupLock& lock_of(std::size_t g) noexcept { return headers_[g].lock; }
  const GroupLock& lock_of(std::size_t g) const noexcept { return headers_[g].lock; }

  void prefetch(std::size_t hash) const noexcept {
    const std::size_t g = hash & mask_;
    __builtin_prefetch(&headers_[g]);
  }
  // Pulls the slot of the first tag match in the home group (a hint: the tags
  // are read without the seqlock).
  void prefetch_candidate(std::size_t hash) const noexcept {
    const std::size_t g = hash & mask_;
    if (const std::uint32_t m = headers_[g].meta.load().match(tag_of(hash)))
      __builtin_prefetch(&slots_[g * kGroupSlots + static_cast<std::size_t>(std::countr_zero(m))]);
  }

  // Finds the entry whose key word satisfies key_matches (called only on a
  // key word validated by the seqlock, i.e. a key that was in this slot at one
  // instant). Loads only: see concurrent_map.hpp, READ PROTOCOL (inline).
  template <class KeyMatch>
  location find(std::size_t hash, KeyMatch&& key_matches) const {
    const std::uint8_t tag = tag_of(hash);
    prober p(hash, mask_);
    for (;;) {
      const std::size_t g = p.get();
      const header& hd = headers_[g];
      group_bits bits(0, 0);
      for (backoff b;; b.pause()) {
        const std::uint32_t v = hd.lock.read_begin();
        bits = hd.meta.load();
        std::uint32_t m = bits.match(tag);
        for (; m; m &= m - 1) {
          const std::size_t i = static_cast<std::size_t>(std::countr_zero(m));
          const slot& s = slots_[g * kGroupSlots + i];
          // kSeqlockData (relaxed, acquire under TSan): ordered by read_valid,
          // pairs with the writer's kSeqlockStore (group.hpp).
          const std::uint64_t kw = s.key.load(kSeqlockData);
          const std::uint64_t vw = s.value.load(kSeqlockData);
          if (!hd.lock.read_valid(v)) break;  // a writer overlapped: read the group again
          if (key_matches(kw)) return {true, kw, vw, g, i};
        }
        if (!m) break;  // every candidate read whole and none matched
      }
      // A miss needs no validation: tags and overflow bits are single bytes,
      // read with acquire loads, and argued as in the node layout.
      if (!bits.overflowed(hash) || !p.next()) return {};
    }
  }

  // Puts e (whose key is absent, and which no other thread inserts meanwhile:
  // the caller's contract) into the first group on its probe sequence with an
  // empty slot. Locks one group at a time.
  template <class Counter>
  status insert(std::size_t hash, const entry& e, Counter& waits) {
    prober p(hash, mask_);
    do {
      const std::size_t g = p.get();
      header& hd = headers_[g];
      if (hd.lock.lock(waits) == GroupLock::acquired::frozen) return status::frozen;
      if (const std::uint32_t avail = hd.meta.load().match_empty()) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(avail));
        store_words(slots_[g * kGroupSlots + i], e);
        hd.meta.set_tag(i, tag_of(hash));               // J1: words, then tag
        size_.fetch_add(1, std::memory_order_relaxed);  // relaxed: J4, under the group lock
        hd.lock.unlock();                               // bumps the version: readers retry
        return status::done;
      }
      hd.meta.set_overflow(hash);  // I3
      hd.lock.unlock();
    } while (p.next());
    return status::full;
  }

  // Stores a new value word for the entry at `at`; `gone` if the slot no
  // longer holds at's key and value.
  template <class Counter>
  status replace(const location& at, std::uint64_t value, Counter& waits) {
    header& hd = headers_[at.group];
    if (hd.lock.lock(waits) == GroupLock::acquired::frozen) return status::frozen;
    status s = status::gone;
    if (unprotected_holds(at)) {
      // kSeqlockStore (release): pairs with read_valid's acquire fence.
      slots_[at.group * kGroupSlots + at.slot].value.store(value, kSeqlockStore);
      s = status::done;
    }
    hd.lock.unlock();
    return s;
  }

  // Empties the slot at `at` if it still holds at's key and value.
  template <class Counter>
  status erase(const location& at, Counter& waits) {
    header& hd = headers_[at.group];
    if (hd.lock.lock(waits) == GroupLock::acquired::frozen) return status::frozen;
    status s = status::gone;
    if (unprotected_holds(at)) {
      hd.meta.set_tag(at.slot, 0);                                                         // J1: the tag only
      size_.fetch_sub(1, std::memory_order_relaxed);                                       // relaxed: J4
      if (hd.meta.load().overflow() != 0) dirty_.fetch_add(1, std::memory_order_relaxed);  // relaxed: J4
      s = status::done;
    }
    hd.lock.unlock();
    return s;
  }

  void thaw_all() noexcept {
    for (std::size_t g = 0; g < groups_; ++g) headers_[g].lock.thaw();
  }
  void freeze_all() noexcept {
    for (std::size_t g = 0; g < groups_; ++g) headers_[g].lock.freeze();
  }

  // Calls f(const entry&) for every full slot, in slot order; each group is
  // read whole under its seqlock first, then f runs outside the read.
  template <class F>
  void for_each_entry(F&& f) const {
    scan([&](std::size_t, const entry& e) { f(e); });
  }

  // Inserts into a table no other thread can see (being built): no locks.
  // Precondition: the key is absent and the table is not full.
  void unprotected_insert(std::size_t hash, const entry& e) noexcept {
    prober p(hash, mask_);
    for (;;) {
      const std::size_t g = p.get();
      header& hd = headers_[g];
      if (const std::uint32_t avail = hd.meta.load().match_empty()) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(avail));
        store_words(slots_[g * kGroupSlots + i], e);
        hd.meta.set_tag(i, tag_of(hash));
        size_.fetch_add(1, std::memory_order_relaxed);  // relaxed: private table
        return;
      }
      hd.meta.set_overflow(hash);
      p.next();
    }
  }

  // histogram[i]: entries a lookup finds in its (i+1)-th probed group;
  // hash_of(key word) gives each entry's hash (slots keep none).
  template <class HashOf>
  std::vector<std::uint64_t> probe_histogram(HashOf&& hash_of) const {
    std::vector<std::uint64_t> h;
    scan([&](std::size_t g, const entry& e) {
      prober p(hash_of(e.key), mask_);
      while (p.get() != g && p.next()) {
      }
      if (h.size() < p.length()) h.resize(p.length());
      ++h[p.length() - 1];
    });
    return h;
  }

 private:
  // Precondition: the group's lock is held by the caller.
  bool unprotected_holds(const location& at) const noexcept {
    const slot& s = slots_[at.group * kGroupSlots + at.slot];
    // relaxed: under the group lock, lock()'s acquire made the previous
    // holder's stores visible, and no one else writes the slot now.
    return headers_[at.group].meta.load().byte(at.slot) != 0 && s.key.load(std::memory_order_relaxed) == at.key &&
           s.value.load(std::memory_order_relaxed) == at.value;
  }
  // Precondition: the group's lock is held, or the table is private.
  static void store_words(slot& s, const entry& e) noexcept {
    // kSeqlockStore (release): pairs with read_valid's acquire fence; also
    // ordered before the tag's release store in set_tag (J1).
    s.key.store(e.key, kSeqlockStore);
    s.value.store(e.value, kSeqlockStore);
  }
  // Calls f(group, entry) for every full slot, a group at a time, each group
  // read consistently (retried while a writer holds it).
  template <class F>
  void scan(F&& f) const {
    entry buf[kGroupSlots];
    for (std::size_t g = 0; g < groups_; ++g) {
      const header& hd = headers_[g];
      std::size_t n = 0;
      for (backoff b;; b.pause()) {
        const std::uint32_t v = hd.lock.read_begin();
        n = 0;
        for (std::uint32_t m = hd.meta.load().match_full(); m; m &= m - 1) {
          const slot& s = slots_[g * kGroupSlots + static_cast<std::size_t>(std::countr_zero(m))];
          // kSeqlockData: as in find.
          buf[n++] = {s.key.load(kSeqlockData), s.value.load(kSeqlockData)};
        }
        if (hd.lock.read_valid(v)) break;
      }
      for (std::size_t i = 0; i < n; ++i) f(g, buf[i]);
    }
  }

  std::size_t groups_, mask_, bytes_ = 0;
  unsigned char* block_ = nullptr;
  header* headers_ = nullptr;
  slot* slots_ = nullptr;
  // On their own cache line: every insert and erase writes them.
  alignas(64) Atomic<std::size_t> size_{0};  // J4
  Atomic<std::size_t> dirty_{0};             // erasures from overflowed groups since the build
};

}  // namespace polymap::detail

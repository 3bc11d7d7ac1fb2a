// polymap/detail/read_index.hpp — snapshot_map's read accelerator: a flat
// copy of the entries, shared by consecutive versions, in which each entry
// says for which versions its copy is the truth.
//
// TERMS
//   base version R : the version the index was built from; it holds a copy of
//                    every entry of R, in SwissTable-style groups.
//   slot           : {since, born, key, value}: one value a key had, from
//                    version `born` until just before `since`.
//   born           : the version that added the slot: R for those built in,
//                    later for a key inserted after R, or for the new value
//                    of a key's first change (its successor; a key has at
//                    most two slots).
//                    Never changes.
//   since          : the first version after `born` that changed the key, or
//                    kNever; set once, by the writer, before it publishes
//                    that version. Bit 31 (kSucc) says the key's next value
//                    follows in a later slot; without it, a reader at or past
//                    `since` must ask the trie ("trie mode": a second change,
//                    an erase, or a change that found the index full).
//   probe order    : appends take the first free slot along the key's probe
//                    sequence, and nothing is ever removed, so one key's
//                    slots lie in the order they were added.
//
// THE READ RULE (snapshot_map.hpp, READ PATH)
//   A reader of version t (t >= R) walks k's probe sequence:
//     * a slot of k with born > t   : k is absent in t (its first slot after
//                                     R was added later).
//     * a slot of k with t < since  : its value is t's value. Done: one
//                                     probe for a key unchanged since R or
//                                     changed once.
//     * since <= t with kSucc       : k changed by t; its next value lies
//                                     further along: keep probing.
//     * since <= t without kSucc   : ask the trie, which is exact for every
//                                     version.
//     * an empty tag                : k is absent in t.
//   A key of a version the index serves always has a slot: an insert that
//   finds the index full makes the writer build a new index (or, if that
//   fails, publish the version with none: every read then asks the trie).
//   Ordering: the writer constructs a slot, then release-stores its tag; it
//   stores `since` (relaxed) after appending the successor and before it
//   publishes version `since` with a release store of the map's current
//   pointer. A reader of t acquired that pointer (or was handed a snapshot
//   of t with its own synchronization), so every append and stamp of a
//   version <= t happens before its reads; what it may also see of later
//   versions (a newer slot, a newer stamp) has born > t or since > t, which
//   the rule reads correctly. Stamping early is safe (it only sends readers
//   to the exact trie); appending or stamping after the publish would not
//   be, and never happens.
//
// LAYOUT
//   group_meta (group.hpp: 15 tags in two atomic words, matched with SSE2)
//   per group, slots in a parallel array; born and since are 31-bit offsets
//   from R (an index is rebuilt before an offset could overflow), so a
//   u64 -> polymap::value slot is 32 bytes, two per cache line. Probing is
//   linear over groups; a lookup stops at the first group with an empty tag.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "polymap/detail/group.hpp"

namespace polymap::detail {

template <class K, class V>
class read_index {
  using meta = group_meta<std::atomic>;

 public:
  // Version offsets from the base version (born, since) are 31-bit; bit 31
  // of `since` is the successor flag (see TERMS).
  static constexpr std::uint32_t kSucc = 0x80000000u;
  static constexpr std::uint32_t kNever = 0x7FFFFFFFu;
  static constexpr std::uint64_t kMaxOffset = kNever - 1;

  struct slot {
    // See THE READ RULE: stored by the writer (relaxed, before its publish),
    // loaded by readers (relaxed, after their acquire of the version).
    mutable std::atomic<std::uint32_t> since{kNever};
    std::uint32_t born;
    K key;
    V val;
    template <class KK, class VV>
    slot(std::uint32_t b, KK&& k, VV&& v) : born(b), key(std::forward<KK>(k)), val(std::forward<VV>(v)) {}
  };

  // What the index says about a key to a reader of version t.
  struct answer {
    enum kind_t { absent, copy, trie } kind;
    const V* val;  // copy only
  };

  // THE READ RULE, for a reader of version t (t >= the base version R,
  // usable_at(t)).
  // Safe while the writer appends and stamps.
  template <class Q, class Eq>
  [[gnu::always_inline]] answer lookup(std::size_t h, const Q& q, const Eq& eq, std::uint64_t t) const {
    const std::uint64_t off = t - base_;
    const std::uint8_t tag = tag_of(h);
    std::size_t g = h & mask_;
    // The group's slots are the second dependent miss: start it (and its
    // page walk) alongside the metadata's, as Boost's foa tables do.
    __builtin_prefetch(&slots_[g * kGroupSlots]);
    for (;;) {
      const group_bits b = metas_[g].load();  // acquire: see group_meta::load
      for (std::uint32_t m = b.match(tag); m; m &= m - 1) {
        const slot& s = slots_[g * kGroupSlots + static_cast<std::size_t>(std::countr_zero(m))];
        if (!eq(s.key, q)) [[unlikely]]
          continue;
        if (s.born > off) [[unlikely]]
          return {answer::absent, nullptr};
        // relaxed: see THE READ RULE.
        const std::uint32_t w = s.since.load(std::memory_order_relaxed);
        if ((w & ~kSucc) > off) [[likely]]
          return {answer::copy, &s.val};
        if (!(w & kSucc)) return {answer::trie, nullptr};
        // Changed by t, and the new value follows in probe order.
      }
      if (b.match_empty()) return {answer::absent, nullptr};  // nothing is removed: an empty tag ends the chain
      g = (g + 1) & mask_;
    }
  }

  // What record() did to the index.
  enum class recorded {
    kept,   // the index holds the change (a successor, or already trie mode)
    stale,  // the key went to trie mode
    full    // a new key found no room: this index cannot serve the version
  };

  // Records that version `number` changed key k (hash h): its new value
  // `v`, or erased (v == nullptr). Writer only, before it publishes
  // `number`; precondition: usable_at(number). A copy that throws leaves
  // the key in trie mode; only eq may throw, and before anything changed.
  template <class Eq>
  recorded record(std::size_t h, const K& k, const Eq& eq, std::uint64_t number, const V* v) const {
    auto* self = const_cast<read_index*>(this);
    const auto off = static_cast<std::uint32_t>(number - base_);
    std::size_t count = 0;
    const slot* last = self->find_last(h, k, eq, count);
    if (!last) {
      // A key new since the build (an erase always finds its key: every key
      // of every version this index serves was built in or appended).
      if (!v) return recorded::kept;
      return self->try_place(h, off, k, *v) ? recorded::kept : recorded::full;
    }
    // relaxed: see THE READ RULE (only this writer stores it).
    if (last->since.load(std::memory_order_relaxed) != kNever) return recorded::kept;  // trie mode already
    // A key's first change in this index keeps its new value here (at most
    // two slots per key, so a hot key cannot lengthen probe chains); a later
    // change, an erase, or no room sends the key to the trie.
    if (v && count == 1 && self->try_place(h, off, k, *v)) {
      last->since.store(off | kSucc, std::memory_order_relaxed);
      return recorded::kept;
    }
    last->since.store(off, std::memory_order_relaxed);
    return recorded::stale;
  }

  // Counts the versions that point at this index. Orders as hamt::node::refs:
  // relaxed increments from a held reference, acq_rel decrement.
  mutable std::atomic<std::uint32_t> refs{1};

  read_index(const read_index&) = delete;
  read_index& operator=(const read_index&) = delete;

  // An index with room for `room` entries, filled with version `born`'s
  // entries by for_each_entry(add), add(hash, key, value) once per entry
  // (keys pairwise distinct). If a copy throws, what was built is destroyed
  // and the exception propagates.
  template <class F>
  static read_index* build(std::size_t room, std::uint64_t born, F&& for_each_entry) {
    std::unique_ptr<read_index> ix(new read_index(groups_for(room), born));
    for_each_entry([&](std::size_t h, const K& k, const V& v) { ix->place(h, 0, k, v); });
    return ix.release();
  }

  ~read_index() {
    for (std::size_t g = 0; g <= mask_; ++g) {
      std::uint32_t m = metas_[g].load().match_full();
      for (; m; m &= m - 1) slots_[g * kGroupSlots + static_cast<std::size_t>(std::countr_zero(m))].~slot();
    }
    ::operator delete (slots_, std::align_val_t{alignof(slot)});
  }

  // Whether version `number` may still use this index (its offset fits).
  bool usable_at(std::uint64_t number) const noexcept { return number - base_ <= kMaxOffset; }
  bool full() const noexcept { return used() >= max_used(); }

  // relaxed: only the writer stores it; stats() may read it concurrently.
  std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::size_t capacity() const noexcept { return (mask_ + 1) * kGroupSlots; }
  std::size_t bytes() const noexcept {
    return sizeof(*this) + (mask_ + 1) * (sizeof(meta) + kGroupSlots * sizeof(slot));
  }

  static void release(const read_index* ix) noexcept {
    // acq_rel: see refs.
    if (ix && ix->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete ix;
  }
  static void acquire(const read_index* ix) noexcept {
    if (ix) ix->refs.fetch_add(1, std::memory_order_relaxed);  // relaxed: see refs
  }

 private:
  read_index(std::size_t groups, std::uint64_t base)
      : base_(base),
        mask_(groups - 1),
        metas_(new meta[groups]),
        slots_(
            static_cast<slot*>(::operator new (groups* kGroupSlots * sizeof(slot), std::align_val_t{alignof(slot)}))) {}

  static std::size_t groups_for(std::size_t room) {
    // room entries at load <= 7/8, so every probe chain ends at an empty tag.
    const std::size_t slots = room + room / 7 + 1;
    return std::bit_ceil((slots + kGroupSlots - 1) / kGroupSlots);
  }
  std::size_t max_used() const noexcept { return capacity() - capacity() / 8; }

  // The last slot (in probe order, which is the order of appends) holding
  // a key equal to k, and how many slots hold it.
  template <class Eq>
  const slot* find_last(std::size_t h, const K& k, const Eq& eq, std::size_t& count) const {
    const std::uint8_t tag = tag_of(h);
    const slot* last = nullptr;
    for (std::size_t g = h & mask_;; g = (g + 1) & mask_) {
      const group_bits b = metas_[g].load();
      for (std::uint32_t m = b.match(tag); m; m &= m - 1) {
        const slot& s = slots_[g * kGroupSlots + static_cast<std::size_t>(std::countr_zero(m))];
        if (eq(s.key, k)) {
          last = &s;
          ++count;
        }
      }
      if (b.match_empty()) return last;
    }
  }

  bool try_place(std::size_t h, std::uint32_t born, const K& k, const V& v) noexcept {
    if (full()) return false;
    try {
      place(h, born, k, v);
      return true;
    } catch (...) {
      return false;
    }
  }

  void place(std::size_t h, std::uint32_t born, const K& k, const V& v) {
    std::size_t g = h & mask_;
    for (;;) {
      if (const std::uint32_t e = metas_[g].load().match_empty()) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(e));
        new (&slots_[g * kGroupSlots + i]) slot(born, k, v);  // may throw: tag still empty
        // release (in set_tag): readers that see the tag see the slot built.
        metas_[g].set_tag(i, tag_of(h));
        used_.store(used_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // relaxed: see used()
        return;
      }
      g = (g + 1) & mask_;
    }
  }

  std::uint64_t base_;                // the version built in (R)
  std::size_t mask_;                  // groups - 1
  std::atomic<std::size_t> used_{0};  // stored by the writer only
  std::unique_ptr<meta[]> metas_;
  slot* slots_;  // slot i is constructed iff its tag is set
};

}  // namespace polymap::detail

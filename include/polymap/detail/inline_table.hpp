// polymap/detail/inline_table.hpp — concurrent_map's table: keys and
// values stored in the groups themselves, as atomic 64-bit words, read under
// a per-group seqlock. What the words hold (the key policy and the value
// codec) is detail/slot_codec.hpp; where large tables' memory comes from,
// detail/table_memory.hpp; the protocols that use the table,
// concurrent_map.hpp.
//
// LAYOUT (one allocation; G = group count, a power of two)
//   block[G], 64-byte aligned: { group_meta (16 B) | version word (4 B) |
//     key lock (4 B) | slot[15] }
//   slot: { key word [| key bytes] | value word(s) [| slot lock] }
//   key word  : the key (word_key), or a pointer to an immutable key block
//               (string_key {hash, size, bytes}; boxed_key {hash, K}).
//   value words: a word-sized V, polymap::value's two words (owning one
//               payload reference), or a pointer to an immutable box.
//   u64 -> polymap::value: 24 + 15 * 24 = 384 bytes, six lines; std::string
//   -> polymap::value: 32-byte slots with their lock (J8), none across a
//   line, 512 bytes, eight lines; inline_string_key: 64-byte slots, 1,024
//   bytes (static_asserts in concurrent_map.hpp). A hit reads the block's
//   first line (tags, version) and its slot's line, plus the key block of
//   a string_key or boxed_key.
//
// INVARIANTS
//   J1. A slot's words and its tag change only under the group's lock (J8:
//       or, value words only, under the slot's lock). An insert stores the
//       words before the tag; an erase clears the tag only (the stale words
//       stay until the slot is reused).
//   J2. A key is in at most one slot.
//   J3. For an entry in group g on its probe sequence g0, ..., gk = g, every
//       group g0..g(k-1) has the entry's overflow bit set. Bits are only
//       set, never cleared (a rebuild starts clean).
//   J4. Every write that fills or empties a slot adjusts the entry count,
//       under the group lock on the fast path (before its stores: J9), right
//       after elsewhere (a migration counts a group's copies once): exact
//       once no write runs. A table of kStripedMinGroups or more counts in
//       per-thread stripes folded into a shared estimate in whole batches
//       (count()). Why: one shared counter line drew a third of a 2-thread
//       insert path's samples. size() sums the stripes; the growth triggers
//       read the estimate plus the stripes' slack and confirm with the sums
//       near the threshold.
//   J5. The words of a full slot own their value and key block (the codecs'
//       release/free); a rebuilt or migrated table hands its words to the
//       new table and frees none; the front end retires replaced or erased
//       words (an erase: the key block too). A key word never changes while
//       its key is in the slot.
//   J6. Every write of key k to this table runs, from its lookup of k here
//       to its publication, holding the key lock of k's home group: no two
//       writes of one key to one table overlap, and "k is absent" stays true
//       while the writer inserts it into whichever group has room. Why in
//       the block: its first line, which a home-group write dirties anyway;
//       separate key stripes cost a second contended line per write. A
//       migration's copy takes no key lock: no write of k to the next table
//       runs before the copy is done (W1 in concurrent_map.hpp).
//   J7. Fast path (write_home): a write its home group can decide alone runs
//       from lookup to publication holding that group's lock, having seen
//       the group's key lock free after taking it. A J6 writer of the same
//       key that took the key lock first is seen (the fast writer falls
//       back); one that takes it later waits, before each lookup under the
//       key lock, until it sees the home group unlocked (wait_home_unlocked),
//       so it sees the fast write whole (the two CASes, the key-lock check
//       and that wait's load are seq_cst). A plain lookup would not do: its
//       miss does not validate the version, so it could miss a fast insert
//       in flight and insert the key twice (the linearizability stress found
//       it). It decides only the key in a home slot, or its absence with the
//       home group's overflow bit for the hash clear (J3); anything else
//       (a slot further along, no room, a rebuild due, a frozen group) falls
//       back to J6 with nothing changed. Readers see the group locked for the
//       short lookup and store, as for any group write; no user code but Eq
//       runs under the lock.
//   J8. Slot locks (kSlotLocks: string and boxed keys). An overwrite of a
//       key in its home group (overwrite_slot) takes only its slot's lock
//       word, after seeing the group open at version v, then checks the key
//       lock free and the version still v, else backs off having written
//       nothing; it stores value words only. A thread holding a group lock
//       or a freeze waits for a slot's lock before it reads or writes that
//       slot's value words; a key-lock writer waits, after its key lock, for
//       the home slots that may hold its key (seq_cst on both sides: each
//       sees the other or is seen). Readers check the slot's lock word as
//       they check the group's. Why: the overwrite no longer writes the
//       group's first line, which every lookup of the group reads (2-thread
//       50/50 with string keys: that line's misses were the largest cost).
//   J9. A write may return before its last stores are visible (on x86 they
//       may wait in the store buffer). No thread can tell: every way to
//       learn that the call returned (a flag, a lock, a later write of this
//       map, which starts with a locked CAS) is ordered behind them, on x86
//       and in the C++ model's release/acquire pairs. So the fast insert
//       counts (a locked add) before its stores, which the add then does not
//       drain (after them: 2M u64 inserts on 2 threads 25% slower); and the
//       linearizability recorder stamps a response after a full fence
//       (verify/history.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "polymap/detail/group.hpp"
#include "polymap/detail/hash.hpp"
#include "polymap/detail/slot_codec.hpp"
#include "polymap/detail/table_memory.hpp"
#include "polymap/value.hpp"

namespace polymap::detail {

template <class KeyPolicy, class V, template <class> class Atomic, class GroupLock, class KeyLock,
          bool SlotLocks = KeyPolicy::kHashed>
class alignas(64) inline_table : public table_sizing {
  struct slot;  // defined with the block layout below

 public:
  using claimed_slot = slot;  // claimed_slots' entries, for a migration's mover
  using key_codec = KeyPolicy;
  // Whether each slot has its own lock word for value-only overwrites (J8).
  static constexpr bool kSlotLocks = SlotLocks;
  using val_codec = value_codec_for<V>;
  static constexpr std::size_t kValueWords = val_codec::kWords;
  using value_words = typename val_codec::words;
  // The slot's key: one word, or (inline_string_key) the key word and the
  // bytes after it.
  using key_word = typename KeyPolicy::kword;
  static constexpr std::size_t kKeyExtra = key_extra_words_of<KeyPolicy>();

  struct entry {
    key_word key{};
    value_words value{};
    bool same(const entry& o) const noexcept { return key == o.key && value == o.value; }
  };
  struct location {
    bool found = false;
    std::size_t group = 0;
    std::size_t slot = 0;
    entry e;
    explicit operator bool() const noexcept { return found; }
  };
  enum class status { done, frozen, full, gone };
  // What write_home did (J7): replaced, inserted or erased the key's entry,
  // found it present (insert: nothing stored) or absent (erase), or left the
  // table unchanged for the caller's key-lock path (slow).
  enum class home { replaced, inserted, present, erased, absent, slow };

  // A table of kMapBytes or more takes its blocks from mmap: its zero
  // pages are every block's initial state (empty tags, version 0, key lock
  // free), so no constructor writes them. A table that will migrate into
  // is prepared early (PREPARE in concurrent_map.hpp): allocated
  // unpopulated at 3/4 load, populated kPopulateStep bytes per write
  // (MADV_POPULATE_WRITE; zeroed, on the heap) until 7/8, so no write pays
  // for its page faults at once (measurements: docs/concurrent_map.md,
  // sessions 8 and 19). Also a table of at least kMapGroups whose blocks
  // are larger than 512 bytes (inline_string_key's 1 KB): such a table
  // holds no more entries than a 512-byte-block table of half its bytes,
  // whose keys' blocks were on the heap; mapping it at 1 MB made every
  // 10,000-key string fill fault in fresh pages (2-thread inserts 0.62x).
  static constexpr std::size_t kMapBytes = std::size_t{1} << 20;
  static constexpr std::size_t kMapGroups = 2048;
  static constexpr std::size_t map_min_bytes() noexcept {
    return sizeof(block) > 512 ? kMapGroups * sizeof(block) : kMapBytes;
  }
  // A freed table of kLargeTableBytes or more is unmapped aside (unmap_table).
  static constexpr std::size_t kPopulateStep = std::size_t{16} << 10;

  // prepare_min_groups: a table of at least that many groups asks for its
  // successor at 3/4 load (prepare_due). populate: populate (or, on the
  // heap, construct) the blocks now (false: populate_step does it).
  explicit inline_table(std::size_t groups, std::size_t prepare_min_groups = SIZE_MAX, bool populate = true)
      : groups_(groups), mask_(groups - 1), striped_(groups >= kStripedMinGroups) {
    bytes_ = groups * sizeof(block);
    if (bytes_ >= map_min_bytes()) {
      std::size_t stale = 0;
      if (void* q = table_huge_pages() ? nullptr : table_spare::get().take(bytes_, stale)) {
        blocks_ = static_cast<block*>(q);  // page-aligned (mremap), so 64-byte aligned
        stale_ = stale;
        if (populate) {
          std::memset(q, 0, stale);  // RECYCLE: the old table's words
          // The fresh tail faults in now, as map_table's MAP_POPULATE would:
          // by writing its zero pages where the kernel has no
          // MADV_POPULATE_WRITE (the table is not shared yet).
          char* tail = static_cast<char*>(q) + stale;
          if (!populate_pages(tail, bytes_ - stale, false)) std::memset(tail, 0, bytes_ - stale);
        }
      } else {
        blocks_ = static_cast<block*>(map_table(bytes_, populate));  // page-aligned, so 64-byte aligned
      }
      if (populate) mark_populated();
    } else {
      blocks_ = static_cast<block*>(::operator new (bytes_, std::align_val_t{64}));
      if (populate) {
        mark_populated();
        for (std::size_t g = 0; g < groups; ++g) new (&blocks_[g]) block();
      } else {
        // PREPARE on the heap: all of it is zeroed in the populate steps, as
        // a recycled mapping's stale front is (all-zero bytes are empty
        // groups). Building it at once (768 KB of fresh heap for the growth
        // from 1,024 to 2,048 groups) was a 2 ms insert that the other
        // writers waited for on the rebuild mutex (session 19).
        stale_ = bytes_;
        if (debug_dirty_unzeroed_tables.load(std::memory_order_relaxed))
          std::memset(static_cast<void*>(blocks_), 0xA5, bytes_);
      }
    }
    if (groups >= prepare_min_groups) prepare_at_ = capacity() / 4 * 3;
    quiet_below_ = std::min(max_load(), prepare_at_);
    if (striped_) bound_slack_ = static_cast<std::int64_t>(kCountStripes * (kCountBatch - 1));
  }
  inline_table(const inline_table&) = delete;
  inline_table& operator=(const inline_table&) = delete;
  // Frees the array only: the words' values belong to the front end (J5).
  ~inline_table() {
    // A successor prepared (or handed on by grow()) but never published
    // (the table was rebuilt at once or cleared meanwhile) is this table's
    // to free.
    if (inline_table* p = pending_.load(std::memory_order_relaxed)) delete p;  // relaxed: no other user now
    if (bytes_ >= map_min_bytes()) {
      // RECYCLE: only a table a growth replaced; one freed by clear(),
      // shrink_to_fit() or the map's destructor gives its memory back.
      const auto [p, n] =
          recycle_ ? table_spare::get().keep(blocks_, bytes_) : std::pair<void*, std::size_t>{blocks_, bytes_};
      unmap_table(p, n);
    } else {
      ::operator delete (blocks_, std::align_val_t{64});
    }
  }

  // The block the essay describes (static_asserts in concurrent_map.hpp).
  static constexpr std::size_t block_bytes() noexcept { return sizeof(block); }
  static constexpr std::size_t slot_bytes() noexcept { return sizeof(slot); }
  std::size_t groups() const noexcept { return groups_; }
  std::size_t capacity() const noexcept { return groups_ * kGroupSlots; }
  std::size_t max_load() const noexcept { return max_load_of(capacity()); }
  std::size_t bytes() const noexcept { return bytes_; }
  // Adds d to the entry count (J4). A striped table adds it to this
  // thread's stripe and moves whole batches into the estimate: the
  // estimate is the sum over the stripes of floor(stripe / kCountBatch) *
  // kCountBatch (once the writes in flight are done), so it is at most the
  // count and at least the count less kCountStripes * (kCountBatch - 1).
  // relaxed: counts only (J4); the fetch_add's old value says which call
  // crossed a batch boundary, and each crossing is folded in exactly once.
  POLYMAP_ALWAYS_INLINE void count(std::int64_t d) noexcept {
    if (!striped_) {
      estimate_.fetch_add(d, std::memory_order_relaxed);
      return;
    }
    const std::int64_t old = stripes_[count_stripe_of_this_thread()].n.fetch_add(d, std::memory_order_relaxed);
    // >> on a negative int64_t floors (C++20): stripes go below zero when
    // one thread erases what another inserted.
    if (const std::int64_t batches = ((old + d) >> kCountBatchShift) - (old >> kCountBatchShift)) [[unlikely]]
      estimate_.fetch_add(batches * static_cast<std::int64_t>(kCountBatch), std::memory_order_relaxed);
  }
  static constexpr std::size_t kCountStripes = 8, kCountBatchShift = 4, kCountBatch = 1 << kCountBatchShift;
  static constexpr std::size_t kStripedMinGroups = 128;  // max load 1680 against a slack of 120
  // This thread's stripe: threads take stripes round-robin, once.
  static std::size_t count_stripe_of_this_thread() noexcept {
    static constinit thread_local std::size_t mine = SIZE_MAX;
    if (mine == SIZE_MAX) [[unlikely]] {
      static constinit std::atomic<std::size_t> next{0};
      mine = next.fetch_add(1, std::memory_order_relaxed) % kCountStripes;  // relaxed: any spread will do
    }
    return mine;
  }

  // relaxed (counts, dirty): statistics and growth triggers (J4), exact
  // once frozen; no other memory is published through them.
  std::size_t size() const noexcept {
    std::int64_t n = estimate_.load(std::memory_order_relaxed);
    if (striped_) {
      n = 0;
      for (const count_stripe& c : stripes_) n += c.n.load(std::memory_order_relaxed);
    }
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  // At least size(), as far as finished writes go: the estimate plus what
  // the stripes may hold back. One shared load: for the growth triggers.
  POLYMAP_ALWAYS_INLINE std::size_t size_bound() const noexcept {
    const std::int64_t n = estimate_.load(std::memory_order_relaxed) + bound_slack_;
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  POLYMAP_ALWAYS_INLINE std::size_t dirty() const noexcept { return dirty_.load(std::memory_order_relaxed); }
  // Whether an insert must first grow the table: live entries, dirty
  // erasures and, while this table is the target of a migration, the
  // entries still to be copied in from the previous table (so the copies
  // always find room: GROWTH in concurrent_map.hpp).
  POLYMAP_ALWAYS_INLINE bool needs_rebuild() const noexcept {
    std::size_t incoming = 0;
    // acquire: pairs with begin_migration's release store of the previous
    // table's next_ (through which a writer reached this table); the
    // previous table stays allocated while the caller is pinned.
    const inline_table* p = prev_.load(std::memory_order_acquire);
    if (p) [[unlikely]]
      incoming = p->size_bound();
    if (size_bound() + dirty() + incoming < max_load()) [[likely]]
      return false;
    // The bound runs up to the stripes' slack ahead of the count: near the
    // threshold, decide on the sums (8 loads), so a table fills to its max
    // load as reserve() and the sizing rule promise.
    return !striped_ || size() + dirty() + (p ? p->size() : 0) >= max_load();
  }

  // --- incremental migration (concurrent_map.hpp, GROWTH) -----------------
  // The table this one migrates into; null until a migration begins, then
  // fixed for the table's life.
  POLYMAP_ALWAYS_INLINE inline_table* next() const noexcept {
    return next_.load(std::memory_order_acquire);  // acquire: pairs with begin_migration's release
  }
  // Publishes fresh as this table's successor. Precondition: the caller
  // holds the map's rebuild mutex and no migration of this table began.
  // RECYCLE: marks this table, replaced by a larger one, as the spare's
  // when it is freed. Called before it is retired (the epoch orders it
  // before the destructor).
  void recycle_on_free() noexcept { recycle_ = true; }
  void begin_migration(inline_table* fresh) noexcept {
    // fresh is the prepared successor or a table built now; either way this
    // table no longer owns it (a writer that loaded pending_ before may still
    // call populate_step on it: its cursor is at its end).
    if (pending_.load(std::memory_order_relaxed) == fresh)  // relaxed: only the mutex holder writes it
      pending_.store(nullptr, std::memory_order_relaxed);
    fresh->prev_.store(this, std::memory_order_relaxed);  // relaxed: published by the release below
    // release: a writer that loads next() (acquire) sees fresh built.
    next_.store(fresh, std::memory_order_release);
  }
  // --- preparing a successor (PREPARE in concurrent_map.hpp) ---------------
  // J7's check: whether an insert must take the J6 path to grow this table
  // or prepare its successor. Reads the counters once while both are far
  // off (needs_rebuild and prepare_due read them twice and recompute the
  // limits: 25 instructions of a 210-instruction insert, callgrind).
  POLYMAP_ALWAYS_INLINE bool growth_due() const noexcept {
    // acquire: as in needs_rebuild.
    if (prev_.load(std::memory_order_acquire) == nullptr && size_bound() + dirty() < quiet_below_) [[likely]]
      return false;
    return needs_rebuild() || (!pending() && prepare_due());
  }
  // Whether this table should have its successor allocated now.
  POLYMAP_ALWAYS_INLINE bool prepare_due() const noexcept {
    return size_bound() + dirty() >= prepare_at_ && (!striped_ || size() + dirty() >= prepare_at_);  // as needs_rebuild
  }
  POLYMAP_ALWAYS_INLINE inline_table* pending() const noexcept {
    return pending_.load(std::memory_order_acquire);  // acquire: pairs with set_pending's release
  }
  // Precondition: the map's rebuild mutex is held; a successor already
  // pending is the caller's to free or hand on (grow()).
  void set_pending(inline_table* fresh) noexcept { pending_.store(fresh, std::memory_order_release); }
  // Populates the next kPopulateStep bytes of this (unpublished) table
  // (zeroes them: a heap table's, and a recycled mapping's stale front).
  // Threads claim disjoint ranges; MADV_POPULATE_WRITE faults pages in
  // without writing them (where the kernel lacks it, the pages fault in on
  // first write instead).
  void populate_step() noexcept {
    // relaxed: a work cursor; populated_ below orders the completion.
    if (populate_next_.load(std::memory_order_relaxed) >= bytes_) return;
    const std::size_t off = populate_next_.fetch_add(kPopulateStep, std::memory_order_relaxed);
    if (off >= bytes_) return;
    const std::size_t len = std::min(kPopulateStep, bytes_ - off);
    char* const at = reinterpret_cast<char*>(blocks_) + off;
    // RECYCLE: the stale front is zeroed (its pages are resident), the rest populated.
    const std::size_t zero = off < stale_ ? std::min(len, stale_ - off) : 0;
    if (zero > 0) std::memset(at, 0, zero);
    if (zero < len) populate_pages(at + zero, len - zero, off + zero == 0);
    populated_.fetch_add(len, std::memory_order_release);  // release: populate_rest's acquire
  }
  // Populates what is left and waits for the steps other threads claimed.
  void populate_rest() noexcept {
    while (populate_next_.load(std::memory_order_relaxed) < bytes_) populate_step();  // relaxed: as above
    for (backoff bo; populated_.load(std::memory_order_acquire) < bytes_; bo.pause()) {
    }
  }

  // On the successor, once every group of the previous table is moved.
  void end_migration_of_prev() noexcept { prev_.store(nullptr, std::memory_order_release); }
  bool group_moved(std::size_t g) const noexcept { return blocks_[g].lock.moved(); }
  // Fetches every line of group g (a mover about to claim and copy it).
  void prefetch_group(std::size_t g) const noexcept {
    const char* p = reinterpret_cast<const char*>(&blocks_[g]);
    for (std::size_t off = 0; off < sizeof(block); off += 64) __builtin_prefetch(p + off);
  }
  // Freezes group g; true if this call froze it (the caller then copies it).
  bool claim_group(std::size_t g) noexcept { return blocks_[g].lock.freeze_claim(); }
  // Calls f(slot) for each full slot of a group this thread claimed or
  // froze; they no longer change (the claim's or freeze's acquire CAS made
  // the last writer's stores visible).
  template <class F>
  POLYMAP_ALWAYS_INLINE void for_each_claimed(std::size_t g, F&& f) const noexcept {
    const block& b = blocks_[g];
    for (std::uint32_t m = b.meta.load().match_full(); m; m &= m - 1) {
      const slot& sl = b.slots[static_cast<std::size_t>(std::countr_zero(m))];
      wait_slot_unlocked(sl);  // J8: an overwriter that locked it before the freeze
      f(sl);
    }
  }
  // for_each_claimed's slots, in out; returns their count.
  std::size_t claimed_slots(std::size_t g, const slot** out) const noexcept {
    std::size_t n = 0;
    for_each_claimed(g, [&](const slot& sl) { out[n++] = &sl; });
    return n;
  }
  // The key word of a slot returned by claimed_slots.
  static key_word claimed_key(const slot* s) noexcept { return load_key(*s, std::memory_order_acquire); }
  // A migration's copy of one group's n entries, from the claimed slots of
  // the previous table straight into this one (their keys absent here,
  // room guaranteed: needs_rebuild counts them), not counted in size():
  // entries that share a home group are stored under one hold of its lock
  // (for a doubling, a group's entries have two homes here); an entry
  // whose home group is full goes on as insert_uncounted, after the rest of
  // its home's entries. False if a group was frozen. from's slots cannot
  // change meanwhile: their group is frozen, and claimed_slots waited out
  // any J8 overwriter (one that locks a slot later sees the version changed
  // and backs off having written nothing).
  template <class Counter>
  bool insert_copies(const std::size_t* hashes, const slot* const* from, std::size_t n, Counter& waits) {
    // One pass sorts the entries by home group (a bit set per home, homes in
    // order of first appearance: for a doubling, two): the copy then walks
    // each home's members once instead of rescanning all n per home.
    std::size_t homes[kGroupSlots];
    std::uint32_t members[kGroupSlots];
    std::size_t d = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t g = hashes[i] & mask_;
      std::size_t k = 0;
      while (k < d && homes[k] != g) ++k;
      if (k == d) {
        homes[d++] = g;
        members[k] = 0;
        // The home groups' first lines, fetched writable together: the lock
        // CAS below waits for its line's miss, and serializes the next one.
        prefetch_for_write(&blocks_[g]);
      }
      members[k] |= std::uint32_t{1} << i;
    }
    for (std::size_t k = 0; k < d; ++k) {
      block& b = blocks_[homes[k]];
      if (b.lock.lock(waits) == GroupLock::acquired::frozen) return false;
      std::uint32_t avail = b.meta.load().match_empty();
      std::uint32_t m = members[k];
      for (; m && avail; m &= m - 1, avail &= avail - 1) {
        const std::size_t j = static_cast<std::size_t>(std::countr_zero(m));
        const std::size_t slot = static_cast<std::size_t>(std::countr_zero(avail));
        write(b.slots[slot], read(*from[j]));
        b.meta.fill_tag(slot, tag_of(hashes[j]));  // J1: words, then tag
      }
      b.lock.unlock();
      for (; m; m &= m - 1) {  // those whose home group was full
        const std::size_t j = static_cast<std::size_t>(std::countr_zero(m));
        if (insert_uncounted(hashes[j], read(*from[j]), waits) != status::done) return false;
      }
    }
    return true;
  }
  // Counts `count` entries a migration copied in with insert_uncounted.
  void add_copied(std::size_t count) noexcept { this->count(static_cast<std::int64_t>(count)); }
  // After the claimer copied group g's `count` entries into next(): marks
  // it moved; true for the call that moved the table's last group.
  bool finish_group(std::size_t g, std::size_t count) noexcept {
    this->count(-static_cast<std::int64_t>(count));  // the copies are counted in next()
    blocks_[g].lock.mark_moved();
    // acq_rel: the call that sees the last group moved synchronizes with
    // every other claimer's increment (a release sequence), so it sees all
    // their copies before it publishes next() as the map's table.
    return moved_.fetch_add(1, std::memory_order_acq_rel) + 1 == groups_;
  }
  // Claims up to n groups in index order for the caller to move; returns
  // the first (groups() or more once every group was claimed).
  std::size_t claim_range(std::size_t n) noexcept {
    // relaxed: a work counter; each group's freeze decides who copies it.
    if (claim_.load(std::memory_order_relaxed) >= groups_) return groups_;
    return claim_.fetch_add(n, std::memory_order_relaxed);
  }
  // Calls f(g) for each group a lookup of hash passes, from its home group
  // to the first whose overflow bit for the hash is clear; f must leave g
  // frozen (move it), so that bit is final when it is read.
  template <class F>
  void for_each_chain_group(std::size_t hash, F&& f) const {
    prober p(hash, mask_);
    do {
      f(p.get());
    } while (blocks_[p.get()].meta.load().overflowed(hash) && p.next());
  }
  std::size_t moved_groups() const noexcept { return moved_.load(std::memory_order_acquire); }

  GroupLock& lock_of(std::size_t g) noexcept { return blocks_[g].lock; }
  const GroupLock& lock_of(std::size_t g) const noexcept { return blocks_[g].lock; }
  // The key lock of a hash: its home group's (J6).
  POLYMAP_ALWAYS_INLINE KeyLock& key_lock_of(std::size_t hash) noexcept { return blocks_[hash & mask_].key_lock; }

  void prefetch(std::size_t hash) const noexcept { __builtin_prefetch(&blocks_[hash & mask_]); }
  void prefetch_candidate(std::size_t hash) const noexcept {
    const block& b = blocks_[hash & mask_];
    if (const std::uint32_t m = b.meta.load().match(tag_of(hash)))
      __builtin_prefetch(&b.slots[static_cast<std::size_t>(std::countr_zero(m))]);
  }

  // Finds the entry whose key word satisfies match (called only on words
  // validated by the seqlock), in this table alone: a frozen or moved group
  // is read as it stands (a writer's lookup: its write to such a group
  // fails and it starts over in the next table). Loads only.
  template <class Match>
  [[gnu::always_inline]] inline location find(std::size_t hash, Match&& match) const {
    return find_impl<false, location>(hash, match, location_of);
  }
  // find for readers: a moved group sends the lookup to the next table
  // (READ PROTOCOL in concurrent_map.hpp); the location's group and slot
  // may be in a later table.
  template <class Match>
  [[gnu::always_inline]] inline location find_read(std::size_t hash, Match&& match) const {
    return find_impl<true, location>(hash, match, location_of);
  }

  // A reader's lookup returning hit(group, slot, key word, value words) on
  // a match, R() on a miss: the words reach hit in registers (a location
  // went through memory and missed store-to-load forwarding). One read per
  // group; a read that met a writer or a moved group starts over in
  // find_contended, out of line, so the inlined path stays small.
  template <class R, class Match, class Hit>
  [[gnu::always_inline]] inline R find_with(std::size_t hash, Match&& match, Hit&& hit) const {
    return find_impl<true, R>(hash, match, hit);
  }

  template <bool Follow, class R, class Match, class Hit>
  [[gnu::always_inline]] inline R find_impl(std::size_t hash, Match& match, Hit&& hit) const {
    const std::uint8_t tag = tag_of(hash);
    prober p(hash, mask_);
    for (;;) {
      const block& b = blocks_[p.get()];
      const std::uint32_t v = b.lock.read_begin();
      if constexpr (Follow) {
        if (GroupLock::moved(v)) [[unlikely]] {
          const location loc = find_contended<true>(hash, match);
          return loc ? hit(loc.group, loc.slot, loc.e.key, loc.e.value) : R();
        }
      }
      const group_bits bits = b.meta.load();
      for (std::uint32_t m = bits.match(tag); m; m &= m - 1) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(m));
        const slot& sl = b.slots[i];
        const std::uint32_t sv = slot_begin(sl);  // J8
        // acquire: as in read().
        const key_word kw = load_key(sl, std::memory_order_acquire);
        value_words w;
        for (std::size_t j = 0; j < kValueWords; ++j) w[j] = sl.value[j].load(std::memory_order_acquire);
        if (!b.lock.read_valid(v) || !slot_valid(sl, sv)) [[unlikely]] {
          const location loc = find_contended<Follow>(hash, match);
          return loc ? hit(loc.group, loc.slot, loc.e.key, loc.e.value) : R();
        }
        if (match(kw)) return hit(p.get(), i, kw, w);
      }
      // A group without a validated match: a miss here. Its overflow bit
      // needs no validation (bits are only ever set, J3).
      if (!bits.overflowed(hash) || !p.next()) return R();
    }
  }

  // Returns once the home group of hash is seen not locked by a writer
  // (J7: see concurrent_map's find_for_write). The version load is seq_cst.
  void wait_home_unlocked(std::size_t hash) const noexcept {
    const block& b = blocks_[hash & mask_];
    for (backoff bo; GroupLock::locked(b.lock.read_begin_seq_cst()); bo.pause()) {
    }
    // J8: and until no overwriter holds a home slot that may hold the key
    // (one whose tag matches). Such an overwriter locked it before this
    // writer's key-lock CAS (a later one sees the key lock and backs off).
    if constexpr (kSlotLocks)
      for (std::uint32_t m = b.meta.load().match(tag_of(hash)); m; m &= m - 1)
        wait_slot_unlocked(b.slots[static_cast<std::size_t>(std::countr_zero(m))]);
  }

  // find, for a lookup that met a writer or (Follow) a moved group: each
  // group is read until one read validates, pausing between tries. With
  // Follow, a moved group's candidates are never matched: its words are the
  // state of its freeze, and a key block they name may be freed already (the
  // key's chain moved, an erase in the next table retired it, and this
  // lookup pinned after that). The lookup answers from an unmoved group that
  // holds the key; otherwise it goes on in the next table if it passed a
  // moved group, and misses if it passed none (READ PROTOCOL, migration, in
  // concurrent_map.hpp).
  template <bool Follow, class Match>
  [[gnu::noinline]] location find_contended(std::size_t hash, Match& match) const {
    const std::uint8_t tag = tag_of(hash);
    for (const inline_table* t = this;; t = t->next()) {  // next(): non-null once a moved group was seen
      bool saw_moved = false;
      prober p(hash, t->mask_);
      for (;;) {
        const block& b = t->blocks_[p.get()];
        group_bits bits(0, 0);
        location hit;
        for (backoff bo;; bo.pause()) {
          const std::uint32_t v = b.lock.read_begin();
          bits = b.meta.load();
          if (Follow && GroupLock::moved(v)) {  // the overflow bits stay as they were at the freeze
            saw_moved = true;
            break;
          }
          std::uint32_t m = bits.match(tag);
          for (; m; m &= m - 1) {
            const std::size_t i = static_cast<std::size_t>(std::countr_zero(m));
            const std::uint32_t sv = slot_begin(b.slots[i]);  // J8
            const entry e = read(b.slots[i]);
            if (!b.lock.read_valid(v) || !slot_valid(b.slots[i], sv)) break;  // a writer overlapped: read again
            if (match(e.key)) {
              hit = {true, p.get(), i, e};
              break;
            }
          }
          if (!m || hit) break;  // every candidate was read whole
        }
        if (hit) return hit;
        if (!bits.overflowed(hash) || !p.next()) {
          if (!saw_moved) return {};
          break;  // a moved group may have held the key: the next table has its latest state
        }
      }
    }
  }

  // Puts e (whose key is absent, and which no other thread inserts meanwhile:
  // the caller's stripe) into the first group on its probe sequence with an
  // empty slot. On done the table owns e's value (J5).
  template <class Counter>
  POLYMAP_ALWAYS_INLINE status insert(std::size_t hash, const entry& e, Counter& waits) {
    const status s = insert_uncounted(hash, e, waits);
    if (s == status::done) count(1);
    return s;
  }
  // insert without counting the entry in size(): a migration copies a group
  // and counts its entries once (add_copied).
  template <class Counter>
  POLYMAP_ALWAYS_INLINE status insert_uncounted(std::size_t hash, const entry& e, Counter& waits) {
    prober p(hash, mask_);
    do {
      block& b = blocks_[p.get()];
      if (b.lock.lock(waits) == GroupLock::acquired::frozen) return status::frozen;
      if (const std::uint32_t avail = b.meta.load().match_empty()) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(avail));
        write(b.slots[i], e);
        b.meta.fill_tag(i, tag_of(hash));  // J1: words, then tag
        b.lock.unlock();                   // bumps the version: readers retry
        return status::done;
      }
      b.meta.set_overflow(hash);  // J3
      b.lock.unlock();
    } while (p.next());
    return status::full;
  }

  // The write fast path (J7): one key's write decided and done inside its
  // home group, under that group's lock alone. e == nullptr erases; otherwise
  // e is stored if the key is absent, and over the key's entry if overwrite
  // (insert_or_assign) or not at all (insert: `present`). On replaced and
  // erased, `old` receives the words that left the table (the caller retires
  // them); on replaced and inserted the table owns e's value (J5). Returns
  // slow, having changed nothing, whenever the home group cannot decide
  // alone: the group is frozen, a key-lock writer holds the key lock of this
  // home group, the key may sit further along its probe sequence (overflow
  // bit), or an insert finds no room or a table due for a rebuild. With
  // may_insert false an absent key returns absent (a caller that has not
  // made its key word yet: string keys allocate it only to insert).
  template <class Match, class Counter>
  POLYMAP_ALWAYS_INLINE home write_home(std::size_t hash, Match&& match, const entry* e, bool overwrite,
                                        bool may_insert, entry& old, Counter& waits) {
    block& b = blocks_[hash & mask_];
    if (b.lock.lock(waits) == GroupLock::acquired::frozen) [[unlikely]]
      return home::slow;
    // Unlocks on every return (Eq may throw). A return that changed
    // nothing restores the version readers saw, so they need not retry.
    struct unlocker {
      GroupLock& l;
      bool changed = false;
      ~unlocker() {
        if (changed)
          l.unlock();
        else
          l.unlock_unchanged();
      }
    } held{b.lock};
    // J7: seq_cst, as the key lock's CAS and wait_home_unlocked's version
    // load: if a key-lock writer took this lock before our group-lock CAS,
    // we see it taken; otherwise its wait comes after our CAS and lasts
    // until our unlock (Dekker's pattern: both sides seq_cst).
    if (b.key_lock.held()) return home::slow;
    const group_bits bits = b.meta.load();
    for (std::uint32_t m = bits.match(tag_of(hash)); m; m &= m - 1) {
      const std::size_t i = static_cast<std::size_t>(std::countr_zero(m));
      slot& sl = b.slots[i];
      // An overwrite stores the value words below if the key matches: fetch
      // the slot's lines writable now rather than shared and then upgraded
      // (not for an erase or an insert, which leave the slot's words alone).
      if (e && overwrite) {
        prefetch_for_write(&sl.key);
        prefetch_for_write(&sl.value[kValueWords - 1]);
      }
      // relaxed: under the group lock no other thread writes the slot, and the
      // lock's acquire CAS made the last holder's stores visible.
      old.key = load_key(sl, std::memory_order_relaxed);
      if (!match(old.key)) continue;
      wait_slot_unlocked(sl);  // J8: an overwriter may hold the slot (the key word it does not change)
      // relaxed: as the key word; J8's overwriter released the slot (acquire
      // in spirit: the seq_cst load above read its release store).
      for (std::size_t j = 0; j < kValueWords; ++j) old.value[j] = sl.value[j].load(std::memory_order_relaxed);
      if (!e) {
        held.changed = true;
        b.meta.set_tag(i, 0);  // J1: the tag only
        count(-1);
        if (bits.overflow() != 0) dirty_.fetch_add(1, std::memory_order_relaxed);  // relaxed: J4
        return home::erased;
      }
      if (!overwrite) return home::present;
      held.changed = true;
      // release: pairs with the readers' acquire loads of the words (seqlock).
      for (std::size_t j = 0; j < kValueWords; ++j) sl.value[j].store(e->value[j], std::memory_order_release);
      return home::replaced;
    }
    // Not in the home group. If its overflow bit for the hash is clear, the
    // key is nowhere in this table (J3), and no key-lock writer is inserting
    // it further along (it would hold the key lock, or have set the bit).
    if (bits.overflowed(hash)) return home::slow;
    if (!e || !may_insert) return home::absent;
    const std::uint32_t avail = bits.match_empty();
    if (!avail || growth_due()) return home::slow;  // J6 path grows or prepares
    const std::size_t i = static_cast<std::size_t>(std::countr_zero(avail));
    held.changed = true;
    slot& sl = b.slots[i];
    prefetch_for_write(&sl.key);  // the stores below: fetch the lines writable while we count
    prefetch_for_write(&sl.value[kValueWords - 1]);
    // J4, under the group lock, and before the stores: the locked add then
    // drains nothing, and the stores wait in the store buffer while this
    // thread goes on (no other thread can tell: J9).
    count(1);
    write(sl, *e);
    b.meta.fill_tag(i, tag_of(hash));  // J1: words, then tag
    return home::inserted;
  }

  // J8's fast path: stores value words w over the key's entry in its home
  // group holding only that slot's lock: the group's first line (tags,
  // version, key lock) is read, not written, so readers of the group's
  // other keys keep it cached. Returns replaced (`old` gets the entry that
  // left: the caller retires its value; the table owns w) or slow, having
  // changed nothing: the group is locked, frozen or changed meanwhile, a
  // key-lock writer holds the home group's key lock, or the key is not in
  // a home slot (absent, or further along).
  template <class Match>
  POLYMAP_ALWAYS_INLINE home overwrite_slot(std::size_t hash, Match&& match, const value_words& w, entry& old) {
    static_assert(kSlotLocks);
    block& b = blocks_[hash & mask_];
    const std::uint32_t v = b.lock.read_begin();
    if (!GroupLock::open(v)) [[unlikely]]
      return home::slow;
    const group_bits bits = b.meta.load();
    for (std::uint32_t m = bits.match(tag_of(hash)); m; m &= m - 1) {
      slot& sl = b.slots[static_cast<std::size_t>(std::countr_zero(m))];
      prefetch_for_write(&sl);                                      // the CAS below writes this line
      const key_word kw = load_key(sl, std::memory_order_acquire);  // acquire: as in read()
      // The key word belongs to a full slot only if the group did not change
      // (a reader's validation) before its block is dereferenced.
      if (!b.lock.read_valid(v)) return home::slow;
      if (!match(kw)) continue;
      std::uint32_t sv = sl.ver.load(std::memory_order_relaxed);  // relaxed: a hint for the CAS
      // seq_cst: ordered before the two checks below, against the group-lock
      // or freeze CAS and then slot-lock check of a group writer
      // (wait_slot_unlocked) and the key-lock CAS and then slot-lock check
      // of a key-lock writer (wait_home_unlocked): Dekker's pattern twice.
      if ((sv & 1) || !sl.ver.compare_exchange_strong(sv, sv | 1, std::memory_order_seq_cst, std::memory_order_relaxed))
          [[unlikely]]
        return home::slow;
      if (b.key_lock.held() || b.lock.read_begin_seq_cst() != v) [[unlikely]] {
        // release: back to the word readers saw; nothing was written.
        sl.ver.store(sv, std::memory_order_release);
        return home::slow;
      }
      // The group is as it was at v, so the slot still holds kw, and no
      // other writer touches its value words until the unlock.
      old.key = kw;
      // relaxed: under the slot lock; the CAS read the last holder's release.
      for (std::size_t j = 0; j < kValueWords; ++j) old.value[j] = sl.value[j].load(std::memory_order_relaxed);
      // release: pairs with the readers' acquire loads of the words.
      for (std::size_t j = 0; j < kValueWords; ++j) sl.value[j].store(w[j], std::memory_order_release);
      sl.ver.store(sv + 2, std::memory_order_release);  // release: pairs with slot_begin and the waits
      return home::replaced;
    }
    return home::slow;
  }

  // Stores value words w at `at` if the slot still holds at.e. On done the
  // table owns w and the caller owns (must retire) at.e.value.
  template <class Counter>
  POLYMAP_ALWAYS_INLINE status replace(const location& at, const value_words& w, Counter& waits) {
    block& b = blocks_[at.group];
    if (b.lock.lock(waits) == GroupLock::acquired::frozen) return status::frozen;
    status s = status::gone;
    if (holds(b, at)) {
      slot& sl = b.slots[at.slot];
      // release: pairs with the readers' acquire loads of the words (seqlock).
      for (std::size_t j = 0; j < kValueWords; ++j) sl.value[j].store(w[j], std::memory_order_release);
      s = status::done;
    }
    b.lock.unlock();
    return s;
  }

  // Empties the slot at `at` if it still holds at.e. On done the caller owns
  // (must retire) at.e.value.
  template <class Counter>
  status erase(const location& at, Counter& waits) {
    block& b = blocks_[at.group];
    if (b.lock.lock(waits) == GroupLock::acquired::frozen) return status::frozen;
    status s = status::gone;
    if (holds(b, at)) {
      b.meta.set_tag(at.slot, 0);  // J1: the tag only
      count(-1);
      if (b.meta.load().overflow() != 0) dirty_.fetch_add(1, std::memory_order_relaxed);  // relaxed: J4
      s = status::done;
    }
    b.lock.unlock();
    return s;
  }

  void thaw_all() noexcept {
    for (std::size_t g = 0; g < groups_; ++g) blocks_[g].lock.thaw();
  }
  void freeze_all() noexcept {
    for (std::size_t g = 0; g < groups_; ++g) blocks_[g].lock.freeze();
  }

  // Calls f(const entry&) for every full slot, each read whole under the
  // group's seqlock; a group's entries are copied out before f runs.
  template <class F>
  void for_each_entry(F&& f) const {
    scan([&](std::size_t, const entry& e) { f(e); });
  }

  // Moves every entry into fresh (private, large enough); hash_of(key word)
  // gives each entry's hash. Precondition: this table is frozen. Each
  // group is read as a mover reads a claimed one (for_each_claimed: no
  // seqlock rounds, J8's wait), each entry goes straight into fresh (no
  // copy-out buffer), and fresh is counted once at the end (scan's rounds
  // and a locked add per entry were a third of the rebuild's cost).
  template <class HashOf>
  void move_entries_into(inline_table& fresh, HashOf&& hash_of) const {
    std::int64_t moved = 0;
    for (std::size_t g = 0; g < groups_; ++g)
      for_each_claimed(g, [&](const slot& sl) {
        const entry e = read(sl);
        fresh.unprotected_insert(hash_of(e.key), e);
        ++moved;
      });
    fresh.count(moved);  // a private table
  }

  // Inserts into a table no other thread can see, uncounted (the caller
  // counts). Precondition: the key is absent and the table is not full.
  void unprotected_insert(std::size_t hash, const entry& e) noexcept {
    prober p(hash, mask_);
    for (;;) {
      block& b = blocks_[p.get()];
      if (const std::uint32_t avail = b.meta.load().match_empty()) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(avail));
        write(b.slots[i], e);
        b.meta.fill_tag(i, tag_of(hash));
        return;
      }
      b.meta.set_overflow(hash);
      p.next();
    }
  }

  // Releases every entry's value (J5): the map's destructor and clear().
  void release_entries() const noexcept {
    if constexpr (val_codec::kOwns || key_codec::kOwns)
      scan([](std::size_t, const entry& e) {
        val_codec::release(e.value);
        key_codec::free(e.key);
      });
  }

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
  void mark_populated() noexcept {
    populate_next_.store(bytes_, std::memory_order_relaxed);  // relaxed: the table is not shared yet
    populated_.store(bytes_, std::memory_order_relaxed);
  }

  static location location_of(std::size_t g, std::size_t i, const key_word& kw, const value_words& w) noexcept {
    return location{true, g, i, entry{kw, w}};
  }

  // J8's slot lock: bit 0 locked by a value-only overwriter, the rest a
  // counter bumped by each such overwrite. Absent (no bytes) without J8.
  struct no_slot_lock {};
  using slot_lock_word = std::conditional_t<kSlotLocks, Atomic<std::uint32_t>, no_slot_lock>;
  // 32 bytes with a polymap::value and J8: aligned so no slot straddles a line.
  // inline_string_key's bytes: kKeyExtra words after the key word.
  struct no_key_extra {};
  using key_extra_words =
      std::conditional_t<(kKeyExtra > 0), Atomic<std::uint64_t>[kKeyExtra == 0 ? 1 : kKeyExtra], no_key_extra>;
  // 32 bytes with a polymap::value and J8, 64 with inline_string_key's
  // bytes too: aligned so no slot straddles a line.
  static constexpr std::size_t kSlotAlign = kKeyExtra > 0 ? 64 : kSlotLocks&& kValueWords == 2 ? 32 : 8;
  struct alignas(kSlotAlign) slot {
    Atomic<std::uint64_t> key{0};
    [[no_unique_address]] key_extra_words kx{};
    Atomic<std::uint64_t> value[kValueWords] = {};
    [[no_unique_address]] slot_lock_word ver{};
  };
  struct alignas(64) block {  // all-zero bytes: an empty, unlocked group (the mmap'd tables rely on it)
    group_meta<Atomic> meta;
    GroupLock lock;    // Protects: meta and the 15 slots (J1); the seqlock readers validate against.
    KeyLock key_lock;  // Serializes the writes of the keys whose home group this is (J6); readers ignore it.
    slot slots[kGroupSlots];
  };

  // acquire (every word): a word written by a writer W synchronizes with W's
  // release store, so W's lock CAS happens before the reader's read_valid
  // re-load, which then sees the version changed (Boehm's seqlock argument;
  // acquire loads instead of a fence, which ThreadSanitizer also understands).
  // Plain moves on x86.
  POLYMAP_ALWAYS_INLINE static key_word load_key(const slot& s, std::memory_order order) noexcept {
    if constexpr (kKeyExtra > 0) {
      key_word k;
      k.w = s.key.load(order);
#pragma GCC unroll 4
      for (std::size_t j = 0; j < kKeyExtra; ++j) k.b[j] = s.kx[j].load(order);
      return k;
    } else {
      return s.key.load(order);
    }
  }
  POLYMAP_ALWAYS_INLINE static entry read(const slot& s) noexcept {
    entry e;
    e.key = load_key(s, std::memory_order_acquire);
    for (std::size_t j = 0; j < kValueWords; ++j) e.value[j] = s.value[j].load(std::memory_order_acquire);
    return e;
  }
  // J8, read side: a reader loads the slot's lock word before the slot's
  // words (acquire: the word loads stay after it) and checks it unchanged
  // and unlocked after them (the words are acquire loads, so the re-load
  // stays after them): the seqlock argument above, per slot.
  POLYMAP_ALWAYS_INLINE static std::uint32_t slot_begin(const slot& s) noexcept {
    if constexpr (kSlotLocks)
      return s.ver.load(std::memory_order_acquire);
    else
      return 0;
  }
  POLYMAP_ALWAYS_INLINE static bool slot_valid(const slot& s, std::uint32_t begin) noexcept {
    if constexpr (kSlotLocks)
      return !(begin & 1) && s.ver.load(std::memory_order_relaxed) == begin;  // relaxed: see slot_begin
    else
      return true;
  }
  // J8, writer side: a thread that holds the group lock (or froze the
  // group) and will read or write slot s's value words waits until no
  // overwriter holds s. seq_cst: ordered after the caller's seq_cst lock or
  // freeze CAS, against the overwriter's seq_cst slot CAS and its check of
  // the group's version (Dekker's pattern): either the overwriter sees the
  // group taken and backs off, or this load sees the slot locked.
  POLYMAP_ALWAYS_INLINE static void wait_slot_unlocked(const slot& s) noexcept {
    if constexpr (kSlotLocks)
      for (backoff bo; s.ver.load(std::memory_order_seq_cst) & 1; bo.pause()) {
      }
  }
  // release: pairs with read()'s acquire loads. Under the group lock.
  POLYMAP_ALWAYS_INLINE static void write(slot& s, const entry& e) noexcept {
    if constexpr (kKeyExtra > 0) {
      s.key.store(e.key.w, std::memory_order_release);
      for (std::size_t j = 0; j < kKeyExtra; ++j) s.kx[j].store(e.key.b[j], std::memory_order_release);
    } else {
      s.key.store(e.key, std::memory_order_release);
    }
    for (std::size_t j = 0; j < kValueWords; ++j) s.value[j].store(e.value[j], std::memory_order_release);
  }
  // Under the group lock: the slot is full and still holds exactly at.e.
  POLYMAP_ALWAYS_INLINE static bool holds(const block& b, const location& at) noexcept {
    if (b.meta.load().byte(at.slot) == 0) return false;
    wait_slot_unlocked(b.slots[at.slot]);  // J8
    return read(b.slots[at.slot]).same(at.e);
  }
  template <class F>
  void scan(F&& f) const {
    entry buf[kGroupSlots];
    for (std::size_t g = 0; g < groups_; ++g) {
      const block& b = blocks_[g];
      std::size_t n = 0;
      for (backoff bo;; bo.pause()) {
        const std::uint32_t v = b.lock.read_begin();
        n = 0;
        bool whole = true;
        for (std::uint32_t m = b.meta.load().match_full(); m && whole; m &= m - 1) {
          const slot& sl = b.slots[static_cast<std::size_t>(std::countr_zero(m))];
          const std::uint32_t sv = slot_begin(sl);
          buf[n++] = read(sl);
          whole = slot_valid(sl, sv);
        }
        if (whole && b.lock.read_valid(v)) break;
      }
      for (std::size_t i = 0; i < n; ++i) f(g, buf[i]);
    }
  }

  std::size_t groups_, mask_, bytes_ = 0;
  block* blocks_ = nullptr;
  // Read by every write (write_table), set once: on the line every lookup reads.
  Atomic<inline_table*> next_{nullptr};
  Atomic<inline_table*> pending_{nullptr};  // a prepared successor, not yet published (PREPARE)
  std::size_t prepare_at_ = SIZE_MAX;       // size + dirty at which to prepare one
  std::size_t quiet_below_ = 0;             // min(max_load(), prepare_at_): growth_due's fast answer below it
  std::int64_t bound_slack_ = 0;            // size_bound's allowance for the stripes' uncounted entries
  Atomic<inline_table*> prev_{nullptr};     // the table migrating into this one (needs_rebuild); set once
  bool striped_ = false;                    // counts in stripes_ (J4); fixed at construction
  // On its own cache line: every insert and erase of an unstriped table
  // writes it, and a striped table's every kCountBatch-th.
  alignas(64) Atomic<std::int64_t> estimate_{0};  // J4
  Atomic<std::size_t> dirty_{0};                  // erasures from overflowed groups since the build
  struct alignas(64) count_stripe {
    Atomic<std::int64_t> n{0};
  };
  count_stripe stripes_[kCountStripes];
  // Written by the writers that help a migration: a line of their own.
  alignas(64) Atomic<std::size_t> claim_{0};  // the next group to hand out (claim_range)
  Atomic<std::size_t> moved_{0};              // groups moved (finish_group)
  Atomic<std::size_t> populate_next_{0};      // the next byte to populate (populate_step)
  std::size_t stale_ = 0;                     // RECYCLE: front bytes holding a freed table's words
  bool recycle_ = false;                      // RECYCLE: freed by a growth (recycle_on_free)
  Atomic<std::size_t> populated_{0};          // bytes populated
};

}  // namespace polymap::detail

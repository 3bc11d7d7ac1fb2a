// polymap/concurrent_map.hpp — a concurrent open-addressing map whose
// lookups write no shared memory. The table is detail/inline_table.hpp (its
// layout and invariants J1-J9), the slot words detail/slot_codec.hpp.
//
// CONTRACT
//   Every single-key operation is linearizable. find, contains, visit, get and
//   bulk_find are reads: no lock, no store and no read-modify-write on any
//   shared word (the epoch pin writes only the thread's own announcement
//   line; find's copy of a polymap::value with a heap payload bumps the
//   payload's count, a write to the payload, not to the map; visit and get
//   read in place and copy only what they return). Every other operation is
//   a write.
//   visit(q, f) calls f(const V&) on a value that stays alive and unchanged
//   for the call, even if another thread overwrites or erases the key: a
//   value read whole under the seqlock, sharing the stored payload or box (no
//   reference taken; the epoch pin keeps it).
//   for_each and erase_if are weakly consistent: they see every entry present
//   for their whole run, may or may not see entries changed meanwhile, and
//   pass only values the key really had. size() is exact when no write runs
//   (during a growth it adds the two tables' counts).
//   Callbacks that throw leave the map unchanged (insert_or_visit runs f on a
//   copy, update computes its value before publishing, erase_if decides every
//   entry before erasing any). A callback must not write the same map: update
//   and insert_or_visit run it holding the key lock of the key's home group,
//   so such a write would wait for its own thread, or not, by hash luck; it
//   throws std::logic_error naming the map and this rule instead (L5; reads
//   are fine). Hash and Eq must not call into the same map at all (the fast
//   path runs Eq under the home group's lock). A key that is not word-sized
//   is taken by const reference and read until the operation returns: no
//   callback, Hash or Eq may change the caller's key object meanwhile.
//   A callback may run again if clear() or a growth races with the same
//   operation (key locks are per table, J6: a write that began on the new
//   table may store first). Hash must not throw for a key
//   already in the map (a growth rehashes word-sized keys and inline string
//   keys; key blocks keep their hash).
//   Memory: erased keys and replaced values are freed a grace period later
//   (epoch); a reader that stays pinned (a visit callback that blocks) holds
//   back those frees for every map of the process (stats().retired_pending).
//
// TERMS
//   group, tag, overflow, probe: detail/group.hpp. block, slot, key word,
//   value words, key lock, slot lock: detail/inline_table.hpp (LAYOUT).
//   freeze   : a group's version word marked final: the table is being
//              rebuilt or migrated, no write to it can succeed any more.
//   moved    : a frozen group whose entries a migration copied into the
//              table's next table (GROWTH).
//   epoch    : detail::epoch_domain::global(): a table, key block, payload
//              or box is freed only once no thread pinned before its
//              retirement is still pinned.
//
// LAYOUT
//   concurrent_map                    inline_table (one allocation)
//   +---------------------+        +----------------------------------------------+
//   | table_ (atomic ptr) |------> | G x {meta 16 B, version 4 B, key lock 4 B,   |
//   | rebuild_mutex_      |        |      15 x {key word, value words}}           |
//   | counters            |        | next: the table it migrates into (GROWTH)    |
//   +---------------------+        +---------------|------------------------------+
//                                                  v (string keys)
//                                   key block {hash, size, bytes} (immutable)
//   Why in the group: separate arrays cost a dependent miss per lookup; why
//   64-byte aligned: an unaligned block puts the version on another line
//   than the tags for some groups (~30% slower). Why key blocks for strings:
//   a write of a present key allocates nothing, and the stored hash rejects
//   most tag collisions before the bytes are read. Why short keys are not
//   in the slot by default (inline_string_traits): twice the table bytes
//   (docs/concurrent_map.md, session 22).
//
// LOCK PROTOCOL (the table's side: J6-J8 in inline_table.hpp)
//   L1. A write to key k holds the key lock of k's home group in the table
//       it writes, from its lookup of k to the publication of its result
//       (J6); a writer that finds the table replaced moves to the new
//       table's key lock before its publishing lookup. So "k is absent / k's
//       entry is e" stays true while it holds the key lock (clear() takes
//       none: L4). Before it, insert, insert_or_assign and erase try to
//       decide in the key's home group holding only that group's lock (J7),
//       and insert_or_assign of a string or boxed key present in its home
//       group first tries to store its value words holding only its slot's
//       lock (J8). What those cannot decide falls back to L1 with nothing
//       changed.
//   L2. A slot or metadata word changes only under its group's lock (value
//       words also under their slot's lock, J8). A thread holds at most one
//       group or slot lock, briefly. A slot lock's holder never waits (it
//       backs off); a group lock's holder or a freezer waits only for a slot
//       lock of its group.
//   L3. Order: key lock, then one group lock at a time, then (waited for,
//       not held) a slot lock; or rebuild_mutex_, then freezing groups. A
//       writer that finds a group frozen gives it up: in a migration it helps
//       move groups (GROWTH), in a rebuild at once it waits for
//       rebuild_mutex_, both still holding its key lock, and retries on the
//       new table. Moving a group takes no key lock: it freezes the group
//       (waiting out at most one short group-lock hold) and takes the next
//       table's group locks one at a time, or waits for another thread's
//       copy of that one group, which itself waits for nothing but group
//       locks. The rebuilder takes no key lock and holds no group lock. So
//       no cycle exists.
//   L4. rebuild_mutex_ protects beginning a migration and replacing table_
//       at once (reserve, clear, a small or full table). The mover of a
//       migration's last group replaces table_ without it: nothing else
//       replaces a migrating table (clear and reserve finish a migration
//       first, under the mutex, and no migration begins while it is held).
//   L5. A thread that runs a callback under a key lock is recorded
//       (callback_scope, detail/reentry.hpp: one thread-local load per
//       write); a write to the same map from it throws (CONTRACT).
//
// READ PROTOCOL (find, contains, visit, bulk_find)
//   Pin the epoch (it keeps the table, key blocks, payloads and boxes alive);
//   load table_ (acquire); for each group on the probe sequence: load the
//   version v (acquire) and the tags; for each tag match load the slot's
//   lock word, key word and value words (acquire); if the group's version
//   or the slot's lock word changed or was locked, read the group again
//   (find_contended); else the words are one entry at one instant: test the
//   key (a key block's stored hash, then Eq) and return a copy or borrow of
//   the value. Stop at a group whose overflow bit for the hash is clear.
//   Writers hold the group lock (version bit 0, acquire CAS) while they
//   store words (release stores) and tags; unlock bumps the counter
//   (release). Why it is safe: a key block is dereferenced only after its word
//   validated, so it was in the table after the reader pinned and is not
//   freed before the unpin; the acquire load of the key word pairs with the
//   inserter's release store, so the block's bytes are visible. A word that
//   came from a writer's release store synchronizes with it, so the writer's
//   lock CAS happens before the reader's version re-load, which then cannot
//   return v (Boehm, "Can seqlocks get along with programming language
//   memory models?", MSPC 2012; acquire loads rather than a fence, which
//   TSan models; plain moves on x86).
//   Linearization: an insert at its tag store (words first, J1), an
//   overwrite at its value store (a slot-locked one at its unlock: readers
//   see all of its words or none), an erase at its tag clear. A key never moves within a table (no backward shifts,
//   no tombstones), so a lookup cannot miss a key present for its whole run;
//   one that misses during an erase and reinsert linearizes in the gap. A
//   lookup still reading a table being rebuilt reads frozen groups: the
//   state at the freeze, inside its run. On a moved group (GROWTH) the
//   lookup starts over in find_contended, which walks the chain without
//   matching a moved group's candidates and goes on in the next table if
//   it passed one (R1-R3).
//   Ownership: a full slot's words own their key block and one payload
//   reference (or box). Replaced value words are retired by the writer; an
//   erase retires the value and the key block; a rebuild moves words and
//   releases none; the destructor and clear()'s retired table release all.
//   Why a seqlock: a slot is several words written separately, so a reader
//   could pair one entry's key with another's value; a 16-byte CAS per slot
//   would be a locked RMW on every read.
//
// GROWTH: incremental and cooperative (issue 16). A table grows when size +
//   dirty (+ the entries still to come from a previous table) reaches 7/8 of
//   its slots (dirty: erasures from overflowed groups, which keep probe
//   chains long until a rebuild). The new table has room for 5/4 of the live
//   entries (a table at its maximum load doubles; a dirty one may stay the
//   same size or shrink). A table of incremental_min_groups or more
//   migrates: under rebuild_mutex_ the grower allocates the next table
//   (bad_alloc: nothing changed; PREPARE usually allocated it at 3/4 load)
//   and publishes it as the old table's next (release). From then on:
//   W1. A write of key k first moves every group of k's chain in the old
//       table, then runs on the next table as on any table (J6, J7). So k is
//       written in the next table only after every group that could hold it
//       in the old one is moved: until then the old table holds k's latest
//       state, and from then on the next table.
//   W2. Each write also moves two groups from a cursor (migrate_chunk), so
//       the migration ends after about groups / 2 writes, long before the
//       next table fills.
//   Moving group g: freeze it (the thread whose freeze froze it is its
//   mover), copy its entries into the next table (plain inserts under the
//   next table's group locks: no allocation, no key lock; the keys are
//   absent there by W1, and there is room: needs_rebuild counts the old
//   table's entries), then set its "moved" bit (release). A writer that
//   meets a group another thread is moving waits for that one copy (15
//   entries at most); no operation waits for a whole-table rehash. The mover
//   of the last group publishes the next table as table_ and retires the old
//   one (whose words now belong to the next table, J5).
//   W3. A writer whose lookup ran on a table that began migrating meanwhile
//       decides from its frozen or moved groups as they stand: each froze
//       after the writer chose that table, so it shows a state inside the
//       writer's run; a store to a frozen group fails and the writer starts
//       over on the next table.
//   R1. A lookup that met a group not yet moved (live, or frozen and being
//       copied) knows k's chain was not all moved at that instant, so no
//       write of k had gone to the next table: every group it read shows k's
//       latest state at an instant inside its run (a moved group keeps its
//       freeze's state until the first write of k in the next table, which
//       comes later). Found in such a group, or missed over unmoved groups
//       only: the answer stands.
//   R2. Not found in an unmoved group and a moved group passed: if k was in
//       a moved group, the next table holds k's latest state (copied before
//       the moved bit the lookup saw); if not, k is written there only once
//       its whole chain moved. Either way the lookup goes on there, by R1-R3
//       again. No moved group passed: a miss, as in any table.
//   R3. A moved group's candidates are never matched: once k's whole chain
//       moved, an erase of k in the next table retires k's key block, and a
//       lookup pinned after that can still load the old table, so matching
//       would read a freed block (found by tsan in MigratingStress;
//       ParkedMigration.AKeyErasedAfterItsChainMovedIsNotReadThroughTheOld-
//       Table reproduces it under asan). Without R2, ParkedMigration and
//       MigratingStress (concurrent_map_growth_test) fail.
//   A smaller table (microseconds to rebuild), an explicit reserve(n),
//   clear(), and an insert that found a table full rebuild at once: under
//   rebuild_mutex_ the rebuilder freezes every group, moves the words into a
//   new table, publishes it and retires the old one; readers go on reading
//   the frozen groups, writers wait for the mutex (incremental_min_groups =
//   SIZE_MAX does this for every growth, for A/B runs). for_each, erase_if,
//   stats(), clear, reserve and the destructor finish a migration first.
//   Shrinking: only shrink_to_fit() asks for it (erases never start a
//   rebuild; a dirty table is rebuilt by size, which may shrink it); a large
//   table shrinks by the same migration, since W1-W2 and R1-R3 assume only
//   that the next table has room for every entry (needs_rebuild counts the
//   previous table's entries, so a next table that fills while it still
//   receives a migration finishes it and then grows).
//
// ALTERNATIVES CONSIDERED (one line each; measurements and the FAQ:
// docs/concurrent_map.md)
//   - Boost's readers take the group's spin lock: a popular key bounces a line.
//   - A node per entry: a third dependent miss per lookup, a node per write.
//   - Key stripes apart from the groups: a second contended line per write.
//   - Growth at once for every table: one insert waited for a 2M rehash.
//   - Readers that help a migration: a lookup would write shared memory.
//   - Per-group insert counters (Boost) instead of key locks: callbacks rerun.
//   - One size counter per map: a line every insert bounces (J4 stripes it).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "polymap/detail/epoch.hpp"
#include "polymap/detail/group.hpp"
#include "polymap/detail/hash.hpp"
#include "polymap/detail/inline_table.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/detail/reentry.hpp"
#include "polymap/stats.hpp"
#include "polymap/value.hpp"

namespace polymap {

// What a concurrent_map is built from. Tests plug in instrumented atomics.
struct concurrent_map_traits {
  template <class T>
  using atomic = std::atomic<T>;
  using group_lock = detail::version_lock<std::atomic>;
  using stripe_lock = detail::spin_lock<std::atomic>;
  POLYMAP_ALWAYS_INLINE static detail::epoch_domain& domain() { return detail::epoch_domain::global(); }
  // GROWTH: a table of at least this many groups grows by incremental
  // migration; a smaller one is rebuilt at once (at most ~13,000 entries
  // moved: under half a millisecond here). Migrating small tables too (32
  // groups, session 8's first try) cost 1-thread inserts from empty at
  // N = 10,000 about 20% (each copied entry takes a group lock; a rebuild at
  // once fills a private table). SIZE_MAX: every growth at once (the old
  // way, kept for A/B runs).
  static constexpr std::size_t incremental_min_groups = 1024;
  // Groups each write moves from the cursor while a migration runs (besides
  // the groups its own key's lookup passes through).
  static constexpr std::size_t migrate_chunk = 2;
  // Slot locks (J8 in inline_table.hpp) for string and boxed keys: an
  // overwrite of a present key writes its slot's line only. false: the
  // group lock for every write (the old way, kept for A/B runs).
  static constexpr bool slot_locks = true;
  // std::string keys of up to 32 bytes in their slot (inline_string_key in
  // slot_codec.hpp): a hit reads two lines, not three, but a slot is 64
  // bytes, not 32. Off by default (why: LAYOUT; the A/B runs are in
  // docs/concurrent_map.md, session 22); inline_string_traits turns it on.
  static constexpr bool inline_string_keys = false;
};

// concurrent_map_traits with short string keys in their slots: for
// read-mostly maps of keys of 32 bytes or fewer that can spend the memory.
struct inline_string_traits : concurrent_map_traits {
  static constexpr bool inline_string_keys = true;
};

namespace detail {

// Traits members with defaults (tests' traits may leave them out).
template <class Traits>
constexpr std::size_t incremental_min_groups_of() {
  if constexpr (requires { Traits::incremental_min_groups; })
    return Traits::incremental_min_groups;
  else
    return concurrent_map_traits::incremental_min_groups;
}
template <class Traits>
constexpr bool inline_string_keys_of() {
  if constexpr (requires { Traits::inline_string_keys; })
    return Traits::inline_string_keys;
  else
    return concurrent_map_traits::inline_string_keys;
}
template <class Traits>
constexpr bool slot_locks_of() {
  if constexpr (requires { Traits::slot_locks; })
    return Traits::slot_locks;
  else
    return concurrent_map_traits::slot_locks;
}
template <class Traits>
constexpr std::size_t migrate_chunk_of() {
  if constexpr (requires { Traits::migrate_chunk; })
    return Traits::migrate_chunk;
  else
    return concurrent_map_traits::migrate_chunk;
}

// Batched lookups: hash all keys of a batch and prefetch their home groups,
// then their first tag-matching slot or node, then finish each lookup, so
// the cache misses of a batch overlap. finish(hash, key) -> std::optional<V>.
template <std::size_t Batch, class KeyRange, class OutIt, class HashFn, class Table, class Finish>
std::size_t bulk_lookup(const KeyRange& keys, OutIt& out, HashFn&& hash, const Table& t, Finish&& finish) {
  using iter = decltype(std::begin(keys));
  std::size_t found = 0;
  iter it = std::begin(keys);
  const auto end = std::end(keys);
  while (it != end) {
    iter batch[Batch];
    std::size_t hashes[Batch];
    std::size_t n = 0;
    for (; n < Batch && it != end; ++it, ++n) {
      batch[n] = it;
      hashes[n] = hash(*it);
      t.prefetch(hashes[n]);
    }
    for (std::size_t i = 0; i < n; ++i) t.prefetch_candidate(hashes[i]);
    for (std::size_t i = 0; i < n; ++i) {
      auto r = finish(hashes[i], *batch[i]);
      if (r) ++found;
      *out = std::move(r);
      ++out;
    }
  }
  return found;
}

// concurrent_map's implementation, one class for every key and value type
// (the slot layout is the table's policy): the table pointer, hashing,
// growth and clear, then the operations.
template <class K, class V, class Hash, class Eq, class Traits>
class inline_concurrent_map {
 protected:
  template <class T>
  using atomic = typename Traits::template atomic<T>;
  using kpolicy = key_policy_for<K, Eq, inline_string_keys_of<Traits>()>;
  using table = inline_table<kpolicy, V, Traits::template atomic, typename Traits::group_lock,
                             typename Traits::stripe_lock, slot_locks_of<Traits>() && kpolicy::kHashed>;
  using location = typename table::location;
  using status = typename table::status;
  using entry = typename table::entry;
  using kcodec = typename table::key_codec;
  using vcodec = typename table::val_codec;
  using words = typename table::value_words;
  using key_word = typename table::key_word;
  using home = typename table::home;

 public:
  using key_type = K;
  using hasher = Hash;
  using key_equal = Eq;

  inline_concurrent_map() : table_(make_table(1)) {}
  explicit inline_concurrent_map(std::size_t capacity) : table_(make_table(table::groups_for(capacity))) {}
  inline_concurrent_map(const inline_concurrent_map&) = delete;
  inline_concurrent_map& operator=(const inline_concurrent_map&) = delete;
  // Precondition: no other thread uses the map.
  ~inline_concurrent_map() {
    {
      auto pin = Traits::domain().pin();
      finish_migration();  // the old table's unmoved entries into the new one
    }
    free_table_and_entries(table_.load(std::memory_order_acquire));  // acquire: last publish
  }

  // Empties the map. Readers and writers may run meanwhile: readers finish on
  // the old table, writers wait for the swap and go on in the empty one.
  void clear() {
    auto pin = Traits::domain().pin();
    std::lock_guard lock(rebuild_mutex_);
    finish_migration();  // no migration begins meanwhile: that takes rebuild_mutex_
    table* fresh = make_table(1);
    table* old = table_.load(std::memory_order_relaxed);  // relaxed: rebuild_mutex_ orders table_ writes
    old->freeze_all();
    table_.store(fresh, std::memory_order_release);  // release: pairs with current()'s acquire
    Traits::domain().retire(old, &free_table_and_entries);
  }

  // Makes room for n entries in one rebuild (GROWTH: an explicit reserve
  // does not migrate incrementally).
  void reserve(std::size_t n) {
    auto pin = Traits::domain().pin();
    std::lock_guard lock(rebuild_mutex_);
    finish_migration();
    table* t = table_.load(std::memory_order_relaxed);  // relaxed: rebuild_mutex_ orders table_ writes
    if (n > t->max_load()) rebuild_at_once(t, n);
  }

  // Gives back the memory of a table that erases left sparse: moves the
  // entries into the table a growth would size for size() (room for a
  // quarter more) if that one has fewer groups; otherwise frees only a
  // successor allocated ahead (PREPARE) that the load does not need yet.
  // Like reserve, the caller does O(capacity) work. Unlike reserve, a large
  // table shrinks by migration (GROWTH): readers and writers go on, writers
  // help move groups, and none waits for a whole-table rehash. Why not on
  // its own after erases: a map that drains and refills (a cache, a batch)
  // would pay a rehash each way; std::unordered_map, Boost, Abseil and Go
  // never shrink unasked either. bad_alloc: the map is as it was. The old
  // table is freed once no reader still holds it: this call tries for a
  // few milliseconds (a reader pinned longer keeps it, as for any retire).
  void shrink_to_fit() {
    if (shrink_in_place()) {
      auto& d = Traits::domain();
      for (int i = 0; i < 8 && d.pending() != 0; ++i)
        if (d.try_reclaim() == 0) std::this_thread::sleep_for(std::chrono::microseconds(250));
    }
  }

 private:
  bool shrink_in_place() {
    auto pin = Traits::domain().pin();
    {
      lock_rebuild();
      std::lock_guard lock(rebuild_mutex_, std::adopt_lock);
      finish_migration();                                 // no migration begins meanwhile: that takes rebuild_mutex_
      table* t = table_.load(std::memory_order_relaxed);  // relaxed: rebuild_mutex_ orders table_ writes
      const std::size_t live = t->size();                 // writers may go on: an estimate, as in grow()
      const std::size_t groups = table::groups_for(live + live / 4 + 1);
      if (groups >= t->groups()) return drop_early_successor(t);
      if (t->groups() < incremental_min_groups_of<Traits>()) {
        rebuild_at_once(t, 0);  // sized by the exact count, under the freeze
        return true;
      }
      t->begin_migration(make_table(groups));  // may throw bad_alloc with nothing changed
    }
    finish_migration();  // outside the mutex: the mover of the last group publishes (L4)
    return true;
  }

 public:
  std::size_t size() const {
    auto pin = Traits::domain().pin();
    const table* t = current();
    std::size_t n = t->size();
    if (const table* next = t->next()) n += next->size();  // a migration: entries are in one or the other
    return n;
  }
  bool empty() const { return size() == 0; }

  // Test hooks. debug_begin_migration starts a migration of the current
  // table into one of `groups` groups (0: twice the current; a power of two),
  // whatever its load, and moves nothing; it does nothing if a migration
  // runs. A count without room for the entries and a quarter more (the
  // sizing rule's) is raised to one with room: a caller that read the group
  // count before another thread grew the table would otherwise ask for a
  // next table its entries overfill. debug_migration() says where the
  // migration stands.
  void debug_begin_migration(std::size_t groups = 0) {
    auto pin = Traits::domain().pin();
    std::lock_guard lock(rebuild_mutex_);
    table* t = table_.load(std::memory_order_relaxed);  // relaxed: rebuild_mutex_ orders table_ writes
    if (t->next()) return;
    const std::size_t live = t->size_bound();
    groups = std::max(groups ? groups : t->groups() * 2, table::groups_for(live + live / 4 + 1));
    t->begin_migration(make_table(groups));
  }
  struct migration_state {
    bool running = false;
    std::size_t groups = 0, moved = 0;
    bool prepared = false;  // a successor allocated ahead (PREPARE), not yet migrating into
  };
  migration_state debug_migration() const {
    auto pin = Traits::domain().pin();
    const table* t = current();
    if (!t->next()) return {false, t->groups(), 0, t->pending() != nullptr};
    return {true, t->groups(), t->moved_groups(), false};
  }
  // Moves group g of the migrating table (a test parks a migration with
  // some groups moved and others not).
  void debug_move_group(std::size_t g) {
    auto pin = Traits::domain().pin();
    table* t = current();
    if (t->next()) move_group(t, g);
  }

  // Runs the growth path as a writer that found the current table at its
  // maximum load just before another writer began migrating it (the race
  // of session 27): it must leave that migration to the writes (W1-W2).
  void debug_grow_after_lost_race() {
    auto pin = Traits::domain().pin();
    grow(current(), false);
  }

  // Test hook: the version word of every group of the current table, to show
  // that lookups leave them alone.
  std::vector<std::uint32_t> debug_version_words() const {
    auto pin = Traits::domain().pin();
    const table* t = current();
    std::vector<std::uint32_t> v(t->groups());
    for (std::size_t g = 0; g < v.size(); ++g) v[g] = t->lock_of(g).raw();
    return v;
  }

 protected:
  template <class Q>
  static decltype(auto) lookup(const Q& q) {
    return detail::lookup_arg<K>(q);
  }

  // Positions come from the low bits, tags from the top 7: every bit must
  // depend on every key bit. A hash that does not say it avalanches (Boost's
  // is_avalanching marker, which polymap::hash carries) is post-mixed, as
  // Boost does; so an identity hash cannot put all keys under one tag.
  template <class Q>
  std::size_t hash_of(const Q& q) const {
    const std::size_t h = hash_(lookup(q));
    if constexpr (requires { typename Hash::is_avalanching; })
      return h;
    else
      return detail::mix64(h);
  }

  // Precondition (all below): the caller is pinned.
  POLYMAP_ALWAYS_INLINE table* current() const {
    // acquire: pairs with the release store of table_ in rebuild()/clear(),
    // so the new table's arrays are visible.
    return table_.load(std::memory_order_acquire);
  }

  // The table a write of hash h goes to: the current one or, while it
  // migrates, the next one, once every group that h's lookup passes in
  // the migrating table is moved (GROWTH, W1); the write also moves a few
  // groups from the cursor (W2).
  POLYMAP_ALWAYS_INLINE table* write_table(std::size_t h) const {
    table* t = current();
    while (table* n = t->next()) [[unlikely]] {
        help_migrate(t, h);
        t = n;
      }
    return t;
  }
  // PREPARE: one populate step of the current table's successor, if it has
  // one, after each insert. Once per insert, not per write_table call: a
  // write that takes the key-lock path calls write_table two or three
  // times, and each step is a page exit or more on these VMs.
  POLYMAP_ALWAYS_INLINE void populate_after_insert() const {
    if (table* p = current()->pending()) [[unlikely]]
      p->populate_step();
  }

  // W1 and W2 for a write of hash h. Precondition: t->next() is set.
  [[gnu::noinline]] void help_migrate(table* t, std::size_t h) const {
    t->for_each_chain_group(h, [&](std::size_t g) { move_group(t, g); });
    constexpr std::size_t chunk = migrate_chunk_of<Traits>();
    if constexpr (chunk > 0) {
      const std::size_t first = t->claim_range(chunk);
      const std::size_t end = std::min(first + chunk, t->groups());
      for (std::size_t g = first; g < end; ++g) t->prefetch_group(g);  // their misses overlap
      for (std::size_t g = first; g < end; ++g) move_group(t, g);
    }
  }

  // Moves group g of t into t->next(): the thread whose freeze froze it
  // copies its entries and marks it moved; another waits until it is moved
  // (one group's copy: no allocation, no lock but the next table's group
  // locks). The thread that moves the last group makes the next table
  // current and retires t.
  void move_group(table* t, std::size_t g) const {
    if (t->group_moved(g)) return;
    if (!t->claim_group(g)) {
      for (backoff bo; !t->group_moved(g); bo.pause()) {
      }
      return;
    }
    table* next = t->next();
    const typename table::claimed_slot* from[kGroupSlots];
    const std::size_t n = t->claimed_slots(g, from);
    std::size_t hashes[kGroupSlots];
    for (std::size_t i = 0; i < n; ++i) hashes[i] = hash_of_word(table::claimed_key(from[i]));
    // The keys are absent from next (their writes go there only once this
    // group is moved, W1), next has room for them (needs_rebuild counts t's
    // entries), and next does not migrate before t is done.
    if (!next->insert_copies(hashes, from, n, lock_waits_)) [[unlikely]]
      migration_failed();
    next->add_copied(n);
    if (t->finish_group(g, n)) {
      next->end_migration_of_prev();
      table* expected = t;
      // release: pairs with current()'s acquire. The CAS cannot fail: only
      // the mover of the last group replaces a migrating table (clear and
      // reserve finish a migration first).
      table_.compare_exchange_strong(expected, next, std::memory_order_release, std::memory_order_relaxed);
      growths_.fetch_add(next->groups() > t->groups() ? 1 : 0, std::memory_order_relaxed);  // relaxed: a statistic
      if (next->groups() > t->groups()) t->recycle_on_free();  // a growth, not shrink_to_fit
      Traits::domain().retire(t, &free_table);                 // its entries live on in next (J5)
    }
  }
  [[noreturn]] static void migration_failed() noexcept {
    std::fputs("polymap: concurrent_map: a migration found no room in the next table (a bug)\n", stderr);
    std::abort();
  }

  // Moves every group of a migration in progress (if any) and returns once
  // the next table is current. For operations that need one table (clear,
  // reserve, for_each, erase_if, stats) and for a table that must grow
  // while it still receives a migration.
  void finish_migration() const {
    for (;;) {
      table* t = current();
      if (!t->next()) return;
      for (std::size_t g = 0; g < t->groups(); ++g) move_group(t, g);
      for (backoff bo; current() == t; bo.pause()) {
        // the mover of the last group is publishing its successor
      }
    }
  }

  stats_t base_stats(const table* t) const {
    stats_t s;
    s.map = "concurrent_map";
    s.size = t->size();
    s.capacity = t->capacity();
    s.load_factor = s.capacity ? static_cast<double>(s.size) / static_cast<double>(s.capacity) : 0.0;
    s.growths = growths_.load(std::memory_order_relaxed);        // relaxed: a statistic
    s.lock_waits = lock_waits_.load(std::memory_order_relaxed);  // relaxed: a statistic
    s.bytes = sizeof(inline_concurrent_map) + t->bytes();
    if (const table* p = t->pending()) s.bytes += p->bytes();  // a successor allocated ahead (PREPARE)
    s.retired_pending = Traits::domain().pending();
    s.retired_pending_bytes = Traits::domain().pending_bytes();
    return s;
  }

  // Throws std::logic_error if this thread runs a callback of this map.
  POLYMAP_ALWAYS_INLINE void check_not_in_callback(const char* /*op*/) const { callback_scope::check(this); }

  // Replaces `seen` by a table with room for a quarter more than its live
  // entries, unless another thread replaced it already or (without force)
  // it no longer needs it: by a migration (GROWTH) for a table of
  // incremental_min_groups or more, at once for a smaller one or when an
  // insert found `seen` full (force).
  void grow(table* seen, bool force) {
    // Only a migration into seen must end before seen can grow. If seen
    // itself began migrating since the caller looked (another writer's
    // growth won the race), the check under the mutex below returns and the
    // caller retries on the successor, moving only its key's chain (W1).
    // Finishing any running migration here made that insert move the whole
    // table: 82-93 ms at 2M keys (session 27).
    if (const table* cur = current(); cur != seen && cur->next() == seen) finish_migration();
    lock_rebuild();
    std::lock_guard lock(rebuild_mutex_, std::adopt_lock);
    table* t = table_.load(std::memory_order_relaxed);  // relaxed: rebuild_mutex_ orders table_ writes
    if (t != seen || t->next()) return;
    if (!force && !t->needs_rebuild()) return;
    if (force || t->groups() < incremental_min_groups_of<Traits>()) {
      rebuild_at_once(t, 0);
      return;
    }
    const std::size_t live = t->size();  // writers go on: an estimate, as the sizing rule needs
    const std::size_t groups = table::groups_for(live + live / 4 + 1);
    // The prepared successor (twice the groups) only where the live entries
    // need it: a table that reached 7/8 with erased slots counted (dirty)
    // migrates into one of its own size. (Taking it anyway doubled a
    // churned table with a steady count.)
    table* prepared = t->pending();
    if (prepared != nullptr && prepared->groups() <= groups) {
      prepared->populate_rest();  // usually done already (PREPARE)
      t->begin_migration(prepared);
      return;
    }
    // As rebuild_at_once's rule; may throw bad_alloc with nothing changed.
    table* fresh = make_table(groups);
    if (prepared != nullptr && prepared->groups() == successor_groups(fresh)) {
      // The skipped successor is the next growth's (it is sized for this
      // group count at 7/8), so its populate steps go on once fresh is
      // current instead of being thrown away with t. A writer that loaded
      // it from t may still run a step on it: fresh outlives that writer's
      // pin (J5).
      t->set_pending(nullptr);
      fresh->set_pending(prepared);
    }
    t->begin_migration(fresh);
  }

  // Retires t's prepared successor if t is below the load that prepares
  // one: a successor handed on by grow() to a churned table (a steady count
  // that keeps reaching 7/8 with erased slots) stays until a growth takes
  // it. Returns whether it retired one. Precondition: rebuild_mutex_ held.
  bool drop_early_successor(table* t) {
    table* p = t->pending();
    if (p == nullptr || t->prepare_due()) return false;
    t->set_pending(nullptr);
    Traits::domain().retire(p, &free_table, p->bytes());  // a writer may still run a populate step on it
    return true;
  }

  // PREPARE: a table that will grow by migration allocates its successor
  // at 3/4 load, unpopulated (mmap'd) or unzeroed (heap), and every insert
  // then populates or zeroes one step of it (populate_after_insert), so it
  // is in place when the migration begins at 7/8 and no write pays for it
  // all at once. A failed allocation is left to the growth itself (which
  // throws it).
  void prepare(table* t) {
    std::lock_guard lock(rebuild_mutex_);
    if (table_.load(std::memory_order_relaxed) != t || t->next() || t->pending()) return;  // relaxed: the mutex
    try {
      t->set_pending(make_table(successor_groups(t), false));
    } catch (const std::bad_alloc&) {
    }
  }

  // The groups grow() gives t's successor at 7/8 load: twice t's.
  static std::size_t successor_groups(const table* t) noexcept {
    return table::groups_for(t->max_load() + t->max_load() / 4 + 1);
  }
  table* make_table(std::size_t groups, bool populate = true) const {
    return new table(groups, incremental_min_groups_of<Traits>(), populate);
  }

  // Replaces t by a table with room for a quarter more than its live
  // entries (or min_entries), built before it is published: every group
  // is frozen meanwhile. Precondition: rebuild_mutex_ held, t current and
  // not migrating.
  void rebuild_at_once(table* t, std::size_t min_entries) {
    t->freeze_all();
    table* fresh;
    try {
      const std::size_t live = t->size();  // exact: every group is frozen (J4)
      // Room for a quarter more than live: a table at its maximum load (7/8)
      // or full (force) doubles, since 5/4 of 7/8 of its capacity exceeds
      // the maximum load of the same group count; a dirty one may come out
      // the same size or smaller. Either way the new maximum load exceeds
      // live, so the insert that asked for the rebuild fits. (2 * live, used
      // before, quadrupled a table at its maximum load: 2 * 7/8 > 1 rounds up
      // to four times the groups, leaving 10,000 u64 keys at 33% load.)
      fresh = make_table(table::groups_for(std::max({live + live / 4 + 1, min_entries, std::size_t{1}})));
    } catch (...) {
      t->thaw_all();
      throw;
    }
    rehash_into(*t, *fresh);                         // entries move: the old table frees none
    table_.store(fresh, std::memory_order_release);  // release: pairs with current()'s acquire
    growths_.fetch_add(fresh->groups() > t->groups() ? 1 : 0, std::memory_order_relaxed);  // relaxed: a statistic
    if (fresh->groups() > t->groups()) t->recycle_on_free();
    Traits::domain().retire(t, &free_table);
  }

  void wait_for_rebuild() const {
    lock_rebuild();
    rebuild_mutex_.unlock();
  }
  // Takes rebuild_mutex_, spinning (pause, then yield) before sleeping: a
  // rebuild at once of a small table takes tens of microseconds, about what
  // a futex sleep and wake cost the waiter and the rebuilder.
  void lock_rebuild() const {
    backoff b;
    for (int i = 0; i < 48; ++i) {
      if (rebuild_mutex_.try_lock()) return;
      b.pause();
    }
    rebuild_mutex_.lock();
  }

  static void free_table(void* p) noexcept { delete static_cast<table*>(p); }
  static void free_table_and_entries(void* p) noexcept {
    auto* t = static_cast<table*>(p);
    t->release_entries();
    delete t;
  }

 private:
  // Holds the key lock of a hash in the table the caller writes (J6, L1
  // inline). hold(t) moves it to table t when a growth or clear() replaced
  // the table: released in the old one, taken in t. The caller is pinned, so
  // the old table is still allocated when its lock is released. An insert
  // under the guard asks for its PREPARE populate step (populate_later),
  // which runs once the lock is released: a step is a page exit or more,
  // not work to do while other writers of the key's lock wait.
  class key_guard {
   public:
    POLYMAP_ALWAYS_INLINE key_guard(inline_concurrent_map& m, std::size_t h) : m_(m), h_(h) { take(m.write_table(h)); }
    POLYMAP_ALWAYS_INLINE ~key_guard() {
      lock_->unlock();
      if (populate_) [[unlikely]]
        m_.populate_after_insert();  // the caller is still pinned: its pin outlives the guard
    }
    POLYMAP_ALWAYS_INLINE void populate_later() noexcept { populate_ = true; }
    key_guard(const key_guard&) = delete;
    key_guard& operator=(const key_guard&) = delete;
    POLYMAP_ALWAYS_INLINE void hold(table* t) {
      if (t == t_) [[likely]]
        return;
      lock_->unlock();
      take(t);
    }

   private:
    POLYMAP_ALWAYS_INLINE void take(table* t) {
      t_ = t;
      lock_ = &t->key_lock_of(h_);
      lock_->lock(m_.lock_waits_);
    }
    inline_concurrent_map& m_;
    std::size_t h_;
    table* t_ = nullptr;
    typename Traits::stripe_lock* lock_ = nullptr;
    bool populate_ = false;
  };

  // Value words the caller owns until the table takes them (commit) or the
  // guard releases them (an exception, or a value never stored).
  class owned {
   public:
    explicit owned(V&& v) : w_(vcodec::take(std::move(v))) {}  // a boxed V allocates
    ~owned() {
      if (own_) vcodec::release(w_);
    }
    owned(const owned&) = delete;
    owned& operator=(const owned&) = delete;
    const words& get() const noexcept { return w_; }
    void commit() noexcept { own_ = false; }

   private:
    words w_;
    bool own_ = true;
  };

  // The key word of an insert, made on first use (a string key's block is
  // allocated only by a write that may insert it), owned by the caller until
  // the table takes it (commit).
  class owned_key {
   public:
    owned_key() = default;
    ~owned_key() {
      if (made_ && !taken_) kcodec::free(w_);
    }
    owned_key(const owned_key&) = delete;
    owned_key& operator=(const owned_key&) = delete;
    template <class Q>
    POLYMAP_ALWAYS_INLINE const key_word& get(const Q& q, std::size_t h) {
      if (!made_) {
        w_ = kcodec::make(q, h);
        made_ = true;
      }
      return w_;
    }
    bool made() const noexcept { return made_; }
    const key_word& word() const noexcept { return w_; }
    void commit() noexcept { taken_ = true; }

   private:
    key_word w_{};
    bool made_ = false;
    bool taken_ = false;
  };

 public:
  using mapped_type = V;
  // Keys are taken by value when that is a register or two, else by const
  // reference: a std::string key is copied only into the key block an
  // insert makes, never to overwrite a present key.
  using key_arg = std::conditional_t<std::is_trivially_copyable_v<K> && sizeof(K) <= 2 * sizeof(void*), K, const K&>;

  // --- writes ----------------------------------------------------------------
  bool insert(key_arg k, V v) {
    this->check_not_in_callback("insert");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned_key key;
    const key_word& kw = key.get(k, h);  // an insert usually inserts: made before any lock
    owned w(std::move(v));
    auto pin = Traits::domain().pin();
    {
      const entry e{kw, w.get()};
      entry old;
      switch (write_home(h, q, &e, false, true, old)) {
        case home::inserted:
          this->populate_after_insert();
          w.commit();
          key.commit();
          retire_or_poll(nullptr, &pin);
          return true;
        case home::present:
          return false;
        default:
          break;
      }
    }
    key_guard kg(*this, h);
    // One lookup: publish's own (under the key lock, J6) says whether k is there.
    if (!publish(kg, h, q, nullptr, {kw, w.get()})) return false;
    w.commit();
    key.commit();
    return true;
  }

  bool insert_or_assign(key_arg k, V v) {
    this->check_not_in_callback("insert_or_assign");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned w(std::move(v));
    owned_key key;
    if constexpr (!kcodec::kOwns) key.get(k, h);  // free: the key's bits
    auto pin = Traits::domain().pin();
    {
      entry old;
      // J8: a present key in its home group, under its slot's lock alone.
      if constexpr (table::kSlotLocks) {
        if (this->write_table(h)->overwrite_slot(h, matcher(h, q), w.get(), old) == home::replaced) [[likely]] {
          w.commit();
          retire_or_poll(&old.value, &pin);
          return false;
        }
      }
      // A string key's block is made only once the home group shows the key
      // absent (then the fast path is tried again): overwriting a present
      // key allocates nothing.
      home r = assign_home(h, q, w, key, old);
      if (r == home::absent) {
        key.get(k, h);
        r = assign_home(h, q, w, key, old);
      }
      switch (r) {
        case home::replaced:
          w.commit();
          retire_or_poll(&old.value, &pin);
          return false;
        case home::inserted:
          this->populate_after_insert();
          w.commit();
          key.commit();
          retire_or_poll(nullptr, &pin);
          return true;
        default:
          break;
      }
    }
    // The key lock's path (J6). A string key's block is made before the
    // lock only if a lookup misses the key, so overwriting a key that sits
    // past its home group allocates nothing either; if the key leaves
    // meanwhile, publish_any makes the block under the lock.
    if constexpr (kcodec::kOwns) {
      if (!key.made() && !find_in(this->write_table(h), h, q)) key.get(k, h);
    }
    key_guard kg(*this, h);
    const bool replaced = publish_any(kg, h, q, key, k, w.get());  // cannot fail: no expectation
    w.commit();
    if (!replaced) key.commit();
    return !replaced;
  }

  // Inserts (k, v) if k is absent (returns true); otherwise calls f(V&) on a
  // copy of the stored value and stores the copy once f returns.
  template <class F>
  bool insert_or_visit(key_arg k, V v, F f) {
    this->check_not_in_callback("insert_or_visit");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned_key key;
    auto pin = Traits::domain().pin();
    key_guard kg(*this, h);
    for (;;) {
      const location cur = find_for_write(this->write_table(h), h, q);
      if (cur) {
        V copy = vcodec::copy(cur.e.value);
        {
          const callback_scope in_callback(this, "concurrent_map", "insert_or_visit");
          f(copy);
        }
        owned w(std::move(copy));
        if (publish(kg, h, q, &cur, {cur.e.key, w.get()})) {
          w.commit();
          return false;
        }
      } else {
        const key_word& kw = key.get(k, h);
        V copy = v;  // v itself stays for a retry
        owned w(std::move(copy));
        if (publish(kg, h, q, nullptr, {kw, w.get()})) {
          w.commit();
          key.commit();
          return true;
        }
      }
    }
  }

  // Atomic read-modify-write: stores f(cur), cur = nullptr if k is absent;
  // returns the value stored.
  template <class F>
  V update(key_arg k, F f) {
    this->check_not_in_callback("update");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned_key key;
    auto pin = Traits::domain().pin();
    key_guard kg(*this, h);
    for (;;) {
      const location cur = find_for_write(this->write_table(h), h, q);
      V next = [&] {
        const callback_scope in_callback(this, "concurrent_map", "update");
        return cur ? vcodec::borrow(cur.e.value, [&](const V& seen) { return V(f(&seen)); }) : V(f(nullptr));
      }();
      const key_word kw = cur ? cur.e.key : key.get(k, h);
      V stored = next;
      owned w(std::move(stored));
      if (publish(kg, h, q, cur ? &cur : nullptr, {kw, w.get()})) {
        w.commit();
        if (!cur) key.commit();
        return next;
      }
    }
  }

  template <class Q>
  bool compare_exchange(const Q& q, const V& expected, V desired) {
    this->check_not_in_callback("compare_exchange");
    const std::size_t h = hash_of(q);
    auto pin = Traits::domain().pin();
    key_guard kg(*this, h);
    owned w(std::move(desired));
    for (;;) {
      const location cur = find_for_write(this->write_table(h), h, lookup(q));
      if (!cur || !vcodec::borrow(cur.e.value, [&](const V& seen) { return bool(seen == expected); })) return false;
      if (publish(kg, h, lookup(q), &cur, {cur.e.key, w.get()})) {
        w.commit();
        return true;
      }
    }
  }

  template <class Q>
  bool erase(const Q& q) {
    this->check_not_in_callback("erase");
    const std::size_t h = hash_of(q);
    auto pin = Traits::domain().pin();
    {
      entry old;
      switch (write_home(h, lookup(q), nullptr, false, true, old)) {
        case home::erased:
          retire_erased(old);
          return true;
        case home::absent:
          return false;
        default:
          break;
      }
    }
    key_guard kg(*this, h);
    for (;;) {
      const location cur = find_for_write(this->write_table(h), h, lookup(q));
      if (!cur) return false;
      if (unlink(kg, h, lookup(q), cur.e)) return true;
    }
  }

  // Erases every entry for which pred(k, v) is true; returns how many. Decides
  // over a weakly consistent scan first (a throwing pred erases nothing), then
  // erases each chosen entry if it still holds the value pred saw (the same
  // words: the same payload, or the same bits).
  template <class P>
  std::size_t erase_if(P pred) {
    this->check_not_in_callback("erase_if");
    auto pin = Traits::domain().pin();
    std::vector<entry> doomed;
    this->finish_migration();  // one table to scan (GROWTH)
    current()->for_each_entry([&](const entry& e) {
      const K k = kcodec::decode(e.key);
      if (vcodec::borrow(e.value, [&](const V& v) { return bool(detail::invoke_entry(pred, k, v)); }))
        doomed.push_back(e);
    });
    std::size_t erased = 0;
    for (const entry& e : doomed) {
      // The key block (string keys) is alive: we are pinned since the scan.
      const auto& k = kcodec::key_of(e.key);
      const std::size_t h = hash_of_word(e.key);
      key_guard kg(*this, h);
      if (unlink(kg, h, k, e)) ++erased;
    }
    return erased;
  }

  // --- reads -----------------------------------------------------------------
  template <class Q>
  [[gnu::always_inline]] std::optional<V> find(const Q& q) const {
    auto pin = Traits::domain().pin();
    const auto& key = lookup(q);
    const std::size_t h = hash_of(key);
    return current()->template find_with<std::optional<V>>(
        h, matcher(h, key),
        [](std::size_t, std::size_t, const key_word&, const words& w) { return std::optional<V>(vcodec::copy(w)); });
  }

  template <class Q>
  [[gnu::always_inline]] bool contains(const Q& q) const {
    auto pin = Traits::domain().pin();
    const auto& key = lookup(q);
    const std::size_t h = hash_of(key);
    return static_cast<bool>(current()->find_read(h, matcher(h, key)));
  }

  // Calls f(const V&) if q is present, on the value as one validated read
  // saw it: a scalar copy, or a value sharing the stored payload (kept alive
  // by the epoch pin; no reference is taken, so no shared write).
  template <class Q, class F>
  bool visit(const Q& q, F f) const {
    auto pin = Traits::domain().pin();
    const auto& key = lookup(q);
    const std::size_t h = hash_of(key);
    return current()->template find_with<bool>(h, matcher(h, key),
                                               [&](std::size_t, std::size_t, const key_word&, const words& w) {
                                                 vcodec::borrow(w, [&](const V& v) { f(v); });
                                                 return true;
                                               });
  }

  // As the node layout's bulk_find: batches of 16, home blocks prefetched,
  // then each first tag-matching slot.
  template <class KeyRange, class OutIt>
  std::size_t bulk_find(const KeyRange& keys, OutIt out) const {
    auto pin = Traits::domain().pin();
    const table* t = current();
    return detail::bulk_lookup<16>(
        keys, out, [this](const auto& q) { return this->hash_of(q); }, *t,
        [this, t](std::size_t h, const auto& q) -> std::optional<V> {
          const location loc = t->find_read(h, this->matcher(h, this->lookup(q)));
          if (!loc) return std::nullopt;
          return vcodec::copy(loc.e.value);
        });
  }

  // Calls f(k, v) for every entry: weakly consistent (see CONTRACT); each
  // entry was read whole under its group's seqlock.
  template <class F>
  void for_each(F f) const {
    auto pin = Traits::domain().pin();
    this->finish_migration();  // one table to scan (GROWTH)
    current()->for_each_entry([&](const entry& e) {
      const K k = kcodec::decode(e.key);
      vcodec::borrow(e.value, [&](const V& v) { detail::invoke_entry(f, k, v); });
    });
  }

  stats_t stats() const {
    auto pin = Traits::domain().pin();
    this->finish_migration();  // one table to measure (GROWTH)
    const table* t = current();
    stats_t s = this->base_stats(t);
    s.probe_length_histogram = t->probe_histogram([&](const key_word& kw) { return hash_of_word(kw); });
    if constexpr (kcodec::kOwns) t->for_each_entry([&](const entry& e) { s.bytes += kcodec::bytes(e.key); });
    return s;
  }

 private:
  void rehash_into(const table& old, table& fresh) {
    old.move_entries_into(fresh, [&](const key_word& kw) { return hash_of_word(kw); });
  }

  // The hash of a key word in the table: stored in a string key's block,
  // recomputed from a word key or an inline string key's bytes.
  POLYMAP_ALWAYS_INLINE std::size_t hash_of_word(const key_word& kw) const {
    if constexpr (kcodec::kHashed) {
      if (kcodec::has_stored_hash(kw)) [[likely]]
        return kcodec::stored_hash(kw);
      return hash_of(kcodec::key_of(kw));  // inline_string_key: a view into kw
    } else {
      return hash_of(kcodec::decode(kw));
    }
  }

  // The table's key test for lookup key q (which must outlive it): it sees
  // only key words the seqlock validated (or that the group lock protects).
  template <class Q>
  POLYMAP_ALWAYS_INLINE auto matcher(std::size_t h, const Q& q) const {
    // inline_string_key's test forced inline: GCC left it a call (6% of a
    // 1-thread string find, with its key words copied through memory). Not
    // string_key's: forced inline there, the 2-thread string cells ran
    // 0.86-0.88x (a larger inlined read loop keeps fewer misses in flight).
    if constexpr (table::kKeyExtra > 0) return [ this, h, &q ](const key_word& kw) __attribute__((always_inline)) {
        return kcodec::match(kw, h, q, eq_);
      };
    else
      return [this, h, &q](const key_word& kw) { return kcodec::match(kw, h, q, eq_); };
  }

  // The write fast path (inline_table.hpp, J7); home::slow sends the caller
  // to its key-lock path (J6). Precondition: pinned.
  template <class Q>
  POLYMAP_ALWAYS_INLINE home write_home(std::size_t h, const Q& q, const entry* e, bool overwrite, bool may_insert,
                                        entry& old) {
    return this->write_table(h)->write_home(h, matcher(h, q), e, overwrite, may_insert, old, lock_waits_);
  }
  // insert_or_assign's: stores w over the key's value, or inserts the key if
  // its word is made (key.made()).
  template <class Q>
  POLYMAP_ALWAYS_INLINE home assign_home(std::size_t h, const Q& q, const owned& w, const owned_key& key, entry& old) {
    const entry e{key.word(), w.get()};
    return write_home(h, q, &e, true, key.made(), old);
  }

  // The lookup of a writer holding the key lock (J6): find_in (this table
  // only: W3), once the home group is seen unlocked (J7: a fast writer that
  // locked it before our key-lock CAS may be inserting the key, and a miss
  // does not validate the version).
  template <class Q>
  location find_for_write(const table* t, std::size_t h, const Q& q) const {
    t->wait_home_unlocked(h);
    return find_in(t, h, q);
  }

  template <class Q>
  [[gnu::always_inline]] location find_in(const table* t, std::size_t h, const Q& q) const {
    return t->find(h, matcher(h, q));
  }

  // Stores e (key q) where the key's entry was *expect (nullptr: absent).
  // Returns false if it is not: for expect == nullptr, the key is present
  // (insert relies on that); otherwise another write got in while the table
  // was replaced (growth or clear(): the key lock is per table, J6), and
  // the caller starts over. On true the table owns e's value (and e's key
  // word if the key was absent), and the replaced value, if any, is
  // retired. Precondition: kg is the key's guard (publish_impl moves it to
  // the current table before its lookup).
  template <class Q>
  bool publish(key_guard& kg, std::size_t h, const Q& q, const location* expect, const entry& e) {
    return publish_impl(kg, h, q, expect, e, false, [&] { return e.key; }).ok;
  }
  // Stores value words v under key q whatever the key's entry was (one
  // lookup: insert_or_assign); returns true if it replaced one (then the
  // table kept its key word). The key word is made from k only to insert.
  template <class Q, class KArg>
  bool publish_any(key_guard& kg, std::size_t h, const Q& q, owned_key& key, const KArg& k, const words& v) {
    return publish_impl(kg, h, q, nullptr, {key.word(), v}, true, [&] { return key.get(k, h); }).replaced;
  }
  struct published {
    bool ok;
    bool replaced;
  };
  // key_word() gives the key word to insert with (e.key is used only to replace).
  template <class Q, class KeyWord>
  published publish_impl(key_guard& kg, std::size_t h, const Q& q, const location* expect, const entry& e, bool any,
                         KeyWord&& key_word) {
    for (;;) {
      table* t = this->write_table(h);
      kg.hold(t);  // J6: the lookup below and the write decide under t's key lock
      const location loc = find_for_write(t, h, q);
      if (!any && (loc.found != (expect != nullptr) || (loc && !loc.e.same(expect->e)))) return {false, false};
      status s;
      if (loc) {
        s = t->replace(loc, e.value, lock_waits_);
      } else {
        if (t->needs_rebuild()) {
          this->grow(t, false);
          continue;
        }
        if (!t->pending() && t->prepare_due()) [[unlikely]]
          this->prepare(t);
        s = t->insert(h, entry{key_word(), e.value}, lock_waits_);
      }
      switch (s) {
        case status::done:
          if (!loc) kg.populate_later();  // after the key lock (key_guard)
          retire_or_poll(loc ? &loc.e.value : nullptr);
          return {true, loc.found};
        case status::frozen:
          if (!t->next()) this->wait_for_rebuild();  // a rebuild at once; a migration: write_table helps
          break;
        case status::full:
          this->grow(t, true);
          break;
        case status::gone:
          break;
      }
    }
  }

  // Erases key q if its entry is still `old`. Returns false otherwise.
  // Precondition: kg is the key's guard (moved to the current table here).
  template <class Q>
  bool unlink(key_guard& kg, std::size_t h, const Q& q, const entry& old) {
    for (;;) {
      table* t = this->write_table(h);
      kg.hold(t);  // J6
      const location loc = find_for_write(t, h, q);
      if (!loc || !loc.e.same(old)) return false;
      switch (t->erase(loc, lock_waits_)) {
        case status::done:
          retire_erased(loc.e);
          return true;
        case status::frozen:
          if (!t->next()) this->wait_for_rebuild();  // a rebuild at once; a migration: write_table helps
          break;
        default:
          break;
      }
    }
  }

  // After a write: the value that left the table (nullptr: none), whose
  // payload reference is dropped a grace period later (readers pinned now
  // may still copy or borrow it). A write that retires nothing (scalars,
  // inserts) polls the epoch instead, so the old tables this thread retired
  // in growths are still freed (epoch_domain::poll).
  // pin: the caller's pin of Traits::domain(), if it holds one (the poll
  // then skips the thread-record lookup).
  POLYMAP_ALWAYS_INLINE static void retire_or_poll(const words* w, const epoch_domain::guard* pin = nullptr) noexcept {
    if constexpr (vcodec::kOwns) {
      if (void* p = w ? vcodec::payload(*w) : nullptr) {
        Traits::domain().retire(p, &vcodec::drop);
        return;
      }
    }
    if (pin)
      Traits::domain().poll(*pin);
    else
      Traits::domain().poll();
  }
  // After an erase: the entry's value and, for string keys, its key block
  // (readers pinned now may still compare against it).
  POLYMAP_ALWAYS_INLINE static void retire_erased(const entry& e) noexcept {
    if constexpr (kcodec::kOwns) {
      if (void* block = kcodec::block_ptr(e.key)) Traits::domain().retire(block, &kcodec::drop, kcodec::bytes(e.key));
    }
    retire_or_poll(&e.value);
  }

  // Read by every operation; written only by rebuilds: a line of its own.
  // mutable: a const operation that needs one table (for_each, stats)
  // finishes a migration first.
  alignas(64) mutable atomic<table*> table_;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] Eq eq_;
  // Protects: starting a migration, replacing table_ at once (rebuild_at_once,
  // clear) (L4). growths_ is a statistic, counted where a table is replaced.
  alignas(64) mutable std::mutex rebuild_mutex_;
  mutable atomic<std::uint64_t> growths_{0};
  mutable atomic<std::uint64_t> lock_waits_{0};
};

// The blocks LAYOUT describes: a 24-byte header {meta, version, key lock},
// 15 slots, whole cache lines.
template <class KeyPolicy, class V, bool SlotLocks = KeyPolicy::kHashed>
using default_table =
    inline_table<KeyPolicy, V, std::atomic, version_lock<std::atomic>, spin_lock<std::atomic>, SlotLocks>;
static_assert(default_table<string_key, value>::slot_bytes() == 32);           // J8: key, value, slot lock, aligned
static_assert(default_table<string_key, value>::block_bytes() == 512);         // 24 (+8) + 15 * 32: eight lines
static_assert(default_table<string_key, value, false>::block_bytes() == 384);  // 24 + 15 * 24: six lines
static_assert(default_table<word_key<std::uint64_t>, std::uint64_t>::block_bytes() == 320);  // 24 + 15 * 16, rounded
static_assert(sizeof(string_key::key_block) == 16);
static_assert(default_table<inline_string_key, value>::slot_bytes() == 64);     // key, 32 bytes, value, slot lock
static_assert(default_table<inline_string_key, value>::block_bytes() == 1024);  // 24 (+40) + 15 * 64: 16 lines

}  // namespace detail

// Unmaps the freed table memory the process keeps for the next large
// growth (RECYCLE in detail/table_memory.hpp: at most one table of 8 MB
// or more that a growth replaced, resident until a growth reuses it;
// tables freed by clear(), shrink_to_fit() or a map's destructor are
// unmapped, not kept); returns its bytes.
// For a service whose maps have stopped growing and that wants the memory
// back now.
inline std::size_t release_spare_table_memory() noexcept {
  return detail::table_spare::get().release();
}

template <class K = std::string, class V = value, class Hash = polymap::hash<K>, class Eq = key_equal<K>,
          class Traits = concurrent_map_traits>
class concurrent_map : public detail::inline_concurrent_map<K, V, Hash, Eq, Traits>,
                       public detail::typed_access<concurrent_map<K, V, Hash, Eq, Traits>, K, V> {
 public:
  // Whether the value lives in the slot's words and the key in the key word
  // or a string key block (see LAYOUT); otherwise behind a box.
  static constexpr bool inline_slots = detail::inline_slots_v<K, V, Eq>;
  using key_type = K;
  using mapped_type = V;
  using hasher = Hash;
  using key_equal = Eq;

  concurrent_map() = default;
  explicit concurrent_map(std::size_t capacity) : detail::inline_concurrent_map<K, V, Hash, Eq, Traits>(capacity) {}
};

}  // namespace polymap

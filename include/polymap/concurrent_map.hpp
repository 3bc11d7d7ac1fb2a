// polymap/concurrent_map.hpp — a concurrent open-addressing map whose
// lookups write no shared memory.
//
// CONTRACT
//   Every single-key operation is linearizable. find, contains, visit, get and
//   bulk_find are reads: they take no lock and perform no store and no
//   read-modify-write on any shared word (the epoch pin writes only the calling
//   thread's own announcement line). Every other operation is a write.
//   (find copies the value out: copying a polymap::value that holds a heap
//   payload bumps that payload's reference count, a write to the payload, not
//   to the map; visit and get read in place and copy only what they return.)
//   visit(q, f) calls f(const V&) on a value that stays alive and unchanged
//   for the call, even if another thread overwrites or erases the key
//   meanwhile: an immutable node (node layout), or a value read whole under
//   the seqlock that shares the stored payload (inline layout; no reference
//   is taken, the epoch pin keeps the payload).
//   for_each and erase_if are weakly consistent: they see every entry present
//   for their whole run, and may or may not see entries changed meanwhile;
//   each entry they pass is a value the key really had. size() is exact when
//   no write runs at the same time.
//   Hash and Eq must not call into the same map either: the inline layout's
//   write fast path runs Eq holding the home group's lock, and lookups of
//   that group wait for it.
//   Callbacks that throw leave the map unchanged: insert_or_visit runs f on a
//   copy, update computes its value before publishing, erase_if decides every
//   entry before erasing any. Callbacks must not call back into the same map
//   (update and insert_or_visit run theirs holding the key's lock: a stripe,
//   or in the inline layout the key lock of the key's home group).
//   A callback may run again if clear() races with the same operation (the
//   entry it saw was wiped before the result could be stored), and in the
//   inline layout if a growth does (its key locks are per table, J6: a write
//   that began on the new table may store first).
//
// TERMS
//   group, tag, overflow, probe: see detail/group.hpp.
//   layout   : chosen at compile time (concurrent_map::inline_slots,
//              detail::inline_slots_v<K, V>):
//              inline: K is trivially copyable, at most 8 bytes, not
//              string-like, and V is such a type or polymap::value; the slot
//              holds the key word and the value word(s) (detail/inline_table.hpp).
//              node: everything else (std::string keys, large or non-trivial V).
//   node     : {hash, key, value}, heap-allocated, immutable once published.
//   table    : node layout: detail::table_core (per group: metadata, slot
//              pointers, a version word); inline layout: detail::inline_table
//              (per group: metadata, version word, 15 {key, value} slots).
//   stripe   : node layout: one of 64 key locks, chosen by hash bits the
//              table does not use for positions or tags. Serializes the
//              writes of one key.
//   key lock : inline layout: a lock word in each group's block; the one of
//              the key's home group (first on its probe sequence) serializes
//              the writes of the key to that table (inline_table.hpp, J6).
//   freeze   : a group's version word marked final: the table is being
//              rebuilt, no write to it can succeed any more.
//   epoch    : detail::epoch_domain::global(): a node or table is freed only
//              once no thread pinned before its retirement is still pinned.
//
// LAYOUT
//   concurrent_map
//   +---------------------+        table_core (one allocation, see table_core.hpp)
//   | table_ (atomic ptr) |------> +---------------------------------------+
//   | rebuild_mutex_      |        | G x {meta, slots[15], version} (144B) |
//   | stripes_[64]        |        +---------------|-----------------------+
//   | counters            |                        v
//   +---------------------+                  node {hash, K, V}  (immutable)
//   A group's metadata, slots and version word are adjacent (one group = 144
//   bytes), so the metadata load and the slot load of a lookup share a cache
//   line or touch the next one; separate arrays cost a second dependent miss
//   (measured: 1-thread find of u64 keys at N = 10,000 went from 19-25 to
//   12-18 ns on the 2-core dev machine, same run). The version word sits at
//   the block's end, on the line of slots 13-14, which a writer of the group
//   dirties anyway; readers of the metadata line do not share it.
//
//   inline layout (inline_table, one allocation)
//   +---------------------+        +----------------------------------------------+
//   | table_ (atomic ptr) |------> | G x {meta 16 B, version 4 B, 15 x {key word, |
//   | (as above)          |        |      value words}}, 64-byte aligned blocks   |
//   +---------------------+        +----------------------------------------------+
//   u64 -> polymap::value: a block is 16 + 8 + 15 * 24 = 384 bytes, six lines;
//   a hit reads the first line (tags and version) and its slot's line: two
//   misses in one page instead of three (meta, slot pointer, node), and a
//   write allocates nothing. Blocks are 64-byte aligned: unaligned 264-byte
//   blocks (u64 -> u64) put the version word on another line than the tags
//   for a quarter of the groups and measured ~30% slower.
//
// LOCK PROTOCOL (stated once)
//   L1. A write to key k holds stripe(k) from its first lookup of k to the
//       publication of its result. (Inline layout: the key lock of k in the
//       table it writes, J6; a writer that finds the table replaced moves to
//       the new table's key lock before its publishing lookup, so a
//       growth can put a write that began on the new table first.) So no two writes of one key overlap, and a
//       writer's "k is absent / k is node n" stays true while it holds the
//       stripe (except across clear(), which takes no stripe: see L4).
//   L1'. Inline layout fast path (inline_table.hpp, J7): insert,
//       insert_or_assign and erase first try to decide inside the key's home
//       group holding only that group's lock, after seeing the home group's
//       key lock free: one CAS and one store on the block's first line
//       instead of two of each (key lock, then group lock). Anything the
//       home group cannot decide alone falls back to L1 with nothing changed.
//       Measured (u64 -> polymap::value, N = 10,000, one thread, 2-core VM,
//       same run): insert_or_assign of present keys 39-40 -> 19 ns, the same
//       as locked_map's 18-22; inserts into a reserved map 33-37 -> 25 ns.
//   L2. A slot or metadata word changes only under its group's lock (a bit of
//       the version word). A thread holds at most one group lock, briefly, and
//       never waits for anything while holding it.
//   L3. Order: stripe, then one group lock at a time; or rebuild_mutex_, then
//       freezing groups. A writer that finds a group frozen gives up the group
//       (it never had it), waits for rebuild_mutex_ while still holding its
//       stripe, and retries on the new table. The rebuilder takes no stripe
//       and no group lock (freezing waits for a group lock to be free; it
//       never holds one), so no cycle exists.
//   L4. rebuild_mutex_ Protects: replacing table_ (growth, reserve, clear,
//       dirty rebuild), growths_. Held by at most one thread; a rebuild
//       freezes every group of the old table, copies the node pointers (node
//       layout) or the key and value words (inline layout, rehashing each
//       key) into the new one, publishes it, and retires the old table.
//
// READ PROTOCOL (find, contains, visit, bulk_find)
//   pin the epoch; load table_ (acquire); for each group on the probe
//   sequence: load the metadata word (two acquire loads), SSE2-match the tag,
//   for each match load the slot pointer (acquire) and compare hash and key in
//   the node; stop at a group whose overflow bit for the hash is clear.
//   No validation step is needed in the node layout, because a slot's content
//   is one word pointing at an immutable node: the reader sees either the old
//   or the new pointer, and each node it reaches is whole and alive (epoch).
//   A stale tag costs at most a wasted key compare (the node's key decides).
//   Linearization: an insert takes effect at its tag store (the pointer is
//   stored before it, I1), an overwrite at its pointer store, an erase at its
//   tag clear. A key never moves within a table (no backward shifts, no
//   tombstones), and a key can move to another slot only by being erased and
//   inserted again, so a lookup that misses a key which was present for its
//   whole run is impossible; a lookup racing an erase+reinsert that misses
//   linearizes in the gap. A lookup that still reads a table being rebuilt
//   reads frozen, unchanging groups: the state at the freeze, which lies
//   inside its run.
//   The node layout never reads the version word.
//
// READ PROTOCOL, inline layout
//   pin the epoch (it keeps the table array and any value payload alive);
//   load table_ (acquire); for each group on the probe sequence:
//     v = version word (read_begin, acquire: pairs with the last unlock);
//     load the metadata word, SSE2-match the tag; for each match i:
//       load slot i's key word and value word(s) (acquire loads);
//       if read_valid(v) fails (v was odd: a writer held the group; or the
//       word changed), read the group again (after a pause);
//       otherwise the words are one entry as it was at one instant: decode
//       the key (Eq sees only validated keys) and on a match return a copy
//       of the value (find: a polymap::value payload gets one more
//       reference, a write to the payload, not to the map), or borrow it
//       (visit, get: no reference taken);
//     stop at a group whose overflow bit for the hash is clear.
//   Writers hold the group lock (version bit 0, acquire CAS) while they store
//   words (release stores) and tags; unlock bumps the counter (release). If a
//   reader's word came from a writer W's release store, its acquire load
//   synchronizes with it, so W's lock CAS happens before the reader's
//   re-load of the version, which then cannot return v (Boehm, "Can seqlocks
//   get along with programming language memory models?", MSPC 2012; acquire
//   loads instead of a fence, which TSan models). Plain moves on x86.
//   Ownership: the words of a full slot own one payload reference. A writer
//   that replaces or erases words retires that reference through the epoch
//   (scalars retire nothing); a rebuild moves words to the new table and
//   releases none; the destructor and clear()'s retired table release all.
//   So a reader pinned when it read the words finds the payload alive.
//   Why a seqlock only here: a node-layout slot is one word naming a whole
//   immutable entry; an inline slot is several words written separately, so
//   a reader could pair one entry's key with another's value (erase and
//   insert into the same slot between its loads).
//   Linearization points as in the node layout, with "value word store" for
//   "pointer store". A 16-byte CAS per slot instead of a seqlock would be a
//   locked RMW on every read (a write to the line), which is what we avoid.
//
// GROWTH: a new table, built while readers go on (chosen over incremental
//   migration). A rebuild is triggered when size + dirty reaches 7/8 of the
//   slots (dirty: erasures from overflowed groups, which keep probe chains
//   long until a rebuild clears the overflow bytes). Under rebuild_mutex_ the
//   rebuilder freezes every group (each freeze waits for at most one short
//   group-lock hold), allocates a table with room for 5/4 of the live
//   entries, copies the node pointers (nodes are shared, not copied) or the
//   inline words, publishes the table
//   (release), and retires the old one through the epoch domain. Readers are
//   never blocked: they keep reading the frozen table until they next load
//   table_. Writers to a frozen group wait for the rebuild to finish. If the
//   allocation throws, the groups are thawed and the map is as before.
//   Incremental migration (Go's swiss maps, papaya, libcuckoo's lazy
//   rehashing) keeps writers going during growth but makes every reader check
//   two tables or a per-group "moved" state; its gain is bounded latency for
//   writers during a growth, not throughput. We chose reads that never look
//   at a second table.
//
// ALTERNATIVES CONSIDERED
//   - Boost concurrent_flat_map: readers take the group's spin lock on a tag
//     match, so a popular key bounces one line between reading cores. Ours
//     take none (a lookup is loads only), which is the whole point.
//   - Nodes for every K and V (sessions 1-2): a lookup's third dependent
//     miss is the node (perf: ~43% of a 1-thread u64 find at N = 10,000 on
//     the node load), and every write allocates a node and retires one.
//     Session 3 added the inline layout for word-sized keys, with word-sized
//     values or polymap::value (whose only non-trivial part, the payload
//     reference count, is handled by retiring references, not nodes). The
//     first inline attempt (branch wip/inline-slots: u64 values only, slots
//     in an array apart from the group headers) measured no faster: a third
//     line per lookup, and the pin then cost ~7 ns. Keys that are strings
//     keep the node layout.
//
// WHAT MADE IT FASTER (session 2, u64 -> u64, N = 10,000, 2-core VM; every
//   number is a same-run comparison, the machine is noisy)
//   - epoch pin: the thread's record is cached in a constinit thread_local
//     (one compare instead of a scan): pin+unpin 7 -> 2-3 ns.
//   - layout: metadata, slots and version word of a group in one 144-byte
//     block: 1-thread find 19-25 -> 12-18 ns.
//   - growth doubles (it quadrupled, leaving 33% load: more cache misses).
//   - writes: the epoch no longer collects while pinned, advances at most
//     every 100 us (membarrier is an IPI to every CPU: unthrottled, two
//     writers spent most of their time in the kernel), each thread frees its
//     own bag (others' only once idle for 1 ms, epoch.hpp) into a per-thread
//     node pool (node_pool.hpp), the node is
//     allocated before the stripe lock, and insert_or_assign looks the key up
//     once. 2-thread update loop: 1.9 -> 6-7 Mops/s; 1 thread 8 -> 12.
//   Still (node layout): a write costs a node, a retire and three dependent
//   misses, and locked_map's in-place update on one thread is ~2-3x faster.
//   The inline layout writes in place (session 3, u64 -> polymap::value,
//   N = 10,000, a microbenchmark, same run, Mops/s node -> inline: 2-thread
//   find 62 -> 75, 50/50 18 -> 32; 1-thread insert 18 -> 29). In the bench
//   harness it first read 25-45% SLOWER than the node layout (A/B runs of
//   both builds alternating, three rounds): its larger lookup was no longer
//   inlined into the caller's loop, and a lookup that stays a call keeps
//   fewer consecutive lookups' misses in flight. With the read path forced
//   inline (find, contains, the epoch pin; the seqlock retry moved out of
//   line into find_contended) it beat the node layout in every A/B round:
//   1-thread find100 53-61 vs 33-51, 2-thread 77-96 vs 70-89, 2-thread
//   95/5 44-71 vs 26-56. 2M-key inserts: 2.2-3.2 vs 1.5-1.6.
//   - Boost's per-group insert counters instead of key stripes: one
//     fetch_add per insert instead of a lock, but the counter retry path
//     calls user callbacks (update) again; stripes call them once.
//   - Key stripes in the inline layout (session 4): a write took the stripe
//     line and the group's line, both bouncing between the writing cores
//     (perf: 46% of insert_or_assign's samples on the stripe load, 2 threads,
//     50/50). The key lock now sits on the home group's first line, which a
//     write to that group dirties anyway.
//   - A seq_cst size counter per map: a single line every insert bounces;
//     ours sits in the table on a line of its own, written under group locks.
//
// WHAT MADE IT FASTER (session 6, inline layout, u64 -> polymap::value,
//   N = 10,000, the bench harness, same-run A/B of the binaries, 2-core VM)
//   - Force-inlined helpers (detail/inline.hpp): in the benchmark's large
//     TU GCC had left version_lock::lock, the slot read, group_meta::load,
//     the fence and domain() as calls on every write. 1-thread insert
//     7.8-8.2 -> 13.1-14.7 Mops/s, find50 16-17 -> 22-24.
//   - The write fast path (L1', J7): one CAS and one store on the home
//     block's first line per write instead of two of each, and no second
//     lookup under the group lock. 2-thread find50 16 -> 43, find95
//     35-42 -> 63-74 (the machine's noise moves these cells by 2x between
//     runs; docs/bench/README.md has three full runs); 1-thread
//     insert_or_assign of a present key 39 -> 19 ns (microbenchmark), the
//     same as locked_map.
//   - find() takes the value words straight from the slot (find_with)
//     instead of through a `location` that went through memory (a 16-byte
//     reload of two 8-byte stores, which store-to-load forwarding cannot
//     serve). perf moved those samples back onto the two cache misses.
//   Tried and not kept: prefetching every line of the home block at the
//   start of a lookup (2M keys: -20% in a microbenchmark, no difference
//   in three alternating bench runs).
//   Left: a 1-thread lookup still costs two dependent misses (the block's
//   first line, then the slot's line) where a flat map with a dense
//   metadata array pays about one; a growth (freeze, rehash, retire)
//   stops every writer: about a third of 2-thread insert-from-empty
//   samples. The size counter's line took about a tenth; striping it by
//   thread (8 stripes and a coarse shared sum for the growth trigger) made
//   no difference in three alternating bench runs, so it was not kept.
//
// FAQ
//   Why 15 slots per group? 15 tags and an overflow byte fill one SSE2 word.
//   Why is memory per entry higher than boost::unordered_flat_map? Node
//   layout: each entry is a node (hash + K + V + allocator overhead) behind
//   an 8-byte slot. Inline layout: about the same as the flat map (a slot is
//   sizeof(K) + sizeof(V) rounded to words, plus 24/15 bytes of group
//   header and the 64-byte block alignment).
//   Why does visit's f see a const V&? Node layout: nodes are shared by
//   readers; a write publishes a new node. Inline layout: f sees a value
//   built from words read whole; it shares the payload, which the pin keeps.
//   Can an inline reader see a key that was never inserted? No: Eq and the
//   caller see only words validated by the seqlock.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "polymap/detail/epoch.hpp"
#include "polymap/detail/group.hpp"
#include "polymap/detail/hash.hpp"
#include "polymap/detail/inline_table.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/detail/table_core.hpp"
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
};

namespace detail {

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

// The misuse check (CONTRACT: a callback must not write the map it runs
// in): the maps whose key lock (or stripe) this thread holds while it runs
// an update or insert_or_visit callback. A write checks it first; without
// the check such a write waits forever for a lock its own thread holds, or
// works, depending on the key's hash. Cost on the write path: one
// thread-local load and a branch (docs/concurrent_map.md).
struct callback_record {
  static constexpr int kMax = 8;  // nesting across different maps deeper than this goes unrecorded
  const void* maps[kMax];
  int depth;
};
inline constinit thread_local callback_record callbacks_running{};

class callback_scope {
 public:
  POLYMAP_ALWAYS_INLINE explicit callback_scope(const void* map) noexcept {
    callback_record& r = callbacks_running;
    if (r.depth < callback_record::kMax) r.maps[r.depth] = map;
    ++r.depth;
  }
  POLYMAP_ALWAYS_INLINE ~callback_scope() { --callbacks_running.depth; }
  callback_scope(const callback_scope&) = delete;
  callback_scope& operator=(const callback_scope&) = delete;
};

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_write_in_callback(const void* map, const char* op) {
  throw std::logic_error(fmt::format(
      "polymap::concurrent_map at {}: {} called from inside an update or insert_or_visit callback on the same map; "
      "a callback must not write the map it runs in (it runs holding the key's lock, so the write could wait for "
      "it forever)",
      map, op));
}

// What both layouts share: the table pointer, hashing, key stripes, growth,
// clear. Derived (the layout) provides rehash_into(old, fresh).
template <class Derived, class Table, class K, class Hash, class Eq, class Traits>
class concurrent_map_core {
 protected:
  template <class T>
  using atomic = typename Traits::template atomic<T>;
  using table = Table;
  using location = typename table::location;
  using status = typename table::status;

 public:
  using key_type = K;
  using hasher = Hash;
  using key_equal = Eq;

  concurrent_map_core() : table_(new table(1)) {}
  explicit concurrent_map_core(std::size_t capacity) : table_(new table(table::groups_for(capacity))) {}
  concurrent_map_core(const concurrent_map_core&) = delete;
  concurrent_map_core& operator=(const concurrent_map_core&) = delete;
  // Precondition: no other thread uses the map.
  ~concurrent_map_core() { free_table_and_entries(table_.load(std::memory_order_acquire)); }  // acquire: last publish

  // Empties the map. Readers and writers may run meanwhile: readers finish on
  // the old table, writers wait for the swap and go on in the empty one.
  void clear() {
    std::lock_guard lock(rebuild_mutex_);
    table* fresh = new table(1);
    table* old = table_.load(std::memory_order_relaxed);  // relaxed: rebuild_mutex_ orders table_ writes
    old->freeze_all();
    table_.store(fresh, std::memory_order_release);  // release: pairs with current()'s acquire
    Traits::domain().retire(old, &free_table_and_entries);
  }

  void reserve(std::size_t n) {
    auto pin = Traits::domain().pin();
    table* t = current();
    if (n > t->max_load()) rebuild(t, n, true);
  }

  std::size_t size() const {
    auto pin = Traits::domain().pin();
    return current()->size();
  }
  bool empty() const { return size() == 0; }

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

  // Positions come from the low bits, tags from the top 7, stripes from bits
  // 40+: every bit must depend on every key bit. A hash that does not say it
  // avalanches (Boost's is_avalanching marker, which polymap::hash carries)
  // is post-mixed, as Boost does; so an identity hash cannot put all keys
  // under one tag and one stripe.
  template <class Q>
  std::size_t hash_of(const Q& q) const {
    const std::size_t h = hash_(lookup(q));
    if constexpr (requires { typename Hash::is_avalanching; })
      return h;
    else
      return detail::mix64(h);
  }

  // Precondition (all below): the caller is pinned.
  table* current() const {
    // acquire: pairs with the release store of table_ in rebuild()/clear(),
    // so the new table's arrays are visible.
    return table_.load(std::memory_order_acquire);
  }

  stats_t base_stats(const table* t) const {
    stats_t s;
    s.map = "concurrent_map";
    s.size = t->size();
    s.capacity = t->capacity();
    s.load_factor = s.capacity ? static_cast<double>(s.size) / static_cast<double>(s.capacity) : 0.0;
    s.growths = growths_.load(std::memory_order_relaxed);        // relaxed: a statistic
    s.lock_waits = lock_waits_.load(std::memory_order_relaxed);  // relaxed: a statistic
    s.bytes = sizeof(Derived) + t->bytes();
    return s;
  }

  void wait_for_rebuild() { std::lock_guard lock(rebuild_mutex_); }

  // Throws std::logic_error if this thread runs a callback of this map.
  POLYMAP_ALWAYS_INLINE void check_not_in_callback(const char* op) const {
    const callback_record& r = callbacks_running;
    if (r.depth == 0) [[likely]]
      return;
    for (int i = 0; i < std::min(r.depth, callback_record::kMax); ++i)
      if (r.maps[i] == this) throw_write_in_callback(this, op);
  }

  // Replaces `seen` by a table with room for a quarter more than its live
  // entries (or min_entries), unless another thread replaced it already or
  // (without force) it no longer needs it.
  void rebuild(table* seen, std::size_t min_entries, bool force) {
    std::lock_guard lock(rebuild_mutex_);
    table* t = table_.load(std::memory_order_relaxed);  // relaxed: rebuild_mutex_ orders table_ writes
    if (t != seen) return;
    if (!force && !t->needs_rebuild()) return;
    t->freeze_all();
    table* fresh;
    try {
      const std::size_t live = t->size();  // exact: every group is frozen (I4)
      // Room for a quarter more than live: a table at its maximum load (7/8)
      // or full (force) doubles, since 5/4 of 7/8 of its capacity exceeds
      // the maximum load of the same group count; a dirty one may come out
      // the same size or smaller. Either way the new maximum load exceeds
      // live, so the insert that asked for the rebuild fits. (2 * live, used
      // before, quadrupled a table at its maximum load: 2 * 7/8 > 1 rounds up
      // to four times the groups, leaving 10,000 u64 keys at 33% load.)
      fresh = new table(table::groups_for(std::max({live + live / 4 + 1, min_entries, std::size_t{1}})));
    } catch (...) {
      t->thaw_all();
      throw;
    }
    static_cast<Derived*>(this)->rehash_into(*t, *fresh);  // entries move: the old table frees none
    table_.store(fresh, std::memory_order_release);        // release: pairs with current()'s acquire
    growths_.fetch_add(fresh->groups() > t->groups() ? 1 : 0, std::memory_order_relaxed);  // relaxed: a statistic
    Traits::domain().retire(t, &free_table);
  }

  static void free_table(void* p) noexcept { delete static_cast<table*>(p); }
  static void free_table_and_entries(void* p) noexcept {
    auto* t = static_cast<table*>(p);
    t->release_entries();
    delete t;
  }

  // Read by every operation; written only by rebuilds: a line of its own.
  alignas(64) atomic<table*> table_;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] Eq eq_;
  alignas(64) std::mutex rebuild_mutex_;  // Protects: replacing table_, growths_ (L4).
  atomic<std::uint64_t> growths_{0};
  atomic<std::uint64_t> lock_waits_{0};
};

// The node layout: every entry an immutable node behind a slot pointer.
template <class K, class V, class Hash, class Eq, class Traits>
class node_concurrent_map
    : public concurrent_map_core<node_concurrent_map<K, V, Hash, Eq, Traits>,
                                 table_core<map_node<K, V>, Traits::template atomic, typename Traits::group_lock>, K,
                                 Hash, Eq, Traits> {
  using node = map_node<K, V>;
  using core =
      concurrent_map_core<node_concurrent_map, table_core<node, Traits::template atomic, typename Traits::group_lock>,
                          K, Hash, Eq, Traits>;
  friend core;
  using core::current;
  using core::eq_;
  using core::hash_of;
  using core::lock_waits_;
  using core::lookup;
  using typename core::location;
  using typename core::status;
  using typename core::table;
  static constexpr std::size_t kStripes = 64;

  class stripe_guard {
   public:
    stripe_guard(node_concurrent_map& m, std::size_t h) : lock_(m.stripes_[(h >> 40) % kStripes].lock) {
      lock_.lock(m.lock_waits_);
    }
    ~stripe_guard() { lock_.unlock(); }
    stripe_guard(const stripe_guard&) = delete;
    stripe_guard& operator=(const stripe_guard&) = delete;

   private:
    typename Traits::stripe_lock& lock_;
  };

  struct alignas(64) stripe {
    typename Traits::stripe_lock lock;  // Protects: the writes of the keys that hash to it (L1).
  };
  stripe stripes_[kStripes];

 public:
  using mapped_type = V;
  using core::core;

  // --- writes ----------------------------------------------------------------
  bool insert(K k, V v) {
    this->check_not_in_callback("insert");
    const std::size_t h = hash_of(k);
    std::unique_ptr<node> n(new node{h, std::move(k), std::move(v)});  // before the stripe: not under a lock
    auto pin = Traits::domain().pin();
    stripe_guard sg(*this, h);
    // One lookup: publish's own (under the stripe, L1) says whether k is there.
    if (!publish(h, nullptr, n.get())) return false;
    n.release();
    return true;
  }

  bool insert_or_assign(K k, V v) {
    this->check_not_in_callback("insert_or_assign");
    const std::size_t h = hash_of(k);
    std::unique_ptr<node> n(new node{h, std::move(k), std::move(v)});  // before the stripe: not under a lock
    auto pin = Traits::domain().pin();
    stripe_guard sg(*this, h);
    const node* replaced = publish_any(h, n.get());
    n.release();
    return replaced == nullptr;
  }

  // Inserts (k, v) if k is absent (returns true); otherwise calls f(V&) on a
  // copy of the stored value and stores the copy once f returns.
  template <class F>
  bool insert_or_visit(K k, V v, F f) {
    this->check_not_in_callback("insert_or_visit");
    const std::size_t h = hash_of(k);
    auto pin = Traits::domain().pin();
    stripe_guard sg(*this, h);
    std::unique_ptr<node> fresh;
    for (;;) {
      node* cur = find_node(h, fresh ? fresh->key : k);
      if (cur) {
        V copy = cur->value;
        {
          const callback_scope in_callback(this);
          f(copy);
        }
        std::unique_ptr<node> n(new node{h, cur->key, std::move(copy)});
        if (publish(h, cur, n.get())) {
          n.release();
          return false;
        }
      } else {
        if (!fresh) fresh.reset(new node{h, std::move(k), std::move(v)});
        if (publish(h, nullptr, fresh.get())) {
          fresh.release();
          return true;
        }
      }
    }
  }

  // Atomic read-modify-write: stores f(cur), cur = nullptr if k is absent;
  // returns the value stored.
  template <class F>
  V update(K k, F f) {
    this->check_not_in_callback("update");
    const std::size_t h = hash_of(k);
    auto pin = Traits::domain().pin();
    stripe_guard sg(*this, h);
    for (;;) {
      node* cur = find_node(h, k);
      V next = [&] {
        const callback_scope in_callback(this);
        return V(f(cur ? static_cast<const V*>(&cur->value) : nullptr));
      }();
      std::unique_ptr<node> n(new node{h, cur ? cur->key : k, next});
      if (publish(h, cur, n.get())) {
        n.release();
        return next;
      }
    }
  }

  template <class Q>
  bool compare_exchange(const Q& q, const V& expected, V desired) {
    this->check_not_in_callback("compare_exchange");
    const std::size_t h = hash_of(q);
    auto pin = Traits::domain().pin();
    stripe_guard sg(*this, h);
    for (;;) {
      node* cur = find_node(h, lookup(q));
      if (!cur || !(cur->value == expected)) return false;
      std::unique_ptr<node> n(new node{h, cur->key, desired});
      if (publish(h, cur, n.get())) {
        n.release();
        return true;
      }
    }
  }

  template <class Q>
  bool erase(const Q& q) {
    this->check_not_in_callback("erase");
    const std::size_t h = hash_of(q);
    auto pin = Traits::domain().pin();
    stripe_guard sg(*this, h);
    for (;;) {
      node* cur = find_node(h, lookup(q));
      if (!cur) return false;
      if (unlink(h, cur)) return true;
    }
  }

  // Erases every entry for which pred(k, v) is true; returns how many. Decides
  // over a weakly consistent scan first (a throwing pred erases nothing), then
  // erases each chosen entry if it still holds the value pred saw.
  template <class P>
  std::size_t erase_if(P pred) {
    this->check_not_in_callback("erase_if");
    auto pin = Traits::domain().pin();
    std::vector<node*> doomed;
    current()->for_each_node([&](node* n) {
      if (detail::invoke_entry(pred, std::as_const(n->key), std::as_const(n->value))) doomed.push_back(n);
    });
    std::size_t erased = 0;
    for (node* n : doomed) {
      stripe_guard sg(*this, n->hash);
      if (find_node(n->hash, n->key) == n && unlink(n->hash, n)) ++erased;
    }
    return erased;
  }

  // --- reads -----------------------------------------------------------------
  template <class Q>
  [[gnu::always_inline]] std::optional<V> find(const Q& q) const {
    auto pin = Traits::domain().pin();
    const node* n = find_node(hash_of(q), lookup(q));
    if (!n) return std::nullopt;
    return n->value;
  }

  template <class Q>
  bool contains(const Q& q) const {
    auto pin = Traits::domain().pin();
    return find_node(hash_of(q), lookup(q)) != nullptr;
  }

  // Calls f(const V&) if q is present; the value stays alive and unchanged for
  // the call (an immutable node, kept by the epoch pin).
  template <class Q, class F>
  bool visit(const Q& q, F f) const {
    auto pin = Traits::domain().pin();
    const node* n = find_node(hash_of(q), lookup(q));
    if (!n) return false;
    f(static_cast<const V&>(n->value));
    return true;
  }

  // Looks up every key of `keys` (a forward range) and writes one
  // std::optional<V> per key, in order, to out. Returns the number found.
  // Lookups go in batches of 16: hash all and prefetch their home groups,
  // then prefetch each first tag-matching node, then finish each lookup, so
  // the cache misses of a batch overlap.
  template <class KeyRange, class OutIt>
  std::size_t bulk_find(const KeyRange& keys, OutIt out) const {
    auto pin = Traits::domain().pin();
    const table* t = current();
    return detail::bulk_lookup<16>(
        keys, out, [this](const auto& q) { return this->hash_of(q); }, *t,
        [this, t](std::size_t h, const auto& q) -> std::optional<V> {
          const auto loc = t->find(h, this->lookup(q), this->eq_);
          if (!loc) return std::nullopt;
          return loc.node->value;
        });
  }

  // Calls f(k, v) for every entry: weakly consistent (see CONTRACT).
  template <class F>
  void for_each(F f) const {
    auto pin = Traits::domain().pin();
    current()->for_each_node([&](const node* n) { detail::invoke_entry(f, n->key, n->value); });
  }

  // The probe-length histogram is exact when no write runs meanwhile.
  stats_t stats() const {
    auto pin = Traits::domain().pin();
    const table* t = current();
    stats_t s = this->base_stats(t);
    s.probe_length_histogram = t->probe_histogram();
    s.bytes += s.size * sizeof(node);
    return s;
  }

 private:
  void rehash_into(const table& old, table& fresh) {
    old.for_each_node([&](node* n) { fresh.unprotected_insert(n); });
  }

  template <class Q>
  node* find_node(std::size_t h, const Q& q) const {
    return current()->find(h, q, eq_).node;
  }

  // Makes n the key's node in place of old (nullptr: insert). Returns false if
  // the key's node is not old: for old == nullptr, the key is present (insert
  // relies on that); otherwise only a concurrent clear() does it (the caller
  // starts over). Precondition: the key's stripe is held (L1).
  bool publish(std::size_t h, node* old, node* n) { return publish_impl(h, n, &old).ok; }
  // Makes n the key's node whatever it was (one lookup instead of find_node +
  // publish: insert_or_assign); returns the node it replaced, or nullptr.
  const node* publish_any(std::size_t h, node* n) { return publish_impl(h, n, nullptr).replaced; }

  struct published {
    bool ok;
    const node* replaced;
  };
  // publish's core. With expect == nullptr, n replaces whatever node the key has.
  published publish_impl(std::size_t h, node* n, node* const* expect) {
    for (;;) {
      table* t = current();
      const location loc = t->find(h, n->key, eq_);
      if (expect && loc.node != *expect) return {false, nullptr};
      node* const old = loc.node;
      status s;
      if (old) {
        s = t->replace(loc, n, lock_waits_);
      } else {
        if (t->needs_rebuild()) {
          this->rebuild(t, 0, false);
          continue;
        }
        s = t->insert(n, lock_waits_);
      }
      switch (s) {
        case status::done:
          if (old) Traits::domain().retire(old);
          return {true, old};
        case status::frozen:
          this->wait_for_rebuild();
          break;
        case status::full:
          this->rebuild(t, 0, true);
          break;
        case status::gone:
          break;
      }
    }
  }

  // Erases the key whose node is old. Returns false if its node is no longer
  // old. Precondition: the key's stripe is held (L1).
  bool unlink(std::size_t h, node* old) {
    for (;;) {
      table* t = current();
      const location loc = t->find(h, old->key, eq_);
      if (loc.node != old) return false;
      switch (t->erase(loc, lock_waits_)) {
        case status::done:
          Traits::domain().retire(old);
          return true;
        case status::frozen:
          this->wait_for_rebuild();
          break;
        default:
          break;
      }
    }
  }
};

// The inline layout: keys and values in the slots as atomic words, read
// under the group seqlock (detail/inline_table.hpp). The key word is the key
// (word_key) or a pointer to an immutable key block (string_key).
template <class K, class V, class Hash, class Eq, class Traits>
class inline_concurrent_map
    : public concurrent_map_core<inline_concurrent_map<K, V, Hash, Eq, Traits>,
                                 inline_table<key_policy_for<K, Eq>, V, Traits::template atomic,
                                              typename Traits::group_lock, typename Traits::stripe_lock>,
                                 K, Hash, Eq, Traits> {
  using itable = inline_table<key_policy_for<K, Eq>, V, Traits::template atomic, typename Traits::group_lock,
                              typename Traits::stripe_lock>;
  using core = concurrent_map_core<inline_concurrent_map, itable, K, Hash, Eq, Traits>;
  friend core;
  using core::current;
  using core::eq_;
  using core::hash_of;
  using core::lock_waits_;
  using core::lookup;
  using typename core::location;
  using typename core::status;
  using typename core::table;
  using entry = typename itable::entry;
  using kcodec = typename itable::key_codec;
  using vcodec = typename itable::val_codec;
  using words = typename itable::value_words;
  using home = typename itable::home;

  // Holds the key lock of a hash in the table the caller writes (J6, L1
  // inline). hold(t) moves it to table t when a growth or clear() replaced
  // the table: released in the old one, taken in t. The caller is pinned, so
  // the old table is still allocated when its lock is released.
  class key_guard {
   public:
    POLYMAP_ALWAYS_INLINE key_guard(inline_concurrent_map& m, std::size_t h) : m_(m), h_(h) { take(m.current()); }
    POLYMAP_ALWAYS_INLINE ~key_guard() { lock_->unlock(); }
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
  };

  // Value words the caller owns until the table takes them (commit) or the
  // guard releases them (an exception, or a value never stored).
  class owned {
   public:
    explicit owned(V&& v) noexcept : w_(vcodec::take(std::move(v))) {}
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
    POLYMAP_ALWAYS_INLINE std::uint64_t get(const Q& q, std::size_t h) {
      if (!made_) {
        w_ = kcodec::make(q, h);
        made_ = true;
      }
      return w_;
    }
    bool made() const noexcept { return made_; }
    std::uint64_t word() const noexcept { return w_; }
    void commit() noexcept { taken_ = true; }

   private:
    std::uint64_t w_ = 0;
    bool made_ = false;
    bool taken_ = false;
  };

 public:
  using mapped_type = V;
  using core::core;

  // --- writes ----------------------------------------------------------------
  bool insert(K k, V v) {
    this->check_not_in_callback("insert");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned_key key;
    const std::uint64_t kw = key.get(q, h);  // an insert usually inserts: made before any lock
    owned w(std::move(v));
    auto pin = Traits::domain().pin();
    {
      const entry e{kw, w.get()};
      entry old;
      switch (write_home(h, q, &e, false, true, old)) {
        case home::inserted:
          w.commit();
          key.commit();
          retire_or_poll(nullptr);
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

  bool insert_or_assign(K k, V v) {
    this->check_not_in_callback("insert_or_assign");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned w(std::move(v));
    owned_key key;
    if constexpr (!kcodec::kOwns) key.get(q, h);  // free: the key's bits
    auto pin = Traits::domain().pin();
    {
      // A string key's block is made only once the home group shows the key
      // absent (then the fast path is tried again): overwriting a present
      // key allocates nothing.
      entry old;
      home r = assign_home(h, q, w, key, old);
      if (r == home::absent) {
        key.get(q, h);
        r = assign_home(h, q, w, key, old);
      }
      switch (r) {
        case home::replaced:
          w.commit();
          retire_or_poll(&old.value);
          return false;
        case home::inserted:
          w.commit();
          key.commit();
          retire_or_poll(nullptr);
          return true;
        default:
          break;
      }
    }
    const std::uint64_t kw = key.get(q, h);  // not under the key lock
    key_guard kg(*this, h);
    const bool replaced = publish_any(kg, h, q, {kw, w.get()});  // cannot fail: no expectation
    w.commit();
    if (!replaced) key.commit();
    return !replaced;
  }

  // Inserts (k, v) if k is absent (returns true); otherwise calls f(V&) on a
  // copy of the stored value and stores the copy once f returns.
  template <class F>
  bool insert_or_visit(K k, V v, F f) {
    this->check_not_in_callback("insert_or_visit");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned_key key;
    auto pin = Traits::domain().pin();
    key_guard kg(*this, h);
    for (;;) {
      const location cur = find_for_write(current(), h, q);
      if (cur) {
        V copy = vcodec::copy(cur.e.value);
        {
          const callback_scope in_callback(this);
          f(copy);
        }
        owned w(std::move(copy));
        if (publish(kg, h, q, &cur, {cur.e.key, w.get()})) {
          w.commit();
          return false;
        }
      } else {
        const std::uint64_t kw = key.get(q, h);
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
  V update(K k, F f) {
    this->check_not_in_callback("update");
    const auto& q = lookup(k);
    const std::size_t h = hash_of(q);
    owned_key key;
    auto pin = Traits::domain().pin();
    key_guard kg(*this, h);
    for (;;) {
      const location cur = find_for_write(current(), h, q);
      V next = [&] {
        const callback_scope in_callback(this);
        return cur ? vcodec::borrow(cur.e.value, [&](const V& seen) { return V(f(&seen)); }) : V(f(nullptr));
      }();
      const std::uint64_t kw = cur ? cur.e.key : key.get(q, h);
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
      const location cur = find_for_write(current(), h, lookup(q));
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
      const location cur = find_for_write(current(), h, lookup(q));
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
        [](std::size_t, std::size_t, std::uint64_t, const words& w) { return std::optional<V>(vcodec::copy(w)); });
  }

  template <class Q>
  [[gnu::always_inline]] bool contains(const Q& q) const {
    auto pin = Traits::domain().pin();
    return static_cast<bool>(find_in(current(), hash_of(q), lookup(q)));
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
                                               [&](std::size_t, std::size_t, std::uint64_t, const words& w) {
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
          const location loc = this->find_in(t, h, this->lookup(q));
          if (!loc) return std::nullopt;
          return vcodec::copy(loc.e.value);
        });
  }

  // Calls f(k, v) for every entry: weakly consistent (see CONTRACT); each
  // entry was read whole under its group's seqlock.
  template <class F>
  void for_each(F f) const {
    auto pin = Traits::domain().pin();
    current()->for_each_entry([&](const entry& e) {
      const K k = kcodec::decode(e.key);
      vcodec::borrow(e.value, [&](const V& v) { detail::invoke_entry(f, k, v); });
    });
  }

  stats_t stats() const {
    auto pin = Traits::domain().pin();
    const table* t = current();
    stats_t s = this->base_stats(t);
    s.probe_length_histogram = t->probe_histogram([&](std::uint64_t kw) { return hash_of_word(kw); });
    if constexpr (kcodec::kOwns) t->for_each_entry([&](const entry& e) { s.bytes += kcodec::bytes(e.key); });
    return s;
  }

 private:
  void rehash_into(const table& old, table& fresh) {
    old.move_entries_into(fresh, [&](std::uint64_t kw) { return hash_of_word(kw); });
  }

  // The hash of a key word in the table: stored in a string key's block,
  // recomputed from a word key.
  POLYMAP_ALWAYS_INLINE std::size_t hash_of_word(std::uint64_t kw) const {
    if constexpr (kcodec::kHashed)
      return kcodec::stored_hash(kw);
    else
      return hash_of(kcodec::decode(kw));
  }

  // The table's key test for lookup key q (which must outlive it): it sees
  // only key words the seqlock validated (or that the group lock protects).
  template <class Q>
  POLYMAP_ALWAYS_INLINE auto matcher(std::size_t h, const Q& q) const {
    return [this, h, &q](std::uint64_t kw) { return kcodec::match(kw, h, q, eq_); };
  }

  // The write fast path (inline_table.hpp, J7); home::slow sends the caller
  // to its key-lock path (J6). Precondition: pinned.
  template <class Q>
  POLYMAP_ALWAYS_INLINE home write_home(std::size_t h, const Q& q, const entry* e, bool overwrite, bool may_insert,
                                        entry& old) {
    return current()->write_home(h, matcher(h, q), e, overwrite, may_insert, old, lock_waits_);
  }
  // insert_or_assign's: stores w over the key's value, or inserts the key if
  // its word is made (key.made()).
  template <class Q>
  POLYMAP_ALWAYS_INLINE home assign_home(std::size_t h, const Q& q, const owned& w, const owned_key& key, entry& old) {
    const entry e{key.word(), w.get()};
    return write_home(h, q, &e, true, key.made(), old);
  }

  // The lookup of a writer holding the key lock (J6): as find_in, but it
  // first waits until the home group is not locked. A fast-path writer
  // (J7) that took the home group's lock before this writer took the key
  // lock may be inserting the key right now, and find_in's miss does not
  // validate the group's version (a reader's miss needs no validation, a
  // writer's "absent" here would insert the key a second time: the
  // linearizability stress found exactly that). Once the home group is
  // seen unlocked after the key lock was taken, every fast writer of the
  // key has either finished (its write is visible) or will see the key lock
  // and fall back.
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
    return publish_impl(kg, h, q, expect, e, false).ok;
  }
  // Stores e whatever the key's entry was (one lookup: insert_or_assign);
  // returns true if it replaced one (then the table kept its key word).
  template <class Q>
  bool publish_any(key_guard& kg, std::size_t h, const Q& q, const entry& e) {
    return publish_impl(kg, h, q, nullptr, e, true).replaced;
  }
  struct published {
    bool ok;
    bool replaced;
  };
  template <class Q>
  published publish_impl(key_guard& kg, std::size_t h, const Q& q, const location* expect, const entry& e, bool any) {
    for (;;) {
      table* t = current();
      kg.hold(t);  // J6: the lookup below and the write decide under t's key lock
      const location loc = find_for_write(t, h, q);
      if (!any && (loc.found != (expect != nullptr) || (loc && !loc.e.same(expect->e)))) return {false, false};
      status s;
      if (loc) {
        s = t->replace(loc, e.value, lock_waits_);
      } else {
        if (t->needs_rebuild()) {
          this->rebuild(t, 0, false);
          continue;
        }
        s = t->insert(h, e, lock_waits_);
      }
      switch (s) {
        case status::done:
          retire_or_poll(loc ? &loc.e.value : nullptr);
          return {true, loc.found};
        case status::frozen:
          this->wait_for_rebuild();
          break;
        case status::full:
          this->rebuild(t, 0, true);
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
      table* t = current();
      kg.hold(t);  // J6
      const location loc = find_for_write(t, h, q);
      if (!loc || !loc.e.same(old)) return false;
      switch (t->erase(loc, lock_waits_)) {
        case status::done:
          retire_erased(loc.e);
          return true;
        case status::frozen:
          this->wait_for_rebuild();
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
  POLYMAP_ALWAYS_INLINE static void retire_or_poll(const words* w) noexcept {
    if constexpr (vcodec::kOwns) {
      if (void* p = w ? vcodec::payload(*w) : nullptr) {
        Traits::domain().retire(p, &vcodec::drop);
        return;
      }
    }
    Traits::domain().poll();
  }
  // After an erase: the entry's value and, for string keys, its key block
  // (readers pinned now may still compare against it).
  POLYMAP_ALWAYS_INLINE static void retire_erased(const entry& e) noexcept {
    if constexpr (kcodec::kOwns)
      Traits::domain().retire(reinterpret_cast<void*>(static_cast<std::uintptr_t>(e.key)), &kcodec::drop);
    retire_or_poll(&e.value);
  }
};

}  // namespace detail

template <class K = std::string, class V = value, class Hash = polymap::hash<K>, class Eq = key_equal<K>,
          class Traits = concurrent_map_traits>
class concurrent_map
    : public std::conditional_t<detail::inline_slots_v<K, V, Eq>, detail::inline_concurrent_map<K, V, Hash, Eq, Traits>,
                                detail::node_concurrent_map<K, V, Hash, Eq, Traits>>,
      public detail::typed_access<concurrent_map<K, V, Hash, Eq, Traits>, K, V> {
  using layout =
      std::conditional_t<detail::inline_slots_v<K, V, Eq>, detail::inline_concurrent_map<K, V, Hash, Eq, Traits>,
                         detail::node_concurrent_map<K, V, Hash, Eq, Traits>>;

 public:
  // The layout, chosen at compile time (see LAYOUT): keys (or key blocks)
  // and values in the slots (inline), or a node per entry behind a slot
  // pointer.
  static constexpr bool inline_slots = detail::inline_slots_v<K, V, Eq>;
  using key_type = K;
  using mapped_type = V;
  using hasher = Hash;
  using key_equal = Eq;

  concurrent_map() = default;
  explicit concurrent_map(std::size_t capacity) : layout(capacity) {}
};

namespace detail {
// The node layout behind the public API whatever K and V are: kept for
// same-run A/B comparisons and its tests until the inline layout serves
// every key and value type.
template <class K = std::string, class V = value, class Hash = polymap::hash<K>, class Eq = key_equal<K>,
          class Traits = concurrent_map_traits>
class node_map : public node_concurrent_map<K, V, Hash, Eq, Traits>,
                 public typed_access<node_map<K, V, Hash, Eq, Traits>, K, V> {
 public:
  using key_type = K;
  using mapped_type = V;
  node_map() = default;
  explicit node_map(std::size_t capacity) : node_concurrent_map<K, V, Hash, Eq, Traits>(capacity) {}
};
}  // namespace detail

}  // namespace polymap

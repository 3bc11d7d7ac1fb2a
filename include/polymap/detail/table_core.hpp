// polymap/detail/table_core.hpp — the node-layout open-addressing table
// behind flat_table.hpp (the sequential table `polymap hashstat` measures).
//
// The core owns the arrays and the algorithms over them (lookup, insert into
// the first available slot, erase, replace, freeze, scan); it knows nothing
// of hashing keys or of memory reclamation. concurrent_map used it too until
// session 7; its table is now inline_table.hpp (entries in the slots). The
// two share group.hpp: the 15-slot groups, tags, overflow bits and probing,
// so hashstat's probe lengths and tag false positives are concurrent_map's.
// The Atomic and GroupLock parameters stay (plain_atomic and
// null_group_lock here), and the protocol comments below still describe the
// concurrent use they were written for.
//
// LAYOUT (one allocation; G = group count, a power of two)
//   +------------------+---------------------------------+------------------+
//   | group_meta[G]    | Atomic<Node*>[G * 15]            | GroupLock[G]     |
//   | 16 B each:       | 8 B each: slot i of group g is   | 4 B each:        |
//   | 15 tags+overflow | slots[g * 15 + i]                | version words    |
//   +------------------+---------------------------------+------------------+
//   The header (sizes, array pointers), read by every lookup, sits on its own
//   cache line; the size counters writers bump sit on another.
//   Metadata is packed 4 groups per cache line and kept apart from the version
//   words, so a lookup reads metadata lines that writers dirty only when they
//   change a tag, never when they merely take a lock; and it never reads the
//   version words at all (node layout).
//
// A slot holds a pointer to an immutable node {hash, key, value}. A node is
// never written after it is published; "changing a value" publishes a new
// node in the same slot.
//
// INVARIANTS (every front end keeps them)
//   I1. A slot's tag is 0 iff its pointer is null, whenever its group is
//       unlocked. While locked, an insert stores the pointer before the tag
//       and an erase clears the tag before the pointer.
//   I2. A key is in at most one slot.
//   I3. For an entry in group g on its probe sequence home = g0, g1, ..., gk = g,
//       every group g0..g(k-1) has the entry's overflow bit set. Bits are only
//       set, never cleared (a rebuild starts clean).
//   I4. size counts full slots; it changes only under the lock of the group
//       whose slot changed, so once every group is frozen it is exact.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "polymap/detail/group.hpp"
#include "polymap/detail/node_pool.hpp"

namespace polymap::detail {

template <class K, class V>
struct map_node {
  std::size_t hash;
  K key;
  V value;

  // Nodes come from a per-thread free list (node_pool.hpp): a write
  // allocates one and, a grace period later, frees the one it replaced.
  static void* operator new(std::size_t) { return node_pool<sizeof(map_node), alignof(map_node)>::allocate(); }
  static void operator delete(void* p) noexcept { node_pool<sizeof(map_node), alignof(map_node)>::deallocate(p); }
};

// What one lookup cost: groups visited, and tag matches whose key differed.
struct probe_record {
  std::size_t groups = 0;
  std::size_t tag_false_positives = 0;
};

template <class Node, template <class> class Atomic, class GroupLock>
class alignas(64) table_core : public table_sizing {
 public:
  using node_type = Node;

  struct location {
    Node* node = nullptr;
    std::size_t group = 0;
    std::size_t slot = 0;
    explicit operator bool() const noexcept { return node != nullptr; }
  };
  enum class status { done, frozen, full, gone };

  explicit table_core(std::size_t groups) : groups_(groups), mask_(groups - 1) {
    bytes_ = groups * sizeof(group_block);
    block_ = static_cast<unsigned char*>(::operator new (bytes_, std::align_val_t{64}));
    blocks_ = reinterpret_cast<group_block*>(block_);
    for (std::size_t g = 0; g < groups; ++g) {
      new (&block_of(g).meta) group_meta<Atomic>();
      for (auto& s : block_of(g).slots) new (&s) Atomic<Node*>(nullptr);
      new (&block_of(g).lock) GroupLock();
    }
  }
  table_core(const table_core&) = delete;
  table_core& operator=(const table_core&) = delete;
  // Frees the arrays only: nodes belong to the front end.
  ~table_core() { ::operator delete (block_, std::align_val_t{64}); }

  std::size_t groups() const noexcept { return groups_; }
  std::size_t capacity() const noexcept { return groups_ * kGroupSlots; }
  std::size_t max_load() const noexcept { return max_load_of(capacity()); }
  std::size_t bytes() const noexcept { return bytes_; }
  // relaxed (size, dirty): statistics and growth triggers; exact once frozen (I4),
  // where the freeze's acquire orders them.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  std::size_t dirty() const noexcept { return dirty_.load(std::memory_order_relaxed); }
  void set_size(std::size_t n) noexcept { size_.store(n, std::memory_order_relaxed); }  // relaxed: private table
  // True when an insert should rebuild first: full slots plus erasures from
  // overflowed groups (which leave probe chains long) reach the maximum load.
  bool needs_rebuild() const noexcept { return size() + dirty() >= max_load(); }

  GroupLock& lock_of(std::size_t g) noexcept { return block_of(g).lock; }
  const GroupLock& lock_of(std::size_t g) const noexcept { return block_of(g).lock; }
  group_bits bits_of(std::size_t g) const noexcept { return meta(g).load(); }
  // Pulls a hash's home group (metadata and slots) toward the cache.
  void prefetch(std::size_t hash) const noexcept {
    const std::size_t g = hash & mask_;
    __builtin_prefetch(&block_of(g));
    __builtin_prefetch(reinterpret_cast<const char*>(&block_of(g)) + 64);
  }
  // Pulls the node of the first slot in the home group whose tag matches.
  void prefetch_candidate(std::size_t hash) const noexcept {
    const std::size_t g = hash & mask_;
    if (const std::uint32_t m = meta(g).load().match(tag_of(hash))) {
      // acquire: as in find.
      if (Node* n = slot(g, std::countr_zero(m)).load(std::memory_order_acquire)) __builtin_prefetch(n);
    }
  }

  // Finds the node with this hash and key; touches no shared word but the
  // metadata and slots it reads. Safe against concurrent writers of the same
  // table (the READ PROTOCOL this core was written for; concurrent_map.hpp
  // states it for inline_table).
  template <class Q, class Eq>
  location find(std::size_t hash, const Q& q, const Eq& eq, probe_record* rec = nullptr) const {
    const std::uint8_t tag = tag_of(hash);
    prober p(hash, mask_);
    for (;;) {
      const std::size_t g = p.get();
      const group_bits bits = meta(g).load();
      for (std::uint32_t m = bits.match(tag); m; m &= m - 1) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(m));
        // acquire: pairs with the release store of the pointer in insert/replace,
        // so the node's fields are visible.
        Node* n = slot(g, i).load(std::memory_order_acquire);
        if (n && n->hash == hash && eq(n->key, q)) {
          if (rec) rec->groups = p.length();
          return {n, g, i};
        }
        if (rec) ++rec->tag_false_positives;
      }
      if (!bits.overflowed(hash) || !p.next()) {
        if (rec) rec->groups = p.length();
        return {};
      }
    }
  }

  // Puts n (whose key is absent, and which no other thread inserts meanwhile:
  // the caller's contract) into the first group on its probe sequence with an
  // empty slot. Locks one group at a time.
  template <class Counter>
  status insert(Node* n, Counter& waits) {
    prober p(n->hash, mask_);
    do {
      const std::size_t g = p.get();
      if (lock_of(g).lock(waits) == GroupLock::acquired::frozen) return status::frozen;
      const group_bits bits = meta(g).load();
      if (const std::uint32_t avail = bits.match_empty()) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(avail));
        // release: pairs with find's acquire load; the node is complete.
        slot(g, i).store(n, std::memory_order_release);
        meta(g).set_tag(i, tag_of(n->hash));            // I1: pointer, then tag
        size_.fetch_add(1, std::memory_order_relaxed);  // relaxed: I4, under the group lock
        lock_of(g).unlock();
        return status::done;
      }
      meta(g).set_overflow(n->hash);  // I3
      lock_of(g).unlock();
    } while (p.next());
    return status::full;
  }

  // Replaces the node at `at` by n (same key). `gone` if the slot no longer
  // holds at.node.
  template <class Counter>
  status replace(const location& at, Node* n, Counter& waits) {
    if (lock_of(at.group).lock(waits) == GroupLock::acquired::frozen) return status::frozen;
    auto& cell = slot(at.group, at.slot);
    status s = status::gone;
    // relaxed: under the group lock, the last store to the slot is visible (lock's acquire).
    if (cell.load(std::memory_order_relaxed) == at.node) {
      cell.store(n, std::memory_order_release);  // release: pairs with find's acquire load
      s = status::done;
    }
    lock_of(at.group).unlock();
    return s;
  }

  // Empties the slot at `at` if it still holds at.node.
  template <class Counter>
  status erase(const location& at, Counter& waits) {
    if (lock_of(at.group).lock(waits) == GroupLock::acquired::frozen) return status::frozen;
    auto& cell = slot(at.group, at.slot);
    status s = status::gone;
    if (cell.load(std::memory_order_relaxed) == at.node) {  // relaxed: as in replace
      meta(at.group).set_tag(at.slot, 0);                   // I1: tag, then pointer
      // relaxed: a reader that still sees the old tag reads either the node (kept
      // alive by its epoch pin) or null; either is a valid answer.
      cell.store(nullptr, std::memory_order_relaxed);
      size_.fetch_sub(1, std::memory_order_relaxed);                                              // relaxed: I4
      if (meta(at.group).load().overflow() != 0) dirty_.fetch_add(1, std::memory_order_relaxed);  // relaxed: I4
      s = status::done;
    }
    lock_of(at.group).unlock();
    return s;
  }

  // Deletes every node (the map's destructor, and clear()'s retired table).
  void release_entries() const noexcept {
    for_each_node([](Node* n) { delete n; });
  }

  // Undoes freeze_all (a rebuild that failed to allocate).
  void thaw_all() noexcept {
    for (std::size_t g = 0; g < groups_; ++g) lock_of(g).thaw();
  }

  // Freezes every group: afterwards no write to this table succeeds, and what
  // every writer did before is visible to the caller (freeze's acquire).
  void freeze_all() noexcept {
    for (std::size_t g = 0; g < groups_; ++g) lock_of(g).freeze();
  }

  // Calls f(Node*) for every full slot, in slot order.
  template <class F>
  void for_each_node(F&& f) const {
    for (std::size_t i = 0; i < groups_ * kGroupSlots; ++i) {
      // acquire: pairs with the release stores in insert/replace.
      if (Node* n = slot(i / kGroupSlots, i % kGroupSlots).load(std::memory_order_acquire)) f(n);
    }
  }

  // Inserts into a table no other thread can see (being built, or
  // single-threaded): no locks. Precondition: the key is absent and the table
  // is not full.
  void unprotected_insert(Node* n) noexcept {
    prober p(n->hash, mask_);
    for (;;) {
      const std::size_t g = p.get();
      if (const std::uint32_t avail = meta(g).load().match_empty()) {
        const std::size_t i = static_cast<std::size_t>(std::countr_zero(avail));
        slot(g, i).store(n, std::memory_order_release);  // release: as in insert
        meta(g).set_tag(i, tag_of(n->hash));
        size_.fetch_add(1, std::memory_order_relaxed);  // relaxed: private table
        return;
      }
      meta(g).set_overflow(n->hash);
      p.next();
    }
  }

  // Unprotected erase for a single-threaded table.
  void unprotected_erase(const location& at) noexcept {
    meta(at.group).set_tag(at.slot, 0);
    slot(at.group, at.slot).store(nullptr, std::memory_order_relaxed);  // relaxed: private
    size_.fetch_sub(1, std::memory_order_relaxed);                      // relaxed: private
    if (meta(at.group).load().overflow() != 0) dirty_.fetch_add(1, std::memory_order_relaxed);
  }

  // Unprotected replace for a single-threaded table.
  void unprotected_replace(const location& at, Node* n) noexcept {
    slot(at.group, at.slot).store(n, std::memory_order_release);  // release: as in replace
  }

  // histogram[i]: entries that a lookup finds in its (i+1)-th probed group.
  std::vector<std::uint64_t> probe_histogram() const {
    std::vector<std::uint64_t> h;
    for (std::size_t g = 0; g < groups_; ++g) {
      for (std::size_t i = 0; i < kGroupSlots; ++i) {
        // acquire: as in for_each_node.
        const Node* n = slot(g, i).load(std::memory_order_acquire);
        if (!n) continue;
        prober p(n->hash, mask_);
        while (p.get() != g && p.next()) {
        }
        if (h.size() < p.length()) h.resize(p.length());
        ++h[p.length() - 1];
      }
    }
    return h;
  }

 private:
  std::size_t groups_, mask_, bytes_ = 0;
  unsigned char* block_ = nullptr;
  // One group: its metadata word, its 15 slots and its version word,
  // adjacent, so a lookup's metadata load and slot load usually hit the same
  // or the next cache line (separate arrays cost a second dependent miss),
  // and a writer's lock word is on the lines it writes anyway. With a 4-byte
  // version word the block is 144 bytes (16 + 120 + 4, padded to 16).
  struct group_block {
    group_meta<Atomic> meta;
    Atomic<Node*> slots[kGroupSlots];
    GroupLock lock;
  };
  group_block& block_of(std::size_t g) noexcept { return blocks_[g]; }
  const group_block& block_of(std::size_t g) const noexcept { return blocks_[g]; }
  group_meta<Atomic>& meta(std::size_t g) noexcept { return block_of(g).meta; }
  const group_meta<Atomic>& meta(std::size_t g) const noexcept { return block_of(g).meta; }
  Atomic<Node*>& slot(std::size_t g, std::size_t i) noexcept { return block_of(g).slots[i]; }
  const Atomic<Node*>& slot(std::size_t g, std::size_t i) const noexcept { return block_of(g).slots[i]; }

  group_block* blocks_ = nullptr;
  // On their own cache line: every insert and erase writes them; lookups read
  // the line above.
  alignas(64) Atomic<std::size_t> size_{0};  // I4
  Atomic<std::size_t> dirty_{0};             // erasures from overflowed groups since the build
};

}  // namespace polymap::detail

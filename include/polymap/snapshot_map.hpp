// polymap/snapshot_map.hpp — a map whose readers see immutable versions:
// lock-free lookups, consistent snapshots, atomic batches.
//
// CONTRACT
//   Every operation is linearizable. Reads (find, contains, get, visit, size,
//   version, snapshot) take no lock: they pin the calling thread in an epoch
//   domain, load the current version with one acquire load, walk it, and copy
//   out. A reader writes nothing shared (the pin writes the thread's own
//   epoch record). Writes (insert, insert_or_assign, insert_or_visit, update,
//   compare_exchange, erase, erase_if, clear, apply) serialize on one mutex,
//   build a new version that shares every untouched node with the old one,
//   and publish it with one release store; readers see a write whole or not
//   at all. A write that changes nothing (insert of a present key, erase of
//   an absent one, a failed compare_exchange) publishes nothing.
//
//   snapshot() returns a handle on one version: find/get/contains/visit/size,
//   begin/end and for_each all read that version, however many writes follow.
//   A snapshot holds a reference count on its version, not an epoch pin, so
//   holding one for a long time does not stall reclamation elsewhere; it only
//   keeps that version's own nodes alive. for_each on the map walks a
//   snapshot: it is consistent (one version), and its callback may call the
//   map, writes included.
//
//   apply(batch) publishes several insert_or_assign/erase operations as one
//   version: a reader sees all of them or none. version() counts publishes.
//
//   Callbacks of update/insert_or_visit/compare_exchange/erase_if run under
//   the writer mutex: they must not write to the same map (that deadlocks).
//   A callback that throws leaves the map unchanged (the new version is built
//   after every callback returned, and a bad_alloc while building frees the
//   partial version). visit's callback runs while the thread is pinned: keep
//   it short, and do not call epoch_domain::barrier() from it.
//
// DESIGN
//   Two structures per version, both immutable to readers of that version:
//
//   * The trie (detail/hamt.hpp): a persistent hash array mapped trie
//     (32-way branches indexed by a bitmap, collision nodes for equal 64-bit
//     hashes), the structure of Clojure's maps and Go 1.24's HashTrieMap,
//     made persistent: nothing reachable from a published root is written
//     again. It is exact for every version, carries snapshots, iteration and
//     the writers' own lookups, and makes a write O(log32 n).
//   * The read index (detail/read_index.hpp): a flat SwissTable-style copy of
//     the entries, built from one version and shared by the versions after
//     it. A writer appends a key's new value (at most one per key) and stamps
//     the old slot with the version that replaced it, before it publishes;
//     a reader of version t takes the slot whose [born, since) range holds t.
//     Only a key changed twice (or erased) since the build sends readers to
//     the trie ("trie mode"). One probe of a flat table answers the rest,
//     which is what brings a lookup near an unsynchronized flat map.
//
//            current_ (atomic<tree*>)
//                 |  acquire load under an epoch pin
//                 v
//     tree v7 { refs, root, size, number, base } --> trie: branch -> leaf
//                                     |                      (shared with v6)
//                                     v
//                            read index (built at v5, shared by v5..v7;
//                            slots stamped/appended by the v6 and v7 writes)
//
//   The index is rebuilt from the trie, inside a publish, when a new key
//   finds it full, when keys in trie mode reach 32 + n/8, or before a 31-bit
//   version offset could overflow. If building it fails (bad_alloc, a
//   throwing copy or key equality), the version keeps the old index if that
//   can still serve it, or has none: reads then use the trie alone, and the
//   next publish tries again. The index never makes a write fail.
//
//   Reclamation has three layers:
//     * A version (tree) is reachable by readers through current_. When a
//       writer replaces it, it retires the old tree to the epoch domain
//       (detail/epoch.hpp); once no thread pinned before the swap can still
//       read it, the domain drops the reference current_ held. Snapshots
//       hold their own references.
//     * Trie nodes are shared between versions, so each node counts the
//       versions and inner nodes that point at it (hamt.hpp, "WHY REFERENCE
//       COUNTS"). Dropping a version's last reference releases its root, and
//       the release cascades down exactly as far as nodes became unshared.
//     * An index counts the versions that point at it and is freed with the
//       last one.
//   A lookup therefore never touches a reference count; only writers,
//   snapshot handles and reclamation do.
//
// COST
//   lookup: pin (a store to the thread's own record, and a compiler barrier;
//     a full fence where membarrier(2) is unavailable), one acquire load, a
//     hash, one flat-table probe (a second slot for a key changed once since
//     the build; the trie's ~log32(n) dependent loads for a key in trie mode).
//     A held snapshot skips the pin.
//   write: a trie lookup, a path copy of about log32(n) branches (one
//     allocation each plus up to 31 relaxed reference increments), a new
//     leaf and tree record, an index probe and at most one slot copy; plus,
//     amortized, a rebuild: every n/8 trie-mode keys or when full, a walk of
//     the trie copying n entries (about 8 copies per write under random
//     updates; a rebuild at 10^6 entries takes tens of milliseconds, paid
//     by the one write that triggers it). Readers never wait for it.
//   memory: the trie (a leaf per entry plus branches), the index (a flat
//     table of {since, born, key, value} slots at load <= 7/8), one extra
//     trie path per unreclaimed version.
//   apply(k ops): k path copies into unpublished nodes (freed at once), one
//     publish.
//   Measured (u64 -> polymap::value, random existing keys, g++ 12 -O2, the
//   shared 2-core dev VM; best of 7 rounds, an unsynchronized
//   boost::unordered_flat_map in the same process as the reference). Before
//   the read index: map find 7.3x the flat map at 10^4 entries, 13.9x at
//   10^6. With it, no writes since the last rebuild: held snapshot find
//   1.13-1.48x (10^4) and 1.5-1.7x (10^6); map find (with the pin)
//   1.7-2.0x and 1.9-2.7x. After 2,000 random updates of a 10^4 map:
//   snapshot 2.5-2.8x, map 3.2-3.4x (successor probes and the 1-2%
//   trie-mode keys). The 1.15x target holds only for a held snapshot of a
//   freshly built index. Numbers in docs/bench/README.md; re-measure before
//   relying on them.
//
// ALTERNATIVES
//   Copy-on-write of a whole flat table (atomic.Value holding a map) makes a
//   write O(n): at 1e6 entries every write copies 1e6 keys and values. A
//   seqlocked mutable table gives no snapshots. The trie alone keeps writes
//   O(log32 n) and snapshots free, but a lookup is 4-5 dependent loads. The
//   trie plus a shared, stamped flat index keeps both, at the price of a
//   second copy of the entries and an amortized rebuild.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "polymap/detail/epoch.hpp"
#include "polymap/detail/hamt.hpp"
#include "polymap/detail/hash.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/detail/read_index.hpp"
#include "polymap/stats.hpp"
#include "polymap/value.hpp"

namespace polymap {

template <class K = std::string, class V = value, class Hash = polymap::hash<K>, class Eq = key_equal<K>>
class snapshot_map : public detail::typed_access<snapshot_map<K, V, Hash, Eq>, K, V> {
  using ops = detail::hamt::ops<K, V>;
  using leaf_t = detail::hamt::leaf<K, V>;
  using node = detail::hamt::node;
  using node_ref = typename ops::ref;
  using index_t = detail::read_index<K, V>;

  // A version: the trie (exact) plus the read index (detail/read_index.hpp)
  // it shares with the versions since the index was built.
  struct tree : detail::hamt::tree {
    const index_t* base = nullptr;  // owns one reference; null: no index
    std::size_t stale = 0;          // keys of base in trie mode
  };

  static void release_tree(const tree* t) noexcept {
    // acq_rel: see hamt::tree::refs.
    if (t && t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      ops::release(t->root);
      index_t::release(t->base);
      delete t;
    }
  }

  // THE READ PATH: the index answers unless the key is in trie mode
  // (detail/read_index.hpp); then the trie, which is exact for every
  // version, does. Touches nothing shared.
  template <class Q>
  [[gnu::always_inline]] static const V* lookup_in(const tree* t, const Q& q, const Hash& hash, const Eq& eq) {
    const auto& a = detail::lookup_arg<K>(q);
    const std::size_t h = hash(a);
    if (const index_t* ix = t->base) [[likely]] {
      const auto r = ix->lookup(h, a, eq, t->number);
      if (r.kind != index_t::answer::trie) [[likely]]
        return r.val;
    }
    const leaf_t* l = ops::find(t->root, h, a, eq);
    return l ? &l->kv.second : nullptr;
  }

  static void reclaim_tree(void* p) noexcept { release_tree(static_cast<tree*>(p)); }

 public:
  using key_type = K;
  using mapped_type = V;
  using value_type = std::pair<const K, V>;
  using hasher = Hash;
  using key_equal = Eq;

  // --- snapshot: one immutable version --------------------------------------
  class snapshot_type : public detail::typed_access<snapshot_type, K, V> {
   public:
    using const_iterator = detail::hamt::leaf_iterator<K, V>;
    using iterator = const_iterator;

    snapshot_type() = default;
    snapshot_type(const snapshot_type& o) noexcept : t_(o.t_), hash_(o.hash_), eq_(o.eq_) {
      // relaxed: a new reference from one we hold (see hamt::tree::refs).
      if (t_) t_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    snapshot_type(snapshot_type&& o) noexcept : t_(std::exchange(o.t_, nullptr)), hash_(o.hash_), eq_(o.eq_) {}
    snapshot_type& operator=(snapshot_type o) noexcept {
      std::swap(t_, o.t_);
      std::swap(hash_, o.hash_);
      std::swap(eq_, o.eq_);
      return *this;
    }
    ~snapshot_type() { release_tree(t_); }

    // False only for a default-constructed (or moved-from) handle.
    bool valid() const noexcept { return t_ != nullptr; }
    std::size_t size() const noexcept { return t_ ? t_->size : 0; }
    bool empty() const noexcept { return size() == 0; }
    // The number of publishes before this version.
    std::uint64_t version() const noexcept { return t_ ? t_->number : 0; }

    template <class Q>
    [[gnu::always_inline]] std::optional<V> find(const Q& q) const {
      if (const V* v = lookup(q)) return *v;
      return std::nullopt;
    }
    template <class Q>
    [[gnu::always_inline]] bool contains(const Q& q) const {
      return lookup(q) != nullptr;
    }
    template <class Q, class F>
    [[gnu::always_inline]] bool visit(const Q& q, F f) const {
      const V* v = lookup(q);
      if (!v) return false;
      f(*v);
      return true;
    }
    template <class F>
    void for_each(F f) const {
      if (!t_) return;
      auto call = [&](const leaf_t* l) { detail::invoke_entry(f, l->kv.first, l->kv.second); };
      ops::walk(t_->root, call);
    }
    const_iterator begin() const { return const_iterator(t_ ? t_->root : nullptr); }
    const_iterator end() const { return const_iterator(); }

   private:
    friend class snapshot_map;
    snapshot_type(const tree* t, const Hash& h, const Eq& e) noexcept : t_(t), hash_(h), eq_(e) {}
    template <class Q>
    [[gnu::always_inline]] const V* lookup(const Q& q) const {
      return t_ ? lookup_in(t_, q, hash_, eq_) : nullptr;
    }

    const tree* t_ = nullptr;  // owns one reference
    [[no_unique_address]] Hash hash_{};
    [[no_unique_address]] Eq eq_{};
  };

  // --- batch: writes published together by apply() ---------------------------
  class batch {
   public:
    batch& insert_or_assign(K k, V v) {
      ops_.push_back(op{std::move(k), std::optional<V>(std::move(v))});
      return *this;
    }
    batch& erase(K k) {
      ops_.push_back(op{std::move(k), std::nullopt});
      return *this;
    }
    std::size_t size() const noexcept { return ops_.size(); }
    bool empty() const noexcept { return ops_.empty(); }
    void clear() noexcept { ops_.clear(); }

   private:
    friend class snapshot_map;
    struct op {
      K key;
      std::optional<V> val;  // nullopt: erase
    };
    std::vector<op> ops_;
  };

  // Readers and writers of this map pin `domain`, which must outlive the map.
  explicit snapshot_map(detail::epoch_domain& domain = detail::epoch_domain::global()) : domain_(&domain) {
    current_.store(new tree, std::memory_order_relaxed);  // relaxed: not yet shared
  }
  snapshot_map(const snapshot_map&) = delete;
  snapshot_map& operator=(const snapshot_map&) = delete;
  // No reader may run concurrently with destruction. Versions retired earlier
  // stay with the epoch domain, which frees them without this object.
  ~snapshot_map() { release_tree(current_.load(std::memory_order_relaxed)); }  // relaxed: no concurrency left

  // --- reads -------------------------------------------------------------------
  snapshot_type snapshot() const {
    auto pin = domain_->pin();
    const tree* t = load_current();
    // relaxed: the pin keeps t alive (its current_ reference is released only
    // after the domain's grace period), so the count cannot be zero here.
    t->refs.fetch_add(1, std::memory_order_relaxed);
    return snapshot_type(t, hash_, eq_);
  }

  template <class Q>
  [[gnu::always_inline]] std::optional<V> find(const Q& q) const {
    auto pin = domain_->pin();
    if (const V* v = lookup_in(load_current(), q, hash_, eq_)) return *v;
    return std::nullopt;
  }

  template <class Q>
  [[gnu::always_inline]] bool contains(const Q& q) const {
    auto pin = domain_->pin();
    return lookup_in(load_current(), q, hash_, eq_) != nullptr;
  }

  // Calls f(const V&) on the current value of q, while this thread is pinned.
  template <class Q, class F>
  [[gnu::always_inline]] bool visit(const Q& q, F f) const {
    auto pin = domain_->pin();
    const V* v = lookup_in(load_current(), q, hash_, eq_);
    if (!v) return false;
    f(*v);
    return true;
  }

  // Consistent: walks one version (a snapshot), without pinning the thread.
  template <class F>
  void for_each(F f) const {
    snapshot().for_each(std::move(f));
  }

  std::size_t size() const {
    auto pin = domain_->pin();
    return load_current()->size;
  }
  bool empty() const { return size() == 0; }

  // The number of versions published since construction.
  std::uint64_t version() const {
    auto pin = domain_->pin();
    return load_current()->number;
  }

  // --- writes ------------------------------------------------------------------
  bool insert(K k, V v) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    const std::size_t h = hash_(detail::lookup_arg<K>(k));
    if (ops::find(cur->root, h, detail::lookup_arg<K>(k), eq_)) return false;
    bool inserted = false;
    auto [root, l] = assoc(cur->root, h, std::move(k), std::move(v), inserted);
    publish_one(cur, std::move(root), cur->size + 1, l);
    return true;
  }

  bool insert_or_assign(K k, V v) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    const std::size_t h = hash_(detail::lookup_arg<K>(k));
    bool inserted = false;
    auto [root, l] = assoc(cur->root, h, std::move(k), std::move(v), inserted);
    publish_one(cur, std::move(root), cur->size + (inserted ? 1 : 0), l);
    return inserted;
  }

  // Inserts (k, v) if absent (true); otherwise stores f(copy of the value)
  // (false). f works on a copy, so a throwing f changes nothing.
  template <class F>
  bool insert_or_visit(K k, V v, F f) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    const std::size_t h = hash_(detail::lookup_arg<K>(k));
    bool inserted = false;
    if (const leaf_t* old = ops::find(cur->root, h, detail::lookup_arg<K>(k), eq_)) {
      V copy = old->kv.second;
      f(copy);
      auto [root, l] = assoc(cur->root, h, std::move(k), std::move(copy), inserted);
      publish_one(cur, std::move(root), cur->size, l);
      return false;
    }
    auto [root, l] = assoc(cur->root, h, std::move(k), std::move(v), inserted);
    publish_one(cur, std::move(root), cur->size + 1, l);
    return true;
  }

  // Atomic read-modify-write: stores f(cur) (cur is nullptr if k is absent)
  // and returns the value stored.
  template <class F>
  V update(K k, F f) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    const std::size_t h = hash_(detail::lookup_arg<K>(k));
    const leaf_t* old = ops::find(cur->root, h, detail::lookup_arg<K>(k), eq_);
    V next = f(old ? &old->kv.second : static_cast<const V*>(nullptr));
    V stored = next;
    bool inserted = false;
    auto [root, l] = assoc(cur->root, h, std::move(k), std::move(next), inserted);
    publish_one(cur, std::move(root), cur->size + (inserted ? 1 : 0), l);
    return stored;
  }

  template <class Q>
  bool compare_exchange(const Q& q, const V& expected, V desired) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    const auto& a = detail::lookup_arg<K>(q);
    const std::size_t h = hash_(a);
    const leaf_t* old = ops::find(cur->root, h, a, eq_);
    if (!old || !(old->kv.second == expected)) return false;
    bool inserted = false;
    auto [root, l] = assoc(cur->root, h, old->kv.first, std::move(desired), inserted);
    publish_one(cur, std::move(root), cur->size, l);
    return true;
  }

  template <class Q>
  bool erase(const Q& q) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    const auto& a = detail::lookup_arg<K>(q);
    const leaf_t* l = ops::find(cur->root, hash_(a), a, eq_);
    if (!l) return false;
    node_ref root = ops::dissoc(cur->root, 0, l, eq_);
    const change c{l->hash, &l->kv.first, nullptr};  // l lives on in cur
    publish(cur, std::move(root), cur->size - 1, &c, 1);
    return true;
  }

  // Erases every entry for which pred(k, v) holds, in one version; returns
  // how many. pred sees every entry before anything is erased.
  template <class P>
  std::size_t erase_if(P pred) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    std::vector<const leaf_t*> doomed;
    auto decide = [&](const leaf_t* l) {
      if (detail::invoke_entry(pred, l->kv.first, l->kv.second)) doomed.push_back(l);
    };
    ops::walk(cur->root, decide);
    if (doomed.empty()) return 0;
    // Each step removes one leaf of `cur` (which keeps every leaf alive) from
    // the unpublished trie built so far (by identity: a key need not equal
    // itself, e.g. NaN).
    node_ref root;
    const node* at = cur->root;
    std::vector<change> changes;
    changes.reserve(doomed.size());
    for (const leaf_t* l : doomed) {
      root = ops::dissoc(at, 0, l, eq_);
      at = root.get();
      changes.push_back({l->hash, &l->kv.first, nullptr});
    }
    publish(cur, std::move(root), cur->size - doomed.size(), changes.data(), changes.size());
    return doomed.size();
  }

  void clear() {
    auto lock = write_lock();
    const tree* cur = writer_current();
    if (cur->size == 0) return;
    publish(cur, node_ref(), 0, nullptr, 0);
  }

  // A trie needs no reservation; kept for the stable API.
  void reserve(std::size_t) noexcept {}

  // Publishes every operation of b as one version. Returns the version number
  // in force afterwards (unchanged if no operation changed anything).
  std::uint64_t apply(const batch& b) {
    auto lock = write_lock();
    const tree* cur = writer_current();
    node_ref root;
    const node* at = cur->root;
    std::size_t size = cur->size;
    std::vector<change> changes;
    changes.reserve(b.ops_.size());
    for (const auto& o : b.ops_) {
      const auto& a = detail::lookup_arg<K>(o.key);
      const std::size_t h = hash_(a);
      if (o.val) {
        bool inserted = false;
        root = ops::assoc(at, 0, ops::make_leaf(h, o.key, *o.val), h, eq_, inserted);
        size += inserted ? 1 : 0;
      } else {
        const leaf_t* l = ops::find(at, h, a, eq_);
        if (!l) continue;
        root = ops::dissoc(at, 0, l, eq_);
        --size;
      }
      at = root.get();
      changes.push_back({h, &o.key, nullptr});
    }
    if (changes.empty()) return cur->number;
    // Intermediate leaves of a key written twice are gone: point each change
    // at the key's entry in the final trie (or none: erased).
    for (change& c : changes) c.leaf = ops::find(at, c.h, *c.key, eq_);
    // A key written twice: record it once, or its second record would send
    // it to trie mode (read_index::record). Equal final leaves mean the same
    // key; erases (no leaf) are recorded as they come (a repeat is a no-op).
    std::sort(changes.begin(), changes.end(),
              [](const change& x, const change& y) { return std::less<const leaf_t*>{}(x.leaf, y.leaf); });
    std::size_t kept = 0;
    for (std::size_t i = 0; i < changes.size(); ++i)
      if (!changes[i].leaf || kept == 0 || changes[kept - 1].leaf != changes[i].leaf) changes[kept++] = changes[i];
    changes.resize(kept);
    publish(cur, std::move(root), size, changes.data(), changes.size());
    // relaxed: writer-side read under the writer mutex (see writer_current).
    return current_.load(std::memory_order_relaxed)->number;
  }

  stats_t stats() const {
    auto snap = snapshot();
    stats_t s;
    s.map = "snapshot_map";
    s.size = snap.size();
    s.retired_pending = domain_->pending();
    s.retired_pending_bytes = domain_->pending_bytes();
    // capacity and load_factor: the read index's slots (every version since
    // its build shares it; a slot per entry plus one per key changed since).
    // Without an index (empty map, or a failed build), the trie's: no empty
    // slots.
    if (const index_t* ix = snap.t_->base) {
      s.capacity = ix->capacity();
      s.load_factor = s.capacity ? static_cast<double>(ix->used()) / static_cast<double>(s.capacity) : 0.0;
    } else {
      s.capacity = s.size;
      s.load_factor = s.size ? 1.0 : 0.0;
    }
    // probe_length_histogram[i]: entries found after i+1 node visits in the
    // trie (the path of writers, iteration, and reads of trie-mode keys).
    auto visit_node = [&](const node* n, unsigned depth) {
      if (n->kind == detail::hamt::node_kind::leaf) {
        if (s.probe_length_histogram.size() <= depth) s.probe_length_histogram.resize(depth + 1);
        ++s.probe_length_histogram[depth];
        s.bytes += sizeof(leaf_t);
      } else {
        s.bytes += sizeof(detail::hamt::inner) + n->count * sizeof(node*);
      }
    };
    ops::walk_nodes(snap.t_->root, 0, visit_node);
    s.bytes += sizeof(*this) + sizeof(tree);
    if (snap.t_->base) s.bytes += snap.t_->base->bytes();
    // relaxed: a statistic.
    s.growths = rebuilds_.load(std::memory_order_relaxed);
    // relaxed: a statistic.
    s.lock_waits = lock_waits_.load(std::memory_order_relaxed);
    return s;
  }

  detail::epoch_domain& domain() const noexcept { return *domain_; }

 private:
  const tree* load_current() const noexcept {
    // acquire: pairs with the release store in publish(), so the new
    // version's nodes, built before it, are visible to this reader.
    return current_.load(std::memory_order_acquire);
  }

  // Precondition: the writer mutex is held.
  const tree* writer_current() const noexcept {
    // relaxed: only writers store current_, and they hold the mutex we hold.
    return current_.load(std::memory_order_relaxed);
  }

  // One key a write changed: its hash, its key (owned by a leaf of the old
  // or new trie, or by the batch), and its entry in the new trie (nullptr:
  // erased).
  struct change {
    std::size_t h;
    const K* key;
    const leaf_t* leaf;
  };

  // The trie `n` with (k -> v) set, and the new leaf (owned by the result).
  std::pair<node_ref, const leaf_t*> assoc(const node* n, std::size_t h, K k, V v, bool& inserted) {
    node_ref fresh = ops::make_leaf(h, std::move(k), std::move(v));
    const auto* l = static_cast<const leaf_t*>(fresh.get());
    return {ops::assoc(n, 0, std::move(fresh), h, eq_, inserted), l};
  }

  void publish_one(const tree* cur, node_ref root, std::size_t size, const leaf_t* l) {
    const change c{l->hash, &l->kv.first, l};
    publish(cur, std::move(root), size, &c, 1);
  }

  // Publishes a new version with `root` (taken) replacing `cur`, then retires
  // cur; `changes` lists the keys it changed, for the read index (see
  // detail/read_index.hpp). Precondition: the writer mutex is held and cur ==
  // current_. Throws only before anything changed (the tree allocation).
  void publish(const tree* cur, node_ref root, std::size_t size, const change* changes, std::size_t n) {
    auto* t = new tree;  // may throw: root is still owned, nothing changed
    t->root = root.take();
    t->size = size;
    t->number = cur->number + 1;
    if (size != 0) update_index(cur, t, changes, n);
    // release: pairs with the acquire load in load_current(); also publishes
    // the index appends and stamps update_index made (read_index.hpp).
    current_.store(t, std::memory_order_release);
    domain_->retire(const_cast<tree*>(cur), &reclaim_tree);
  }

  // Gives t a read index: cur's, with t's changes recorded in it, or a new
  // one built from t's trie once too many of cur's keys are in trie mode or
  // a new key found it full. Never throws: the index only speeds reads up,
  // so if building fails t keeps cur's if it can still serve t, and
  // otherwise has none (every read asks the trie) until a later publish
  // builds one.
  void update_index(const tree* cur, tree* t, const change* changes, std::size_t n) noexcept {
    const index_t* ix = cur->base;
    if (ix && !ix->usable_at(t->number)) ix = nullptr;
    std::size_t stale = cur->stale;
    bool serves = ix != nullptr;
    if (ix) {
      try {
        for (std::size_t i = 0; i < n && serves; ++i) {
          const change& c = changes[i];
          switch (ix->record(c.h, *c.key, eq_, t->number, c.leaf ? &c.leaf->kv.second : nullptr)) {
            case index_t::recorded::kept:
              break;
            case index_t::recorded::stale:
              ++stale;
              break;
            case index_t::recorded::full:
              serves = false;
              break;
          }
        }
      } catch (...) {
        serves = false;  // the key equality threw: build a fresh index instead
      }
      if (serves && stale < kRebuildMin + t->size / kRebuildFraction) {
        keep_index(t, ix, stale);
        return;
      }
    }
    try {
      t->base = index_t::build(t->size + t->size / 8, t->number, [&](auto&& add) {
        auto each = [&](const leaf_t* l) { add(l->hash, l->kv.first, l->kv.second); };
        ops::walk(t->root, each);
      });
      // relaxed: a statistic.
      rebuilds_.fetch_add(1, std::memory_order_relaxed);
    } catch (...) {
      if (serves) keep_index(t, ix, stale);  // else: no index, reads go to the trie
    }
  }

  static void keep_index(tree* t, const index_t* ix, std::size_t stale) noexcept {
    index_t::acquire(ix);
    t->base = ix;
    t->stale = stale;
  }

  std::unique_lock<std::mutex> write_lock() {
    std::unique_lock lock(write_mutex_, std::try_to_lock);
    if (!lock.owns_lock()) {
      // relaxed: a statistic; the mutex orders the writes.
      lock_waits_.fetch_add(1, std::memory_order_relaxed);
      lock.lock();
    }
    return lock;
  }

  // Rebuild the read index once the changes since it was built reach
  // kRebuildMin + size / kRebuildFraction (so at most about 1/8 of the keys
  // take the slow path, and a write pays about 8 entry copies amortized), or
  // once it is full. It is built with room for 9/8 of the size, rounded up
  // to a power of two groups: a map that stays put keeps the footprint of a
  // flat table, and one that grows fills the index to 7/8 and then doubles
  // it (about 2 copies per insert amortized).
  static constexpr std::size_t kRebuildMin = 32;
  static constexpr std::size_t kRebuildFraction = 8;

  detail::epoch_domain* domain_;
  std::atomic<const tree*> current_{nullptr};  // never null after construction
  std::mutex write_mutex_;                     // Protects: building and publishing versions (stores to current_).
  mutable std::atomic<std::uint64_t> rebuilds_{0};
  mutable std::atomic<std::uint64_t> lock_waits_{0};
  [[no_unique_address]] Hash hash_{};
  [[no_unique_address]] Eq eq_{};
};

}  // namespace polymap

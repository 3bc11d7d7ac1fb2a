// polymap/detail/hamt.hpp — a persistent (immutable, structurally shared)
// hash array mapped trie: the storage behind snapshot_map.
//
// TERMS
//   node      : a leaf (one entry), a branch (up to 32 children chosen by 5
//               bits of the hash) or a collision node (entries whose full
//               64-bit hashes are equal). Every node is immutable once built.
//   version   : a `tree` record { refs, root, size, number }. A version owns
//               one reference on its root.
//   path copy : a write copies the branches from the root down to the changed
//               slot and points the copies at the untouched siblings, which
//               thereby gain one reference each.
//
// LAYOUT
//   branch:    [refs u32 | kind u8 | count u32 | bitmap u32][hash u64][child* x count]  (24 B + 8 B per child)
//   collision: same header, bitmap unused, hash = the shared hash, children
//              are leaves.
//   leaf:      [refs u32 | kind u8][hash u64][std::pair<const K, V>]
//   A branch at depth d (shift s = 5d) holds child i in slot popcount(bitmap &
//   ((1 << i) - 1)), i = (hash >> s) & 31. Depth is at most 13 branches
//   (13 * 5 >= 64 bits), then at most one collision node.
//
// INVARIANTS
//   1. A node's refs counts the branches, collision nodes and versions that
//      point at it. It is freed when that count reaches zero, and it then
//      releases its children.
//   2. A branch holds at least one child; a branch with a single child holds a
//      branch (a lone leaf or collision node is lifted into its parent's
//      slot, where lookups still find it: a lookup checks the full hash and
//      key at a leaf, whatever its depth).
//   3. An empty map's root is nullptr.
//   4. Nothing reachable from a published root is ever written again; refs
//      is the only mutable word in a node, and readers never touch it.
//
// WHY REFERENCE COUNTS AND NOT "RETIRE THE OLD PATH"
//   With structural sharing a node belongs to many versions: the version that
//   replaced a path still shares everything else, and a snapshot may keep an
//   older version alive long after a newer one was retired. Retiring "the
//   nodes this write replaced" would free nodes an older snapshot still
//   reaches. Counting references per node makes the rule local: a version's
//   root is released once no reader can reach the version (epoch reclamation
//   or the last snapshot handle), and the release cascades exactly as far as
//   nodes became unshared. Readers never touch the counts, so a lookup writes
//   nothing shared.
//
// COST OF A WRITE (n entries)
//   A path of about log32(n) branches is copied (2 for 10^3 entries, 3 for
//   3*10^4, 4 for 10^6), each copy allocating one node and adding one
//   reference to each sibling it points at (up to 31 relaxed increments per
//   level, on cache lines other writers do not share). When the replaced
//   version is reclaimed, the same number of nodes is freed. Measured numbers
//   are in snapshot_map.hpp.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace polymap::detail::hamt {

// Live node count over every trie in the process, for leak tests and stats.
// relaxed: a statistic; it orders nothing.
inline std::atomic<std::int64_t>& live_nodes() noexcept {
  static std::atomic<std::int64_t> n{0};
  return n;
}

enum class node_kind : std::uint8_t { leaf, branch, collision };

inline constexpr unsigned bits_per_level = 5;
inline constexpr unsigned fanout = 1u << bits_per_level;
inline constexpr unsigned max_depth = 16;  // 13 branch levels + collision + slack

struct node {
  // See invariant 1. Increments are relaxed: a new reference is always made
  // from an existing one (the writer holds the current version, which owns
  // the node), so the count cannot reach zero meanwhile. The decrement is
  // acq_rel: the release orders this owner's last reads of the node before
  // the count drops; the acquire, taken by the thread that frees, pairs with
  // every earlier release so the free follows every other owner's use.
  mutable std::atomic<std::uint32_t> refs{1};
  node_kind kind;
  std::uint32_t count = 0;   // children (branch: <= 32; collision: any)
  std::uint32_t bitmap = 0;  // branch only
  std::size_t hash = 0;      // leaf: its hash; collision: the shared hash

  explicit node(node_kind k) noexcept : kind(k) {}
};

template <class K, class V>
struct leaf : node {
  std::pair<const K, V> kv;
  template <class KK, class VV>
  leaf(std::size_t h, KK&& k, VV&& v) : node(node_kind::leaf), kv(std::forward<KK>(k), std::forward<VV>(v)) {
    hash = h;
  }
};

// Branch and collision nodes: a header followed by `count` child pointers.
struct inner : node {
  using node::node;
  node** kids() noexcept { return reinterpret_cast<node**>(reinterpret_cast<char*>(this) + sizeof(inner)); }
  node* const* kids() const noexcept {
    return reinterpret_cast<node* const*>(reinterpret_cast<const char*>(this) + sizeof(inner));
  }
};
static_assert(sizeof(inner) % alignof(node*) == 0);

inline void acquire(const node* n) noexcept {
  if (n) n->refs.fetch_add(1, std::memory_order_relaxed);  // relaxed: see node::refs
}

template <class K, class V>
struct ops {
  using leaf_t = leaf<K, V>;

  // Frees n if this was its last reference, then releases its children.
  static void release(const node* n) noexcept {
    if (!n) return;
    // acq_rel: see node::refs.
    if (n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    node* m = const_cast<node*>(n);
    if (m->kind == node_kind::leaf) {
      delete static_cast<leaf_t*>(m);
    } else {
      auto* in = static_cast<inner*>(m);
      for (unsigned i = 0; i < in->count; ++i) release(in->kids()[i]);
      in->~inner();
      ::operator delete(in);
    }
    live_nodes().fetch_sub(1, std::memory_order_relaxed);  // relaxed: a statistic
  }

  // An owned reference that releases on scope exit unless handed on.
  class ref {
   public:
    ref() = default;
    explicit ref(node* p) noexcept : p_(p) {}
    ref(ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    ref& operator=(ref&& o) noexcept {
      if (this != &o) {
        release(p_);
        p_ = std::exchange(o.p_, nullptr);
      }
      return *this;
    }
    ~ref() { release(p_); }
    node* get() const noexcept { return p_; }
    node* take() noexcept { return std::exchange(p_, nullptr); }

   private:
    node* p_ = nullptr;
  };

  template <class KK, class VV>
  static ref make_leaf(std::size_t h, KK&& k, VV&& v) {
    ref r(new leaf_t(h, std::forward<KK>(k), std::forward<VV>(v)));
    live_nodes().fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return r;
  }

  // An inner node with room for n children, all unset (the caller fills them
  // before anything can throw: it holds no references yet).
  static inner* alloc_inner(node_kind k, unsigned n) {
    void* mem = ::operator new(sizeof(inner) + n * sizeof(node*));
    auto* in = new (mem) inner(k);
    in->count = n;
    live_nodes().fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return in;
  }

  static unsigned index_at(std::size_t h, unsigned shift) noexcept {
    return static_cast<unsigned>((h >> shift) & (fanout - 1));
  }
  static unsigned slot_of(std::uint32_t bitmap, unsigned idx) noexcept {
    return static_cast<unsigned>(std::popcount(bitmap & ((1u << idx) - 1u)));
  }

  // --- lookup (readers; touches nothing shared) ----------------------------
  template <class Q, class Eq>
  static const leaf_t* find(const node* n, std::size_t h, const Q& q,
                            const Eq& eq) noexcept(noexcept(eq(std::declval<const K&>(), q))) {
    unsigned shift = 0;
    while (n) {
      switch (n->kind) {
        case node_kind::leaf: {
          auto* l = static_cast<const leaf_t*>(n);
          return (l->hash == h && eq(l->kv.first, q)) ? l : nullptr;
        }
        case node_kind::branch: {
          const unsigned idx = index_at(h, shift);
          if (!(n->bitmap & (1u << idx))) return nullptr;
          n = static_cast<const inner*>(n)->kids()[slot_of(n->bitmap, idx)];
          shift += bits_per_level;
          break;
        }
        case node_kind::collision: {
          if (n->hash != h) return nullptr;
          auto* in = static_cast<const inner*>(n);
          for (unsigned i = 0; i < in->count; ++i) {
            auto* l = static_cast<const leaf_t*>(in->kids()[i]);
            if (eq(l->kv.first, q)) return l;
          }
          return nullptr;
        }
      }
    }
    return nullptr;
  }

  // --- persistent writes (the caller holds the writer lock) ----------------

  // A copy of branch `b` with child slot `slot` replaced by `child` (taken).
  static ref replace_child(const inner* b, unsigned slot, ref child) {
    inner* c = alloc_inner(b->kind, b->count);
    c->bitmap = b->bitmap;
    c->hash = b->hash;
    for (unsigned i = 0; i < b->count; ++i) {
      if (i == slot) {
        c->kids()[i] = child.take();
      } else {
        c->kids()[i] = b->kids()[i];
        acquire(b->kids()[i]);
      }
    }
    return ref(c);
  }

  // A copy of branch `b` with `child` (taken) inserted at index idx.
  static ref insert_child(const inner* b, unsigned idx, ref child) {
    const unsigned slot = slot_of(b->bitmap, idx);
    inner* c = alloc_inner(node_kind::branch, b->count + 1u);
    c->bitmap = b->bitmap | (1u << idx);
    for (unsigned i = 0, j = 0; i < c->count; ++i) {
      if (i == slot) {
        c->kids()[i] = child.take();
      } else {
        c->kids()[i] = b->kids()[j];
        acquire(b->kids()[j]);
        ++j;
      }
    }
    return ref(c);
  }

  // A copy of `b` without child slot `slot` (b->count >= 2).
  static ref remove_child(const inner* b, unsigned slot, std::uint32_t bit) {
    inner* c = alloc_inner(b->kind, b->count - 1u);
    c->bitmap = b->bitmap & ~bit;
    c->hash = b->hash;
    for (unsigned i = 0, j = 0; i < b->count; ++i) {
      if (i == slot) continue;
      c->kids()[j++] = b->kids()[i];
      acquire(b->kids()[i]);
    }
    return ref(c);
  }

  // A subtree holding a and b (both taken), whose hashes differ, at `shift`.
  static ref merge(ref a, std::size_t ha, ref b, std::size_t hb, unsigned shift) {
    const unsigned ia = index_at(ha, shift), ib = index_at(hb, shift);
    if (ia == ib) {
      ref sub = merge(std::move(a), ha, std::move(b), hb, shift + bits_per_level);
      inner* c = alloc_inner(node_kind::branch, 1);
      c->bitmap = 1u << ia;
      c->kids()[0] = sub.take();
      return ref(c);
    }
    inner* c = alloc_inner(node_kind::branch, 2);
    c->bitmap = (1u << ia) | (1u << ib);
    const bool a_first = ia < ib;
    c->kids()[a_first ? 0 : 1] = a.take();
    c->kids()[a_first ? 1 : 0] = b.take();
    return ref(c);
  }

  // The trie `n` with (key -> value) set; `fresh` is a new leaf (taken) with
  // hash h. `inserted` tells whether the key was absent.
  template <class Eq>
  static ref assoc(const node* n, unsigned shift, ref fresh, std::size_t h, const Eq& eq, bool& inserted) {
    if (!n) {
      inserted = true;
      return fresh;
    }
    const K& k = static_cast<const leaf_t*>(fresh.get())->kv.first;
    switch (n->kind) {
      case node_kind::leaf: {
        auto* l = static_cast<const leaf_t*>(n);
        if (l->hash == h && eq(l->kv.first, k)) {
          inserted = false;
          return fresh;
        }
        inserted = true;
        acquire(l);
        ref old(const_cast<node*>(n));
        if (l->hash == h) {
          inner* c = alloc_inner(node_kind::collision, 2);
          c->hash = h;
          c->kids()[0] = old.take();
          c->kids()[1] = fresh.take();
          return ref(c);
        }
        return merge(std::move(old), l->hash, std::move(fresh), h, shift);
      }
      case node_kind::branch: {
        auto* b = static_cast<const inner*>(n);
        const unsigned idx = index_at(h, shift);
        const std::uint32_t bit = 1u << idx;
        if (!(b->bitmap & bit)) {
          inserted = true;
          return insert_child(b, idx, std::move(fresh));
        }
        const unsigned slot = slot_of(b->bitmap, idx);
        ref child = assoc(b->kids()[slot], shift + bits_per_level, std::move(fresh), h, eq, inserted);
        return replace_child(b, slot, std::move(child));
      }
      case node_kind::collision: {
        auto* c = static_cast<const inner*>(n);
        if (c->hash != h) {
          inserted = true;
          acquire(c);
          return merge(ref(const_cast<node*>(n)), c->hash, std::move(fresh), h, shift);
        }
        for (unsigned i = 0; i < c->count; ++i) {
          if (eq(static_cast<const leaf_t*>(c->kids()[i])->kv.first, k)) {
            inserted = false;
            return replace_child(c, i, std::move(fresh));
          }
        }
        inserted = true;
        inner* d = alloc_inner(node_kind::collision, c->count + 1u);
        d->hash = h;
        for (unsigned i = 0; i < c->count; ++i) {
          d->kids()[i] = c->kids()[i];
          acquire(c->kids()[i]);
        }
        d->kids()[c->count] = fresh.take();
        return ref(d);
      }
    }
    return fresh;  // unreachable
  }

  // The trie `n` without the entry `l` (which it holds; found by find()).
  template <class Eq>
  static ref dissoc(const node* n, unsigned shift, const leaf_t* target, const Eq& eq) {
    switch (n->kind) {
      case node_kind::leaf:
        return ref();  // n == target
      case node_kind::branch: {
        auto* b = static_cast<const inner*>(n);
        const unsigned idx = index_at(target->hash, shift);
        const std::uint32_t bit = 1u << idx;
        const unsigned slot = slot_of(b->bitmap, idx);
        ref child = dissoc(b->kids()[slot], shift + bits_per_level, target, eq);
        if (!child.get()) {
          if (b->count == 1) return ref();
          if (b->count == 2) {
            // Invariant 2: lift a lone leaf or collision node.
            node* other = b->kids()[slot ^ 1u];
            if (other->kind != node_kind::branch) {
              acquire(other);
              return ref(other);
            }
          }
          return remove_child(b, slot, bit);
        }
        if (b->count == 1 && child.get()->kind != node_kind::branch) return child;  // invariant 2
        return replace_child(b, slot, std::move(child));
      }
      case node_kind::collision: {
        auto* c = static_cast<const inner*>(n);
        unsigned at = 0;
        while (c->kids()[at] != target) ++at;
        if (c->count == 2) {
          node* other = c->kids()[at ^ 1u];
          acquire(other);
          return ref(other);
        }
        return remove_child(c, at, 0);
      }
    }
    (void)eq;
    return ref();
  }

  // Calls f(leaf) for every entry under n, in trie order.
  template <class F>
  static void walk(const node* n, F& f) {
    if (!n) return;
    if (n->kind == node_kind::leaf) {
      f(static_cast<const leaf_t*>(n));
      return;
    }
    auto* in = static_cast<const inner*>(n);
    for (unsigned i = 0; i < in->count; ++i) walk(in->kids()[i], f);
  }

  // Calls f(node, depth) for every node under n (stats, invariant checks).
  template <class F>
  static void walk_nodes(const node* n, unsigned depth, F& f) {
    if (!n) return;
    f(n, depth);
    if (n->kind == node_kind::leaf) return;
    auto* in = static_cast<const inner*>(n);
    for (unsigned i = 0; i < in->count; ++i) walk_nodes(in->kids()[i], depth + 1, f);
  }
};

// A version: what the map's one atomic pointer and every snapshot point at.
struct tree {
  // Counts the map's current pointer (until its retirement is reclaimed) and
  // each snapshot handle. Orders as node::refs.
  mutable std::atomic<std::uint32_t> refs{1};
  node* root = nullptr;      // owns one reference
  std::size_t size = 0;      // entries
  std::uint64_t number = 0;  // publishes before this one
};

// Forward iterator over the leaves of one trie, with an explicit stack.
template <class K, class V>
class leaf_iterator {
  using leaf_t = leaf<K, V>;

 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = std::pair<const K, V>;
  using difference_type = std::ptrdiff_t;
  using pointer = const value_type*;
  using reference = const value_type&;

  leaf_iterator() = default;
  explicit leaf_iterator(const node* root) {
    if (root) descend(root);
  }
  reference operator*() const noexcept { return cur_->kv; }
  pointer operator->() const noexcept { return &cur_->kv; }
  leaf_iterator& operator++() {
    advance();
    return *this;
  }
  leaf_iterator operator++(int) {
    auto t = *this;
    advance();
    return t;
  }
  friend bool operator==(const leaf_iterator& a, const leaf_iterator& b) noexcept { return a.cur_ == b.cur_; }

 private:
  struct frame {
    const inner* n;
    unsigned i;
  };
  void descend(const node* n) {
    while (n->kind != node_kind::leaf) {
      auto* in = static_cast<const inner*>(n);
      stack_[++top_] = {in, 0};
      n = in->kids()[0];
    }
    cur_ = static_cast<const leaf_t*>(n);
  }
  void advance() {
    while (top_ >= 0) {
      frame& f = stack_[top_];
      if (++f.i < f.n->count) {
        descend(f.n->kids()[f.i]);
        return;
      }
      --top_;
    }
    cur_ = nullptr;
  }

  frame stack_[max_depth]{};
  int top_ = -1;
  const leaf_t* cur_ = nullptr;
};

}  // namespace polymap::detail::hamt

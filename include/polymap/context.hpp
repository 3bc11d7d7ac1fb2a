// polymap/context.hpp — a small per-request map: inline storage, typed keys,
// concurrent writes from fan-out stages, fork() and merge().
//
// WHAT IT IS FOR
//   The article's "request context carrier": a map created per request (usually
//   under 16 entries), handed across threads and written by parallel fan-out
//   stages. A context is cheap to create (no heap allocation), typed through
//   key<T>, and layered: fork() gives a child whose reads fall through to its
//   parent (a request context over a config snapshot, a stage over its
//   request) and whose writes stay local until merge() brings them back.
//
//     polymap::context request;                        // on the stack
//     request.set(user_id, 42);                        // key<std::int64_t>
//     polymap::context stage = request.fork();         // reads see user_id
//     stage.set(cache_hit, true);                      // local to the stage
//     auto r = request.merge(stage, polymap::merge_policy::fail);
//
// CONTRACT
//   Storage. Up to `inline_capacity` (8) entries live inside the object; the
//     9th distinct name allocates an overflow table. The context itself makes
//     no heap allocation before that. What a value carries is its own business:
//     a string, bytes or user type lives in the value's shared payload, and a
//     name longer than std::string's small-string buffer (15 chars with
//     libstdc++) allocates its copy.
//   Values. Entries hold polymap::value. set(key<T>, x) stores T{x} (no
//     narrowing, as typed_access::set); get(key<T>) returns result<T>:
//     errc::not_found, or errc::type_mismatch naming the key and both types.
//     String names work too: set(name, value), find(name), get<T>(name).
//   Threads. Every member function may be called from any thread at any time,
//     except the destructor. Each context has one spinlock (choice: a 1-byte
//     test-and-test-and-set lock that yields after 64 spins; critical sections
//     are a scan of at most 8 entries or one hash lookup plus a value copy,
//     far shorter than a std::mutex's uncontended lock/unlock pair is worth,
//     and the lock keeps the context small). User callbacks run under it only
//     in update(); keep them short and do not call back into the same context.
//     Each single-context operation is linearizable.
//   Lock protocol. At most one context lock is held at a time. A read that
//     falls through releases the child's lock before taking the parent's, so
//     it sees the child as of one moment and the parent as of a later one.
//     merge() copies the child's entries under the child's lock, then applies
//     them under the parent's lock (atomically with respect to the parent).
//   Lifetime. A context is neither copyable nor movable: children point at it.
//     fork() borrows: the parent must outlive the child. The parent counts its
//     live children and its destructor aborts with a message if any remain, in
//     every build mode (one relaxed increment per fork, one release decrement
//     per child destruction): a use after free becomes a clear crash.
//     context::fork(std::shared_ptr<const context>) gives a child that shares
//     ownership of its parent, for parents whose lifetime is not a scope (a
//     config snapshot replaced by a reload while requests still use it).
//   Erase. erase(name) removes the local entry only; a parent's entry of the
//     same name shows through again. size() and for_each() are local too.
//     While children forked from this context are alive, an erased name (and
//     each name clear() removes) leaves a tombstone: an entry that reads as
//     absent but records when it was erased, so that a later merge can tell
//     the erase from "never there". Tombstones are dropped at the next write
//     once no child is alive; until then they count against the 8 inline
//     slots (a name set again reuses its tombstone).
//   Merge. merge(child, policy) writes into this context (the child's parent)
//     the child's local entries that the child wrote since the fork or since
//     its last successful merge; older entries were merged already and are not
//     looked at again, so a parent's later rewrite or erase of them stands.
//     The decision uses versions (a write counter per context), not values: a
//     name is a conflict when the child wrote it since its last merge and this
//     context wrote or erased it since the same point (the fork, or the
//     child's last merge), unless this context's current value equals the
//     child's (then it is neither a conflict nor rewritten). An erase here
//     against a child's write is a conflict. A child's own erase is local
//     (see Erase) and is not merged. Policies: keep_parent (a conflict keeps
//     this context's value or erase), take_child (the child's value wins),
//     fail (nothing is written if any conflict exists). The merge_result lists
//     every conflict in all three. A merge that did not fail rebases the
//     child: its next merge sees only what either side wrote after this one
//     (a conflict that keep_parent dropped is not retried unless the child
//     writes that name again).
//   Chains. Reads walk the chain of parents in a loop, and destroying a chain
//     of shared parents releases them in a loop, so a chain may be arbitrarily
//     deep (one million levels) without deep recursion.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "polymap/detail/hash.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/result.hpp"
#include "polymap/value.hpp"

namespace polymap {

namespace detail {

// A test-and-test-and-set spinlock: 1 byte, no allocation, yields the CPU
// after 64 spins so that a preempted holder (2 cores, many threads) is not
// starved by its waiters.
class spinlock {
 public:
  void lock() noexcept {
    // acquire: pairs with unlock's release; the holder's writes are visible.
    while (locked_.exchange(true, std::memory_order_acquire)) {
      int spins = 0;
      // relaxed: only a hint to retry the exchange, which does the ordering.
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins >= 64) {
          std::this_thread::yield();
          spins = 0;
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }  // pairs with lock's acquire

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace detail

enum class merge_policy : unsigned char {
  keep_parent,  // a conflicting name keeps the parent's value
  take_child,   // the child's value replaces the parent's
  fail,         // if any name conflicts, write nothing
};

struct merge_result {
  std::size_t applied = 0;  // child writes taken (written, or already equal in the parent)
  // Names both sides changed since the fork (or the child's last merge), to
  // different values or by a parent's erase.
  std::vector<std::string> conflicts;
  bool failed = false;  // merge_policy::fail found conflicts: nothing was written
  explicit operator bool() const noexcept { return !failed; }
};

class context {
 public:
  static constexpr std::size_t inline_capacity = 8;

  context() noexcept = default;
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  ~context() {
    // acquire: pairs with the release decrement in each child's destructor, so
    // the children's last reads of this context happen before it is destroyed.
    if (const auto n = live_children_.load(std::memory_order_acquire); n != 0) {
      std::fprintf(stderr,
                   "polymap::context destroyed while %zu forked child context(s) still read through it.\n"
                   "A child made by fork() borrows its parent: destroy (or merge and destroy) the children first,\n"
                   "or make the parent shared and fork with polymap::context::fork(std::shared_ptr<const "
                   "context>).\n",
                   static_cast<std::size_t>(n));
      std::abort();
    }
    destroy_entries();
    if (parent_) parent_->live_children_.fetch_sub(1, std::memory_order_release);  // see above
    if (owner_) release_owner(std::move(owner_));
  }

  // --- layering ---------------------------------------------------------------
  // A child that reads through to *this and writes locally; *this must outlive
  // it (checked in the destructor).
  context fork() const { return context(this, nullptr); }

  // A child that shares ownership of its parent.
  static context fork(std::shared_ptr<const context> parent) {
    if (!parent) throw std::invalid_argument("polymap::context::fork: null parent");
    const context* p = parent.get();
    return context(p, std::move(parent));
  }

  const context* parent() const noexcept { return parent_; }

  // Brings what the child wrote since the fork (or its last merge) into this
  // context; see CONTRACT, Merge. Throws std::invalid_argument if child was
  // not forked from this context.
  merge_result merge(context& child, merge_policy policy) {
    if (child.parent_ != this) throw std::invalid_argument("polymap::context::merge: not a child of this context");
    std::vector<std::pair<std::string, value>> writes;
    std::uint64_t base, copied;
    {
      guard g(child.lock_);
      base = child.base_clock_;
      copied = child.clock_;
      child.unprotected_for_each([&](const entry& e) {
        if (e.seq > child.merged_clock_) writes.emplace_back(e.name, e.v);
      });
    }
    merge_result out;
    std::uint64_t rebased;
    {
      guard g(lock_);
      // A name conflicts when this context wrote or erased it after `base` and
      // does not now hold the child's value.
      const auto conflicts = [&](const entry* mine, const value& v) {
        return mine && mine->seq > base && (mine->erased || !(mine->v == v));
      };
      for (const auto& [name, v] : writes) {
        if (conflicts(unprotected_slot(name), v)) out.conflicts.push_back(name);
      }
      out.failed = policy == merge_policy::fail && !out.conflicts.empty();
      if (!out.failed) {
        for (auto& [name, v] : writes) {
          const entry* mine = unprotected_slot(name);
          if (conflicts(mine, v) && policy == merge_policy::keep_parent) continue;
          ++out.applied;
          // An equal value is already there: leave its seq alone, so other
          // children do not see a write that changed nothing as a conflict.
          if (mine && !mine->erased && mine->v == v) continue;
          unprotected_put(name, std::move(v));
        }
      }
      rebased = clock_;
    }
    if (!out.failed) {
      guard g(child.lock_);
      // max: a concurrent merge of the same child may have rebased it further.
      if (rebased > child.base_clock_) child.base_clock_ = rebased;
      if (copied > child.merged_clock_) child.merged_clock_ = copied;
    }
    return out;
  }

  // --- typed keys -------------------------------------------------------------
  // Stores T{x}; true if the name was new in this context (local entries).
  template <class T, class U>
  requires non_narrowing<U, T>
  bool set(const key<T>& k, U&& x) { return set(std::string_view(k.name()), value(T{std::forward<U>(x)})); }

  template <class T>
  result<T> get(const key<T>& k) const {
    return get<T>(std::string_view(k.name()));
  }

  // Atomic with respect to this context's writes: stores f(cur), cur being the
  // visible T (local, else the parent's as of the call) or nullptr if absent;
  // errc::type_mismatch (nothing written) if the name holds another type.
  template <class T, class F>
  result<T> update(const key<T>& k, F f) {
    static_assert(std::is_convertible_v<std::invoke_result_t<F&, const T*>, T>,
                  "polymap::context::update: f must take (const T*) and return a T");
    std::optional<value> inherited = parent_ ? parent_->find(k.name()) : std::nullopt;
    guard g(lock_);
    const entry* mine = unprotected_find(k.name());
    const value* cur = mine ? &mine->v : (inherited ? &*inherited : nullptr);
    const T* typed = nullptr;
    if (cur) {
      typed = cur->template get_if<T>();
      if (!typed) return cur->template mismatch<T>(k.name());
    }
    T next = f(typed);
    unprotected_put(k.name(), value(next));
    return next;
  }

  // --- string names -------------------------------------------------------------
  bool set(std::string_view name, value v) {
    guard g(lock_);
    return unprotected_put(name, std::move(v));
  }

  // The visible value: local, else the nearest parent's.
  std::optional<value> find(std::string_view name) const {
    std::optional<value> out;
    visible(name, [&](const entry& e) { out = e.v; });
    return out;
  }

  template <class T, class Q>
  requires(std::is_convertible_v<const Q&, std::string_view> && !detail::is_key<Q>::value) result<T> get(const Q& q)
  const {
    const std::string_view name(q);
    std::optional<result<T>> out;
    visible(name, [&](const entry& e) {
      if (const T* p = e.v.template get_if<T>())
        out.emplace(*p);
      else
        out.emplace(e.v.template mismatch<T>(name));
    });
    if (out) return std::move(*out);
    return detail::not_found_error(name);
  }

  bool contains(std::string_view name) const {
    return visible(name, [](const entry&) {});
  }

  // Removes the local entry; true if there was one.
  bool erase(std::string_view name) {
    guard g(lock_);
    return unprotected_erase(name);
  }

  // Local entries (the parent's are not counted).
  std::size_t size() const {
    guard g(lock_);
    return unprotected_size();
  }

  // Calls f(name, value) for each local entry, on a copy taken under the lock;
  // f runs without the lock and may use the context.
  template <class F>
  void for_each(F f) const {
    std::vector<std::pair<std::string, value>> copy;
    {
      guard g(lock_);
      copy.reserve(unprotected_size());
      unprotected_for_each([&](const entry& e) { copy.emplace_back(e.name, e.v); });
    }
    for (const auto& [name, v] : copy) f(static_cast<const std::string&>(name), v);
  }

  // Removes every local entry.
  void clear() {
    guard g(lock_);
    if (!has_live_children()) {
      destroy_entries();
      return;
    }
    std::vector<std::string> names;
    names.reserve(unprotected_size());
    unprotected_for_each([&](const entry& e) { names.push_back(e.name); });
    for (const auto& name : names) unprotected_erase(name);
  }

  // True while the entries fit the inline storage (no overflow table).
  bool is_inline() const {
    guard g(lock_);
    return !overflow_;
  }

 private:
  struct entry {
    std::string name;
    value v;
    std::uint64_t seq;    // clock_ when last written or erased here
    bool erased = false;  // a tombstone: reads as absent (see CONTRACT, Erase)
  };
  using overflow_table = boost::unordered_flat_map<std::string, entry, polymap::hash<std::string>, std::equal_to<>>;

  class guard {
   public:
    explicit guard(detail::spinlock& l) noexcept : l_(l) { l_.lock(); }
    ~guard() { l_.unlock(); }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

   private:
    detail::spinlock& l_;
  };

  context(const context* parent, std::shared_ptr<const context> owner) : parent_(parent), owner_(std::move(owner)) {
    // relaxed: a count only; the destructor's acquire load pairs with the
    // children's release decrements, and this child is not yet visible to
    // anyone else. A writer of the parent that must keep tombstones sees the
    // count because the increment is sequenced before the lock below.
    parent_->live_children_.fetch_add(1, std::memory_order_relaxed);
    guard g(parent_->lock_);
    base_clock_ = parent_->clock_;
  }

  // Walks this context and its parents, one lock at a time, and calls
  // on_found(entry) under the lock of the first context holding a live entry
  // of that name. A loop, not recursion: chains may be very deep.
  template <class F>
  bool visible(std::string_view name, F on_found) const {
    for (const context* c = this; c; c = c->parent_) {
      guard g(c->lock_);
      if (const entry* e = c->unprotected_find(name)) {
        on_found(*e);
        return true;
      }
    }
    return false;
  }

  // Releases the last link of a chain of shared parents without recursion: a
  // context destroyed while a release is in progress on this thread hands its
  // owner to that release's loop instead of releasing it itself.
  static void release_owner(std::shared_ptr<const context> owner) noexcept {
    thread_local std::vector<std::shared_ptr<const context>>* pending = nullptr;
    if (pending) {
      pending->push_back(std::move(owner));  // on allocation failure: terminate (noexcept)
      return;
    }
    std::vector<std::shared_ptr<const context>> queue;
    pending = &queue;
    owner.reset();  // may destroy the parent, whose destructor queues its own owner
    while (!queue.empty()) {
      std::shared_ptr<const context> next = std::move(queue.back());
      queue.pop_back();
      next.reset();
    }
    pending = nullptr;
  }

  // acquire: pairs with the release decrement in each child's destructor.
  bool has_live_children() const noexcept { return live_children_.load(std::memory_order_acquire) != 0; }

  entry* inline_at(std::size_t i) noexcept { return std::launder(reinterpret_cast<entry*>(inline_) + i); }
  const entry* inline_at(std::size_t i) const noexcept {
    return std::launder(reinterpret_cast<const entry*>(inline_) + i);
  }

  // The functions below require lock_ held (or, in the destructor, no other user).

  // The entry of that name, tombstone or not.
  const entry* unprotected_slot(std::string_view name) const {
    for (std::size_t i = 0; i < inline_count_; ++i) {
      const entry* e = inline_at(i);
      if (e->name.size() == name.size() && std::string_view(e->name) == name) return e;
    }
    if (overflow_) {
      auto it = overflow_->find(name);
      if (it != overflow_->end()) return &it->second;
    }
    return nullptr;
  }

  // The live entry of that name.
  const entry* unprotected_find(std::string_view name) const {
    const entry* e = unprotected_slot(name);
    return e && !e->erased ? e : nullptr;
  }

  // True if the name was new (absent or a tombstone).
  bool unprotected_put(std::string_view name, value v) {
    drop_tombstones_if_unneeded();
    const std::uint64_t seq = ++clock_;
    if (entry* e = const_cast<entry*>(unprotected_slot(name))) {
      const bool was_erased = e->erased;
      e->v = std::move(v);
      e->seq = seq;
      e->erased = false;
      if (was_erased) --tombstones_;
      return was_erased;
    }
    if (inline_count_ < inline_capacity) {
      new (inline_at(inline_count_)) entry{std::string(name), std::move(v), seq};
      ++inline_count_;
      return true;
    }
    if (!overflow_) overflow_ = std::make_unique<overflow_table>();
    overflow_->emplace(std::string(name), entry{std::string(name), std::move(v), seq});
    return true;
  }

  // True if a live entry was removed. With children alive it becomes a
  // tombstone (see CONTRACT, Erase); otherwise it is removed.
  bool unprotected_erase(std::string_view name) {
    drop_tombstones_if_unneeded();
    entry* e = const_cast<entry*>(unprotected_find(name));
    if (!e) return false;
    if (has_live_children()) {
      e->v = value();
      e->seq = ++clock_;
      e->erased = true;
      ++tombstones_;
      return true;
    }
    unprotected_remove(e);
    return true;
  }

  // Removes the entry e points at from the storage.
  void unprotected_remove(entry* e) {
    for (std::size_t i = 0; i < inline_count_; ++i) {
      if (inline_at(i) != e) continue;
      if (i + 1 != inline_count_) *e = std::move(*inline_at(inline_count_ - 1));
      std::destroy_at(inline_at(inline_count_ - 1));
      --inline_count_;
      return;
    }
    overflow_->erase(overflow_->find(std::string_view(e->name)));
  }

  void drop_tombstones_if_unneeded() {
    if (tombstones_ == 0 || has_live_children()) return;
    for (std::size_t i = inline_count_; i-- > 0;) {
      if (inline_at(i)->erased) unprotected_remove(inline_at(i));
    }
    if (overflow_) boost::unordered::erase_if(*overflow_, [](const auto& kv) { return kv.second.erased; });
    tombstones_ = 0;
  }

  std::size_t unprotected_size() const noexcept {
    return inline_count_ + (overflow_ ? overflow_->size() : 0) - tombstones_;
  }

  // Live entries only.
  template <class F>
  void unprotected_for_each(F f) const {
    for (std::size_t i = 0; i < inline_count_; ++i) {
      if (!inline_at(i)->erased) f(*inline_at(i));
    }
    if (overflow_) {
      for (const auto& kv : *overflow_) {
        if (!kv.second.erased) f(kv.second);
      }
    }
  }

  void destroy_entries() noexcept {
    for (std::size_t i = 0; i < inline_count_; ++i) std::destroy_at(inline_at(i));
    inline_count_ = 0;
    tombstones_ = 0;
    overflow_.reset();
  }

  // Protects: inline_, inline_count_, overflow_, tombstones_, clock_,
  // base_clock_, merged_clock_.
  mutable detail::spinlock lock_;
  std::uint8_t inline_count_ = 0;
  std::size_t tombstones_ = 0;      // entries with erased set
  std::uint64_t clock_ = 0;         // counts writes and erases; entry::seq values come from it
  std::uint64_t base_clock_ = 0;    // the parent's clock_ at fork (or at the last merge)
  std::uint64_t merged_clock_ = 0;  // this context's clock_ when its last merge copied it
  alignas(entry) unsigned char inline_[inline_capacity * sizeof(entry)];
  std::unique_ptr<overflow_table> overflow_;
  const context* parent_ = nullptr;
  std::shared_ptr<const context> owner_;               // set when the child shares ownership of parent_
  mutable std::atomic<std::size_t> live_children_{0};  // children forked from this context and alive
};

}  // namespace polymap

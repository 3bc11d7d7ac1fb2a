// polymap/locked_map.hpp — the baseline: one reader-writer lock around a
// boost::unordered_flat_map.
//
// CONTRACT
//   Every operation is linearizable: it runs whole under the lock.
//   Reads (find, contains, get, visit, for_each, size, stats) take the lock
//   shared; writes take it exclusive. Callbacks run under the lock, so a
//   callback must not write the same map, and the callbacks of writes
//   (update, insert_or_visit, erase_if) must not read it either: a call that
//   would deadlock gets std::logic_error naming the map and the rule
//   (detail/reentry.hpp). Reads from visit or for_each callbacks are fine.
//   A callback that throws leaves the map as it was: insert_or_visit runs its
//   callback on a copy and stores the copy only when the callback returns;
//   update computes the new value before touching the table; erase_if decides
//   every entry before erasing any.
//
//   This is the map every other polymap map is measured against. It is kept
//   plain on purpose: no sharding, no optimistic reads. Its one cost beyond
//   the lock is a relaxed counter bumped only when a lock was found taken.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "polymap/detail/hash.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/detail/reentry.hpp"
#include "polymap/stats.hpp"
#include "polymap/value.hpp"

namespace polymap {

template <class K = std::string, class V = value, class Hash = polymap::hash<K>, class Eq = key_equal<K>>
class locked_map : public detail::typed_access<locked_map<K, V, Hash, Eq>, K, V> {
  using table_type = boost::unordered_flat_map<K, V, Hash, Eq>;

 public:
  using key_type = K;
  using mapped_type = V;
  using hasher = Hash;
  using key_equal = Eq;

  locked_map() = default;
  explicit locked_map(std::size_t capacity) { table_.reserve(capacity); }
  locked_map(const locked_map&) = delete;
  locked_map& operator=(const locked_map&) = delete;

  // --- writes ----------------------------------------------------------------
  bool insert(K k, V v) {
    auto lock = write_lock();
    return note_growth([&] { return table_.try_emplace(std::move(k), std::move(v)).second; });
  }

  bool insert_or_assign(K k, V v) {
    auto lock = write_lock();
    return note_growth([&] { return table_.insert_or_assign(std::move(k), std::move(v)).second; });
  }

  // Inserts (k, v) if k is absent (returns true); otherwise calls f(V&) on the
  // stored value (returns false). f works on a copy that replaces the stored
  // value only if f returns, so a throwing f changes nothing.
  template <class F>
  bool insert_or_visit(K k, V v, F f) {
    auto lock = write_lock();
    if (auto it = table_.find(k); it != table_.end()) {
      V copy = it->second;
      {
        detail::callback_scope scope(&mutex_, "locked_map", "insert_or_visit");
        f(copy);
      }
      it->second = std::move(copy);
      return false;
    }
    return note_growth([&] { return table_.try_emplace(std::move(k), std::move(v)).second; });
  }

  // Atomic read-modify-write: stores f(cur) where cur points at the current
  // value or is nullptr if k is absent; returns the value stored.
  template <class F>
  V update(K k, F f) {
    auto lock = write_lock();
    auto it = table_.find(k);
    V next = [&] {
      detail::callback_scope scope(&mutex_, "locked_map", "update");
      return f(it == table_.end() ? static_cast<const V*>(nullptr) : &it->second);
    }();
    V stored = next;
    if (it != table_.end()) {
      it->second = std::move(next);
    } else {
      note_growth([&] { return table_.try_emplace(std::move(k), std::move(next)).second; });
    }
    return stored;
  }

  // Replaces the value of q by desired if it equals expected.
  template <class Q>
  bool compare_exchange(const Q& q, const V& expected, V desired) {
    auto lock = write_lock();
    auto it = table_.find(detail::lookup_arg<K>(q));
    if (it == table_.end() || !(it->second == expected)) return false;
    it->second = std::move(desired);
    return true;
  }

  template <class Q>
  bool erase(const Q& q) {
    auto lock = write_lock();
    auto it = table_.find(detail::lookup_arg<K>(q));
    if (it == table_.end()) return false;
    table_.erase(it);
    return true;
  }

  // Erases every entry for which pred(k, v) is true; returns how many.
  template <class P>
  std::size_t erase_if(P pred) {
    auto lock = write_lock();
    std::vector<typename table_type::iterator> doomed;
    detail::callback_scope scope(&mutex_, "locked_map", "erase_if");
    for (auto it = table_.begin(); it != table_.end(); ++it) {
      if (detail::invoke_entry(pred, it->first, it->second)) doomed.push_back(it);
    }
    // Erasing from a flat map never moves the other elements, so the
    // collected iterators stay valid.
    for (auto it : doomed) table_.erase(it);
    return doomed.size();
  }

  void clear() {
    auto lock = write_lock();
    table_.clear();
  }

  void reserve(std::size_t n) {
    auto lock = write_lock();
    note_growth([&] {
      table_.reserve(n);
      return true;
    });
  }

  // --- reads -----------------------------------------------------------------
  template <class Q>
  std::optional<V> find(const Q& q) const {
    auto lock = read_lock();
    auto it = table_.find(detail::lookup_arg<K>(q));
    if (it == table_.end()) return std::nullopt;
    return it->second;
  }

  template <class Q>
  bool contains(const Q& q) const {
    auto lock = read_lock();
    return table_.contains(detail::lookup_arg<K>(q));
  }

  // Calls f(const V&) under the shared lock if q is present.
  template <class Q, class F>
  bool visit(const Q& q, F f) const {
    auto lock = read_lock();
    auto it = table_.find(detail::lookup_arg<K>(q));
    if (it == table_.end()) return false;
    detail::callback_scope scope(&mutex_, "locked_map", "visit", /*exclusive=*/false);
    f(static_cast<const V&>(it->second));
    return true;
  }

  // Calls f(k, v) for every entry under the shared lock: a consistent view.
  template <class F>
  void for_each(F f) const {
    auto lock = read_lock();
    detail::callback_scope scope(&mutex_, "locked_map", "for_each", /*exclusive=*/false);
    for (const auto& [k, v] : table_) detail::invoke_entry(f, k, v);
  }

  std::size_t size() const {
    auto lock = read_lock();
    return table_.size();
  }
  bool empty() const { return size() == 0; }

  stats_t stats() const {
    auto lock = read_lock();
    stats_t s;
    s.map = "locked_map";
    s.size = table_.size();
    s.capacity = table_.bucket_count();
    s.load_factor = s.capacity ? static_cast<double>(s.size) / static_cast<double>(s.capacity) : 0.0;
    s.growths = growths_;
    // relaxed: a statistic, read without ordering against anything else.
    s.lock_waits = lock_waits_.load(std::memory_order_relaxed);
    // One metadata byte per slot plus the slot itself (Boost's flat layout).
    s.bytes = sizeof(*this) + s.capacity * (sizeof(typename table_type::value_type) + 1);
    return s;
  }

 private:
  // Both locks first refuse a callback that calls back into this map where
  // that would deadlock (detail/reentry.hpp): a write from any callback, a
  // read from a write's callback.
  std::shared_lock<std::shared_mutex> read_lock() const {
    detail::callback_scope::check(&mutex_, /*exclusive=*/false);
    std::shared_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) {
      // relaxed: a statistic; the mutex itself orders the table accesses.
      lock_waits_.fetch_add(1, std::memory_order_relaxed);
      lock.lock();
    }
    return lock;
  }
  std::unique_lock<std::shared_mutex> write_lock() {
    detail::callback_scope::check(&mutex_);
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) {
      lock_waits_.fetch_add(1, std::memory_order_relaxed);  // relaxed: as in read_lock
      lock.lock();
    }
    return lock;
  }

  // Runs op (which may rehash) and counts a growth if the table got larger.
  // Precondition: the write lock is held.
  template <class Op>
  bool note_growth(Op op) {
    const auto before = table_.bucket_count();
    const bool r = op();
    if (table_.bucket_count() > before) ++growths_;
    return r;
  }

  mutable std::shared_mutex mutex_;  // Protects: table_, growths_.
  table_type table_;
  std::uint64_t growths_ = 0;
  mutable std::atomic<std::uint64_t> lock_waits_{0};
};

}  // namespace polymap

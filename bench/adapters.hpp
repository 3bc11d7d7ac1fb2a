// bench/adapters.hpp — every map in the benchmark behind one interface.
//
// An adapter A<K> (K = std::uint64_t or std::string; values are
// polymap::value holding an int64, 16 bytes, no heap) provides:
//
//   static map_info info();
//   explicit A(std::size_t n_hint);   // n_hint sizes only maps that cannot
//                                     // grow (xenium); nobody reserves
//   void reserve(std::size_t n);      // optional: room for n entries
//                                     // (`bench latency --reserve` only)
//   bool find(const K&, std::uint64_t& sink);   // copies the value out
//   bool insert(const K&, const value&);        // false if present
//   void insert_or_assign(const K&, const value&);
//   std::size_t size();
//
// Every adapter's find, insert and insert_or_assign are force-inlined into
// the driver's loop, the same for every map: a lookup that stays a call
// keeps fewer lookups' cache misses in flight at once, and whether GCC
// inlines one depends on the size of the map's code, not on its speed
// (measured: concurrent_map's inline layout read 30% slower as a call).
//
// and, optionally, `struct thread_scope { explicit thread_scope(A&); }`,
// created on each worker thread for maps that need threads registered.
// Peers are compiled only where their package was found (POLYMAP_BENCH_HAVE_*
// from bench/targets.cmake).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include <boost/unordered/unordered_flat_map.hpp>

#include "bench/results.hpp"

// See the header comment: the same for every adapter.
#define POLYMAP_BENCH_INLINE [[gnu::always_inline]] inline
#include "polymap/detail/hash.hpp"
#include "polymap/locked_map.hpp"
#include "polymap/value.hpp"

#if __has_include("polymap/concurrent_map.hpp")
#include "polymap/concurrent_map.hpp"
#define POLYMAP_BENCH_HAVE_CONCURRENT_MAP 1
#endif
#if __has_include("polymap/snapshot_map.hpp")
#include "polymap/snapshot_map.hpp"
#define POLYMAP_BENCH_HAVE_SNAPSHOT_MAP 1
#endif
#ifdef POLYMAP_BENCH_HAVE_TBB
#include <oneapi/tbb/concurrent_hash_map.h>
#endif
#ifdef POLYMAP_BENCH_HAVE_LIBCUCKOO
#include <libcuckoo/cuckoohash_map.hh>
#endif
// Boost's concurrent_flat_map (Boost 1.83+, not in Debian 12): compiled only
// where newer Boost.Unordered headers are on the include path, e.g. with
// -DPOLYMAP_BOOST_UNORDERED_INCLUDE=/path (see docs/bench/README.md). CI has
// Boost 1.81, so it is skipped there.
#if __has_include(<boost/unordered/concurrent_flat_map.hpp>)
#include <boost/unordered/concurrent_flat_map.hpp>
#define POLYMAP_BENCH_HAVE_BOOST_CFM 1
#endif
#ifdef POLYMAP_BENCH_HAVE_XENIUM
#include <cassert>  // xenium's headers use assert without including it
#include <xenium/harris_michael_hash_map.hpp>
#include <xenium/reclamation/generic_epoch_based.hpp>
#endif

namespace polymap::bench::adapters {

using polymap::value;

inline std::uint64_t touch(const value& v) {
  return static_cast<std::uint64_t>(v.which());
}

// --- std::unordered_map + std::shared_mutex: the baseline -------------------
template <class K>
class std_shared_mutex {
 public:
  static map_info info() {
    return {"std_shared_mutex", "std::unordered_map + shared_mutex",
            "std::unordered_map<K, value, polymap::hash<K>> behind one std::shared_mutex (reads shared)", true};
  }
  explicit std_shared_mutex(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    std::shared_lock lock(mutex_);
    auto it = table_.find(k);
    if (it == table_.end()) return false;
    value v = it->second;
    lock.unlock();
    sink += touch(v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) {
    std::unique_lock lock(mutex_);
    return table_.try_emplace(k, v).second;
  }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) {
    std::unique_lock lock(mutex_);
    table_.insert_or_assign(k, v);
  }
  std::size_t size() {
    std::shared_lock lock(mutex_);
    return table_.size();
  }

 private:
  std::shared_mutex mutex_;
  std::unordered_map<K, value, polymap::hash<K>> table_;
};

// --- polymap::locked_map ----------------------------------------------------
template <class K>
class locked_map {
 public:
  static map_info info() {
    return {"locked_map", "polymap::locked_map",
            "polymap::locked_map<K, value>: boost::unordered_flat_map behind one std::shared_mutex", true};
  }
  explicit locked_map(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    auto v = map_.find(k);
    if (!v) return false;
    sink += touch(*v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) { return map_.insert(k, v); }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) { map_.insert_or_assign(k, v); }
  std::size_t size() { return map_.size(); }
  void reserve(std::size_t n) { map_.reserve(n); }

 private:
  polymap::locked_map<K, value> map_;
};

// --- 16 shards of boost::unordered_flat_map, a shared_mutex each -----------
template <class K>
class sharded_flat {
 public:
  static map_info info() {
    return {"sharded_flat", "16 x flat_map + shared_mutex",
            "16 shards, each a boost::unordered_flat_map and a std::shared_mutex on its own cache line; shard from "
            "hash bits 32-35",
            true};
  }
  explicit sharded_flat(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    const auto h = polymap::hash<K>{}(k);
    auto& s = shards_[shard_of(h)];
    std::shared_lock lock(s.mutex);
    auto it = s.table.find(k);
    if (it == s.table.end()) return false;
    value v = it->second;
    lock.unlock();
    sink += touch(v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) {
    auto& s = shards_[shard_of(polymap::hash<K>{}(k))];
    std::unique_lock lock(s.mutex);
    return s.table.try_emplace(k, v).second;
  }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) {
    auto& s = shards_[shard_of(polymap::hash<K>{}(k))];
    std::unique_lock lock(s.mutex);
    s.table.insert_or_assign(k, v);
  }
  std::size_t size() {
    std::size_t n = 0;
    for (auto& s : shards_) {
      std::shared_lock lock(s.mutex);
      n += s.table.size();
    }
    return n;
  }

 private:
  // Boost's flat map takes the slot from the high hash bits and the tag from
  // the low byte, so the shard comes from bits neither uses at these sizes.
  static std::size_t shard_of(std::size_t h) { return (h >> 32) & 15; }
  struct alignas(64) shard {
    std::shared_mutex mutex;  // Protects: table.
    boost::unordered_flat_map<K, value, polymap::hash<K>, polymap::key_equal<K>> table;
  };
  polymap::hash<K> hash_;  // the shards' hash (one seed for the map's life)
  std::array<shard, 16> shards_;
};

// --- the no-synchronization limit: one thread, plain flat map --------------
template <class K>
class nosync_flat {
 public:
  static map_info info() {
    return {"nosync_flat", "flat_map, no sync (1 thread)",
            "boost::unordered_flat_map<K, value, polymap::hash<K>> with no synchronization: the one-thread limit",
            false};
  }
  explicit nosync_flat(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    auto it = table_.find(k);
    if (it == table_.end()) return false;
    value v = it->second;
    sink += touch(v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) { return table_.try_emplace(k, v).second; }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) { table_.insert_or_assign(k, v); }
  std::size_t size() { return table_.size(); }

 private:
  boost::unordered_flat_map<K, value, polymap::hash<K>, polymap::key_equal<K>> table_;
};

#ifdef POLYMAP_BENCH_HAVE_CONCURRENT_MAP
template <class K, class Traits>
class concurrent_map_with {
 public:
  explicit concurrent_map_with(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    auto v = map_.find(k);
    if (!v) return false;
    sink += touch(*v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) { return map_.insert(k, v); }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) { map_.insert_or_assign(k, v); }
  std::size_t size() { return map_.size(); }
  void reserve(std::size_t n) { map_.reserve(n); }

 private:
  polymap::concurrent_map<K, value, polymap::hash<K>, polymap::key_equal<K>, Traits> map_;
};
template <class K>
class concurrent_map : public concurrent_map_with<K, polymap::concurrent_map_traits> {
 public:
  using concurrent_map_with<K, polymap::concurrent_map_traits>::concurrent_map_with;
  static map_info info() {
    return {"concurrent_map", "polymap::concurrent_map", "polymap::concurrent_map<K, value>", true};
  }
};
// The same map with every growth a rebuild at once (the way before issue
// 16's incremental migration): for same-run A/B runs, not run by default.
struct growth_at_once_traits : polymap::concurrent_map_traits {
  static constexpr std::size_t incremental_min_groups = SIZE_MAX;
};
template <class K>
class concurrent_map_at_once : public concurrent_map_with<K, growth_at_once_traits> {
 public:
  using concurrent_map_with<K, growth_at_once_traits>::concurrent_map_with;
  static map_info info() {
    return {"concurrent_map_at_once", "polymap::concurrent_map (growth at once)",
            "polymap::concurrent_map<K, value>, every growth a rebuild at once (A/B)", true};
  }
  static constexpr bool opt_in = true;
};
// The same map with group locks for every write, no slot locks (J8 in
// inline_table.hpp; the way before session 10): for same-run A/B runs.
struct group_locks_traits : polymap::concurrent_map_traits {
  static constexpr bool slot_locks = false;
};
template <class K>
class concurrent_map_group_locks : public concurrent_map_with<K, group_locks_traits> {
 public:
  using concurrent_map_with<K, group_locks_traits>::concurrent_map_with;
  static map_info info() {
    return {"concurrent_map_group_locks", "polymap::concurrent_map (group locks only)",
            "polymap::concurrent_map<K, value>, no slot locks (A/B)", true};
  }
  static constexpr bool opt_in = true;
};
// The same map with short string keys in their slots (inline_string_traits,
// session 22): for same-run A/B runs.
template <class K>
class concurrent_map_inline_strings : public concurrent_map_with<K, polymap::inline_string_traits> {
 public:
  using concurrent_map_with<K, polymap::inline_string_traits>::concurrent_map_with;
  static map_info info() {
    return {"concurrent_map_inline_strings", "polymap::concurrent_map (short string keys in slots)",
            "polymap::concurrent_map<K, value, ..., inline_string_traits>: string keys of up to 32 bytes in their "
            "64-byte slots (A/B)",
            true};
  }
  static constexpr bool opt_in = true;
};
#endif

#ifdef POLYMAP_BENCH_HAVE_SNAPSHOT_MAP
template <class K>
class snapshot_map {
 public:
  static map_info info() {
    return {"snapshot_map", "polymap::snapshot_map",
            "polymap::snapshot_map<K, value> (read-mostly; opt in with --maps)", true};
  }
  static constexpr bool opt_in = true;  // every write publishes a version: slow, by design
  explicit snapshot_map(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    auto v = map_.find(k);
    if (!v) return false;
    sink += touch(*v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) { return map_.insert(k, v); }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) { map_.insert_or_assign(k, v); }
  std::size_t size() { return map_.size(); }

 private:
  polymap::snapshot_map<K, value> map_;
};
#endif

#ifdef POLYMAP_BENCH_HAVE_TBB
template <class K>
class tbb_hash_map {
  struct hash_compare {
    static std::size_t hash(const K& k) { return polymap::hash<K>{}(k); }
    static bool equal(const K& a, const K& b) { return a == b; }
  };
  // std::allocator, so the counting operator new sees its memory.
  using table_type = tbb::concurrent_hash_map<K, value, hash_compare, std::allocator<std::pair<const K, value>>>;

 public:
  static map_info info() {
    return {"tbb_hash_map", "tbb::concurrent_hash_map",
            "oneTBB concurrent_hash_map (bucket locks, accessor locks), std::allocator; find takes a const_accessor",
            true};
  }
  explicit tbb_hash_map(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    value v;
    {
      typename table_type::const_accessor a;
      if (!table_.find(a, k)) return false;
      v = a->second;
    }
    sink += touch(v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) { return table_.insert({k, v}); }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) {
    typename table_type::accessor a;
    table_.insert(a, k);
    a->second = v;
  }
  std::size_t size() { return table_.size(); }
  void reserve(std::size_t n) { table_.rehash(n); }

 private:
  table_type table_;
};
#endif

#ifdef POLYMAP_BENCH_HAVE_LIBCUCKOO
template <class K>
class cuckoo_map {
 public:
  static map_info info() {
    return {"cuckoo_map", "libcuckoo cuckoohash_map",
            "libcuckoo cuckoohash_map<K, value, polymap::hash<K>> (striped spinlocks)", true};
  }
  explicit cuckoo_map(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    value v;
    if (!table_.find(k, v)) return false;
    sink += touch(v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) { return table_.insert(k, v); }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) { table_.insert_or_assign(k, v); }
  std::size_t size() { return table_.size(); }
  void reserve(std::size_t n) { table_.reserve(n); }

 private:
  libcuckoo::cuckoohash_map<K, value, polymap::hash<K>, std::equal_to<K>> table_;
};
#endif

#ifdef POLYMAP_BENCH_HAVE_BOOST_CFM
template <class K>
class boost_cfm {
 public:
  static map_info info() {
    return {"boost_cfm", "boost::concurrent_flat_map",
            "boost::concurrent_flat_map<K, value, polymap::hash<K>> (Boost.Unordered foa: per-group spinlocks, "
            "visitation API)",
            true};
  }
  explicit boost_cfm(std::size_t) {}
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    value v;
    if (!table_.cvisit(k, [&](const auto& kv) { v = kv.second; })) return false;
    sink += touch(v);
    return true;
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) { return table_.emplace(k, v); }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) { table_.insert_or_assign(k, v); }
  std::size_t size() { return table_.size(); }
  void reserve(std::size_t n) { table_.reserve(n); }

 private:
  boost::concurrent_flat_map<K, value, polymap::hash<K>, std::equal_to<K>> table_;
};
#endif

#ifdef POLYMAP_BENCH_HAVE_XENIUM
// xenium's Harris-Michael map: lock-free lists in a fixed number of buckets
// (no resizing, so n_hint picks the bucket count: about one bucket per key,
// rounded to 2^14 or 2^21), epoch-based reclamation. Its values are
// immutable once published, so insert_or_assign is erase + emplace: two
// linearizable steps, not one (a reader may miss the key in between).
template <class K>
class xenium_hm {
  using reclaimer = xenium::reclamation::epoch_based<>;
  template <std::size_t Buckets>
  using table =
      xenium::harris_michael_hash_map<K, value, xenium::policy::reclaimer<reclaimer>,
                                      xenium::policy::hash<polymap::hash<K>>, xenium::policy::buckets<Buckets>>;
  using small_table = table<(1u << 14)>;
  using large_table = table<(1u << 21)>;

 public:
  static map_info info() {
    return {"xenium_hm", "xenium harris_michael_hash_map",
            "xenium harris_michael_hash_map (lock-free, epoch-based reclamation, fixed 2^14 or 2^21 buckets by N); "
            "insert_or_assign = erase + emplace",
            true};
  }
  explicit xenium_hm(std::size_t n_hint) {
    if (n_hint <= (1u << 16))
      small_ = std::make_unique<small_table>();
    else
      large_ = std::make_unique<large_table>();
  }
  POLYMAP_BENCH_INLINE bool find(const K& k, std::uint64_t& sink) {
    return small_ ? find_in(*small_, k, sink) : find_in(*large_, k, sink);
  }
  POLYMAP_BENCH_INLINE bool insert(const K& k, const value& v) {
    return small_ ? small_->emplace(k, v) : large_->emplace(k, v);
  }
  POLYMAP_BENCH_INLINE void insert_or_assign(const K& k, const value& v) {
    if (small_)
      assign_in(*small_, k, v);
    else
      assign_in(*large_, k, v);
  }
  std::size_t size() {
    std::size_t n = 0;
    if (small_)
      for (auto it = small_->begin(); it != small_->end(); ++it) ++n;
    else
      for (auto it = large_->begin(); it != large_->end(); ++it) ++n;
    return n;
  }

 private:
  template <class T>
  static bool find_in(T& t, const K& k, std::uint64_t& sink) {
    auto it = t.find(k);
    if (it == t.end()) return false;
    sink += touch((*it).second);
    return true;
  }
  template <class T>
  static void assign_in(T& t, const K& k, const value& v) {
    while (!t.emplace(k, v)) t.erase(k);
  }
  std::unique_ptr<small_table> small_;
  std::unique_ptr<large_table> large_;
};
#endif

template <class A>
concept has_thread_scope = requires {
  typename A::thread_scope;
};

// Runs f() on this thread inside the adapter's thread_scope, if it has one.
template <class A, class F>
void with_thread_scope(A& map, F f) {
  if constexpr (has_thread_scope<A>) {
    typename A::thread_scope scope(map);
    f();
  } else {
    f();
  }
}

// Every adapter this build has, in the benchmark's order: calls
// v.template operator()<Adapter>() once for each, so that the throughput
// driver (driver.cpp) and the latency benchmark (latency.cpp) share one list.
// An adapter with `static constexpr bool opt_in = true` runs only when named.
template <class Visitor>
void visit_adapters(Visitor&& v) {
  v.template operator()<std_shared_mutex>();
  v.template operator()<locked_map>();
#ifdef POLYMAP_BENCH_HAVE_CONCURRENT_MAP
  v.template operator()<concurrent_map>();
  v.template operator()<concurrent_map_at_once>();
  v.template operator()<concurrent_map_group_locks>();
  v.template operator()<concurrent_map_inline_strings>();
#endif
#ifdef POLYMAP_BENCH_HAVE_SNAPSHOT_MAP
  v.template operator()<snapshot_map>();
#endif
  v.template operator()<sharded_flat>();
#ifdef POLYMAP_BENCH_HAVE_TBB
  v.template operator()<tbb_hash_map>();
#endif
#ifdef POLYMAP_BENCH_HAVE_LIBCUCKOO
  v.template operator()<cuckoo_map>();
#endif
#ifdef POLYMAP_BENCH_HAVE_BOOST_CFM
  v.template operator()<boost_cfm>();
#endif
#ifdef POLYMAP_BENCH_HAVE_XENIUM
  v.template operator()<xenium_hm>();
#endif
  v.template operator()<nosync_flat>();
}

template <class A>
constexpr bool opt_in() {
  if constexpr (requires { A::opt_in; })
    return A::opt_in;
  else
    return false;
}

}  // namespace polymap::bench::adapters

// polymap/check/stale.hpp — stale_checked<M>: a polymap map that reports a
// write based on a stale read (a lost update from check-then-act).
//
// WHAT IT IS FOR
//   `v = m.get(k); m.insert_or_assign(k, v + 1)` on a thread-safe map loses
//   updates although every call is locked: another thread's write of k can
//   land between the read and the write, and the write then overwrites it
//   unseen. That is an atomicity violation, not a data race: ThreadSanitizer,
//   ASan, Clang's thread-safety analysis and checked<M> (no two calls overlap)
//   have nothing to report. stale_checked<M> wraps a polymap map M
//   (locked_map, concurrent_map, snapshot_map: anything with the stable API of
//   DESIGN.md) and reports, through report.hpp's handler, every write of a key
//   by thread T that was based on T's earlier read of that key while another
//   write of the key landed in between. The report (conflict::stale_write)
//   names the key, the three call sites (T's read: report::read; the
//   intervening write: report::other; T's write: report::here), how many
//   writes T's write overwrote unseen (report::lost_writes), and what to use
//   instead: update(), insert_or_visit() or compare_exchange().
//
// WHY A WRAPPER OF ITS OWN (not a mode of checked<M>)
//   checked<M> wraps containers that are *not* thread-safe (std API: find
//   returns an iterator) and detects two calls overlapping inside them, with
//   one state word per container. Here every call of M is already atomic; what
//   is checked is the relation between two calls of one thread and a call of
//   another, per key. Different API (polymap's), different state (per key, per
//   thread): one class would be two classes behind an `if constexpr`.
//
// THE RULE, EXACTLY
//   Reads:  find, contains, get, visit record (map, key hash, the key's stamp
//           and version as read, call site, the thread's operation count) in
//           the calling thread's read ring. update, insert_or_visit and a
//           successful compare_exchange also record what they wrote: the
//           value they return or visit is a read too.
//   Checked writes: insert_or_assign, set, insert, erase. If the thread holds
//           a live record of the key, the key's stamp at the write is compared
//           with the recorded one; a different stamp is a report. Every write
//           (checked or not) consumes the thread's records of its key: the
//           next write of that key needs a new read to be checked.
//   Atomic writes: update, insert_or_visit, compare_exchange are never
//           reported: they read and write under one protection.
//   A record is live while it is among the thread's last 32 reads, no more
//   than `window_ops` of the thread's stale_checked operations old, no older
//   than `window_time` (if set), and not forgotten (forget(k), forget(),
//   forget_all(), stale_scope).
//
// THE STAMP (per key, exact; no striped table, no hash collision)
//   Every entry of the wrapped map holds stamped<V>: the value, a stamp and a
//   version. Each write stores a stamp unique in the process (the writing
//   thread's write-log index in the top 20 bits, that log's write counter in
//   the low 44) and version = previous version + 1 (1 for a new entry).
//   Because the stamp travels inside the entry, the map's own protection makes
//   "read the stamp" atomic with the read and, for insert_or_assign and set
//   (done as M::update), "compare the stamp" atomic with the write: no false
//   report and no miss from a race between the map and a side table. An absent
//   key reads as stamp 0. An erase followed by a re-insert gives a new stamp,
//   so erase-then-recreate is seen too (ABA-free).
//
//     entry of M:   key | V value | stamp (index:20 | counter:44) | version
//     read ring:    32 x { map id, key hash, stamp, version, op count, time,
//                          op name, file, function, line }   (thread-local)
//     write log:    64 x { stamp, op name, file, function, line, thread }
//                   per writing thread, found by the stamp's index: names
//                   the intervening write's site in a report.
//
//   Key identity in the ring is the 64-bit hash of M's hasher: two different
//   keys with equal hashes, read by one thread within the window, could be
//   confused (then a report whose stamps differ); with a 64-bit avalanching
//   hash that is about 2^-64 per pair of keys.
//
// WHAT IT CANNOT SEE (each a miss, never a false report, unless noted)
//   - A write whose value came from a read it did not make through this map
//     object (another map, a cache, a copy taken long ago and then forgotten),
//     or from a read outside the window: the ring holds the last 32 reads and
//     window_ops (default 64) operations of the thread.
//   - Dependence itself: a write that does not depend on an earlier read of
//     the same key looks exactly like one that does. Such a blind write after
//     a read, while another thread wrote the key, IS reported (a false report
//     in intent). Call forget(k) before it, or end the read's scope with
//     stale_scope / forget_all(), or keep the window short.
//   - erase: M has no conditional erase, so the stamp is read just before the
//     erase; a write landing between that look and the erase is missed.
//   - A failed insert compares the stamp read right after it (the key was
//     present at the insert, which alone is a report when the read saw it
//     absent).
//   - Lost updates through for_each/erase_if/clear (not per-key reads or
//     writes: not recorded, not checked).
//   - lost_writes is exact unless the key was erased and re-created between
//     the read and the write (then 0: unknown).
//   - The intervening write's site is the last write of the key before this
//     one; it is "not recorded" if its thread has made 64 writes since, or if
//     it was an erase (an erased key keeps no stamp).
//
// COST (one thread, `polymap bench checked`, docs/hazards.md has numbers)
//   A read: M's visit, the key's hash, ~10 stores into the thread-local ring.
//   A write: the hash, one compare of 32 four-byte tags (the ring's records
//   are read only on a tag match), seven relaxed stores to the thread's write
//   log, and M::update instead of M::insert_or_assign. Memory: 16 bytes per entry, 2.5 KiB per reading
//   thread, 3 KiB per writing thread (recycled when the thread exits).
//   With window_time set, each read also reads the steady clock.
//   stamped<V> is V plus 16 bytes: concurrent_map, whose inline layout takes
//   values of at most 8 bytes, falls back to its node layout when wrapped.
//
// WHY RELAXED
//   As in checked.hpp: the detector must not synchronize the threads it
//   watches. The write log's fields are relaxed atomics: a writer stores them
//   before its map write, so a reporter that found the stamp in the map (under
//   M's own protection, which orders the two) finds them; a later rewrite of
//   the slot (64 writes on) is caught by re-reading the slot's stamp. The read
//   ring is thread-local and plain.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "polymap/check/report.hpp"
#include "polymap/check/site.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/value.hpp"

namespace polymap::check {

// What stale_checked<M> stores in M for each key: the value, the stamp of the
// write that stored it and the key's write count.
template <class V>
struct stamped {
  V value;
  std::uint64_t stamp = 0;    // unique per write in the process; 0 is never used
  std::uint64_t version = 0;  // writes of this key since it was (re)created
  bool operator==(const stamped&) const = default;
};

// The window: reads older than either bound are forgotten.
struct stale_options {
  std::uint64_t window_ops = 64;            // the thread's stale_checked operations (all maps) since the read
  std::chrono::nanoseconds window_time{0};  // 0: no time bound (and no clock read per read)
};

namespace stale_detail {

inline constexpr unsigned kReadSlots = 32;   // per thread; a power of two
inline constexpr unsigned kWriteSlots = 64;  // per writing thread; a power of two
inline constexpr unsigned kCounterBits = 44;
inline constexpr std::uint64_t kCounterMask = (std::uint64_t{1} << kCounterBits) - 1;
inline constexpr std::size_t kMaxLogs = std::size_t{1} << 12;  // live writing threads with named sites

// One remembered write: who stored `stamp`. Relaxed atomics: see "WHY RELAXED".
struct write_slot {
  std::atomic<std::uint64_t> stamp{0};
  std::atomic<const char*> op{nullptr};
  std::atomic<const char*> file{""};
  std::atomic<const char*> function{""};
  std::atomic<std::uint_least32_t> line{0};
  std::atomic<std::thread::id> thread{};
};

// The last kWriteSlots writes of one thread. Owned by one live thread at a
// time; returned to the registry (never freed) when it exits, so that a
// reporter holding a pointer to it never reads freed memory, and the counter
// goes on: stamps stay unique across owners.
struct write_log {
  std::uint64_t index = 0;    // in the registry; 0: overflow (no sites)
  std::uint64_t counter = 0;  // the owner's writes; only the owner touches it
  write_slot slots[kWriteSlots];
};

class log_registry {
 public:
  write_log* claim() {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      write_log* l = free_.back();
      free_.pop_back();
      return l;
    }
    auto* l = new write_log;  // lives as long as the process (see write_log)
    if (next_ < kMaxLogs) {
      l->index = next_++;
      // release: pairs with the acquire in at(): the log is constructed
      // before a reporter can find it.
      logs_[l->index].store(l, std::memory_order_release);
    }
    return l;
  }
  void release(write_log* l) {
    std::lock_guard lock(mutex_);
    free_.push_back(l);
  }
  const write_log* at(std::uint64_t index) const noexcept {
    if (index == 0 || index >= kMaxLogs) return nullptr;
    return logs_[index].load(std::memory_order_acquire);  // acquire: pairs with claim()
  }
  // Stamps of overflow logs (index 0): a shared counter, slower but unique.
  std::uint64_t overflow_stamp() noexcept {
    // relaxed: uniqueness needs only the counter's modification order.
    return (overflow_.fetch_add(1, std::memory_order_relaxed) + 1) & kCounterMask;
  }

 private:
  std::mutex mutex_;  // Protects: free_, next_.
  std::vector<write_log*> free_;
  std::uint64_t next_ = 1;
  std::atomic<write_log*> logs_[kMaxLogs]{};
  std::atomic<std::uint64_t> overflow_{0};
};

// Leaked on purpose: threads may exit (and release their logs) after static
// destruction began.
inline log_registry& registry() {
  static log_registry* r = new log_registry;
  return *r;
}

// A process-unique id for each stale_checked map (never 0).
inline std::uint64_t new_map_id() noexcept {
  static std::atomic<std::uint64_t> next{0};
  // relaxed: uniqueness needs only the counter's modification order.
  return next.fetch_add(1, std::memory_order_relaxed) + 1;
}

// One read of one key by this thread.
struct read_record {
  std::uint64_t map = 0;  // the map's id (never reused, unlike its address); 0: consumed or never used
  std::uint64_t hash = 0;
  std::uint64_t stamp = 0;  // 0: the key was absent
  std::uint64_t version = 0;
  std::uint64_t op = 0;  // the thread's operation count at the read
  std::int64_t time_ns = 0;
  const char* op_name = "";
  const char* file = "";
  const char* function = "";
  std::uint_least32_t line = 0;
};

// The calling thread's state. constinit and trivially destructible: reading
// it is a plain thread-local access (no TLS guard) on every checked call.
struct thread_state {
  // tags[i]: a 32-bit digest of reads[i]'s (map, key hash), 0 once consumed.
  // A write compares all 32 tags at once (no early exit: the compiler may
  // vectorize it) and looks at a record only when its tag matches.
  std::uint32_t tags[kReadSlots]{};
  read_record reads[kReadSlots]{};
  std::uint64_t ops = 0;    // this thread's stale_checked operations, all maps
  std::uint64_t floor = 1;  // records with op < floor are forgotten
  std::uint32_t next = 0;   // the next ring slot
  write_log* log = nullptr;
};
constinit inline thread_local thread_state tls{};

// Returns the thread's write log to the registry when the thread exits.
// Touched once per thread, when the log is claimed, so that the hot path
// never pays for its TLS guard.
struct log_releaser {
  bool armed = false;
  ~log_releaser() {
    if (tls.log) registry().release(tls.log);
    tls.log = nullptr;
  }
};
inline thread_local log_releaser releaser;

[[gnu::noinline]] inline write_log* claim_log() {
  write_log* l = registry().claim();
  releaser.armed = true;
  tls.log = l;
  return l;
}

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A new stamp for a write by this thread at op/l, its site logged.
POLYMAP_CHECK_INLINE std::uint64_t next_stamp(const char* op, const source_location& l) noexcept {
  write_log* log = tls.log;
  if (!log) [[unlikely]]
    log = claim_log();
  if (log->index == 0) [[unlikely]]
    return registry().overflow_stamp();  // no site: index 0 is never looked up
  const std::uint64_t stamp = (log->index << kCounterBits) | (++log->counter & kCounterMask);
  write_slot& s = log->slots[stamp & (kWriteSlots - 1)];
  // relaxed, all: see "WHY RELAXED". The stamp is cleared first and stored
  // last, so that a reporter re-reading it can tell a slot being rewritten.
  s.stamp.store(0, std::memory_order_relaxed);
  s.op.store(op, std::memory_order_relaxed);
  s.file.store(l.file_name(), std::memory_order_relaxed);
  s.function.store(l.function_name(), std::memory_order_relaxed);
  s.line.store(l.line(), std::memory_order_relaxed);
  s.thread.store(detail::this_thread_id(), std::memory_order_relaxed);
  s.stamp.store(stamp, std::memory_order_relaxed);
  return stamp;
}

// The site of the write that stored `stamp`, if its thread still remembers it.
inline site write_site(std::uint64_t stamp) noexcept {
  site out;
  const write_log* log = registry().at(stamp >> kCounterBits);
  if (!log || stamp == 0) return out;
  const write_slot& s = log->slots[stamp & (kWriteSlots - 1)];
  // relaxed: a hint for the report, checked by the stamp read before and after.
  if (s.stamp.load(std::memory_order_relaxed) != stamp) return out;
  const char* op = s.op.load(std::memory_order_relaxed);
  site w;
  w.op = op ? op : "";
  w.where = {s.file.load(std::memory_order_relaxed), s.function.load(std::memory_order_relaxed),
             s.line.load(std::memory_order_relaxed)};
  w.thread = s.thread.load(std::memory_order_relaxed);
  if (s.stamp.load(std::memory_order_relaxed) != stamp) return out;
  return w;
}

// M<K, V, Rest...> -> M<K, W, Rest...>
template <class M, class W>
struct rebind_mapped;
template <template <class, class, class...> class Map, class K, class V, class... Rest, class W>
struct rebind_mapped<Map<K, V, Rest...>, W> {
  using type = Map<K, W, Rest...>;
};

// What a write found in the map: its key's stamp and version then.
struct observed {
  bool present = false;
  std::uint64_t stamp = 0;
  std::uint64_t version = 0;
};

}  // namespace stale_detail

// Forgets every read this thread recorded (all maps): later writes are not
// compared with them.
inline void forget_all() noexcept {
  stale_detail::tls.floor = stale_detail::tls.ops + 1;
}

// A unit of work whose reads do not reach outside it: forgets this thread's
// reads when it begins and when it ends (e.g. one per request or task).
class stale_scope {
 public:
  stale_scope() noexcept { forget_all(); }
  ~stale_scope() { forget_all(); }
  stale_scope(const stale_scope&) = delete;
  stale_scope& operator=(const stale_scope&) = delete;
};

template <class M>
class stale_checked {
 public:
  using key_type = typename M::key_type;
  using mapped_type = typename M::mapped_type;
  using inner_type = typename stale_detail::rebind_mapped<M, stamped<mapped_type>>::type;
  using hasher = typename inner_type::hasher;
  using loc = source_location;

 private:
  using K = key_type;
  using V = mapped_type;
  using entry = stamped<V>;

 public:
  stale_checked() = default;
  explicit stale_checked(stale_options o) : opt_(o) {}
  // Records name a map by id_, never by address: a map destroyed and another
  // built at the same address must not inherit its reads.
  stale_checked(const stale_checked&) = delete;
  stale_checked& operator=(const stale_checked&) = delete;

  const stale_options& options() const noexcept { return opt_; }

  // --- reads (recorded) ------------------------------------------------------
  template <class Q>
  POLYMAP_CHECK_INLINE std::optional<V> find(const Q& q, loc l = loc::current()) const {
    std::optional<V> out;
    stale_detail::observed o;
    inner_.visit(q, [&](const entry& e) {
      out.emplace(e.value);
      o = {true, e.stamp, e.version};
    });
    note_read(hash_of(q), o, "find", l);
    return out;
  }

  template <class Q>
  POLYMAP_CHECK_INLINE bool contains(const Q& q, loc l = loc::current()) const {
    stale_detail::observed o;
    inner_.visit(q, [&](const entry& e) { o = {true, e.stamp, e.version}; });
    note_read(hash_of(q), o, "contains", l);
    return o.present;
  }

  // Calls f(const V&) under M's protection if q is present.
  template <class Q, class F>
  POLYMAP_CHECK_INLINE bool visit(const Q& q, F f, loc l = loc::current()) const {
    stale_detail::observed o;
    inner_.visit(q, [&](const entry& e) {
      o = {true, e.stamp, e.version};
      f(static_cast<const V&>(e.value));
    });
    note_read(hash_of(q), o, "visit", l);
    return o.present;
  }

  // Typed read (V = polymap::value), as every polymap map's get<T>.
  template <class T, class Q>
  requires(std::is_same_v<V, value> &&
           !polymap::detail::is_key<std::remove_cvref_t<Q>>::value) result<T> get(const Q& q, loc l = loc::current())
  const {
    std::optional<result<T>> out;
    stale_detail::observed o;
    inner_.visit(q, [&](const entry& e) {
      o = {true, e.stamp, e.version};
      if (const T* p = e.value.template get_if<T>())
        out.emplace(*p);
      else
        out.emplace(e.value.template mismatch<T>(polymap::detail::describe_key(q)));
    });
    note_read(hash_of(q), o, "get", l);
    if (!out) return polymap::detail::not_found_error(polymap::detail::describe_key(q));
    return std::move(*out);
  }
  template <class T>
  requires std::is_same_v<V, value> result<T> get(const key<T>& k, loc l = loc::current())
  const { return get<T>(std::string_view(k.name()), l); }

  // --- checked writes --------------------------------------------------------
  // True if inserted. Reported if based on a stale read (see THE RULE).
  bool insert_or_assign(K k, V v, loc l = loc::current()) {
    return assign(std::move(k), std::move(v), "insert_or_assign", l);
  }

  // Typed write (V = polymap::value); a checked write like insert_or_assign.
  template <class T, class U>
  requires(std::is_same_v<V, value>&& non_narrowing<U, T>) bool set(const key<T>& k, U&& x, loc l = loc::current()) {
    return assign(K(k.name()), V(T{std::forward<U>(x)}), "set", l);
  }

  // False if present (map unchanged). Reported if this thread's read of k saw
  // a state another thread's write has since changed (typically: contains()
  // said absent, someone inserted, this insert fails).
  bool insert(K k, V v, loc l = loc::current()) {
    const std::uint64_t h = hash_of(k);
    const auto rec = take_record(h);
    const std::uint64_t stamp = stale_detail::next_stamp("insert", l);
    if (!rec) [[likely]]
      return inner_.insert(std::move(k), entry{std::move(v), stamp, 1});
    const bool inserted = inner_.insert(K(k), entry{std::move(v), stamp, 1});
    stale_detail::observed o;
    if (!inserted) {
      // Present at the insert; its stamp as seen just after (see WHAT IT
      // CANNOT SEE). Gone again: some write changed it, stamp unknown.
      o = {true, ~std::uint64_t{0}, 0};
      inner_.visit(k, [&](const entry& e) { o = {true, e.stamp, e.version}; });
    }
    if (o.stamp != rec->stamp) [[unlikely]]
      stale_found(k, *rec, o, "insert", l.file_name(), l.function_name(), l.line());
    return inserted;
  }

  template <class Q>
  bool erase(const Q& q, loc l = loc::current()) {
    const auto rec = take_record(hash_of(q));
    if (!rec) [[likely]]
      return inner_.erase(q);
    stale_detail::observed o;
    inner_.visit(q, [&](const entry& e) { o = {true, e.stamp, e.version}; });
    const bool erased = inner_.erase(q);
    if (o.stamp != rec->stamp) [[unlikely]]
      stale_found(q, *rec, o, "erase", l.file_name(), l.function_name(), l.line());
    return erased;
  }

  // --- atomic read-modify-writes (never reported; their result is a read) ----
  // Stores f(cur) (cur: const V*, nullptr if absent); returns the value stored.
  template <class F>
  V update(K k, F f, loc l = loc::current()) {
    const std::uint64_t h = hash_of(k);
    (void)take_record(h);
    const std::uint64_t stamp = stale_detail::next_stamp("update", l);
    std::uint64_t version = 0;
    entry stored = inner_.update(std::move(k), [&](const entry* cur) {
      version = cur ? cur->version + 1 : 1;
      return entry{V(f(cur ? &cur->value : static_cast<const V*>(nullptr))), stamp, version};
    });
    note_read(h, {true, stamp, version}, "update", l);
    return std::move(stored.value);
  }

  // Inserts (k, v) if absent (true), else calls f(V&) on the stored value.
  template <class F>
  bool insert_or_visit(K k, V v, F f, loc l = loc::current()) {
    const std::uint64_t h = hash_of(k);
    (void)take_record(h);
    const std::uint64_t stamp = stale_detail::next_stamp("insert_or_visit", l);
    std::uint64_t version = 1;
    const bool inserted = inner_.insert_or_visit(std::move(k), entry{std::move(v), stamp, 1}, [&](entry& e) {
      f(e.value);
      e.stamp = stamp;
      version = ++e.version;
    });
    note_read(h, {true, stamp, version}, "insert_or_visit", l);
    return inserted;
  }

  // Replaces q's value by desired if it equals expected.
  template <class Q>
  bool compare_exchange(const Q& q, const V& expected, V desired, loc l = loc::current()) {
    const std::uint64_t h = hash_of(q);
    (void)take_record(h);
    const std::uint64_t stamp = stale_detail::next_stamp("compare_exchange", l);
    for (;;) {
      std::optional<entry> cur;
      inner_.visit(q, [&](const entry& e) {
        if (e.value == expected) cur.emplace(e);
      });
      if (!cur) return false;
      if (inner_.compare_exchange(q, *cur, entry{desired, stamp, cur->version + 1})) {
        note_read(h, {true, stamp, cur->version + 1}, "compare_exchange", l);
        return true;
      }
      // The stamp moved (another write, maybe of an equal value): look again.
    }
  }

  // --- whole-map operations (not recorded, not checked) ----------------------
  template <class F>
  void for_each(F f) const {
    inner_.for_each([&](const K& k, const entry& e) { polymap::detail::invoke_entry(f, k, e.value); });
  }
  template <class P>
  std::size_t erase_if(P pred) {
    return inner_.erase_if([&](const K& k, const entry& e) { return polymap::detail::invoke_entry(pred, k, e.value); });
  }
  std::size_t size() const { return inner_.size(); }
  bool empty() const { return inner_.size() == 0; }
  void clear() { inner_.clear(); }
  void reserve(std::size_t n) { inner_.reserve(n); }
  auto stats() const { return inner_.stats(); }

  // --- forgetting --------------------------------------------------------------
  // This thread's reads of q in this map: the next write of q is blind.
  template <class Q>
  void forget(const Q& q) noexcept {
    drop(hash_of(q), true);
  }
  // This thread's reads of every key of this map.
  void forget() noexcept { drop(0, false); }

  // The wrapped map (entries are stamped<V>): for setup and inspection.
  inner_type& unchecked() noexcept { return inner_; }
  const inner_type& unchecked() const noexcept { return inner_; }

 private:
  using record = stale_detail::read_record;

  template <class Q>
  POLYMAP_CHECK_INLINE std::uint64_t hash_of(const Q& q) const {
    return static_cast<std::uint64_t>(hasher_(polymap::detail::lookup_arg<K>(q)));
  }

  POLYMAP_CHECK_INLINE void note_read(std::uint64_t h, const stale_detail::observed& o, const char* op,
                                      const loc& l) const {
    auto& ts = stale_detail::tls;
    const unsigned slot = ts.next++ & (stale_detail::kReadSlots - 1);
    ts.tags[slot] = tag_of(h);
    record& r = ts.reads[slot];
    r.map = id_;
    r.hash = h;
    r.stamp = o.stamp;
    r.version = o.version;
    r.op = ++ts.ops;
    r.op_name = op;
    r.file = l.file_name();
    r.function = l.function_name();
    r.line = l.line();
    if (opt_.window_time.count() > 0) [[unlikely]]
      r.time_ns = stale_detail::now_ns();
  }

  // The newest live record of key hash h in this map, if any; every record of
  // it is consumed. Counts one operation.
  POLYMAP_CHECK_INLINE std::optional<record> take_record(std::uint64_t h) const {
    auto& ts = stale_detail::tls;
    const std::uint64_t now = ++ts.ops;
    const std::uint32_t t = tag_of(h);
    std::uint32_t match = 0;
    for (unsigned i = 0; i < stale_detail::kReadSlots; ++i) match |= std::uint32_t{ts.tags[i] == t} << i;
    if (!match) [[likely]]
      return std::nullopt;
    return take_matching(match, h, now);
  }
  [[gnu::noinline]] std::optional<record> take_matching(std::uint32_t match, std::uint64_t h, std::uint64_t now) const {
    auto& ts = stale_detail::tls;
    const record* best = nullptr;
    for (unsigned i = 0; i < stale_detail::kReadSlots; ++i) {
      if (!(match >> i & 1)) continue;
      const record& r = ts.reads[i];
      if (r.map != id_ || r.hash != h) continue;  // another key with the same tag
      const bool live = r.op >= ts.floor && now - r.op <= opt_.window_ops && in_time(r);
      if (live && (!best || r.op > best->op)) best = &r;
    }
    std::optional<record> found;
    if (best) found = *best;
    for (unsigned i = 0; i < stale_detail::kReadSlots; ++i) {
      if ((match >> i & 1) && ts.reads[i].map == id_ && ts.reads[i].hash == h) {
        ts.tags[i] = 0;
        ts.reads[i].map = 0;
      }
    }
    return found;
  }

  // Never 0 (0 marks a consumed slot).
  POLYMAP_CHECK_INLINE std::uint32_t tag_of(std::uint64_t h) const noexcept {
    const std::uint64_t x = h ^ (id_ * 0x9E3779B97F4A7C15ULL);
    return static_cast<std::uint32_t>(x ^ (x >> 32)) | 1u;
  }

  bool in_time(const record& r) const noexcept {
    return opt_.window_time.count() <= 0 || stale_detail::now_ns() - r.time_ns <= opt_.window_time.count();
  }

  void drop(std::uint64_t h, bool one_key) const noexcept {
    auto& ts = stale_detail::tls;
    for (unsigned i = 0; i < stale_detail::kReadSlots; ++i) {
      auto& r = ts.reads[i];
      if (r.map == id_ && (!one_key || r.hash == h)) {
        r.map = 0;
        ts.tags[i] = 0;
      }
    }
  }

  // insert_or_assign and set: M::update, so that the stamp is compared in the
  // same protected step as the write.
  bool assign(K k, V v, const char* op, const loc& l) {
    const std::uint64_t h = hash_of(k);
    const auto rec = take_record(h);
    const std::uint64_t stamp = stale_detail::next_stamp(op, l);
    stale_detail::observed o;
    auto store = [&](const entry* cur) {
      o = cur ? stale_detail::observed{true, cur->stamp, cur->version} : stale_detail::observed{};
      return entry{v, stamp, o.version + 1};
    };
    if (!rec) [[likely]] {
      inner_.update(std::move(k), store);
      return !o.present;
    }
    inner_.update(K(k), store);
    if (o.stamp != rec->stamp) [[unlikely]]
      stale_found(k, *rec, o, op, l.file_name(), l.function_name(), l.line());
    return !o.present;
  }

  // The report: out of line and cold.
  template <class Q>
  [[gnu::noinline, gnu::cold]] void stale_found(const Q& q, const record& rec, const stale_detail::observed& o,
                                                const char* op, const char* file, const char* function,
                                                std::uint_least32_t line) const {
    report r;
    r.kind = conflict::stale_write;
    r.object = this;
    r.object_type = "stale_checked<M>";
    r.here = make_site(op, loc::current(file, function, line));
    r.read = make_site(rec.op_name, loc::current(rec.file, rec.function, rec.line));
    r.other = o.present ? stale_detail::write_site(o.stamp) : site{};
    r.key = polymap::detail::describe_key(q);
    if (o.present && rec.stamp == 0)
      r.lost_writes = o.version;  // created after the read: every write of it was unseen
    else if (o.present && o.version > rec.version)
      r.lost_writes = o.version - rec.version;
    std::string what;
    if (!o.present)
      what = "it was erased since (the erase's site is not recorded)";
    else if (rec.stamp == 0)
      what = "it was absent then; another thread created it since";
    else
      what = "another thread wrote it since";
    std::string lost = r.lost_writes ? " overwrote " + std::to_string(r.lost_writes) + " write(s) of it unseen"
                                     : " was based on a value that no longer held";
    r.detail = "key '" + r.key + "': this thread read it (read before), " + what + " (other side), and this " + op +
               lost +
               ": a lost update. Make the read and the write one call: update(k, f), insert_or_visit(k, v, f) or "
               "compare_exchange(k, expected, desired); if the write does not depend on the read, call forget(k) "
               "first.";
    deliver(r);
  }

  inner_type inner_;
  [[no_unique_address]] hasher hasher_{};
  stale_options opt_{};
  const std::uint64_t id_ = stale_detail::new_map_id();
};

}  // namespace polymap::check

// polymap/check/checked.hpp — checked<M>: a map-like container that reports
// overlapping use, and checked_ref<V>: a reference that reports being used
// after its container changed.
//
// WHAT IT IS FOR
//   Legacy code shares plain std::unordered_maps between threads "because the
//   callers take care". checked<M> wraps any map-like M (std::unordered_map,
//   boost::unordered_flat_map, user containers with the usual members) and,
//   for at most one atomic read-modify-write per call in validate mode (none
//   per read), reports two writers inside the container at once, or a reader
//   and a writer, naming both call sites: operation, file:line and thread id
//   of each. It is Go's runtime
//   `hashWriting` flag ("fatal error: concurrent map writes"), done so that no
//   toggle is lost: Go flips its flag with a plain XOR, so two racing writers
//   can both flip it back and the check itself misses the race. Here the flag
//   is claimed by compare-and-swap.
//
//   It detects overlap in time, not missing synchronization: two accesses that
//   do not overlap are not reported even when nothing orders them (that is
//   ThreadSanitizer's and guarded<>'s job). In exchange it is cheap enough to
//   leave on in production as a canary (counting_handler in report.hpp), in
//   the mode recommended below.
//
// WHICH MODE (see COST)
//   Production, hot lookups: checked<M, read_check::validate>. Tests, and
//   code where a writer must stop *before* touching a table a reader is in:
//   the default, read_check::count.
//
// THE STATE WORD (one std::atomic<uint64_t>, state_)
//
//     63                                              2   1   0
//    +-------------------------------------------------+---+---+
//    | count:    reader count (bits 1-63)                  | W |
//    | validate: write generation (bits 2-63)        | T | W |
//    +-------------------------------------------------+---+---+
//
//   W is set while a writer is inside. The upper bits depend on the read mode:
//
//   read_check::count (default) — the design. A reader adds 2 on entry
//     and subtracts 2 on exit (fetch_add/fetch_sub); a writer claims by
//     CAS 0 -> W and releases with fetch_sub(W). Both sides see each other: a
//     reader that finds W set reports; a writer whose CAS finds readers or W
//     reports *before it touches the table*, which is what stops corruption in
//     the writer-after-reader order. Cost: 2 RMWs per call (claim, release),
//     on a line every reader writes.
//   read_check::validate — a seqlock-style variant for read-mostly hot paths.
//     Writers claim by CAS (W set, generation kept) and release with a plain
//     store of the next generation: one RMW per write, none per read. A
//     reader loads the word before and after its lookup and reports, after
//     its lookup, if W was set at entry or the generation moved (one branch on
//     the fast path). Every overlap is still seen, but only by the reader and
//     only after its lookup; the writer cannot see readers. T (kTestMode) is
//     set only by the test mode, to send every read to the slow path.
//
//   After a report the call goes on unclaimed (the handler decided not to
//   abort): the program is racing, the check cannot make it safe.
//
// COST (one thread; `polymap bench checked` measures it against the bare
//   container in the same run, for std::unordered_map and
//   boost::unordered_flat_map; docs/hazards.md has the numbers)
//   Every fast path below is forced inline and compiles to the container's
//   own call plus the mode's few instructions: no call, no source_location in
//   memory (the call site travels as constants, used only on the report
//   path), conflict branches [[unlikely]] and their code out of line.
//   count:    a read is 2 atomic RMWs on state_ (lock-prefixed on x86, each a
//             full barrier) plus the reader's site (5 relaxed stores, the
//             thread id from a thread-local cache); a write is a CAS, the
//             writer's site and a fetch_sub. The RMWs alone cost about as much
//             as a whole lookup in a fast flat map: this mode cannot be within
//             10% of the bare container, and is not meant to be.
//   validate: a read is 2 relaxed loads (plain moves on x86) and one branch,
//             no store; a write is a load, a CAS, the writer's site and a
//             plain store. This is the mode that aims at the 10% target.
//
// WHY RELAXED
//   Every atomic operation here is memory_order_relaxed, on purpose. The
//   detector must not synchronize the threads it watches: were the claim an
//   acquire and the release a release, every non-overlapping pair of
//   unsynchronized calls would get a happens-before edge through state_, and
//   ThreadSanitizer, run on the same program, would stop reporting the race
//   (hazard 2 of seed/README.md, "incidental synchronization", caused by the
//   checker itself). Detection only needs the modification order of the one
//   word, which relaxed RMWs keep. On x86 the RMWs are full barriers anyway;
//   on weaker machines the table accesses may drift slightly outside the
//   window, which can only make an overlap less likely to be seen.
//
// THE TEST MODE
//   widen_window(d) makes every claimed window last at least d (yielding), so
//   that racing calls in the lab overlap almost always. Never in production.
//   In validate mode it sets kTestMode in the state word, so that the read
//   fast path needs no separate test for it.
//
// CHECKED REFERENCES (escaped references, hazard 3)
//   ref(k) returns a checked_ref<const V> to the stored value. When
//   POLYMAP_CHECKED_REFS is 1, the ref carries the container's generation
//   (generation_), bumped by every change that can invalidate a reference:
//   erase, overwrite of an existing key (insert_or_assign, operator[], update),
//   clear, and growth (bucket_count changed; containers without bucket_count
//   bump on every insert). Using the ref after such a change reports
//   conflict::stale_reference naming the use and the change, then throws
//   stale_reference_error instead of reading freed or reused memory. The check
//   is per container, so it is conservative: a ref held across an erase of
//   another key is reported too. Across threads that is the right rule: a
//   reference that outlives the call that produced it is outside every lock.
//   When POLYMAP_CHECKED_REFS is 0 a checked_ref is a bare pointer.
//
//   POLYMAP_CHECKED_REFS defaults to 1 in debug builds (no NDEBUG) and in ASan
//   and TSan builds, 0 otherwise; define it to 0 or 1 before the first include
//   to choose. The two variants live in different inline namespaces (refs_on,
//   refs_off), so translation units that choose differently do not break the
//   one-definition rule; their checked<> types are just different types.
//
// ALTERNATIVES
//   A mutex per container (the "just lock it" answer) serializes users that
//   are already correct and hides their races from TSan; a per-thread lockset
//   needs the user's mutex, which guarded<> (guarded.hpp) does.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "polymap/check/report.hpp"
#include "polymap/check/site.hpp"

#ifndef POLYMAP_CHECKED_REFS
#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define POLYMAP_CHECKED_REFS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define POLYMAP_CHECKED_REFS 1
#else
#define POLYMAP_CHECKED_REFS 0
#endif
#else
#define POLYMAP_CHECKED_REFS 0
#endif
#endif

namespace polymap::check {

enum class read_check { count, validate };

// Thrown by a checked_ref used after its container changed, once the report
// handler has returned (the default handler aborts first).
class stale_reference_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

#if POLYMAP_CHECKED_REFS
inline namespace refs_on {
#else
inline namespace refs_off {
#endif

template <class M, read_check Reads = read_check::count>
class checked;

// A reference into a checked<M>, valid until the container's next
// invalidating change. Must not outlive the container.
template <class V>
class checked_ref {
 public:
  checked_ref() = default;

  explicit operator bool() const noexcept { return p_ != nullptr; }

  // The referenced value; reports and throws if the container changed since
  // the reference was made (when checks are compiled in).
  V& get(source_location loc = source_location::current()) const {
#if POLYMAP_CHECKED_REFS
    // relaxed: a check, not a synchronization (see "WHY RELAXED"); pairs with
    // the fetch_add in checked<M>::invalidated().
    if (gen_ && gen_->load(std::memory_order_relaxed) != seen_) stale(loc);
#else
    (void)loc;
#endif
    return *p_;
  }
  V& operator*() const {
    return get(source_location::current("(unknown)", "checked_ref::operator*", 0));
  }
  V* operator->() const {
    return &get(source_location::current("(unknown)", "checked_ref::operator->", 0));
  }

  // True if using the reference now would not be reported.
  bool valid() const noexcept {
#if POLYMAP_CHECKED_REFS
    return p_ && (!gen_ || gen_->load(std::memory_order_relaxed) == seen_);  // relaxed: as in get()
#else
    return p_ != nullptr;
#endif
  }

 private:
  template <class M, read_check R>
  friend class checked;

#if POLYMAP_CHECKED_REFS
  checked_ref(V* p, const std::atomic<std::uint64_t>* gen, std::uint64_t seen, const site_slot* change,
              const void* owner, source_location made) noexcept
      : p_(p), gen_(gen), seen_(seen), change_(change), owner_(owner), made_(made) {}

  [[gnu::noinline, gnu::cold]] void stale(source_location loc) const {
    report r;
    r.kind = conflict::stale_reference;
    r.object = owner_;
    r.object_type = "checked<M>";
    r.here = make_site("checked_ref::get", loc);
    r.other = change_->load();
    r.detail = std::string("the reference was made at ") + made_.file_name() + ":" + std::to_string(made_.line()) +
               "; the container changed since (the other side). Copy the value out, or use it inside visit().";
    deliver(r);
    throw stale_reference_error(to_string(r));
  }

  V* p_ = nullptr;
  const std::atomic<std::uint64_t>* gen_ = nullptr;
  std::uint64_t seen_ = 0;
  const site_slot* change_ = nullptr;
  const void* owner_ = nullptr;
  source_location made_{};
#else
  checked_ref(V* p, const std::atomic<std::uint64_t>*, std::uint64_t, const site_slot*, const void*,
              source_location) noexcept
      : p_(p) {}

  V* p_ = nullptr;
#endif
};

template <class M, read_check Reads>
class checked {
 public:
  using container_type = M;
  using key_type = typename M::key_type;
  using mapped_type = typename M::mapped_type;
  using value_type = typename M::value_type;
  using size_type = typename M::size_type;
  using loc = source_location;

  checked() = default;
  template <class... A>
  explicit checked(std::in_place_t, A&&... a) : map_(std::forward<A>(a)...) {}
  checked(const checked&) = delete;
  checked& operator=(const checked&) = delete;

  // --- test mode ---------------------------------------------------------------
  // Every claimed window lasts at least d. Set before threads start.
  void widen_window(std::chrono::nanoseconds d) noexcept {
    widen_ = d;
    if constexpr (Reads == read_check::validate) {
      // relaxed: set before the threads start (see "WHY RELAXED").
      if (d.count() > 0)
        state_.fetch_or(kTestMode, std::memory_order_relaxed);
      else
        state_.fetch_and(~kTestMode, std::memory_order_relaxed);
    }
  }

  // --- reads -------------------------------------------------------------------
  POLYMAP_CHECK_INLINE auto find(const key_type& k, loc l = loc::current()) const {
    read_scope s(*this, "find", l);
    return map_.find(k);
  }
  POLYMAP_CHECK_INLINE auto find(const key_type& k, loc l = loc::current()) {
    read_scope s(*this, "find", l);
    return map_.find(k);
  }
  POLYMAP_CHECK_INLINE bool contains(const key_type& k, loc l = loc::current()) const {
    read_scope s(*this, "contains", l);
    return map_.find(k) != map_.end();
  }
  POLYMAP_CHECK_INLINE size_type count(const key_type& k, loc l = loc::current()) const {
    read_scope s(*this, "count", l);
    return map_.count(k);
  }
  POLYMAP_CHECK_INLINE const mapped_type& at(const key_type& k, loc l = loc::current()) const {
    read_scope s(*this, "at", l);
    return map_.at(k);
  }
  POLYMAP_CHECK_INLINE size_type size(loc l = loc::current()) const {
    read_scope s(*this, "size", l);
    return map_.size();
  }
  POLYMAP_CHECK_INLINE bool empty(loc l = loc::current()) const {
    read_scope s(*this, "empty", l);
    return map_.empty();
  }
  POLYMAP_CHECK_INLINE auto begin(loc l = loc::current()) const {
    read_scope s(*this, "begin", l);
    return map_.begin();
  }
  POLYMAP_CHECK_INLINE auto end(loc l = loc::current()) const {
    read_scope s(*this, "end", l);
    return map_.end();
  }
  POLYMAP_CHECK_INLINE auto begin(loc l = loc::current()) {
    read_scope s(*this, "begin", l);
    return map_.begin();
  }
  POLYMAP_CHECK_INLINE auto end(loc l = loc::current()) {
    read_scope s(*this, "end", l);
    return map_.end();
  }

  // Calls f(const mapped_type&) inside the read window if k is present.
  template <class F>
  POLYMAP_CHECK_INLINE bool visit(const key_type& k, F f, loc l = loc::current()) const {
    read_scope s(*this, "visit", l);
    auto it = map_.find(k);
    if (it == map_.end()) return false;
    f(static_cast<const mapped_type&>(it->second));
    return true;
  }

  // Calls f(key, value) for every entry inside one read window.
  template <class F>
  void for_each(F f, loc l = loc::current()) const {
    read_scope s(*this, "for_each", l);
    for (const auto& [k, v] : map_) f(k, v);
  }

  // A reference to k's value that reports use after an invalidating change;
  // empty if k is absent. See "CHECKED REFERENCES".
  checked_ref<const mapped_type> ref(const key_type& k, loc l = loc::current()) const {
    read_scope s(*this, "ref", l);
    auto it = map_.find(k);
    if (it == map_.end()) return {};
    // relaxed: the value is compared later by checked_ref::get (see "WHY RELAXED").
    return checked_ref<const mapped_type>(&it->second, &generation_, generation_.load(std::memory_order_relaxed),
                                          &last_change_, this, l);
  }

  // --- writes ------------------------------------------------------------------
  template <class V>
  POLYMAP_CHECK_INLINE auto insert_or_assign(const key_type& k, V&& v, loc l = loc::current()) {
    write_scope s(*this, "insert_or_assign", l);
    const auto before = buckets();
    auto r = map_.insert_or_assign(k, std::forward<V>(v));
    if (!r.second || buckets() != before) invalidated("insert_or_assign", l);
    return r;
  }
  template <class V>
  POLYMAP_CHECK_INLINE auto try_emplace(const key_type& k, V&& v, loc l = loc::current()) {
    write_scope s(*this, "try_emplace", l);
    const auto before = buckets();
    auto r = map_.try_emplace(k, std::forward<V>(v));
    if (r.second && grew(before)) invalidated("try_emplace", l);
    return r;
  }
  template <class V>
  POLYMAP_CHECK_INLINE auto emplace(const key_type& k, V&& v, loc l = loc::current()) {
    write_scope s(*this, "emplace", l);
    const auto before = buckets();
    auto r = map_.emplace(k, std::forward<V>(v));
    if (r.second && grew(before)) invalidated("emplace", l);
    return r;
  }
  POLYMAP_CHECK_INLINE auto insert(const value_type& kv, loc l = loc::current()) {
    write_scope s(*this, "insert", l);
    const auto before = buckets();
    auto r = map_.insert(kv);
    if (r.second && grew(before)) invalidated("insert", l);
    return r;
  }
  // The returned reference is outside the window: assigning through it later
  // is not checked. The change is counted as an overwrite for checked refs.
  mapped_type& operator[](const key_type& k) {
    loc l = loc::current("(unknown)", "checked::operator[]", 0);
    write_scope s(*this, "operator[]", l);
    mapped_type& v = map_[k];
    invalidated("operator[]", l);
    return v;
  }
  // operator[] with a call site: m.slot(k) = v.
  mapped_type& slot(const key_type& k, loc l = loc::current()) {
    write_scope s(*this, "slot", l);
    mapped_type& v = map_[k];
    invalidated("slot", l);
    return v;
  }
  // Calls f(mapped_type&) inside the write window if k is present.
  template <class F>
  bool update(const key_type& k, F f, loc l = loc::current()) {
    write_scope s(*this, "update", l);
    auto it = map_.find(k);
    if (it == map_.end()) return false;
    f(it->second);
    invalidated("update", l);
    return true;
  }
  POLYMAP_CHECK_INLINE size_type erase(const key_type& k, loc l = loc::current()) {
    write_scope s(*this, "erase", l);
    const size_type n = map_.erase(k);
    if (n) invalidated("erase", l);
    return n;
  }
  void clear(loc l = loc::current()) {
    write_scope s(*this, "clear", l);
    map_.clear();
    invalidated("clear", l);
  }
  void reserve(size_type n, loc l = loc::current()) {
    write_scope s(*this, "reserve", l);
    const auto before = buckets();
    map_.reserve(n);
    if (grew(before)) invalidated("reserve", l);
  }

  // The wrapped container, unchecked: for single-threaded setup and teardown.
  M& unchecked() noexcept { return map_; }
  const M& unchecked() const noexcept { return map_; }

 private:
  static constexpr std::uint64_t kWriter = 1;
  static constexpr std::uint64_t kReader = 2;  // one reader, in count mode
  // Validate mode: T, set by widen_window() so that every read takes the slow
  // path (which widens); writers keep it. The generation counts in units of
  // kGeneration above it. W | T is a small immediate for the read fast path.
  static constexpr std::uint64_t kTestMode = 2;
  static constexpr std::uint64_t kGeneration = 4;

  // The test mode's wait, off the fast path: one load and a branch when off.
  POLYMAP_CHECK_INLINE void widen() const {
    if (widen_.count() > 0) [[unlikely]]
      widen_slow();
  }
  [[gnu::noinline, gnu::cold]] void widen_slow() const {
    const auto until = std::chrono::steady_clock::now() + widen_;
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
  }

  std::size_t buckets() const {
    if constexpr (requires(const M& m) { m.bucket_count(); })
      return map_.bucket_count();
    else
      return 0;
  }
  bool grew(std::size_t before) const {
    if constexpr (requires(const M& m) { m.bucket_count(); })
      return map_.bucket_count() != before;
    else
      return true;  // cannot tell: assume the insert moved elements
  }

  // A change that may invalidate references. Called inside the write window.
  // Without checked references nothing reads the generation: no work at all.
  POLYMAP_CHECK_INLINE void invalidated([[maybe_unused]] const char* op, [[maybe_unused]] const loc& l) {
#if POLYMAP_CHECKED_REFS
    last_change_.store(op, l);
    // relaxed: read by checked_ref::get; see "WHY RELAXED".
    generation_.fetch_add(1, std::memory_order_relaxed);
#endif
  }

  // The report path, out of line and cold. The call site travels as three
  // scalars, so that the fast path never builds a source_location in memory.
  [[gnu::noinline, gnu::cold]] void conflict_found(conflict kind, const char* op, const char* file,
                                                   const char* function, std::uint_least32_t line,
                                                   const site_slot& other, const char* what) const {
    report r;
    r.kind = kind;
    r.object = this;
    r.object_type = "checked<M>";
    r.here = make_site(op, loc::current(file, function, line));
    r.other = other.load();
    r.detail = what;
    deliver(r);
  }
  POLYMAP_CHECK_INLINE void report_conflict(conflict kind, const char* op, const loc& l, const site_slot& other,
                                            const char* what) const {
    conflict_found(kind, op, l.file_name(), l.function_name(), l.line(), other, what);
  }

  // The fast paths below are forced inline: a checked call then compiles to
  // the container's own call plus the few instructions of its read mode (no
  // call, the call site folded to constants). Conflicts leave through
  // conflict_found(), which is out of line and cold.

  // Claims the write window; false (after a report) if it could not.
  POLYMAP_CHECK_INLINE bool enter_write(const char* op, const loc& l) {
    // relaxed, every operation on state_: see "WHY RELAXED".
    if constexpr (Reads == read_check::count) {
      std::uint64_t seen = 0;
      if (!state_.compare_exchange_strong(seen, kWriter, std::memory_order_relaxed)) [[unlikely]] {
        write_refused(seen, op, l.file_name(), l.function_name(), l.line());
        return false;
      }
    } else {
      std::uint64_t seen = state_.load(std::memory_order_relaxed);
      do {
        if (seen & kWriter) [[unlikely]] {
          write_refused(seen, op, l.file_name(), l.function_name(), l.line());
          return false;
        }
      } while (!state_.compare_exchange_weak(seen, seen | kWriter, std::memory_order_relaxed));
    }
    writer_.store(op, l);
    widen();
    return true;
  }
  [[gnu::noinline, gnu::cold]] void write_refused(std::uint64_t seen, const char* op, const char* file,
                                                  const char* function, std::uint_least32_t line) const {
    if (seen & kWriter)
      conflict_found(conflict::write_write, op, file, function, line, writer_,
                     "another writer is inside the container");
    else
      conflict_found(conflict::read_write, op, file, function, line, reader_,
                     "a reader is inside the container (the other side is the last reader recorded)");
  }
  POLYMAP_CHECK_INLINE void exit_write() {
    if constexpr (Reads == read_check::count) {
      state_.fetch_sub(kWriter, std::memory_order_relaxed);  // relaxed: pairs with enter_write's CAS
    } else {
      // Only the claimant changes the word while W is set: a plain store that
      // clears W, keeps T and bumps the generation
      // ((g * 4 + T + W) + 3 == (g + 1) * 4 + T, for W == 1, T == 0 or 2).
      const std::uint64_t s = state_.load(std::memory_order_relaxed);
      state_.store(s + (kGeneration - kWriter), std::memory_order_relaxed);  // relaxed: compared by readers
    }
  }

  // Returns the state seen on entry (validate mode) for exit_read.
  //   count:    one fetch_add here, one fetch_sub in exit_read, and the
  //             reader's site recorded (a writer that finds readers names it).
  //   validate: one relaxed load here, one in exit_read, one branch there; no
  //             store at all. A writer seen inside at entry, a generation that
  //             moved, and the test mode (kTestMode) all take that one branch
  //             to read_slow(), out of line.
  POLYMAP_CHECK_INLINE std::uint64_t enter_read(const char* op, const loc& l) const {
    if constexpr (Reads == read_check::count) {
      reader_.store(op, l);
      const std::uint64_t s = state_.fetch_add(kReader, std::memory_order_relaxed);  // relaxed: "WHY RELAXED"
      if (s & kWriter) [[unlikely]]
        report_conflict(conflict::read_write, op, l, writer_, "a writer is inside the container");
      widen();
      return s;
    } else {
      (void)op;
      (void)l;
      return state_.load(std::memory_order_relaxed);  // relaxed: "WHY RELAXED"
    }
  }
  POLYMAP_CHECK_INLINE void exit_read(std::uint64_t entry, const char* op, const loc& l) const {
    if constexpr (Reads == read_check::count) {
      state_.fetch_sub(kReader, std::memory_order_relaxed);  // relaxed: pairs with enter_read's fetch_add
    } else {
      const std::uint64_t s = state_.load(std::memory_order_relaxed);  // relaxed: "WHY RELAXED"
      // One compare for all three: entry with W or T set never equals itself
      // with them cleared, and a writer that came and went moved the generation.
      if (s != (entry & ~(kWriter | kTestMode))) [[unlikely]]
        read_slow(entry, op, l.file_name(), l.function_name(), l.line());
    }
  }
  // Validate mode, after the lookup: widens the window in test mode, then
  // reports a writer that was inside at entry, or else a write that ran
  // during the read. One report per read at most.
  [[gnu::noinline, gnu::cold]] void read_slow(std::uint64_t entry, const char* op, const char* file,
                                              const char* function, std::uint_least32_t line) const {
    if (entry & kTestMode) widen_slow();
    const std::uint64_t s = state_.load(std::memory_order_relaxed);  // relaxed: "WHY RELAXED"
    if (entry & kWriter)
      conflict_found(conflict::read_write, op, file, function, line, writer_, "a writer is inside the container");
    else if (s != entry)
      conflict_found(conflict::read_write, op, file, function, line, writer_,
                     "a write ran during this read (the other side is the last writer recorded)");
  }

  struct write_scope {
    POLYMAP_CHECK_INLINE write_scope(checked& c, const char* op, const loc& l)
        : c_(c), claimed_(c.enter_write(op, l)) {}
    POLYMAP_CHECK_INLINE ~write_scope() {
      if (claimed_) [[likely]]
        c_.exit_write();
    }
    write_scope(const write_scope&) = delete;
    write_scope& operator=(const write_scope&) = delete;
    checked& c_;
    bool claimed_;
  };
  struct read_scope {
    POLYMAP_CHECK_INLINE read_scope(const checked& c, const char* op, const loc& l)
        : c_(c), op_(op), l_(l), entry_(c.enter_read(op, l)) {}
    POLYMAP_CHECK_INLINE ~read_scope() { c_.exit_read(entry_, op_, l_); }
    read_scope(const read_scope&) = delete;
    read_scope& operator=(const read_scope&) = delete;
    const checked& c_;
    const char* op_;
    loc l_;
    std::uint64_t entry_;
  };

  M map_;
  mutable std::atomic<std::uint64_t> state_{0};  // see "THE STATE WORD"
  mutable site_slot writer_;                     // the writer holding W (or the last one)
  mutable site_slot reader_;                     // the last reader to enter (count mode)
  site_slot last_change_;                        // the last invalidating write
  std::atomic<std::uint64_t> generation_{0};     // bumped by invalidating writes
  std::chrono::nanoseconds widen_{0};            // test mode; 0 in production
};

}  // namespace refs_on / refs_off
}  // namespace polymap::check

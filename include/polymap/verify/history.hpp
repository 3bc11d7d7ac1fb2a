// polymap/verify/history.hpp — a cheap recorder of concurrent operation
// histories, the input of the linearizability checker (checker.hpp).
//
// TERMS
//   An operation is one call of a map method by one thread: its kind, key,
//   arguments and result, and two stamps from a monotonic clock: `invoke`,
//   read just before the call, and `response`, read just after it returns.
//   A history is the set of completed operations of a run. Operation A
//   precedes B in real time iff A.response < B.invoke; otherwise they overlap
//   and the checker may order them either way.
//   The response stamp is read after a full fence (MFENCE or a locked
//   instruction on x86, then the vDSO's LFENCE;RDTSC): a call may return
//   with its last stores still in its core's store buffer (x86-TSO lets a
//   plain store wait there while the thread goes on), and such a store is
//   not yet visible to other threads. Stamped without the fence, a lookup
//   on another core could begin after the response stamp and miss the
//   write, an order no program can observe: any message from this thread
//   to another (a flag, a lock, a syscall) passes through memory behind
//   those stores. The fence makes the stamp's real-time order the
//   observable one. The invoke stamp needs none: a later load of the call
//   retires after the RDTSC and is replayed if its line changes before.
//
// COST
//   Each thread appends to its own buffer (a std::vector reserved up front, in
//   its own allocation, so threads share no cache line), and reads the clock
//   twice per operation (clock_gettime(CLOCK_MONOTONIC) through the vDSO,
//   about 20 ns) and fences once. No lock, no atomic RMW. Recording is meant to stay on in stress
//   tests and in `polymap soak`.
//
// RULES
//   One thread_log per thread; a thread_log is not thread-safe. collect() may
//   run only after every recording thread has finished (joined). An operation
//   whose call threw is dropped by the adapter (the maps promise a throwing
//   call changes nothing), so a history holds completed operations only.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace polymap::verify {

// What the sequential model knows how to replay (see checker.hpp, `model`).
enum class op_kind : std::uint8_t {
  insert,            // arg: value; ok: inserted
  insert_or_assign,  // arg: value; ok: inserted
  find,              // out: the value found, or empty
  contains,          // ok: present
  erase,             // ok: erased
  update_add,        // arg: delta; out: the value stored (cur + delta, or delta)
  update,            // out: the value stored by an opaque update(f)
  compare_exchange,  // expected, arg: desired; ok: exchanged
};

constexpr std::string_view to_string(op_kind k) noexcept {
  switch (k) {
    case op_kind::insert:
      return "insert";
    case op_kind::insert_or_assign:
      return "insert_or_assign";
    case op_kind::find:
      return "find";
    case op_kind::contains:
      return "contains";
    case op_kind::erase:
      return "erase";
    case op_kind::update_add:
      return "update_add";
    case op_kind::update:
      return "update";
    case op_kind::compare_exchange:
      return "compare_exchange";
  }
  return "?";
}

template <class K, class V>
struct operation {
  op_kind kind{};
  bool ok = false;             // the bool result, where the operation has one
  std::uint32_t thread = 0;    // the recording thread_log's index
  std::uint64_t invoke = 0;    // ns since the recorder's epoch
  std::uint64_t response = 0;  // ns since the recorder's epoch; 0 while pending
  K key{};
  V arg{};               // insert/insert_or_assign value, update_add delta, CAS desired
  V expected{};          // CAS expected
  std::optional<V> out;  // find result, update's stored value
};

template <class K, class V>
using history = std::vector<operation<K, V>>;

// A monotonic clock in ns since a fixed epoch shared by all thread_logs.
class stamp_clock {
 public:
  stamp_clock() : epoch_(std::chrono::steady_clock::now()) {}
  std::uint64_t now() const noexcept {
    // +1: 0 means "no response yet".
    return static_cast<std::uint64_t>(
               std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - epoch_)
                   .count()) +
           1;
  }

 private:
  std::chrono::steady_clock::time_point epoch_;
};

template <class K, class V>
class recorder;

// One thread's buffer. begin() stamps the invocation and returns a slot;
// end() stamps the response and stores the result; abandon() drops a slot
// whose call threw.
template <class K, class V>
class thread_log {
 public:
  using op = operation<K, V>;

  std::size_t begin(op_kind kind, K key, V arg = V{}, V expected = V{}) {
    op& o = ops_.emplace_back();
    o.kind = kind;
    o.thread = id_;
    o.key = std::move(key);
    o.arg = std::move(arg);
    o.expected = std::move(expected);
    o.invoke = clock_->now();
    return ops_.size() - 1;
  }
  void end(std::size_t slot, bool ok, std::optional<V> out = std::nullopt) {
    // seq_cst fence before the response stamp: the call's stores are visible
    // to every thread before the stamp is read (see TERMS).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint64_t t = clock_->now();
    op& o = ops_[slot];
    o.response = t;
    o.ok = ok;
    o.out = std::move(out);
  }
  void abandon(std::size_t slot) {
    if (slot + 1 == ops_.size()) ops_.pop_back();
  }
  std::size_t size() const noexcept { return ops_.size(); }
  std::uint32_t id() const noexcept { return id_; }

 private:
  friend class recorder<K, V>;
  thread_log(std::uint32_t id, const stamp_clock* clock, std::size_t reserve) : id_(id), clock_(clock) {
    ops_.reserve(reserve);
  }
  std::uint32_t id_;
  const stamp_clock* clock_;
  std::vector<op> ops_;
};

// Owns one thread_log per thread and merges them into a history.
template <class K, class V>
class recorder {
 public:
  explicit recorder(std::size_t threads, std::size_t reserve_per_thread = 0) {
    logs_.reserve(threads);
    for (std::size_t t = 0; t < threads; ++t) {
      logs_.emplace_back(new thread_log<K, V>(static_cast<std::uint32_t>(t), &clock_, reserve_per_thread));
    }
  }
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;

  thread_log<K, V>& log(std::size_t t) { return *logs_.at(t); }
  std::size_t threads() const noexcept { return logs_.size(); }

  // Moves every completed operation out, ordered by invocation time; the
  // logs are left empty for the next round. Call after the threads joined.
  history<K, V> collect() {
    history<K, V> h;
    std::size_t n = 0;
    for (auto& l : logs_) n += l->ops_.size();
    h.reserve(n);
    for (auto& l : logs_) {
      for (auto& o : l->ops_) {
        if (o.response != 0) h.push_back(std::move(o));
      }
      l->ops_.clear();
    }
    std::stable_sort(h.begin(), h.end(), [](const auto& a, const auto& b) { return a.invoke < b.invoke; });
    return h;
  }

 private:
  stamp_clock clock_;
  std::vector<std::unique_ptr<thread_log<K, V>>> logs_;
};

}  // namespace polymap::verify

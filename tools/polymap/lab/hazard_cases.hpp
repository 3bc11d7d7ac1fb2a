// tools/polymap/lab/hazard_cases.hpp — the bodies of scenarios 2-7, one
// function per case, shared by the lab (which counts their outcomes) and by
// the sanitizer child binaries polymap_lab_tsan / polymap_lab_asan (which run
// the very same code under ThreadSanitizer or AddressSanitizer, so that the
// lab's TSan and ASan columns are measured, never asserted).
//
// Each function runs one round and returns its counts. The naive cases are
// deliberately wrong code; the lab runs them in forked children (contained
// crashes) and the sanitizer builds skip the in-process runs that their own
// sanitizer would abort on.
//
// Ordering between threads inside a case is often forced with a relaxed
// atomic "phase" word and yields. Relaxed on purpose: ThreadSanitizer draws no
// happens-before edge from relaxed atomics, so the only ordering TSan sees is
// the one the case is about (a map's mutex, a logger's mutex, or none).
#pragma once

// The checked-reference cases need the generation check whatever the build
// type: include this header before anything that includes checked.hpp.
#ifndef POLYMAP_CHECKED_REFS
#define POLYMAP_CHECKED_REFS 1
#endif
static_assert(POLYMAP_CHECKED_REFS, "hazard_cases.hpp: include it before polymap/check/checked.hpp");

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lab.hpp"
#include "polymap/check/checked.hpp"
#include "polymap/check/guarded.hpp"
#include "polymap/locked_map.hpp"

namespace polymap::lab::cases {

// Runs a() and b() on two threads released together from a latch.
template <class A, class B>
void run_pair(A a, B b) {
  std::latch start(2);
  std::thread ta([&] {
    start.arrive_and_wait();
    a();
  });
  std::thread tb([&] {
    start.arrive_and_wait();
    b();
  });
  ta.join();
  tb.join();
}

// Waits until `word` reaches `want`: a relaxed spin (see the file comment).
inline void await(const std::atomic<int>& word, int want) {
  while (word.load(std::memory_order_relaxed) != want) std::this_thread::yield();  // relaxed: see file comment
}

// --- scenario 2: torn {type tag, payload} ------------------------------------------
// A dynamically typed value as two machine words, as Go's interface{} is.
struct two_words {
  std::uint64_t tag;
  std::uint64_t payload;
};
inline constexpr std::uint64_t kTagInt = 1, kTagBytes = 2;
inline constexpr std::uint64_t kPayloadInt = 0x1111111111111111, kPayloadBytes = 0x2222222222222222;
inline bool consistent(std::uint64_t tag, std::uint64_t payload) {
  return (tag == kTagInt && payload == kPayloadInt) || (tag == kTagBytes && payload == kPayloadBytes);
}

// One writer flips the variable between an int and a "bytes" value with two
// plain stores; one reader reads both words. wrong = torn reads.
inline round_counts torn_naive(int reads) {
  two_words shared{kTagInt, kPayloadInt};
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  round_counts c;
  // Plain accesses (not volatile: gcc's ThreadSanitizer does not instrument
  // volatile ones). The empty asm with a memory clobber makes the compiler
  // emit every load and store of every iteration.
  run_pair(
      [&] {
        for (bool flip = false; !stop.load(std::memory_order_relaxed); flip = !flip) {  // relaxed: a stop flag
          shared.tag = flip ? kTagInt : kTagBytes;
          asm volatile("" ::: "memory");  // two stores, not one 16-byte vector store
          shared.payload = flip ? kPayloadInt : kPayloadBytes;
          asm volatile("" ::: "memory");
          if (!flip) started.store(1, std::memory_order_relaxed);  // relaxed: see the file comment
        }
      },
      [&] {
        await(started, 1);  // the writer is running: on a loaded machine it may start late
        for (int i = 0; i < reads; ++i) {
          asm volatile("" ::: "memory");
          const std::uint64_t tag = shared.tag;
          asm volatile("" ::: "memory");
          const std::uint64_t payload = shared.payload;
          if (!consistent(tag, payload)) ++c.wrong;
        }
        stop.store(true, std::memory_order_relaxed);  // relaxed: pairs with the writer's loop test
      });
  return c;
}

// The same through checked<std::unordered_map>: the overlapping reads and
// writes are reported (the caller installs a counting handler).
inline round_counts torn_checked(int reads, std::chrono::nanoseconds widen) {
  check::checked<std::unordered_map<int, two_words>> m;
  m.insert_or_assign(0, two_words{kTagInt, kPayloadInt});
  m.widen_window(widen);
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  round_counts c;
  run_pair(
      [&] {
        for (bool flip = false; !stop.load(std::memory_order_relaxed); flip = !flip) {  // relaxed: a stop flag
          m.insert_or_assign(0, flip ? two_words{kTagInt, kPayloadInt} : two_words{kTagBytes, kPayloadBytes});
          if (!flip) started.store(1, std::memory_order_relaxed);  // relaxed: see the file comment
        }
      },
      [&] {
        await(started, 1);  // the writer is running: on a loaded machine it may start late
        for (int i = 0; i < reads; ++i) {
          m.visit(0, [&](const two_words& v) {
            if (!consistent(v.tag, v.payload)) ++c.wrong;
          });
        }
        stop.store(true, std::memory_order_relaxed);  // relaxed: pairs with the writer's loop test
      });
  return c;
}

// polymap::value in a locked_map: type and payload always match.
inline round_counts torn_polymap(int reads) {
  polymap::locked_map<> m;
  const std::string bytes_payload(24, 'b');
  m.insert_or_assign("v", std::int64_t{42});
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  round_counts c;
  run_pair(
      [&] {
        for (bool flip = false; !stop.load(std::memory_order_relaxed); flip = !flip) {  // relaxed: a stop flag
          if (flip)
            m.insert_or_assign("v", std::int64_t{42});
          else
            m.insert_or_assign("v", bytes_payload);
          if (!flip) started.store(1, std::memory_order_relaxed);  // relaxed: see the file comment
        }
      },
      [&] {
        await(started, 1);  // the writer is running: on a loaded machine it may start late
        for (int i = 0; i < reads; ++i) {
          auto v = m.find("v");
          const auto* n = v ? v->get_if<std::int64_t>() : nullptr;
          const auto* s = v ? v->get_if<std::string>() : nullptr;
          if (!((n && *n == 42) || (s && *s == bytes_payload))) ++c.wrong;
        }
        stop.store(true, std::memory_order_relaxed);  // relaxed: pairs with the writer's loop test
      });
  return c;
}

// --- scenario 3: check-then-act through a thread-safe map ------------------------------
// The check-then-act window, widened. Left alone, the window between the
// check and the act is a few hundred nanoseconds; on a machine whose other
// core is busy the two threads take turns on one core in long time slices
// and may never meet inside it, and the lab would show nothing. So every
// kWidenEvery-th step a thread holds its window open until the other thread
// has made enough steps that one of them acted after this thread's check
// (or the other finished, or kWidenMaxWait passed). The interleaving it waits
// for is one the scheduler may produce at any time; the wait makes it certain.
inline constexpr int kWidenEvery = 500;
inline constexpr auto kWidenMaxWait = std::chrono::milliseconds(20);

struct widened_window {
  std::atomic<std::int64_t> steps[2] = {0, 0};  // steps done by thread 0 and 1
  std::atomic<bool> holding[2] = {false, false};
  std::atomic<bool> done[2] = {false, false};

  // Relaxed throughout: flags and counters polled by the other thread only to
  // decide how long to wait; the map's own mutex orders the data (see the file
  // comment).
  void step(int t) { steps[t].fetch_add(1, std::memory_order_relaxed); }
  void finish(int t) { done[t].store(true, std::memory_order_relaxed); }
  std::int64_t other(int t) const { return steps[1 - t].load(std::memory_order_relaxed); }

  // Thread t, in its window: waits until the other thread's steps reach
  // `want` (or, with `or_other_holding`, the other is in its own window too).
  void hold(int t, std::int64_t want, bool or_other_holding) {
    holding[t].store(true, std::memory_order_relaxed);
    const auto until = std::chrono::steady_clock::now() + kWidenMaxWait;
    while (other(t) < want && !done[1 - t].load(std::memory_order_relaxed) &&
           !(or_other_holding && holding[1 - t].load(std::memory_order_relaxed)) &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    holding[t].store(false, std::memory_order_relaxed);
  }
};

// Two threads each add n to a counter with get, then insert_or_assign. Every
// call is locked; the pair is not. lost = updates overwritten. The window is
// widened (widened_window): the other thread's second step counted after our
// get wrote after it, and our write overwrites that increment.
inline round_counts get_then_set_naive(int n) {
  polymap::locked_map<> m;
  m.insert_or_assign("hits", std::int64_t{0});
  widened_window w;
  auto body = [&](int t) {
    for (int i = 0; i < n; ++i) {
      auto cur = m.get<std::int64_t>("hits");
      const std::int64_t seen = w.other(t);  // its step seen + 2 writes after our get
      // Held every kWidenEvery-th step, the two threads at opposite phases;
      // both in their windows at once (both read, neither wrote) loses too.
      if (i % kWidenEvery == kWidenEvery / 4 + t * kWidenEvery / 2) w.hold(t, seen + 2, true);
      m.insert_or_assign("hits", *cur + 1);
      w.step(t);
    }
    w.finish(t);
  };
  run_pair([&] { body(0); }, [&] { body(1); });
  round_counts c;
  c.lost = 2 * n - *m.get<std::int64_t>("hits");
  return c;
}

// Two threads claim the same n keys with contains, then insert: a thread that
// saw "absent" believes its value went in. lost = claims that did not land.
// The window is widened: held until the other thread is past the same key.
inline round_counts contains_then_insert_naive(int n) {
  polymap::locked_map<> m;
  std::atomic<std::int64_t> claims{0};
  widened_window w;
  auto body = [&](int t) {
    for (int k = 0; k < n; ++k) {
      const std::string key = "k" + std::to_string(k);
      if (!m.contains(key)) {
        if (k % kWidenEvery == kWidenEvery / 2) w.hold(t, k + 1, false);  // until the other is past key k
        m.insert(key, std::int64_t{t});                                   // return value ignored, as in the pattern
        claims.fetch_add(1, std::memory_order_relaxed);                   // relaxed: a count, read after join
      }
      w.step(t);
    }
    w.finish(t);
  };
  run_pair([&] { body(0); }, [&] { body(1); });
  round_counts c;
  c.lost = claims.load() - static_cast<std::int64_t>(m.size());
  return c;
}

inline round_counts get_then_set_polymap(int n) {
  polymap::locked_map<> m;
  auto body = [&] {
    for (int i = 0; i < n; ++i) {
      m.update("hits", [](const value* cur) { return value(cur ? *cur->get_if<std::int64_t>() + 1 : 1); });
    }
  };
  run_pair(body, body);
  round_counts c;
  c.lost = 2 * n - *m.get<std::int64_t>("hits");
  return c;
}

inline round_counts contains_then_insert_polymap(int n) {
  polymap::locked_map<> m;
  std::atomic<std::int64_t> claims{0};
  auto body = [&](int t) {
    for (int k = 0; k < n; ++k) {
      if (m.insert_or_visit("k" + std::to_string(k), std::int64_t{t}, [](value&) {}))
        claims.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count, read after join
    }
  };
  run_pair([&] { body(0); }, [&] { body(1); });
  round_counts c;
  c.lost = claims.load() - static_cast<std::int64_t>(m.size());
  return c;
}

// --- scenario 4: a race masked by incidental synchronization ------------------------
// Two threads take turns writing a plain, unlocked map. With `logger`, each
// writer logs (locks a logging mutex) before and after its write: that mutex
// orders the writes, so ThreadSanitizer sees no race, although nothing in the
// map's own discipline does. Without the logger (the control) TSan reports.
template <class Write>
void take_turns(int turns, bool logger, Write write) {
  std::mutex log_mutex;  // Protects: log_lines.
  std::int64_t log_lines = 0;
  std::atomic<int> turn{0};
  auto body = [&](int t) {
    for (int i = 0; i < turns; ++i) {
      await(turn, t);
      if (logger) {
        std::lock_guard l(log_mutex);
        ++log_lines;
      }
      write(t, i);
      if (logger) {
        std::lock_guard l(log_mutex);
        ++log_lines;
      }
      turn.store(1 - t, std::memory_order_relaxed);  // relaxed: see the file comment
    }
  };
  run_pair([&] { body(0); }, [&] { body(1); });
}

inline round_counts masked_naive(int turns, bool logger) {
  std::unordered_map<int, int> m;  // shared, no lock of its own
  take_turns(turns, logger, [&](int t, int i) { m[t * turns + i] = i; });
  round_counts c;
  for (int t = 0; t < 2; ++t) {
    for (int i = 0; i < turns; ++i) {
      auto it = m.find(t * turns + i);
      if (it == m.end())
        ++c.lost;
      else if (it->second != i)
        ++c.wrong;
    }
  }
  return c;
}

// Writes through guarded<>::get() without taking the container's mutex: the
// rule-breaking call, kept out of clang's compile-time analysis on purpose.
inline void unguarded_write(check::guarded<std::unordered_map<int, int>>& g, int k,
                            int v) POLYMAP_NO_THREAD_SAFETY_ANALYSIS {
  g.get()[k] = v;
}

// The same turns through guarded<>: every write is reported (the caller
// installs a counting handler), whatever the schedule.
inline round_counts masked_guarded(int turns) {
  check::guarded<std::unordered_map<int, int>> g;
  take_turns(turns, true, [&](int t, int i) { unguarded_write(g, t * turns + i, i); });
  round_counts c;
  c.lost = 2 * turns - static_cast<std::int64_t>(g.with_lock([](auto& m) { return m.size(); }));
  return c;
}

inline round_counts masked_polymap(int turns) {
  polymap::locked_map<int, int> m;
  take_turns(turns, true, [&](int t, int i) { m.insert_or_assign(t * turns + i, i); });
  round_counts c;
  c.lost = 2 * turns - static_cast<std::int64_t>(m.size());
  return c;
}

// --- scenario 5: a reference escaping the lock --------------------------------------
// A "thread-safe" map whose get() returns a reference: the lock is released
// when get() returns, the reference lives on.
template <class V>
class ref_returning_map {
 public:
  const V& get(int k) {
    std::lock_guard l(mutex_);
    return map_.at(k);  // the hazard: the reference escapes the lock
  }
  void put(int k, V v) {
    std::lock_guard l(mutex_);
    map_.insert_or_assign(k, std::move(v));
  }
  void erase(int k) {
    std::lock_guard l(mutex_);
    map_.erase(k);
  }
  std::size_t size() {
    std::lock_guard l(mutex_);
    return map_.size();
  }

 private:
  std::mutex mutex_;  // Protects: map_ (not what get() hands out).
  std::unordered_map<int, V> map_;
};

inline std::string ref_payload(int i, char c) {
  return std::string(48, c) + std::to_string(1000000 + i);  // heap-allocated, same size every time
}

// Thread A takes a reference, thread B then erases the key and inserts
// another (the freed memory is reused), A then reads through its reference.
// B's writes happen-before A's read through the map's mutex, so TSan sees
// no race; the read is a use after free. wrong = reads that did not see A's
// value.
inline round_counts ref_after_erase_naive(int iters) {
  ref_returning_map<std::string> m;
  for (int i = 0; i < iters; ++i) m.put(i, ref_payload(i, 'a'));
  std::atomic<int> phase{0};
  round_counts c;
  run_pair(
      [&] {
        for (int i = 0; i < iters; ++i) {
          const std::string& r = m.get(i);
          phase.store(2 * i + 1, std::memory_order_relaxed);  // relaxed: see the file comment
          await(phase, 2 * i + 2);
          (void)m.size();  // takes the map's mutex: B's erase happens-before the read below
          if (r != ref_payload(i, 'a')) ++c.wrong;
        }
      },
      [&] {
        for (int i = 0; i < iters; ++i) {
          await(phase, 2 * i + 1);
          m.erase(i);
          m.put(iters + i, ref_payload(i, 'z'));
          phase.store(2 * i + 2, std::memory_order_relaxed);  // relaxed: see the file comment
        }
      });
  return c;
}

// A value stored inline in the node, overwritten in place: no free, so ASan
// has nothing to say. wrong = reads that saw the new value.
struct inline_value {
  std::int64_t id;
  std::int64_t twin;
};
inline round_counts ref_after_overwrite_naive(int iters) {
  ref_returning_map<inline_value> m;
  for (int i = 0; i < iters; ++i) m.put(i, inline_value{i, i});
  std::atomic<int> phase{0};
  round_counts c;
  run_pair(
      [&] {
        for (int i = 0; i < iters; ++i) {
          const inline_value& r = m.get(i);
          phase.store(2 * i + 1, std::memory_order_relaxed);  // relaxed: see the file comment
          await(phase, 2 * i + 2);
          (void)m.size();  // B's overwrite happens-before the read below
          if (r.id != i) ++c.wrong;
        }
      },
      [&] {
        for (int i = 0; i < iters; ++i) {
          await(phase, 2 * i + 1);
          m.put(i, inline_value{-i - 1, -i - 1});
          phase.store(2 * i + 2, std::memory_order_relaxed);  // relaxed: see the file comment
        }
      });
  return c;
}

// The same two threads with checked<>::ref() under the same mutex discipline:
// every use after the change is reported and throws before touching memory.
// reports are counted by the caller's handler; wrong = reads that got through.
inline round_counts ref_checked(int iters, bool erase) {
  check::checked<std::unordered_map<int, std::string>> m;
  std::mutex mutex;  // Protects: m (every call).
  for (int i = 0; i < iters; ++i) m.insert_or_assign(i, ref_payload(i, 'a'));
  std::atomic<int> phase{0};
  round_counts c;
  run_pair(
      [&] {
        for (int i = 0; i < iters; ++i) {
          check::checked_ref<const std::string> r;
          {
            std::lock_guard l(mutex);
            r = m.ref(i);
          }
          phase.store(2 * i + 1, std::memory_order_relaxed);  // relaxed: see the file comment
          await(phase, 2 * i + 2);
          std::lock_guard l(mutex);
          try {
            if (r.get() != ref_payload(i, 'a')) ++c.wrong;
          } catch (const check::stale_reference_error&) {
            // reported; the read did not happen
          }
        }
      },
      [&] {
        for (int i = 0; i < iters; ++i) {
          await(phase, 2 * i + 1);
          {
            std::lock_guard l(mutex);
            if (erase) {
              m.erase(i);
              m.insert_or_assign(iters + i, ref_payload(i, 'z'));
            } else {
              m.insert_or_assign(i, ref_payload(i, 'z'));
            }
          }
          phase.store(2 * i + 2, std::memory_order_relaxed);  // relaxed: see the file comment
        }
      });
  return c;
}

// polymap's maps hand out no reference outside visit(): find() copies the
// value out (sharing its immutable payload), which stays valid after any erase
// or overwrite.
inline round_counts ref_polymap(int iters, bool erase) {
  polymap::locked_map<int, value> m;
  for (int i = 0; i < iters; ++i) m.insert_or_assign(i, ref_payload(i, 'a'));
  std::atomic<int> phase{0};
  round_counts c;
  run_pair(
      [&] {
        for (int i = 0; i < iters; ++i) {
          std::optional<value> v = m.find(i);
          phase.store(2 * i + 1, std::memory_order_relaxed);  // relaxed: see the file comment
          await(phase, 2 * i + 2);
          const auto* s = v ? v->get_if<std::string>() : nullptr;
          if (!s || *s != ref_payload(i, 'a')) ++c.wrong;
        }
      },
      [&] {
        for (int i = 0; i < iters; ++i) {
          await(phase, 2 * i + 1);
          if (erase) {
            m.erase(i);
            m.insert_or_assign(iters + i, ref_payload(i, 'z'));
          } else {
            m.insert_or_assign(i, ref_payload(i, 'z'));
          }
          phase.store(2 * i + 2, std::memory_order_relaxed);  // relaxed: see the file comment
        }
      });
  return c;
}

// --- scenario 6: a value object shared by pointer (the article's sync.Map case) -------
struct hit_counter {
  std::int64_t n = 0;
};

class pointer_map {
 public:
  std::shared_ptr<hit_counter> get(const std::string& k) {
    std::lock_guard l(mutex_);
    return map_.at(k);
  }
  void put(const std::string& k, std::shared_ptr<hit_counter> p) {
    std::lock_guard l(mutex_);
    map_.insert_or_assign(k, std::move(p));
  }

 private:
  std::mutex mutex_;  // Protects: map_ (not the objects it points to).
  std::unordered_map<std::string, std::shared_ptr<hit_counter>> map_;
};

// Load, then mutate the shared object in place: a data race on the object
// (the map's lock does not cover it). lost = increments lost.
inline round_counts shared_in_place_naive(int n) {
  pointer_map m;
  m.put("c", std::make_shared<hit_counter>());
  auto body = [&] {
    for (int i = 0; i < n; ++i) {
      auto p = m.get("c");
      p->n = p->n + 1;  // unsynchronized read-modify-write of the shared object
    }
  };
  run_pair(body, body);
  round_counts c;
  c.lost = 2 * n - m.get("c")->n;
  return c;
}

// Load, copy, modify, store a new object: no data race (each object is
// immutable once published), but updates are lost between load and store.
inline round_counts load_then_store_naive(int n) {
  pointer_map m;
  m.put("c", std::make_shared<hit_counter>());
  auto body = [&] {
    for (int i = 0; i < n; ++i) {
      auto p = m.get("c");
      m.put("c", std::make_shared<hit_counter>(hit_counter{p->n + 1}));
    }
  };
  run_pair(body, body);
  round_counts c;
  c.lost = 2 * n - m.get("c")->n;
  return c;
}

// An immutable user type in polymap::value, changed only through update().
inline round_counts shared_polymap(int n) {
  polymap::locked_map<> m;
  m.insert_or_assign("c", value(hit_counter{}));
  auto body = [&] {
    for (int i = 0; i < n; ++i) {
      m.update("c", [](const value* cur) { return value(hit_counter{cur->get_if<hit_counter>()->n + 1}); });
    }
  };
  run_pair(body, body);
  round_counts c;
  c.lost = 2 * n - m.find("c")->get_if<hit_counter>()->n;
  return c;
}

// --- scenario 7: ThreadSanitizer's bounded memory -------------------------------------
// A struct whose fields are protected by a mutex; most code takes it (the
// helpers), two places forget: thread A writes `racy`, later thread Z writes
// it again, with nothing ordering the two writes (relaxed atomics only, see
// the file comment). A data race, which ThreadSanitizer can only report if it
// still remembers A's write when Z's arrives:
//   close:    Z writes right after A: the control.
//   far:      A makes `work` other memory accesses (and as many calls) between
//             its write and Z's: TSan's per-thread history of A is overwritten.
//   crowded:  `helpers` threads, correctly locked among themselves, write the
//             other four bytes of the same 8-byte word `work` times each before
//             Z writes: TSan keeps 4 shadow cells per 8 bytes, and theirs
//             replace A's.
//   crowded_control: the same helpers and work on another word.
// Every thread lives until Z has written (a finished thread is a different
// story in TSan's bookkeeping), blocked in a futex wait rather than spinning,
// so that A adds next to nothing to its own history after its write except
// in the far mode.
enum class shadow_mode { close, far, crowded, crowded_control };

// The sizes the lab and the sanitizer child use. far: clang 14's runtime lost
// A's write from about 100,000 accesses on, in our runs; crowded: 4 helpers x
// 4 writes already take A's shadow cell in most runs.
inline constexpr long kShadowFarWork = 1'000'000;
inline constexpr int kShadowHelpers = 4;
inline constexpr long kShadowHelperWork = 4;

struct alignas(8) shadow_word {
  std::uint32_t racy = 0;
  std::uint8_t other[4] = {};  // the same 8 bytes as racy, for the helpers
};

// Distinct instrumented accesses and calls, for the "far" mode.
[[gnu::noinline]] inline void shadow_filler(std::uint64_t* scratch, std::size_t i) {
  scratch[i & 4095] += i;
}

// The schedule: a_write() on A; helper(t, i) on each helper (in the crowded
// modes); z_write() on Z once A has written and the helpers are done.
template <class AWrite, class Helper, class ZWrite>
void shadow_schedule(shadow_mode mode, long work, int helpers, AWrite a_write, Helper helper, ZWrite z_write) {
  const int n_helpers = mode == shadow_mode::crowded || mode == shadow_mode::crowded_control ? helpers : 0;
  std::atomic<int> written{0}, helpers_done{0}, finished{0};
  std::vector<std::uint64_t> scratch(mode == shadow_mode::far ? 4096 : 0);
  std::latch start(2 + n_helpers);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    start.arrive_and_wait();
    a_write();
    if (mode == shadow_mode::far) {
      for (long i = 0; i < work; ++i) shadow_filler(scratch.data(), static_cast<std::size_t>(i));
    }
    written.store(1, std::memory_order_relaxed);  // relaxed: see the file comment
    finished.wait(0, std::memory_order_relaxed);  // relaxed: see the file comment
  });
  for (int t = 0; t < n_helpers; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      await(written, 1);
      for (long i = 0; i < work; ++i) helper(t, i);
      helpers_done.fetch_add(1, std::memory_order_relaxed);  // relaxed: see the file comment
      finished.wait(0, std::memory_order_relaxed);           // relaxed: see the file comment
    });
  }
  threads.emplace_back([&] {
    start.arrive_and_wait();
    await(written, 1);
    await(helpers_done, n_helpers);
    z_write();
    // relaxed: see the file comment. The wake-up may order Z before the
    // waiters' later steps; A's write is already behind it, unordered.
    finished.store(1, std::memory_order_relaxed);
    finished.notify_all();
  });
  for (auto& t : threads) t.join();
}

// The naive program. wrong = a final value other than Z's.
inline round_counts shadow_naive(shadow_mode mode, long work, int helpers) {
  auto w = std::make_unique<shadow_word>();
  auto elsewhere = std::make_unique<shadow_word>();
  std::mutex mutex;  // Protects: *w and *elsewhere (A and Z forget to take it).
  shadow_word& target = mode == shadow_mode::crowded ? *w : *elsewhere;
  shadow_schedule(
      mode, work, helpers, [&] { w->racy = 1; },
      [&](int t, long i) {
        std::lock_guard l(mutex);
        target.other[(t + i) & 3] = static_cast<std::uint8_t>(i);
      },
      [&] { w->racy = 2; });
  round_counts c;
  c.wrong = w->racy != 2;
  return c;
}

// Writes racy through guarded<>::get() without the container's mutex: the
// forgetful writes of A and Z, kept out of clang's compile-time analysis.
inline void shadow_forgetful_write(check::guarded<shadow_word>& g, std::uint32_t v) POLYMAP_NO_THREAD_SAFETY_ANALYSIS {
  g.get().racy = v;
}

// The same program through guarded<>: the helpers lock its mutex, A and Z do
// not, and both of their writes are reported, whatever TSan remembers.
inline round_counts shadow_guarded(shadow_mode mode, long work, int helpers) {
  check::guarded<shadow_word> g;
  check::guarded<shadow_word> elsewhere;
  check::guarded<shadow_word>& target = mode == shadow_mode::crowded ? g : elsewhere;
  shadow_schedule(
      mode, work, helpers, [&] { shadow_forgetful_write(g, 1); },
      [&](int t, long i) {
        check::lock_guard l(target.mutex());
        target.get().other[(t + i) & 3] = static_cast<std::uint8_t>(i);
      },
      [&] { shadow_forgetful_write(g, 2); });
  round_counts c;
  c.wrong = g.with_lock([](const shadow_word& w) { return w.racy; }) != 2;
  return c;
}

// The same job on polymap::locked_map: the field is a key, every write locked.
inline round_counts shadow_polymap(shadow_mode mode, long work, int helpers) {
  polymap::locked_map<int, std::uint32_t> m;
  shadow_schedule(
      mode, work, helpers, [&] { m.insert_or_assign(0, 1); },
      [&](int t, long i) { m.insert_or_assign(1 + ((t + i) & 3), static_cast<std::uint32_t>(i)); },
      [&] { m.insert_or_assign(0, 2); });
  round_counts c;
  const auto v = m.find(0);
  c.lost = v ? 0 : 1;
  c.wrong = v && *v != 2;
  return c;
}

}  // namespace polymap::lab::cases

// Fault injection: every allocation of a scenario fails in turn (std::bad_alloc
// from a replaced global operator new), and so do the key's hash, its
// equality, the value's copy constructor and user callbacks. After each
// failure the map must hold exactly what it held before (the strong guarantee
// of single-key operations), pass its invariant check (size() equals the
// for_each count; every entry for_each shows is found with the same value),
// and, in the asan build, LeakSanitizer must find nothing at exit.
//
// To cover a new map, add a family to `families` below.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "polymap/locked_map.hpp"
#include "polymap/value.hpp"
#include "replaced_new.hpp"

#if __has_include("polymap/concurrent_map.hpp")
#include "polymap/concurrent_map.hpp"
#define POLYMAP_FAULT_HAS_CONCURRENT_MAP 1
#endif
#if __has_include("polymap/snapshot_map.hpp")
#include "polymap/snapshot_map.hpp"
#define POLYMAP_FAULT_HAS_SNAPSHOT_MAP 1
#endif

// --- the allocation hook ----------------------------------------------------------
//
// fault::arm(n): the n-th allocation from now (0-based) on this thread throws
// std::bad_alloc; the ones before it succeed. Other threads are never failed.
namespace fault {

thread_local long countdown = -1;  // -1: disarmed
thread_local bool fired = false;

inline void arm(long n) {
  fired = false;
  countdown = n;
}
inline void disarm() {
  countdown = -1;
}

inline void maybe_fail() {
  if (countdown < 0) return;
  if (countdown-- == 0) {
    countdown = -1;
    fired = true;
    throw std::bad_alloc();
  }
}

}  // namespace fault

void replaced_new::before_allocation() {
  fault::maybe_fail();
}

namespace {

using polymap::value;

struct injected : std::runtime_error {
  injected() : std::runtime_error("injected fault") {}
};

// --- throwing hash, equality and copy ----------------------------------------------

// Throws on the n-th call from now (armed like fault::arm), per thread.
struct trip {
  static inline thread_local long countdown = -1;
  static inline thread_local bool fired = false;
  static void arm(long n) {
    fired = false;
    countdown = n;
  }
  static void disarm() { countdown = -1; }
  static void hit() {
    if (countdown >= 0 && countdown-- == 0) {
      countdown = -1;
      fired = true;
      throw injected();
    }
  }
};
struct hash_trip : trip {};
struct eq_trip : trip {};
struct copy_trip : trip {};

struct throwing_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const {
    hash_trip::hit();
    return polymap::hash<std::string>{}(s);
  }
};
struct throwing_eq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    eq_trip::hit();
    return a == b;
  }
};

// A value whose copy constructor can throw (its move cannot).
struct fragile {
  std::int64_t n = 0;
  fragile() = default;
  explicit fragile(std::int64_t x) : n(x) {}
  fragile(const fragile& o) : n(o.n) { copy_trip::hit(); }
  fragile(fragile&& o) noexcept : n(o.n) {}
  fragile& operator=(const fragile& o) {
    copy_trip::hit();
    n = o.n;
    return *this;
  }
  fragile& operator=(fragile&& o) noexcept {
    n = o.n;
    return *this;
  }
  friend bool operator==(const fragile& a, const fragile& b) { return a.n == b.n; }
};

// --- map families -----------------------------------------------------------------

// strong_with_throwing_key_functions: whether a throwing hash or equality
// leaves the map unchanged. Not so for locked_map: boost::unordered_flat_map
// documents no guarantee for hasher exceptions, and its rehash, interrupted by
// one, drops the elements already moved to the new array (foa.hpp,
// unchecked_rehash). Measured here: an insert that grows the table loses
// entries when the hash (or the equality) throws. For such a family the test
// checks the weaker promise: no crash, no leak, the invariants hold, the map
// stays usable; and it counts the lost entries.
struct locked_family {
  static constexpr const char* name = "locked_map";
  static constexpr bool strong_with_throwing_key_functions = false;
  static bool allocation_sweep_skips(std::string_view) { return false; }
  template <class K, class V, class H = polymap::hash<K>, class E = polymap::key_equal<K>>
  using map = polymap::locked_map<K, V, H, E>;
};
#ifdef POLYMAP_FAULT_HAS_CONCURRENT_MAP
struct concurrent_family {
  static constexpr const char* name = "concurrent_map";
  static constexpr bool strong_with_throwing_key_functions = true;
  // This sweep found that publish()/unlink() retired the old node after the
  // table changed, through a retire() that could throw bad_alloc (use after
  // free, leak). epoch_domain::retire() is now noexcept (spare bag capacity),
  // so nothing is skipped.
  static bool allocation_sweep_skips(std::string_view) { return false; }
  template <class K, class V, class H = polymap::hash<K>, class E = polymap::key_equal<K>>
  using map = polymap::concurrent_map<K, V, H, E>;
};
// The same map with every growth an incremental migration (GROWTH in
// concurrent_map.hpp; by default only tables of 1024 groups or more migrate,
// larger than this sweep's): a growth step whose next table cannot be
// allocated must leave the map as it was.
struct migrating_traits : polymap::concurrent_map_traits {
  static constexpr std::size_t incremental_min_groups = 1;
};
struct concurrent_migrating_family : concurrent_family {
  static constexpr const char* name = "concurrent_map (every growth migrates)";
  template <class K, class V, class H = polymap::hash<K>, class E = polymap::key_equal<K>>
  using map = polymap::concurrent_map<K, V, H, E, migrating_traits>;
};
#endif
#ifdef POLYMAP_FAULT_HAS_SNAPSHOT_MAP
struct snapshot_family {
  static constexpr const char* name = "snapshot_map";
  static constexpr bool strong_with_throwing_key_functions = true;
  // As for concurrent_map: the sweep found a throwing retire() after publish;
  // fixed in epoch_domain::retire(), nothing is skipped.
  static bool allocation_sweep_skips(std::string_view) { return false; }
  template <class K, class V, class H = polymap::hash<K>, class E = polymap::key_equal<K>>
  using map = polymap::snapshot_map<K, V, H, E>;
};
#endif

using families = ::testing::Types<locked_family
#ifdef POLYMAP_FAULT_HAS_CONCURRENT_MAP
                                  ,
                                  concurrent_family, concurrent_migrating_family
#endif
#ifdef POLYMAP_FAULT_HAS_SNAPSHOT_MAP
                                  ,
                                  snapshot_family
#endif
                                  >;

// The map's contents, and its invariant check.
template <class M>
std::map<std::string, typename M::mapped_type> contents(const M& m) {
  std::map<std::string, typename M::mapped_type> out;
  std::size_t count = 0;
  m.for_each([&](const std::string& k, const typename M::mapped_type& v) {
    out.emplace(k, v);
    ++count;
  });
  EXPECT_EQ(count, out.size()) << "for_each showed a key twice";
  EXPECT_EQ(m.size(), count) << "size() disagrees with for_each";
  for (const auto& [k, v] : out) {
    auto f = m.find(k);
    EXPECT_TRUE(f.has_value()) << "entry '" << k << "' shown by for_each is not found";
    if (f) {
      EXPECT_TRUE(*f == v) << "entry '" << k << "' found with another value";
    }
  }
  return out;
}

std::string key_of(int i) {
  return "key-" + std::to_string(i);
}
value big_value(int i) {
  return value(std::string(64, static_cast<char>('a' + i % 26)));
}

template <class M>
void fill(M& m, int n) {
  for (int i = 0; i < n; ++i) m.insert(key_of(i), i % 2 ? value(i) : big_value(i));
}

// A single-key operation under test: applies itself to the map and to a model.
struct scenario {
  const char* name;
  // Runs on the map; returns its result for comparing with the model's. The
  // result is a value so that returning it allocates nothing (an allocation
  // after the operation would fail the test, not the map).
  std::function<value(void* map)> on_map;
  std::function<value(std::map<std::string, value>&)> on_model;
};

template <class M>
std::vector<scenario> scenarios_for(int n) {
  // Keys and values are built before the fault is armed; the operation copies them.
  const std::string fresh = key_of(100000), present = key_of(n / 2);
  auto M_ = [](void* p) -> M& { return *static_cast<M*>(p); };
  auto b = [](bool x) { return value(x); };
  std::vector<scenario> s;
  s.push_back({"insert(new)", [=](void* p) { return b(M_(p).insert(fresh, big_value(1))); },
               [=](auto& m) { return b(m.emplace(fresh, big_value(1)).second); }});
  s.push_back({"insert_or_assign(new)", [=](void* p) { return b(M_(p).insert_or_assign(fresh, big_value(2))); },
               [=](auto& m) { return b(m.insert_or_assign(fresh, big_value(2)).second); }});
  auto mk = [](const value* cur) { return value(std::string(80, cur ? 'x' : 'y')); };
  s.push_back({"update(new)", [=](void* p) { return M_(p).update(fresh, mk); },
               [=](auto& m) {
                 auto it = m.find(fresh);
                 value v = mk(it == m.end() ? nullptr : &it->second);
                 m.insert_or_assign(fresh, v);
                 return v;
               }});
  auto grow = [](value& v) { v = value(v.to_string() + std::string(70, '+')); };
  s.push_back({"insert_or_visit(new)", [=](void* p) { return b(M_(p).insert_or_visit(fresh, big_value(3), grow)); },
               [=](auto& m) {
                 auto it = m.find(fresh);
                 if (it == m.end()) return b(m.emplace(fresh, big_value(3)).second);
                 grow(it->second);
                 return b(false);
               }});
  if (n > 0) {
    s.push_back({"insert(present)", [=](void* p) { return b(M_(p).insert(present, big_value(4))); },
                 [=](auto& m) { return b(m.emplace(present, big_value(4)).second); }});
    s.push_back({"insert_or_assign(present)", [=](void* p) { return b(M_(p).insert_or_assign(present, big_value(5))); },
                 [=](auto& m) { return b(m.insert_or_assign(present, big_value(5)).second); }});
    s.push_back({"update(present)", [=](void* p) { return M_(p).update(present, mk); },
                 [=](auto& m) {
                   value v = mk(&m.at(present));
                   m[present] = v;
                   return v;
                 }});
    s.push_back({"insert_or_visit(present)",
                 [=](void* p) { return b(M_(p).insert_or_visit(present, big_value(6), grow)); },
                 [=](auto& m) {
                   grow(m.at(present));
                   return b(false);
                 }});
    s.push_back({"compare_exchange(present)",
                 [=](void* p) {
                   auto cur = M_(p).find(present);
                   return b(M_(p).compare_exchange(present, *cur, big_value(7)));
                 },
                 [=](auto& m) {
                   m[present] = big_value(7);
                   return b(true);
                 }});
    s.push_back({"erase(present)", [=](void* p) { return b(M_(p).erase(present)); },
                 [=](auto& m) { return b(m.erase(present) > 0); }});
    s.push_back(
        {"find(present)", [=](void* p) { return *M_(p).find(present); }, [=](auto& m) { return m.at(present); }});
    s.push_back({"erase_if(odd)",
                 [=](void* p) {
                   return value(static_cast<std::int64_t>(M_(p).erase_if([](const std::string&, const value& v) {
                     return v.is<std::int64_t>() && *v.get_if<std::int64_t>() % 2 == 1;
                   })));
                 },
                 [=](auto& m) {
                   std::size_t k = 0;
                   for (auto it = m.begin(); it != m.end();) {
                     if (it->second.template is<std::int64_t>() &&
                         *it->second.template get_if<std::int64_t>() % 2 == 1) {
                       it = m.erase(it);
                       ++k;
                     } else {
                       ++it;
                     }
                   }
                   return value(static_cast<std::int64_t>(k));
                 }});
  }
  return s;
}

template <class F>
class FaultInjection : public ::testing::Test {};
TYPED_TEST_SUITE(FaultInjection, families);

// Sizes around small tables and their first growths.
constexpr int sizes[] = {0, 1, 2, 7, 8, 13, 14, 15, 16, 17, 28, 29, 31, 32, 33, 56, 57, 63, 64, 65, 112, 127, 128, 129};

TYPED_TEST(FaultInjection, EveryAllocationFailureLeavesTheMapUnchanged) {
  using M = typename TypeParam::template map<std::string, value>;
  std::size_t failures = 0, skipped = 0;
  const bool trace = std::getenv("POLYMAP_FAULT_TRACE") != nullptr;  // names each case before it runs (for crashes)
  for (int n : sizes) {
    for (const auto& sc : scenarios_for<M>(n)) {
      if (TypeParam::allocation_sweep_skips(sc.name)) {
        ++skipped;
        continue;
      }
      for (long nth = 0;; ++nth) {
        SCOPED_TRACE(testing::Message() << TypeParam::name << " with " << n << " entries, " << sc.name
                                        << ", allocation #" << nth << " fails");
        if (trace)
          std::fprintf(stderr, "%s: %d entries, %s, allocation #%ld fails\n", TypeParam::name, n, sc.name, nth);
        auto m = std::make_unique<M>();
        fill(*m, n);
        auto before = contents(*m);
        value got;
        bool threw = false;
        fault::arm(nth);
        try {
          got = sc.on_map(m.get());
        } catch (const std::bad_alloc&) {
          threw = true;
        }
        fault::disarm();
        const bool fired = fault::fired;
        auto after = contents(*m);
        if (threw) {
          ++failures;
          ASSERT_EQ(after, before) << "a failed " << sc.name << " changed the map";
        } else {
          auto model = before;
          ASSERT_EQ(got, sc.on_model(model));
          ASSERT_EQ(after, model);
        }
        ASSERT_TRUE(m->insert("still-works", 1));  // no lock left held, table usable
        if (!fired) break;                         // every allocation of the scenario has failed once
      }
    }
  }
  EXPECT_GT(failures, 0u);
  std::printf("%s: %zu injected allocation failures, map unchanged after each\n", TypeParam::name, failures);
  if (skipped) {
    std::printf("%s: %zu scenarios SKIPPED for a known bug (see allocation_sweep_skips in fault_injection_test.cpp)\n",
                TypeParam::name, skipped);
  }
}

// The hash, then the equality, throws at every call in turn.
template <class M, class Trip>
void sweep_key_functions(const char* what, const char* map_name, bool strong) {
  std::size_t failures = 0, damaged = 0;
  for (int n : {0, 1, 7, 14, 15, 29, 57, 113}) {
    for (int op = 0; op < 6; ++op) {
      for (long nth = 0;; ++nth) {
        SCOPED_TRACE(testing::Message() << map_name << " with " << n << " entries, op " << op << ", " << what
                                        << " call #" << nth << " throws");
        auto m = std::make_unique<M>();
        for (int i = 0; i < n; ++i) m->insert(key_of(i), value(i));
        auto before = contents(*m);
        const std::string k = op % 2 ? key_of(n / 2) : key_of(100000);
        bool threw = false;
        Trip::arm(nth);
        try {
          switch (op / 2) {
            case 0:
              m->insert(k, value(-1));
              break;
            case 1:
              m->update(k, [](const value*) { return value(-2); });
              break;
            default:
              m->erase(k);
              break;
          }
        } catch (const injected&) {
          threw = true;
        }
        Trip::disarm();
        const bool fired = Trip::fired;
        auto after = contents(*m);
        if (threw) {
          ++failures;
          if (strong) {
            ASSERT_EQ(after, before);
          } else if (after != before) {
            ++damaged;
            for (const auto& [key, v] : after) ASSERT_EQ(before.at(key), v);  // lost entries only, none invented
          }
        }
        ASSERT_TRUE(m->insert("still-works", value(1)));
        if (!fired) break;
      }
    }
  }
  EXPECT_GT(failures, 0u);
  std::printf("%s: %zu injected %s failures, %zu left the map changed%s\n", map_name, failures, what, damaged,
              strong ? "" : " (known: no strong guarantee, see locked_family)");
}

TYPED_TEST(FaultInjection, ThrowingHashLeavesTheMapUnchanged) {
  using M = typename TypeParam::template map<std::string, value, throwing_hash, throwing_eq>;
  sweep_key_functions<M, hash_trip>("hash", TypeParam::name, TypeParam::strong_with_throwing_key_functions);
}

TYPED_TEST(FaultInjection, ThrowingEqualityLeavesTheMapUnchanged) {
  using M = typename TypeParam::template map<std::string, value, throwing_hash, throwing_eq>;
  sweep_key_functions<M, eq_trip>("equality", TypeParam::name, TypeParam::strong_with_throwing_key_functions);
}

TYPED_TEST(FaultInjection, ThrowingCopyLeavesTheMapUnchanged) {
  using M = typename TypeParam::template map<std::string, fragile>;
  std::size_t failures = 0;
  for (int n : {0, 1, 7, 14, 15, 29, 57, 113}) {
    for (int op = 0; op < 5; ++op) {
      for (long nth = 0;; ++nth) {
        SCOPED_TRACE(testing::Message() << TypeParam::name << " with " << n << " entries, op " << op << ", copy #"
                                        << nth << " throws");
        auto m = std::make_unique<M>();
        for (int i = 0; i < n; ++i) m->insert(key_of(i), fragile(i));
        auto before = contents(*m);
        const std::string k = n ? key_of(n / 2) : key_of(0);
        const fragile v(-1);
        bool threw = false;
        copy_trip::arm(nth);
        try {
          switch (op) {
            case 0:
              m->insert(key_of(100000), v);  // copies v into the argument, then moves
              break;
            case 1:
              m->insert_or_assign(k, v);
              break;
            case 2:
              (void)m->find(k);
              break;
            case 3:
              m->update(k, [](const fragile* cur) { return cur ? fragile(cur->n + 1) : fragile(0); });
              break;
            default:
              m->compare_exchange(k, fragile(n / 2), v);
              break;
          }
        } catch (const injected&) {
          threw = true;
        }
        copy_trip::disarm();
        const bool fired = copy_trip::fired;
        auto after = contents(*m);
        if (threw) {
          ++failures;
          ASSERT_EQ(after, before);
        }
        ASSERT_TRUE(m->insert("still-works", fragile(1)));
        if (!fired) break;
      }
    }
  }
  EXPECT_GT(failures, 0u);
  std::printf("%s: %zu injected copy-constructor failures, map unchanged after each\n", TypeParam::name, failures);
}

TYPED_TEST(FaultInjection, ThrowingCallbacksLeaveTheMapUnchanged) {
  using M = typename TypeParam::template map<std::string, value>;
  for (int n : {1, 15, 57}) {
    auto m = std::make_unique<M>();
    fill(*m, n);
    const auto before = contents(*m);
    const std::string k = key_of(n / 2);
    EXPECT_THROW(m->update(k, [](const value*) -> value { throw injected(); }), injected);
    EXPECT_THROW(m->update(key_of(100000), [](const value*) -> value { throw injected(); }), injected);
    EXPECT_THROW(m->insert_or_visit(k, value(0),
                                    [](value& v) {
                                      v = value(12345);
                                      throw injected();
                                    }),
                 injected);
    EXPECT_THROW(m->visit(k, [](const value&) { throw injected(); }), injected);
    for (int stop = 1; stop <= n; stop += 7) {
      int calls = 0;
      EXPECT_THROW(m->erase_if([&](const std::string&, const value&) {
        if (++calls == stop) throw injected();
        return true;
      }),
                   injected);
      calls = 0;
      EXPECT_THROW(m->for_each([&](const std::string&, const value&) {
        if (++calls == stop) throw injected();
      }),
                   injected);
    }
    EXPECT_EQ(contents(*m), before);
    EXPECT_TRUE(m->insert("still-works", 1));
  }
}

// Overwriting a present key with a scalar value allocates nothing, for
// string keys too (issue 15): the key is not copied (insert_or_assign takes
// a std::string by const reference) and its key block is made only to
// insert. Every allocation on this thread throws while armed.
TEST(ConcurrentMapAllocation, OverwritingAPresentStringKeyAllocatesNothing) {
  polymap::concurrent_map<> m;
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("a-key-longer-than-fifteen-bytes-" + std::to_string(i));
  for (const auto& k : keys) ASSERT_TRUE(m.insert_or_assign(k, value(std::int64_t{0})));
  polymap::detail::epoch_domain::global().barrier();  // nothing left for a poll to free
  for (int round = 1; round <= 3; ++round) {
    for (const auto& k : keys) {
      fault::arm(0);
      bool inserted = true;
      EXPECT_NO_THROW(inserted = m.insert_or_assign(k, value(std::int64_t{round}))) << k;
      EXPECT_FALSE(fault::fired) << k << ": an allocation was attempted (and its failure handled inside)";
      fault::disarm();
      EXPECT_FALSE(inserted);
    }
  }
  for (const auto& k : keys) ASSERT_EQ(m.get<std::int64_t>(k), 3);
  // The hook can fail: inserting a new long key must allocate its key block.
  const std::string fresh = "another-key-longer-than-fifteen-bytes";
  fault::arm(0);
  EXPECT_THROW(m.insert_or_assign(fresh, value(std::int64_t{1})), std::bad_alloc);
  fault::disarm();
  EXPECT_FALSE(m.contains(fresh));
  EXPECT_EQ(m.size(), keys.size());
}

}  // namespace

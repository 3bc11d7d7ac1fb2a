// concurrent_map: the conformance and concurrency suites, plus its own
// properties: integer keys, growth and churn under readers (with an oracle of
// keys known present), bulk_find, stats, lookups that write nothing, and
// epoch reclamation that frees every node. Also the sequential flat_table
// that shares the table core.
#include "polymap/concurrent_map.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "concurrency.hpp"
#include "conformance.hpp"
#include "polymap/detail/flat_table.hpp"
#include "polymap/polymap.hpp"
#include "sanitizer_scale.hpp"

// concurrent_map<> keeps string keys in key blocks; with inline_string_traits
// the short ones (these tests' keys are 1-8 bytes) sit in their slots.
using inline_string_map = polymap::concurrent_map<std::string, polymap::value, polymap::hash<std::string>,
                                                  polymap::key_equal<std::string>, polymap::inline_string_traits>;
using concurrent_types = ::testing::Types<polymap::concurrent_map<>, inline_string_map>;
INSTANTIATE_TYPED_TEST_SUITE_P(concurrent, MapConformance, concurrent_types);
INSTANTIATE_TYPED_TEST_SUITE_P(concurrent, MapConcurrency, concurrent_types);

namespace {

constexpr int kScale = polymap::testing::under_sanitizer ? 1 : 4;

using u64_map = polymap::concurrent_map<std::uint64_t, std::uint64_t>;

// Counts, per thread, every store and read-modify-write on the map's own
// atomics (table metadata, slots, version words, stripes, counters).
thread_local long shared_writes = 0;

template <class T>
struct counting_atomic : std::atomic<T> {
  using base = std::atomic<T>;
  using base::base;
  void store(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    ++shared_writes;
    base::store(v, o);
  }
  T exchange(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    ++shared_writes;
    return base::exchange(v, o);
  }
  bool compare_exchange_weak(T& e, T d, std::memory_order a = std::memory_order_seq_cst,
                             std::memory_order b = std::memory_order_seq_cst) noexcept {
    ++shared_writes;
    return base::compare_exchange_weak(e, d, a, b);
  }
  bool compare_exchange_strong(T& e, T d, std::memory_order a = std::memory_order_seq_cst,
                               std::memory_order b = std::memory_order_seq_cst) noexcept {
    ++shared_writes;
    return base::compare_exchange_strong(e, d, a, b);
  }
  template <class D>
  T fetch_add(D d, std::memory_order o = std::memory_order_seq_cst) noexcept {
    ++shared_writes;
    return base::fetch_add(d, o);
  }
  template <class D>
  T fetch_sub(D d, std::memory_order o = std::memory_order_seq_cst) noexcept {
    ++shared_writes;
    return base::fetch_sub(d, o);
  }
};

struct counting_traits {
  template <class T>
  using atomic = counting_atomic<T>;
  using group_lock = polymap::detail::version_lock<counting_atomic>;
  using stripe_lock = polymap::detail::spin_lock<counting_atomic>;
  static polymap::detail::epoch_domain& domain() { return polymap::detail::epoch_domain::global(); }
};

// A value that counts its live instances.
struct tracked {
  static inline std::atomic<long> live{0};
  std::uint64_t v = 0;
  explicit tracked(std::uint64_t x) : v(x) { live.fetch_add(1); }
  tracked(const tracked& o) : v(o.v) { live.fetch_add(1); }
  tracked& operator=(const tracked&) = default;
  ~tracked() { live.fetch_sub(1); }
};

}  // namespace

TEST(ConcurrentMap, IntegerKeysAndPlainValues) {
  u64_map m;
  for (std::uint64_t i = 0; i < 5000; ++i) EXPECT_TRUE(m.insert(i, i * i));
  EXPECT_FALSE(m.insert(std::uint64_t{3}, 0));
  EXPECT_EQ(m.find(std::uint64_t{70}), std::uint64_t{4900});
  EXPECT_FALSE(m.find(std::uint64_t{5000}).has_value());
  EXPECT_EQ(m.update(7, [](const std::uint64_t* c) { return c ? *c + 1 : 0; }), 50u);
  EXPECT_EQ(m.update(9000, [](const std::uint64_t* c) { return c ? *c + 1 : 0; }), 0u);
  EXPECT_TRUE(m.compare_exchange(std::uint64_t{7}, 50, 51));
  EXPECT_FALSE(m.compare_exchange(std::uint64_t{7}, 50, 52));
  EXPECT_EQ(m.erase_if([](std::uint64_t k, std::uint64_t) { return k >= 100; }), 4901u);
  EXPECT_EQ(m.size(), 100u);
  EXPECT_EQ(m.find(std::uint64_t{7}), std::uint64_t{51});
}

// Random single-threaded operations against std::unordered_map, through
// several growths and dirty rebuilds.
TEST(ConcurrentMap, DifferentialU64) {
  u64_map m;
  std::unordered_map<std::uint64_t, std::uint64_t> ref;
  std::mt19937_64 rng(42);
  for (int step = 0; step < 50000 * kScale; ++step) {
    const std::uint64_t r = rng();
    const std::uint64_t k = r % 3000, v = r >> 40;
    switch ((r >> 20) % 5) {
      case 0:
        ASSERT_EQ(m.insert(k, v), ref.try_emplace(k, v).second);
        break;
      case 1:
        ASSERT_EQ(m.insert_or_assign(k, v), ref.insert_or_assign(k, v).second);
        break;
      case 2:
        ASSERT_EQ(m.erase(k), ref.erase(k) == 1);
        break;
      case 3: {
        auto it = ref.find(k);
        auto got = m.find(k);
        ASSERT_EQ(got.has_value(), it != ref.end());
        if (got) {
          ASSERT_EQ(*got, it->second);
        }
        break;
      }
      default:
        ASSERT_EQ(m.size(), ref.size());
    }
  }
  std::map<std::uint64_t, std::uint64_t> a(ref.begin(), ref.end()), b;
  m.for_each([&](std::uint64_t k, std::uint64_t v) { b.emplace(k, v); });
  EXPECT_EQ(a, b);
}

// Readers look up keys known to be present (preloaded, or published by the
// writer through `high`) while the writer grows the table many times: no
// lookup may miss one, nor see a wrong value.
TEST(ConcurrentMap, GrowthUnderConcurrentReaders) {
  u64_map m;
  constexpr std::uint64_t preload = 100;
  const std::uint64_t total = 20000 * kScale;
  for (std::uint64_t k = 0; k < preload; ++k) m.insert(k, k * 3);
  std::atomic<std::uint64_t> high{preload};
  std::atomic<bool> done{false};
  std::atomic<long> misses{0}, wrong{0}, reads{0};
  concurrency::run_threads(3, [&](int t) {
    if (t == 0) {
      for (std::uint64_t k = preload; k < total; ++k) {
        m.insert(k, k * 3);
        high.store(k + 1, std::memory_order_release);
      }
      done.store(true);
      return;
    }
    std::mt19937_64 rng(static_cast<unsigned>(t));
    do {  // at least one read, even if the writers finish first
      const std::uint64_t h = high.load(std::memory_order_acquire);
      const std::uint64_t k = rng() % h;
      auto v = m.find(k);
      if (!v)
        misses.fetch_add(1);
      else if (*v != k * 3)
        wrong.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
    } while (!done.load());
  });
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(m.size(), total);
  EXPECT_GT(m.stats().growths, 5u);
}

// Writers erase and reinsert churn keys (forcing slot reuse and dirty
// rebuilds) while readers check that stable keys are always there and that a
// churn key, when found, has a value of its own.
TEST(ConcurrentMap, EraseReinsertChurnUnderReaders) {
  polymap::concurrent_map<> m;
  constexpr int stable = 200, churn = 200;
  for (int k = 0; k < stable; ++k) m.insert("s" + std::to_string(k), concurrency::tagged("s" + std::to_string(k), 0));
  std::atomic<int> writers_left{2};
  std::atomic<long> misses{0}, bad{0};
  concurrency::run_threads(4, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t) * 31u + 7u);
    if (t < 2) {
      for (int i = 0; i < 6000 * kScale; ++i) {
        const std::string k = "c" + std::to_string(rng() % churn);
        if (i % 2)
          m.erase(k);
        else
          m.insert_or_assign(k, concurrency::tagged(k, i));
      }
      writers_left.fetch_sub(1);
      return;
    }
    while (writers_left.load() > 0) {
      const std::string s = "s" + std::to_string(rng() % stable);
      if (!m.visit(s, [&](const polymap::value& v) { bad += !concurrency::is_tagged_for(v, s); })) misses.fetch_add(1);
      const std::string c = "c" + std::to_string(rng() % churn);
      if (auto v = m.find(c); v && !concurrency::is_tagged_for(*v, c)) bad.fetch_add(1);
    }
  });
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  std::size_t count = 0;
  m.for_each([&](const std::string&, const polymap::value&) { ++count; });
  EXPECT_EQ(count, m.size());
}

TEST(ConcurrentMap, BulkFindMatchesFind) {
  polymap::concurrent_map<> m;
  for (int i = 0; i < 3000; i += 2) m.insert("k" + std::to_string(i), i);
  std::vector<std::string> keys;
  for (int i = 0; i < 3001; ++i) keys.push_back("k" + std::to_string((i * 7919) % 3000));
  std::vector<std::optional<polymap::value>> out;
  const std::size_t found = m.bulk_find(keys, std::back_inserter(out));
  ASSERT_EQ(out.size(), keys.size());
  std::size_t expect_found = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(out[i], m.find(keys[i])) << keys[i];
    expect_found += out[i].has_value();
  }
  EXPECT_EQ(found, expect_found);
  EXPECT_GT(found, 0u);

  u64_map n;
  for (std::uint64_t i = 0; i < 100; ++i) n.insert(i, i + 1);
  std::vector<std::uint64_t> ks{5, 500, 99, 0};
  std::vector<std::optional<std::uint64_t>> got(ks.size());
  EXPECT_EQ(n.bulk_find(ks, got.begin()), 3u);
  EXPECT_EQ(got, (std::vector<std::optional<std::uint64_t>>{6, std::nullopt, 100, 1}));
  std::vector<std::uint64_t> none;
  EXPECT_EQ(n.bulk_find(none, got.begin()), 0u);
}

TEST(ConcurrentMap, StatsSanity) {
  u64_map m;
  for (std::uint64_t i = 0; i < 10000; ++i) m.insert(i, i);
  for (std::uint64_t i = 0; i < 10000; i += 3) m.erase(i);
  auto s = m.stats();
  EXPECT_EQ(s.map, "concurrent_map");
  EXPECT_EQ(s.size, m.size());
  EXPECT_GE(s.capacity, s.size);
  EXPECT_GT(s.growths, 0u);
  EXPECT_NEAR(s.load_factor, static_cast<double>(s.size) / static_cast<double>(s.capacity), 1e-12);
  ASSERT_FALSE(s.probe_length_histogram.empty());
  EXPECT_EQ(std::accumulate(s.probe_length_histogram.begin(), s.probe_length_histogram.end(), std::uint64_t{0}),
            s.size);
  EXPECT_GT(s.probe_length_histogram[0], s.size / 2);  // most entries sit in their home group
  EXPECT_GT(s.bytes, s.capacity * 8);
  m.reserve(100000);
  EXPECT_GE(m.stats().capacity, 100000u);
  EXPECT_EQ(m.size(), s.size);
}

// Growth doubles: a table that reached its maximum load (7/8) is rebuilt at
// twice the groups, so after any number of inserts the load factor stays
// between 7/16 and 7/8. (It used to quadruple, leaving 10,000 keys at 33%.)
TEST(ConcurrentMap, GrowthDoublesAndKeepsTheLoadUp) {
  for (const std::uint64_t n : {100u, 1000u, 10000u, 50000u}) {
    u64_map m;
    for (std::uint64_t i = 0; i < n; ++i) m.insert_or_assign(i, i);
    const auto s = m.stats();
    EXPECT_GE(s.load_factor, 7.0 / 16.0 - 1e-9) << "n = " << n << ", capacity " << s.capacity;
    EXPECT_LE(s.load_factor, 7.0 / 8.0 + 1e-9) << "n = " << n;
  }
}

// A successful (or failed) lookup stores nothing and performs no
// read-modify-write on any of the map's words; the version words stay as they
// were.
TEST(ConcurrentMap, LookupsWriteNoSharedMemory) {
  polymap::concurrent_map<std::string, polymap::value, polymap::hash<std::string>, polymap::key_equal<std::string>,
                          counting_traits>
      m;
  for (int i = 0; i < 2000; ++i) m.insert("k" + std::to_string(i), i);
  const auto versions = m.debug_version_words();
  shared_writes = 0;
  long hits = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string k = "k" + std::to_string(i);
    hits += m.find(k).has_value();
    hits += m.contains(k);
    m.visit(k, [&](const polymap::value&) { ++hits; });
    hits += m.template get<std::int64_t>(k).has_value();
  }
  std::vector<std::string> keys{"k1", "k2", "nope"};
  std::vector<std::optional<polymap::value>> out(3);
  hits += static_cast<long>(m.bulk_find(keys, out.begin()));
  EXPECT_EQ(hits, 4 * 2000 + 2);
  EXPECT_EQ(shared_writes, 0);
  EXPECT_EQ(m.debug_version_words(), versions);
  m.insert_or_assign("k1", 5);  // and the counter does see writes
  EXPECT_GT(shared_writes, 0);
}

// Every node retired by overwrites, erases, growth and clear is freed once the
// epoch domain is drained; destroying the map frees the rest.
TEST(ConcurrentMap, EpochFreesRetiredNodes) {
  auto& domain = polymap::detail::epoch_domain::global();
  domain.barrier();
  const long before = tracked::live.load();
  {
    polymap::concurrent_map<std::uint64_t, tracked> m;
    concurrency::run_threads(2, [&](int t) {
      for (std::uint64_t i = 0; i < 3000; ++i) {
        const std::uint64_t k = (i * 2 + static_cast<std::uint64_t>(t)) % 1000;
        m.insert_or_assign(k, tracked(i));
        if (i % 5 == 0) m.erase(k);
        if (i % 7 == 0) m.update(k, [](const tracked* c) { return tracked(c ? c->v + 1 : 0); });
        (void)m.find(k);
      }
    });
    domain.barrier();
    EXPECT_EQ(tracked::live.load() - before, static_cast<long>(m.size()));
    m.clear();
    for (std::uint64_t i = 0; i < 50; ++i) m.insert(i, tracked(i));
    domain.barrier();
    EXPECT_EQ(tracked::live.load() - before, 50);
  }
  domain.barrier();
  EXPECT_EQ(tracked::live.load(), before);
}

// Writers, erasers and clear() run together with readers; sizes and contents
// stay sane and every entry seen belongs to its key.
TEST(ConcurrentMap, ClearAndGrowthRaceWithWriters) {
  polymap::concurrent_map<> m;
  std::atomic<long> bad{0};
  concurrency::run_threads(4, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t) + 99u);
    for (int i = 0; i < 1500 * kScale; ++i) {
      const std::string k = "k" + std::to_string(rng() % 3000);
      switch (rng() % 8) {
        case 0:
          if (t == 0 && i % 50 == 0) m.clear();
          break;
        case 1:
          m.erase(k);
          break;
        case 2:
          m.update(k, [&](const polymap::value* cur) { return cur ? *cur : concurrency::tagged(k, i); });
          break;
        case 3:
          m.insert_or_visit(k, concurrency::tagged(k, i), [&](polymap::value& v) {
            if (!concurrency::is_tagged_for(v, k)) ++bad;
          });
          break;
        case 4:
          if (auto v = m.find(k); v && !concurrency::is_tagged_for(*v, k)) ++bad;
          break;
        default:
          m.insert_or_assign(k, concurrency::tagged(k, i));
      }
    }
  });
  EXPECT_EQ(bad.load(), 0);
  std::size_t count = 0;
  m.for_each([&](const std::string& k, const polymap::value& v) {
    ++count;
    EXPECT_TRUE(concurrency::is_tagged_for(v, k));
  });
  EXPECT_EQ(count, m.size());
  auto s = m.stats();
  EXPECT_EQ(std::accumulate(s.probe_length_histogram.begin(), s.probe_length_histogram.end(), std::uint64_t{0}),
            s.size);
}

// --- the sequential front end of the same core -----------------------------

TEST(FlatTable, ProbeRecordsAndStats) {
  polymap::detail::flat_table<std::uint64_t, std::uint64_t> t;
  for (std::uint64_t i = 0; i < 20000; ++i) ASSERT_TRUE(t.insert(i, i + 1));
  EXPECT_FALSE(t.insert(5, 0));
  EXPECT_FALSE(t.insert_or_assign(5, 50));
  EXPECT_EQ(*t.find(std::uint64_t{5}), 50u);
  std::size_t groups = 0, found = 0, false_pos = 0;
  for (std::uint64_t i = 0; i < 40000; ++i) {
    polymap::detail::probe_record rec;
    const std::uint64_t* v = t.find_probe(i, rec);
    ASSERT_EQ(v != nullptr, i < 20000);
    if (v) {
      ASSERT_EQ(*v, i == 5 ? 50u : i + 1);
    }
    ASSERT_GE(rec.groups, 1u);
    groups += rec.groups;
    found += v != nullptr;
    false_pos += rec.tag_false_positives;
  }
  EXPECT_EQ(found, 20000u);
  // 7-bit tags: a false positive per slot compare is about 1/128; a lookup
  // compares at most 15 tags per group.
  EXPECT_LT(static_cast<double>(false_pos) / 40000.0, 0.5);
  EXPECT_LT(static_cast<double>(groups) / 40000.0, 2.0);
  for (std::uint64_t i = 0; i < 20000; i += 2) ASSERT_TRUE(t.erase(i));
  EXPECT_EQ(t.size(), 10000u);
  auto s = t.stats();
  EXPECT_EQ(s.map, "flat_table");
  EXPECT_EQ(std::accumulate(s.probe_length_histogram.begin(), s.probe_length_histogram.end(), std::uint64_t{0}),
            10000u);
  EXPECT_GT(s.growths, 0u);
  polymap::detail::flat_table<std::string, int> st;
  EXPECT_TRUE(st.insert("a", 1));
  EXPECT_EQ(*st.find(std::string_view("a")), 1);
  EXPECT_EQ(st.find("b"), nullptr);
}

// A hash without the is_avalanching marker (libstdc++'s identity for
// integers) is post-mixed, so sequential keys still spread over groups, tags
// and stripes.
TEST(ConcurrentMap, NonAvalanchingHashIsPostMixed) {
  polymap::concurrent_map<std::uint64_t, std::uint64_t, polymap::identity_hash<std::uint64_t>> m;
  for (std::uint64_t i = 0; i < 10000; ++i) ASSERT_TRUE(m.insert(i, i));
  for (std::uint64_t i = 0; i < 10000; ++i) ASSERT_EQ(m.find(i), i);
  auto s = m.stats();
  ASSERT_FALSE(s.probe_length_histogram.empty());
  EXPECT_GT(s.probe_length_histogram[0], s.size * 9 / 10);
}

// --- the inline layout (keys and values in the slots) -------------------------

static_assert(polymap::concurrent_map<std::uint64_t, polymap::value>::inline_slots);
static_assert(polymap::concurrent_map<std::uint64_t, std::uint64_t>::inline_slots);
static_assert(polymap::concurrent_map<std::int32_t, double>::inline_slots);
static_assert(polymap::concurrent_map<std::string, polymap::value>::inline_slots);
static_assert(polymap::concurrent_map<std::string, std::uint64_t>::inline_slots);
static_assert(!polymap::concurrent_map<std::string, tracked>::inline_slots);
static_assert(!polymap::concurrent_map<std::uint64_t, tracked>::inline_slots);
static_assert(!polymap::concurrent_map<const char*, int>::inline_slots);

namespace {

// A user payload that counts its live instances (polymap::value keeps it in
// a reference-counted heap payload).
struct counted_payload {
  static inline std::atomic<long> live{0};
  std::uint64_t key = 0, serial = 0;
  counted_payload(std::uint64_t k, std::uint64_t s) : key(k), serial(s) { live.fetch_add(1); }
  counted_payload(const counted_payload& o) : key(o.key), serial(o.serial) { live.fetch_add(1); }
  counted_payload& operator=(const counted_payload&) = default;
  ~counted_payload() { live.fetch_sub(1); }
  bool operator==(const counted_payload& o) const { return key == o.key && serial == o.serial; }
};

using inline_value_map = polymap::concurrent_map<std::uint64_t, polymap::value>;

}  // namespace

// Every operation of the stable API on a u64 -> polymap::value map, with
// scalar, string and user-payload values; every payload reference the table
// held is dropped once the map is gone and the epoch drained.
TEST(ConcurrentMapInline, WholeApiWithPayloadValues) {
  auto& domain = polymap::detail::epoch_domain::global();
  domain.barrier();
  const long before = counted_payload::live.load();
  {
    inline_value_map m;
    EXPECT_TRUE(m.insert(1, std::int64_t{10}));
    EXPECT_FALSE(m.insert(1, std::int64_t{11}));
    EXPECT_TRUE(m.insert(2, std::string("two")));
    EXPECT_TRUE(m.insert(3, counted_payload(3, 0)));
    EXPECT_TRUE(m.insert(4, true));
    EXPECT_TRUE(m.insert(5, 2.5));
    EXPECT_EQ(m.size(), 5u);
    EXPECT_EQ(m.find(1)->get<std::int64_t>(), 10);
    EXPECT_EQ(m.find(2)->get<std::string>(), "two");
    EXPECT_EQ(m.find(3)->get<counted_payload>().value().serial, 0u);
    EXPECT_EQ(m.find(4)->get<bool>(), true);
    EXPECT_EQ(m.find(5)->get<double>(), 2.5);
    EXPECT_FALSE(m.find(6).has_value());
    EXPECT_FALSE(m.contains(6));
    EXPECT_EQ(m.get<std::string>(2).value(), "two");
    EXPECT_FALSE(m.get<std::int64_t>(2).has_value());  // a wrong-type read is an error, not a crash

    // visit sees the stored payload itself (no copy of the payload).
    const void* id = m.find(2)->payload_identity();
    EXPECT_TRUE(m.visit(2, [&](const polymap::value& v) { EXPECT_EQ(v.payload_identity(), id); }));

    EXPECT_FALSE(m.insert_or_assign(2, std::string("deux")));
    EXPECT_EQ(m.find(2)->get<std::string>(), "deux");
    EXPECT_TRUE(m.insert_or_assign(7, counted_payload(7, 1)));
    EXPECT_FALSE(m.insert_or_visit(7, std::int64_t{0}, [](polymap::value& v) {
      v = counted_payload(7, v.get<counted_payload>().value().serial + 1);
    }));
    EXPECT_EQ(m.find(7)->get<counted_payload>().value().serial, 2u);
    EXPECT_TRUE(m.insert_or_visit(8, std::string("eight"), [](polymap::value&) { FAIL(); }));
    const polymap::value u = m.update(
        1, [](const polymap::value* cur) { return polymap::value(cur ? cur->get<std::int64_t>().value() + 5 : 0); });
    EXPECT_EQ(u.get<std::int64_t>(), 15);
    EXPECT_EQ(m.update(9, [](const polymap::value* cur) { return polymap::value(cur ? 1 : 2); }).get<std::int64_t>(),
              2);
    EXPECT_FALSE(m.compare_exchange(2, polymap::value(std::string("two")), std::string("x")));
    {
      // A failed exchange drops its own reference to `desired`, once.
      const polymap::value keep = counted_payload(1000, 1);
      const long live = counted_payload::live.load();
      EXPECT_FALSE(m.compare_exchange(2, polymap::value(std::string("nope")), keep));
      EXPECT_EQ(counted_payload::live.load(), live);
      EXPECT_EQ(keep.get<counted_payload>().value().serial, 1u);
    }
    EXPECT_TRUE(m.compare_exchange(2, polymap::value(std::string("deux")), counted_payload(2, 9)));
    EXPECT_EQ(m.find(2)->get<counted_payload>().value().serial, 9u);
    EXPECT_TRUE(m.erase(5));
    EXPECT_FALSE(m.erase(5));

    std::map<std::uint64_t, std::string> seen;
    m.for_each([&](std::uint64_t k, const polymap::value& v) { seen[k] = v.to_string(); });
    EXPECT_EQ(seen.size(), m.size());
    EXPECT_EQ(seen.count(5), 0u);
    EXPECT_EQ(m.erase_if([](std::uint64_t k, const polymap::value& v) { return k >= 7 && !v.is<std::int64_t>(); }),
              2u);  // 7 (a payload) and 8 (a string); 9 is an int64
    EXPECT_TRUE(m.contains(9));

    std::vector<std::uint64_t> keys{1, 2, 3, 42};
    std::vector<std::optional<polymap::value>> out(keys.size());
    EXPECT_EQ(m.bulk_find(keys, out.begin()), 3u);
    EXPECT_EQ(out[0]->get<std::int64_t>(), 15);
    EXPECT_FALSE(out[3].has_value());
    out.clear();

    for (std::uint64_t i = 100; i < 3000; ++i) m.insert(i, counted_payload(i, i));  // growth moves payloads
    for (std::uint64_t i = 100; i < 3000; ++i) ASSERT_EQ(m.find(i)->get<counted_payload>().value().serial, i);
    m.clear();
    EXPECT_EQ(m.size(), 0u);
    for (std::uint64_t i = 0; i < 500; ++i) m.insert(i, counted_payload(i, 0));
  }
  domain.barrier();
  EXPECT_EQ(counted_payload::live.load(), before);
}

// Readers never see a torn or freed value while writers overwrite, erase and
// reinsert payload values and the table grows: every value read belongs to
// its key. Under ASan a payload freed too early is a use-after-free report;
// under TSan an unordered read is a race report.
TEST(ConcurrentMapInline, PayloadsUnderConcurrentOverwrites) {
  auto& domain = polymap::detail::epoch_domain::global();
  domain.barrier();
  const long before = counted_payload::live.load();
  {
    inline_value_map m;
    constexpr std::uint64_t kKeys = 512;
    std::atomic<bool> stop{false};
    std::atomic<long> bad{0}, reads{0};
    std::vector<std::thread> ts;
    for (int w = 0; w < 2; ++w) {
      ts.emplace_back([&, w] {
        std::mt19937_64 rng(static_cast<std::uint64_t>(w) + 7);
        for (std::uint64_t i = 0; i < 20000u * kScale; ++i) {
          const std::uint64_t k = rng() % kKeys;
          switch (rng() % 4) {
            case 0:
              m.insert_or_assign(k, counted_payload(k, i));
              break;
            case 1:
              m.insert_or_assign(k, std::string("k") + std::to_string(k));
              break;
            case 2:
              m.erase(k);
              break;
            default:
              m.update(k, [&](const polymap::value*) { return polymap::value(static_cast<std::int64_t>(k)); });
          }
        }
      });
    }
    for (int r = 0; r < 2; ++r) {
      ts.emplace_back([&, r] {
        std::mt19937_64 rng(static_cast<std::uint64_t>(r) + 100);
        auto belongs = [](std::uint64_t k, const polymap::value& v) {
          if (const auto* p = v.get_if<counted_payload>()) return p->key == k;
          if (const auto* s = v.get_if<std::string>()) return *s == "k" + std::to_string(k);
          if (const auto* i = v.get_if<std::int64_t>()) return *i == static_cast<std::int64_t>(k);
          return false;
        };
        while (!stop.load(std::memory_order_relaxed)) {
          const std::uint64_t k = rng() % kKeys;
          if (auto v = m.find(k)) bad += !belongs(k, *v);
          m.visit(k, [&](const polymap::value& v) { bad += !belongs(k, v); });
          reads += 2;
        }
      });
    }
    ts[0].join();
    ts[1].join();
    stop = true;
    for (std::size_t i = 2; i < ts.size(); ++i) ts[i].join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_GT(reads.load(), 0);
  }
  domain.barrier();
  EXPECT_EQ(counted_payload::live.load(), before);
}

// The inline layout's lookups are loads only, like the node layout's.
TEST(ConcurrentMapInline, LookupsWriteNoSharedMemory) {
  polymap::concurrent_map<std::uint64_t, polymap::value, polymap::hash<std::uint64_t>,
                          polymap::key_equal<std::uint64_t>, counting_traits>
      m;
  static_assert(decltype(m)::inline_slots);
  for (std::int64_t i = 0; i < 2000; ++i) m.insert(static_cast<std::uint64_t>(i), i);
  const auto versions = m.debug_version_words();
  shared_writes = 0;
  long hits = 0;
  for (std::uint64_t i = 0; i < 4000; ++i) {
    hits += m.find(i).has_value();
    hits += m.contains(i);
    m.visit(i, [&](const polymap::value&) { ++hits; });
  }
  std::vector<std::uint64_t> keys{1, 2, 99999};
  std::vector<std::optional<polymap::value>> out(3);
  hits += static_cast<long>(m.bulk_find(keys, out.begin()));
  EXPECT_EQ(hits, 3 * 2000 + 2);
  EXPECT_EQ(shared_writes, 0);
  EXPECT_EQ(m.debug_version_words(), versions);
  m.insert_or_assign(1, std::int64_t{5});  // and the counter does see writes
  EXPECT_GT(shared_writes, 0);
}

// Growth under readers and writers: keys known present are always found.
TEST(ConcurrentMapInline, GrowthUnderConcurrentReaders) {
  u64_map m;
  static_assert(u64_map::inline_slots);
  constexpr std::uint64_t kBase = 1000;
  for (std::uint64_t i = 0; i < kBase; ++i) m.insert(i, i * 3);
  std::atomic<bool> stop{false};
  std::atomic<long> misses{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      for (std::uint64_t i = 0; i < kBase; i += 7) {
        const auto v = m.find(i);
        misses += !v || *v != i * 3;
      }
    }
  });
  for (std::uint64_t i = kBase; i < kBase + 20000u * kScale; ++i) m.insert(i, i * 3);
  stop = true;
  reader.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(m.size(), kBase + 20000u * kScale);
}

// The inline layout's key locks live in each table (J6), so a growth moves
// writers of one key from one lock to another. Threads racing to insert the
// same keys into a map that grows all the while must still give every key
// exactly one winner and one slot (a duplicate would show in size(), in
// for_each, or as two winners).
TEST(ConcurrentMapInline, SameKeysRacedThroughGrowthLandOnce) {
  constexpr int kThreads = 4;
  const std::uint64_t n = 20000;
  for (int round = 0; round < 3; ++round) {
    u64_map m;
    std::vector<std::atomic<int>> winners(n);
    std::latch go(kThreads);
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        go.arrive_and_wait();
        // All walk the same keys in the same order, so they insert the same
        // key at about the same time, and all of them resume together on
        // the new table after each growth (they waited on the frozen old one).
        for (std::uint64_t k = 0; k < n; ++k)
          if (t == 3 ? m.insert_or_assign(k, k) : m.insert(k, k)) winners[k].fetch_add(1);
      });
    }
    for (auto& t : ts) t.join();
    std::size_t seen = 0;
    m.for_each([&](std::uint64_t k, std::uint64_t v) {
      ++seen;
      EXPECT_EQ(k, v);
    });
    EXPECT_EQ(seen, n);
    EXPECT_EQ(m.size(), n);
    std::size_t bad = 0;
    for (std::uint64_t k = 0; k < n; ++k) bad += winners[k].load() != 1;
    EXPECT_EQ(bad, 0u);
    EXPECT_GT(m.stats().growths, 5u);
  }
}

// J6 step by step: A's update of k runs its callback holding the old
// table's key lock; a growth replaces the table; B's update of k then takes
// the new table's key lock and parks in its callback. A, released first, must
// move to the new table's lock and so wait for B: B's value lands first and
// A's callback runs again on it. (Were A to keep the old lock, A and B would
// both insert k, each having seen it absent.)
TEST(ConcurrentMapInline, WriterMovesToTheNewTablesKeyLock) {
  u64_map m;
  const std::uint64_t k = 7;
  std::atomic<int> a_calls{0}, b_calls{0};
  std::atomic<bool> a_done{false};
  std::latch a_in(1), a_go(1), b_in(1), b_go(1);
  std::thread a([&] {
    m.update(k, [&](const std::uint64_t* cur) -> std::uint64_t {
      if (a_calls.fetch_add(1) == 0) {
        a_in.count_down();
        a_go.wait();
      }
      return (cur ? *cur : 0) + 1;
    });
    a_done = true;
  });
  a_in.wait();
  m.reserve(10000);  // a growth while A holds the old table's key lock
  std::thread b([&] {
    m.update(k, [&](const std::uint64_t* cur) -> std::uint64_t {
      if (b_calls.fetch_add(1) == 0) {
        b_in.count_down();
        b_go.wait();
      }
      return (cur ? *cur : 0) + 100;
    });
  });
  b_in.wait();
  a_go.count_down();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(a_done.load()) << "A published while B held k's key lock in the new table";
  b_go.count_down();
  a.join();
  b.join();
  EXPECT_EQ(m.find(k), std::optional<std::uint64_t>(101));
  EXPECT_EQ(b_calls.load(), 1);
  EXPECT_EQ(a_calls.load(), 2);
  EXPECT_EQ(m.size(), 1u);
}

// J7: a write on the fast path (insert_or_assign, erase and insert decide
// under the home group's lock alone) must not overtake a key-lock writer of
// the same key that is between its lookup and its publication: it sees the
// key lock held, falls back and waits. Broken, B publishes first and A's
// update callback runs a second time on B's result.
TEST(ConcurrentMapInline, FastWriteWaitsForAKeyLockWriter) {
  enum { assign, erase, insert };
  for (int op : {assign, erase, insert}) {
    SCOPED_TRACE(op);
    u64_map m;
    const std::uint64_t k = 7;
    if (op != insert) m.insert(k, 1);
    std::atomic<int> a_calls{0};
    std::atomic<bool> b_started{false}, b_done{false};
    std::latch a_in(1), a_go(1);
    std::thread a([&] {
      m.update(k, [&](const std::uint64_t* cur) -> std::uint64_t {
        if (a_calls.fetch_add(1) == 0) {
          a_in.count_down();
          a_go.wait();
        }
        return (cur ? *cur : 0) + 10;
      });
    });
    a_in.wait();  // A holds k's key lock, its lookup done
    bool b_result = false;
    std::thread b([&] {
      b_started = true;
      b_result = op == assign ? m.insert_or_assign(k, 100) : op == erase ? m.erase(k) : m.insert(k, 5);
      b_done = true;
    });
    while (!b_started) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(b_done.load()) << "B published while A held k's key lock";
    a_go.count_down();
    a.join();
    b.join();
    EXPECT_EQ(a_calls.load(), 1);
    if (op == assign) {
      EXPECT_FALSE(b_result);  // it replaced A's 11
      EXPECT_EQ(m.find(k), std::optional<std::uint64_t>(100));
    } else if (op == erase) {
      EXPECT_TRUE(b_result);  // it erased A's 11
      EXPECT_FALSE(m.find(k).has_value());
    } else {
      EXPECT_FALSE(b_result);  // A inserted 10 first
      EXPECT_EQ(m.find(k), std::optional<std::uint64_t>(10));
    }
  }
}

// A key lock whose held() (called only by write_home, J7) can park the
// calling fast writer after its check, inside its group-lock hold.
struct parking_key_lock : polymap::detail::spin_lock<std::atomic> {
  static inline std::atomic<bool> armed{false};
  static inline std::latch* parked = nullptr;
  static inline std::latch* resume = nullptr;
  bool held() const noexcept {
    const bool r = spin_lock::held();
    if (armed.exchange(false)) {
      parked->count_down();
      resume->wait();
    }
    return r;
  }
};
struct parking_traits : polymap::concurrent_map_traits {
  using stripe_lock = parking_key_lock;
};

// J7's other half: a fast insert that saw the key lock free is still in
// flight (holding the home group's lock, its tag not yet stored) when a
// key-lock writer (update) takes the key lock. The update's lookup must wait
// for the home group to be unlocked and see the insert; a lookup that
// missed without validation inserted the key a second time.
TEST(ConcurrentMapInline, KeyLockWriterWaitsOutAFastInsertInFlight) {
  polymap::concurrent_map<std::uint64_t, std::uint64_t, polymap::hash<std::uint64_t>, polymap::key_equal<std::uint64_t>,
                          parking_traits>
      m;
  const std::uint64_t k = 7;
  std::latch parked(1), resume(1);
  parking_key_lock::parked = &parked;
  parking_key_lock::resume = &resume;
  parking_key_lock::armed = true;
  bool b_inserted = false;
  std::thread b([&] { b_inserted = m.insert(k, 5); });
  parked.wait();  // B holds the home group's lock and saw the key lock free
  std::atomic<int> a_calls{0};
  std::optional<std::uint64_t> a_saw;
  std::thread a([&] {
    m.update(k, [&](const std::uint64_t* cur) -> std::uint64_t {
      a_calls.fetch_add(1);
      a_saw = cur ? std::optional<std::uint64_t>(*cur) : std::nullopt;
      return (cur ? *cur : 0) + 10;
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(a_calls.load(), 0) << "A looked the key up while B's insert was in flight";
  resume.count_down();
  b.join();
  a.join();
  EXPECT_TRUE(b_inserted);
  EXPECT_EQ(a_calls.load(), 1);
  EXPECT_EQ(a_saw, std::optional<std::uint64_t>(5));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.find(k), std::optional<std::uint64_t>(15));
  std::size_t n = 0;
  m.for_each([&](std::uint64_t, std::uint64_t) { ++n; });
  EXPECT_EQ(n, 1u) << "the key is in the table twice";
}

// An atomic that parks the calling thread right after its next store of a
// 64-bit word, once armed on that thread: J8's overwriter, armed, parks
// holding its slot lock with the first of the value's two words stored.
struct slot_park {
  std::latch parked{1}, resume{1};
};
thread_local slot_park* park_after_word_store = nullptr;
template <class T>
struct parking_atomic : std::atomic<T> {
  using base = std::atomic<T>;
  using base::base;
  void store(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    base::store(v, o);
    if constexpr (std::is_same_v<T, std::uint64_t>) {
      if (slot_park* p = park_after_word_store) {
        park_after_word_store = nullptr;
        p->parked.count_down();
        p->resume.wait();
      }
    }
  }
};
struct slot_parking_traits : polymap::concurrent_map_traits {
  template <class T>
  using atomic = parking_atomic<T>;
  using group_lock = polymap::detail::version_lock<parking_atomic>;
  using stripe_lock = polymap::detail::spin_lock<parking_atomic>;
};

// J8: an overwrite of a present string key holds only its slot's lock, and
// here parks half-way (one of the value's two words stored: the slot holds
// a torn value). A reader must not return the torn value, and an erase, an
// update and a migration's move of the group must wait for the slot, then
// see the overwrite whole, as must a rebuild at once (reserve), which reads
// the frozen table without seqlock rounds (move_entries_into). Each check
// fails without its J8 wait: the reader returns an int made of the new
// string's pointer, the erase retires the torn words, the update's
// callback runs before the overwrite is done, the move and the rebuild
// copy the torn value.
TEST(ConcurrentMapInline, SlotLockedOverwriteIsSeenWholeOrNotAtAll) {
  using map_t = polymap::concurrent_map<std::string, polymap::value, polymap::hash<std::string>,
                                        polymap::key_equal<std::string>, slot_parking_traits>;
  static_assert(map_t::inline_slots);
  enum { reader, eraser, updater, mover, rebuilder };
  const std::string k = "a key in its home group";
  const std::string fresh(40, 'b');  // a heap payload: the first word is its pointer
  for (int op : {reader, eraser, updater, mover, rebuilder}) {
    SCOPED_TRACE(op);
    map_t m;
    for (int i = 0; i < 8; ++i) m.insert("other " + std::to_string(i), i);
    m.insert(k, 1);  // one group: every key is in its home group
    slot_park park;
    std::thread b([&] {
      park_after_word_store = &park;
      EXPECT_FALSE(m.insert_or_assign(k, polymap::value(fresh)));
    });
    park.parked.wait();
    std::atomic<bool> done{false};
    std::optional<polymap::value> seen;
    int calls = 0;
    std::thread c([&] {
      switch (op) {
        case reader:
          seen = m.find(k);
          break;
        case eraser:
          EXPECT_TRUE(m.erase(k));
          break;
        case updater:
          m.update(k, [&](const polymap::value* v) {
            ++calls;
            seen = *v;
            return polymap::value(2);
          });
          break;
        case mover:
          m.debug_begin_migration();
          m.debug_move_group(0);
          break;
        case rebuilder:  // 1,000 entries need 128 groups: a rebuild at once
          m.reserve(1000);
          break;
      }
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(done.load()) << "it went on while the overwrite held the slot half-written";
    park.resume.count_down();
    b.join();
    c.join();
    switch (op) {
      case reader:
      case updater:
        EXPECT_EQ(seen, polymap::value(fresh));
        break;
      case eraser:
        EXPECT_FALSE(m.contains(k));
        break;
      case mover:  // one group: the move ended the migration
        EXPECT_EQ(m.debug_migration().groups, 2u);
        EXPECT_EQ(m.find(k), polymap::value(fresh));
        break;
      case rebuilder:
        EXPECT_GE(m.stats().capacity, 1000u);
        EXPECT_EQ(m.find(k), polymap::value(fresh));
        break;
    }
    if (op == updater) {
      EXPECT_EQ(calls, 1);
      EXPECT_EQ(m.find(k), polymap::value(2));
    }
    EXPECT_EQ(m.size(), op == eraser ? 8u : 9u);
  }
}

// size() (J4) after 12 threads insert through growths and other threads
// erase half of each one's keys (on the fast path and off it): it must equal
// a full count once the writers are done, and reach zero.
TEST(ConcurrentMapInline, SizeIsExactAfterManyWriterThreads) {
  u64_map m;
  constexpr std::uint64_t kThreads = 12, kPer = 1000;
  auto run = [&](auto body) {
    std::vector<std::thread> ts;
    for (std::uint64_t t = 0; t < kThreads; ++t) ts.emplace_back(body, t);
    for (auto& th : ts) th.join();
  };
  run([&](std::uint64_t t) {
    for (std::uint64_t i = 0; i < kPer; ++i) ASSERT_TRUE(m.insert(t * kPer + i, i));
  });
  EXPECT_EQ(m.size(), kThreads * kPer);
  run([&](std::uint64_t t) {  // each thread erases half of another thread's keys
    const std::uint64_t other = (t + 1) % kThreads;
    for (std::uint64_t i = 0; i < kPer / 2; ++i) ASSERT_TRUE(m.erase(other * kPer + i));
  });
  std::size_t n = 0;
  m.for_each([&](std::uint64_t, std::uint64_t) { ++n; });
  EXPECT_EQ(n, kThreads * kPer / 2);
  EXPECT_EQ(m.size(), n);
  for (std::uint64_t k = 0; k < kThreads * kPer; ++k) m.erase(k);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_TRUE(m.empty());
}

// The fast path against the key-lock path and growths, many threads, one
// small key range: no key lands twice (one fast and one key-lock insert of
// the same key), every value is one a thread stored, and size() agrees with
// a full scan.
TEST(ConcurrentMapInline, FastAndKeyLockWritersMixedThroughGrowth) {
  u64_map m;
  constexpr int kThreads = 4;
  constexpr std::uint64_t kKeys = 3000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 1);
      for (int i = 0; i < 20000 * kScale; ++i) {
        const std::uint64_t r = rng(), k = r % kKeys;
        switch ((r >> 32) % 4) {
          case 0:
            m.insert_or_assign(k, k * 2);
            break;
          case 1:
            m.insert(k, k * 2);
            break;
          case 2:
            m.update(k, [&](const std::uint64_t*) { return k * 2; });
            break;
          default:
            m.erase(k);
            break;
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  std::size_t n = 0;
  std::vector<bool> seen(kKeys);
  m.for_each([&](std::uint64_t k, std::uint64_t v) {
    ++n;
    EXPECT_EQ(v, k * 2);
    ASSERT_LT(k, kKeys);
    EXPECT_FALSE(seen[k]) << "key " << k << " is in the table twice";
    seen[k] = true;
  });
  EXPECT_EQ(m.size(), n);
}

// The inline layout retires nothing per write (scalars), only its old tables
// at each growth; those must still be freed while the thread keeps writing,
// without anyone calling barrier() (epoch_domain::poll).
TEST(ConcurrentMapInline, OldTablesFreedWhileWriting) {
  auto& domain = polymap::detail::epoch_domain::global();
  domain.barrier();
  u64_map m;
  for (std::uint64_t i = 0; i < 50000; ++i) m.insert(i, i);  // a dozen growths
  EXPECT_GT(m.stats().growths, 8u);
  std::size_t writes = 0;
  for (int round = 0; round < 5000 && domain.pending() != 0; ++round) {
    for (std::uint64_t j = 0; j < 1000; ++j) m.insert_or_assign(j, j + 1);
    writes += 1000;
  }
  EXPECT_EQ(domain.pending(), 0u) << "after " << writes << " more writes";
}

// --- string keys in the inline layout (key blocks) ---------------------------

namespace {

// Keys of every length from 0 to 80 bytes, some sharing long prefixes, so
// that the stored hash and the bytes both decide.
std::string string_key(std::uint64_t i) {
  std::string k = "user:" + std::to_string(i);
  k.append(static_cast<std::size_t>(i % 7) * 11, static_cast<char>('a' + i % 26));
  if (i % 5 == 0) k = std::string(static_cast<std::size_t>(i % 9), 'z') + k;  // short ones too
  return k;
}

}  // namespace

// Random single-threaded operations on string keys against
// std::unordered_map, through growths and dirty rebuilds: every write
// path (fast, key lock) and the key blocks' ownership (asan: no leak, no
// use after free).
TEST(ConcurrentMapStringKeys, Differential) {
  polymap::concurrent_map<std::string, std::uint64_t> m;
  static_assert(decltype(m)::inline_slots);
  std::unordered_map<std::string, std::uint64_t> ref;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 30000 * kScale; ++step) {
    const std::uint64_t r = rng();
    const std::string k = string_key(r % 2000);
    const std::uint64_t v = r >> 40;
    switch ((r >> 20) % 9) {
      case 0:
        ASSERT_EQ(m.insert(k, v), ref.try_emplace(k, v).second);
        break;
      case 1:
        ASSERT_EQ(m.insert_or_assign(k, v), ref.insert_or_assign(k, v).second);
        break;
      case 2:
        ASSERT_EQ(m.erase(k), ref.erase(k) == 1);
        break;
      case 3: {
        const std::uint64_t want = ref.count(k) ? ref[k] + 1 : 0;
        ASSERT_EQ(m.update(k, [](const std::uint64_t* c) { return c ? *c + 1 : 0; }), want);
        ref[k] = want;
        break;
      }
      case 4: {
        const bool absent = !ref.count(k);
        ASSERT_EQ(m.insert_or_visit(k, v, [](std::uint64_t& c) { c *= 3; }), absent);
        if (absent)
          ref[k] = v;
        else
          ref[k] *= 3;
        break;
      }
      case 5: {
        auto it = ref.find(k);
        const bool ok = it != ref.end() && it->second == v;
        ASSERT_EQ(m.compare_exchange(k, v, v + 1), ok);
        if (ok) it->second = v + 1;
        break;
      }
      case 6: {
        auto it = ref.find(k);
        auto got = m.find(std::string_view(k));
        ASSERT_EQ(got.has_value(), it != ref.end()) << k;
        if (got) {
          ASSERT_EQ(*got, it->second);
        }
        break;
      }
      case 7:
        if (step % 500 == 0) {
          const std::uint64_t cut = rng() % 64;
          const std::size_t n =
              m.erase_if([&](const std::string& key, std::uint64_t val) { return (val + key.size()) % 64 == cut; });
          ASSERT_EQ(n, std::erase_if(ref, [&](const auto& kv) { return (kv.second + kv.first.size()) % 64 == cut; }));
        }
        break;
      default:
        ASSERT_EQ(m.size(), ref.size());
    }
  }
  std::map<std::string, std::uint64_t> a(ref.begin(), ref.end()), b;
  m.for_each([&](const std::string& k, std::uint64_t v) { b.emplace(k, v); });
  EXPECT_EQ(a, b);
  EXPECT_GT(m.stats().bytes, m.size() * 16);  // the key blocks count
  m.clear();
  EXPECT_EQ(m.size(), 0u);
}

// Readers look up string keys known present while two writers overwrite
// them and insert and erase others, through growths: never a miss, never a
// value of another key (a reader compares against key blocks that an erase
// may retire meanwhile; the epoch keeps them).
TEST(ConcurrentMapStringKeys, ReadersDuringChurnAndGrowth) {
  polymap::concurrent_map<> m;
  constexpr std::uint64_t stable = 300;
  for (std::uint64_t i = 0; i < stable; ++i) m.insert(string_key(i), concurrency::tagged(string_key(i), 0));
  std::atomic<int> writers_left{2};
  std::atomic<long> misses{0}, bad{0};
  concurrency::run_threads(4, [&](int t) {
    std::mt19937_64 rng(static_cast<unsigned>(t) + 11u);
    if (t < 2) {
      for (int i = 0; i < 5000 * kScale; ++i) {
        const std::string s = string_key(rng() % stable);
        m.insert_or_assign(s, concurrency::tagged(s, i));
        const std::string c = string_key(stable + rng() % (2000 * static_cast<unsigned>(kScale)));
        if (i % 3 == 0)
          m.erase(c);
        else
          m.insert_or_assign(c, concurrency::tagged(c, i));
      }
      writers_left.fetch_sub(1);
      return;
    }
    while (writers_left.load() > 0) {
      const std::string s = string_key(rng() % stable);
      if (!m.visit(s, [&](const polymap::value& v) { bad += !concurrency::is_tagged_for(v, s); })) misses.fetch_add(1);
      const std::string c = string_key(stable + rng() % 2000);
      if (auto v = m.find(c); v && !concurrency::is_tagged_for(*v, c)) bad.fetch_add(1);
    }
  });
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(bad.load(), 0);
}

// --- misuse: a callback that writes its own map ------------------------------

// A write to the map from inside its own update or insert_or_visit callback
// would wait for the key lock the callback runs under, or not, depending on
// the two keys' hashes. It is reported instead, every time, and the map
// stays usable; the callback's own write is not stored (the exception
// leaves update before it publishes).
template <class M>
void check_callback_writes_are_reported() {
  M m;
  M other;
  for (int i = 0; i <= 2000; ++i) m.insert("user:" + std::to_string(i), i);
  int reported = 0;
  for (int i = 0; i <= 2000; ++i) {
    const std::string k = "user:" + std::to_string(i);
    const std::string j = "user:" + std::to_string((i * 7 + 1) % 2001);
    try {
      m.update(k, [&](const polymap::value*) {
        other.insert_or_assign(j, 1);  // another map: allowed
        m.insert_or_assign(j, -1);
        return polymap::value(-2);
      });
    } catch (const std::logic_error& e) {
      ++reported;
      EXPECT_NE(std::string(e.what()).find("callback"), std::string::npos) << e.what();
    }
    try {
      m.insert_or_visit(k, polymap::value(0), [&](polymap::value&) { m.erase(j); });
    } catch (const std::logic_error&) {
      ++reported;
    }
  }
  EXPECT_EQ(reported, 2 * 2001);
  EXPECT_EQ(m.size(), 2001u);
  for (int i = 0; i <= 2000; ++i) ASSERT_EQ(m.find("user:" + std::to_string(i)), polymap::value(i));
  EXPECT_EQ(other.size(), 2001u);
  // Reads from a callback are allowed, and the map takes writes afterwards.
  m.update("user:5", [&](const polymap::value* v) {
    EXPECT_TRUE(m.contains("user:6"));
    return *v;
  });
  EXPECT_TRUE(m.insert_or_assign("fresh", 1));
  EXPECT_TRUE(m.erase("fresh"));
}

TEST(ConcurrentMapMisuse, WriteFromOwnCallbackIsReported) {
  check_callback_writes_are_reported<polymap::concurrent_map<>>();
}

// --- boxed values and keys (types that fit no word) ---------------------------

namespace {

struct wide_key {
  std::uint64_t a = 0, b = 0;
  bool operator==(const wide_key&) const = default;
};
struct wide_key_hash {
  std::size_t operator()(const wide_key& k) const noexcept { return polymap::detail::mix64(k.a * 31 + k.b); }
};

}  // namespace

static_assert(!polymap::concurrent_map<wide_key, std::vector<int>, wide_key_hash>::inline_slots);

// A large, non-trivial V sits in a box behind its word, a key that fits no
// word in a key block: the same table and write paths, checked against
// std::unordered_map through growths (asan: every box and block freed).
TEST(ConcurrentMapBoxed, DifferentialWideKeysAndVectorValues) {
  polymap::concurrent_map<wide_key, std::vector<int>, wide_key_hash> m;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<int>> ref;
  std::mt19937_64 rng(3);
  for (int step = 0; step < 20000 * kScale; ++step) {
    const std::uint64_t r = rng();
    const wide_key k{r % 1500, (r % 1500) * 7};
    const auto rk = std::make_pair(k.a, k.b);
    const std::vector<int> v(static_cast<std::size_t>(r >> 60), static_cast<int>(r >> 40));
    switch ((r >> 20) % 6) {
      case 0:
        ASSERT_EQ(m.insert(k, v), ref.try_emplace(rk, v).second);
        break;
      case 1:
        ASSERT_EQ(m.insert_or_assign(k, v), ref.insert_or_assign(rk, v).second);
        break;
      case 2:
        ASSERT_EQ(m.erase(k), ref.erase(rk) == 1);
        break;
      case 3: {
        auto& want = ref[rk];
        want.push_back(1);
        ASSERT_EQ(m.update(k,
                           [](const std::vector<int>* c) {
                             std::vector<int> n = c ? *c : std::vector<int>{};
                             n.push_back(1);
                             return n;
                           }),
                  want);
        break;
      }
      case 4: {
        auto it = ref.find(rk);
        auto got = m.find(k);
        ASSERT_EQ(got.has_value(), it != ref.end());
        if (got) {
          ASSERT_EQ(*got, it->second);
        }
        break;
      }
      default:
        ASSERT_EQ(m.size(), ref.size());
    }
  }
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<int>> b;
  m.for_each([&](const wide_key& k, const std::vector<int>& v) { b.emplace(std::make_pair(k.a, k.b), v); });
  EXPECT_EQ(ref, b);
}

// Boxed values under concurrent overwrites: a reader sees whole values (its
// box is kept by the pin), and every box is freed once the epoch drains.
TEST(ConcurrentMapBoxed, BoxesFreedAfterConcurrentOverwrites) {
  auto& domain = polymap::detail::epoch_domain::global();
  domain.barrier();
  const long before = tracked::live.load();
  {
    polymap::concurrent_map<std::string, tracked> m;
    std::atomic<long> bad{0};
    concurrency::run_threads(3, [&](int t) {
      for (std::uint64_t i = 0; i < 3000; ++i) {
        const std::string k = "k" + std::to_string(i % 300);
        if (t == 2) {
          m.visit(k, [&](const tracked& v) { bad += v.v % 300 != i % 300; });
        } else if (i % 5 == 0) {
          m.erase(k);
        } else {
          m.insert_or_assign(k, tracked(i));
        }
      }
    });
    EXPECT_EQ(bad.load(), 0);
  }
  domain.barrier();
  EXPECT_EQ(tracked::live.load(), before);
}

// The string key test: with a hasher that gives every key of a length the
// same hash (and so the same stored hash in its key block), only the byte
// compare tells keys apart. Keys of lengths 0-40 that differ from a base key
// in exactly one byte, at every position.
namespace {
struct length_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return polymap::detail::mix64(s.size() % 3); }
};
}  // namespace

TEST(StringKeys, ByteCompareSeesEveryPosition) {
  polymap::concurrent_map<std::string, polymap::value, length_hash> m;
  std::vector<std::string> keys;
  for (std::size_t n = 0; n <= 40; ++n) {
    const std::string base(n, 'q');
    keys.push_back(base);
    for (std::size_t p = 0; p < n; ++p) {
      std::string k = base;
      k[p] = 'r';
      keys.push_back(k);
    }
  }
  for (std::size_t i = 0; i < keys.size(); ++i)
    ASSERT_TRUE(m.insert(keys[i], polymap::value(static_cast<std::int64_t>(i)))) << "'" << keys[i] << "'";
  ASSERT_EQ(m.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto v = m.find(keys[i]);
    ASSERT_TRUE(v.has_value()) << "'" << keys[i] << "'";
    EXPECT_EQ(v->get<std::int64_t>(), static_cast<std::int64_t>(i)) << "'" << keys[i] << "'";
  }
  // A key that differs from every stored one (an 's' where they hold 'q' or 'r').
  for (std::size_t n = 1; n <= 40; ++n) {
    std::string k(n, 'q');
    k[n / 2] = 's';
    EXPECT_FALSE(m.contains(k)) << "'" << k << "'";
  }
}

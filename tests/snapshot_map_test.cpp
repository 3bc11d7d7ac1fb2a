// snapshot_map: the shared suites, snapshot isolation, batch atomicity under
// concurrent readers, hash collisions against a reference, and reclamation
// (every node and value freed; run under asan and tsan too).
#include "polymap/snapshot_map.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <latch>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "concurrency.hpp"
#include "conformance.hpp"
#include "sanitizer_scale.hpp"

using snapshot_types = ::testing::Types<polymap::snapshot_map<>>;
INSTANTIATE_TYPED_TEST_SUITE_P(snapshot, MapConformance, snapshot_types);
INSTANTIATE_TYPED_TEST_SUITE_P(snapshot, MapConcurrency, snapshot_types);

namespace {

// ThreadSanitizer makes every atomic and allocation many times slower; the
// single-threaded differential and stats tests shrink under it.
constexpr int kScale = polymap::testing::under_thread_sanitizer ? 4 : 1;

using polymap::value;
using polymap::detail::epoch_domain;

std::int64_t live_nodes() {
  return polymap::detail::hamt::live_nodes().load();
}

// Counts live instances, to prove values are destroyed with their nodes.
struct counted {
  static inline std::atomic<long> live{0};
  int n = 0;
  explicit counted(int v) : n(v) { live.fetch_add(1); }
  counted(const counted& o) : n(o.n) { live.fetch_add(1); }
  counted& operator=(const counted&) = default;
  ~counted() { live.fetch_sub(1); }
  friend bool operator==(const counted& a, const counted& b) { return a.n == b.n; }
};

// A deliberately bad hash: few distinct values, so collision nodes and deep
// merges are exercised; `bits` keeps the shared high bits different.
struct bad_hash {
  std::size_t operator()(int k) const noexcept {
    const auto u = static_cast<std::size_t>(k);
    return (u % 7 == 0) ? 0x5555u : ((u % 13) << 60) | (u % 5);
  }
};

}  // namespace

TEST(SnapshotMap, SnapshotNeverChanges) {
  polymap::snapshot_map<> m;
  for (int i = 0; i < 1000; ++i) m.insert("k" + std::to_string(i), i);
  auto s = m.snapshot();
  const auto v0 = s.version();
  for (int i = 0; i < 1000; i += 2) m.erase("k" + std::to_string(i));
  for (int i = 1; i < 1000; i += 2) m.insert_or_assign("k" + std::to_string(i), "changed");
  m.insert("new", 1);
  auto later = m.snapshot();
  m.clear();
  EXPECT_EQ(m.size(), 0u);

  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(s.version(), v0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(s.get<std::int64_t>("k" + std::to_string(i)), i);
  EXPECT_FALSE(s.contains("new"));
  std::size_t n = 0;
  std::int64_t sum = 0;
  for (const auto& [k, v] : s) {
    EXPECT_EQ(k, "k" + std::to_string(*v.get<std::int64_t>()));
    sum += *v.get<std::int64_t>();
    ++n;
  }
  EXPECT_EQ(n, 1000u);
  EXPECT_EQ(sum, 999 * 1000 / 2);

  EXPECT_EQ(later.size(), 501u);
  EXPECT_EQ(later.find("k1"), value("changed"));
  EXPECT_FALSE(later.contains("k0"));
  EXPECT_GT(later.version(), v0);
  EXPECT_GT(m.version(), later.version());
}

TEST(SnapshotMap, VersionCountsOnlyPublishes) {
  polymap::snapshot_map<> m;
  EXPECT_EQ(m.version(), 0u);
  m.insert("a", 1);
  EXPECT_EQ(m.version(), 1u);
  EXPECT_FALSE(m.insert("a", 2));  // no change: no publish
  EXPECT_FALSE(m.erase("b"));
  EXPECT_FALSE(m.compare_exchange("a", value(5), value(6)));
  EXPECT_EQ(m.erase_if([](const std::string&, const value&) { return false; }), 0u);
  EXPECT_EQ(m.version(), 1u);
  polymap::snapshot_map<>::batch b;
  b.insert_or_assign("x", 1).insert_or_assign("y", 2).erase("a").erase("never");
  EXPECT_EQ(m.apply(b), 2u);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_FALSE(m.contains("a"));
  polymap::snapshot_map<>::batch nothing;
  nothing.erase("absent");
  EXPECT_EQ(m.apply(nothing), 2u);
}

TEST(SnapshotMap, IteratorMatchesForEachAndSnapshotsCopy) {
  polymap::snapshot_map<int, int> m;
  for (int i = 0; i < 5000; ++i) m.insert(i, i * 3);
  auto s = m.snapshot();
  auto copy = s;  // shares the version
  auto moved = std::move(s);
  EXPECT_FALSE(s.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(s.size(), 0u);
  std::map<int, int> a, b;
  for (const auto& kv : copy) a.emplace(kv.first, kv.second);
  moved.for_each([&](int k, int v) { b.emplace(k, v); });
  EXPECT_EQ(a.size(), 5000u);
  EXPECT_EQ(a, b);
}

// Random operations on a map with a terrible hash (collision nodes, lifted
// leaves, deep branches), each result compared with std::unordered_map.
TEST(SnapshotMap, CollisionsAgainstReference) {
  polymap::snapshot_map<int, int, bad_hash> m;
  std::unordered_map<int, int> ref;
  std::mt19937_64 rng(4242);
  std::vector<polymap::snapshot_map<int, int, bad_hash>::snapshot_type> held;
  std::vector<std::unordered_map<int, int>> held_ref;
  for (int step = 0; step < 30000 / kScale; ++step) {
    const auto r = rng();
    const int k = static_cast<int>(r % 300);
    const int v = static_cast<int>((r >> 20) % 1000);
    switch ((r >> 40) % 6) {
      case 0:
        ASSERT_EQ(m.insert(k, v), ref.emplace(k, v).second);
        break;
      case 1:
        ASSERT_EQ(m.insert_or_assign(k, v), ref.insert_or_assign(k, v).second);
        break;
      case 2:
        ASSERT_EQ(m.erase(k), ref.erase(k) > 0);
        break;
      case 3: {
        auto f = m.find(k);
        auto it = ref.find(k);
        ASSERT_EQ(f.has_value(), it != ref.end());
        if (f) {
          ASSERT_EQ(*f, it->second);
        }
        break;
      }
      case 4:
        if (step % (1000 / kScale) == 4) {
          held.push_back(m.snapshot());
          held_ref.push_back(ref);
        }
        break;
      default: {
        polymap::snapshot_map<int, int, bad_hash>::batch b;
        for (int i = 0; i < 5; ++i) {
          const int bk = static_cast<int>((r >> (i * 8)) % 300);
          if (i % 2) {
            b.erase(bk);
            ref.erase(bk);
          } else {
            b.insert_or_assign(bk, i);
            ref.insert_or_assign(bk, i);
          }
        }
        m.apply(b);
        break;
      }
    }
    ASSERT_EQ(m.size(), ref.size()) << "step " << step;
  }
  std::unordered_map<int, int> all;
  m.for_each([&](int k, int v) { all.emplace(k, v); });
  EXPECT_EQ(all, ref);
  for (std::size_t i = 0; i < held.size(); ++i) {
    std::unordered_map<int, int> seen(held[i].begin(), held[i].end());
    EXPECT_EQ(seen, held_ref[i]) << "snapshot " << i;
  }
  EXPECT_EQ(m.erase_if([](int k, int) { return k % 2 == 0; }),
            std::erase_if(ref, [](auto& kv) { return kv.first % 2 == 0; }));
  std::unordered_map<int, int> after(m.snapshot().begin(), m.snapshot().end());
  EXPECT_EQ(after, ref);
}

// Writers publish groups of keys with apply(); readers take snapshots and
// check every key of a group carries the same generation, and that the
// version and generation never go backwards.
TEST(SnapshotMap, ApplyIsAtomicForConcurrentReaders) {
  polymap::snapshot_map<> m;
  constexpr int group = 16, rounds = 1500;
  auto publish = [&](int gen) {
    polymap::snapshot_map<>::batch b;
    for (int i = 0; i < group; ++i) b.insert_or_assign("g" + std::to_string(i), gen);
    b.insert_or_assign("payload", std::string(static_cast<std::size_t>(gen % 64), 'x'));
    m.apply(b);
  };
  publish(0);
  std::atomic<bool> done{false};
  std::atomic<long> mixed{0}, backwards{0}, reads{0};
  concurrency::run_threads(3, [&](int t) {
    if (t == 0) {
      for (int gen = 1; gen <= rounds; ++gen) publish(gen);
      done.store(true);
      return;
    }
    std::uint64_t last_version = 0;
    std::int64_t last_gen = 0;
    do {  // at least one read, even if the writers finish first
      auto s = m.snapshot();
      const auto gen = *s.get<std::int64_t>("g0");
      for (int i = 1; i < group; ++i) {
        if (s.get<std::int64_t>("g" + std::to_string(i)) != gen) mixed.fetch_add(1);
      }
      if (s.get<std::string>("payload")->size() != static_cast<std::size_t>(gen % 64)) mixed.fetch_add(1);
      if (s.version() < last_version || gen < last_gen) backwards.fetch_add(1);
      last_version = s.version();
      last_gen = gen;
      // Lock-free single reads see whole values too.
      if (!m.template get<std::int64_t>("g3")) mixed.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
    } while (!done.load());
  });
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_EQ(backwards.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(m.template get<std::int64_t>("g15"), rounds);
}

// Every node and every value is freed: after the map, its snapshots and the
// epoch domain's pending versions are gone, the live counts return to where
// they started. Readers and snapshot holders run on other threads meanwhile.
TEST(SnapshotMap, ReclaimsEveryNodeAndValue) {
  const auto nodes_before = live_nodes();
  {
    epoch_domain domain;
    {
      polymap::snapshot_map<int, counted> m(domain);
      std::atomic<bool> done{false};
      std::atomic<long> bad{0};
      concurrency::run_threads(3, [&](int t) {
        std::mt19937 rng(static_cast<unsigned>(t) + 17u);
        if (t == 0) {
          for (int i = 0; i < 6000; ++i) {
            const int k = static_cast<int>(rng() % 500);
            switch (i % 4) {
              case 0:
              case 1:
                m.insert_or_assign(k, counted(k));
                break;
              case 2:
                m.erase(k);
                break;
              default:
                m.update(k, [k](const counted*) { return counted(k); });
            }
          }
          done.store(true);
          return;
        }
        std::vector<polymap::snapshot_map<int, counted>::snapshot_type> kept;
        while (!done.load()) {
          const int k = static_cast<int>(rng() % 500);
          m.visit(k, [&](const counted& c) { bad += (c.n != k); });
          if (rng() % 64 == 0) kept.push_back(m.snapshot());
          if (kept.size() > 8) kept.erase(kept.begin());
        }
        for (auto& s : kept) s.for_each([&](int k, const counted& c) { bad += (c.n != k); });
      });
      EXPECT_EQ(bad.load(), 0);
      EXPECT_GT(live_nodes(), nodes_before);
    }
    domain.barrier();
    EXPECT_EQ(domain.pending(), 0u);
  }
  EXPECT_EQ(live_nodes(), nodes_before);
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(SnapshotMap, ThrowingUpdateBuildsNothing) {
  const auto nodes_before = live_nodes();
  {
    epoch_domain domain;
    {
      polymap::snapshot_map<> m(domain);
      for (int i = 0; i < 2000; ++i) m.insert(std::to_string(i), i);
      const auto v = m.version();
      EXPECT_THROW(m.update("5", [](const value*) -> value { throw conformance::boom(); }), conformance::boom);
      EXPECT_THROW(m.erase_if([](const std::string& k, const value&) {
        if (k == "77") throw conformance::boom();
        return true;
      }),
                   conformance::boom);
      EXPECT_EQ(m.version(), v);
      EXPECT_EQ(m.size(), 2000u);
    }
    domain.barrier();
  }
  EXPECT_EQ(live_nodes(), nodes_before);
}

TEST(SnapshotMap, StatsDescribeTheTrie) {
  polymap::snapshot_map<> m;
  const int n = 100000 / kScale;
  for (int i = 0; i < n; ++i) m.insert("key-" + std::to_string(i), i);
  auto s = m.stats();
  EXPECT_EQ(s.map, "snapshot_map");
  EXPECT_EQ(s.size, static_cast<std::size_t>(n));
  std::uint64_t total = 0, weighted = 0;
  for (std::size_t d = 0; d < s.probe_length_histogram.size(); ++d) {
    total += s.probe_length_histogram[d];
    weighted += s.probe_length_histogram[d] * (d + 1);
  }
  EXPECT_EQ(total, static_cast<std::uint64_t>(n));
  // An entry sits below about log32(n) + 1 branches (4 to 5 at 1e5, 3 to 4 at
  // 2.5e4), so a lookup visits that many nodes plus the leaf; the few pairs
  // that share 30+ hash bits sit deeper.
  const double mean = static_cast<double>(weighted) / static_cast<double>(total);
  const double expect = std::log(static_cast<double>(n)) / std::log(32.0) + 1.7;
  EXPECT_GT(mean, expect - 0.7);
  EXPECT_LT(mean, expect + 0.7);
  EXPECT_LE(s.probe_length_histogram.size(), 10u);
  EXPECT_GT(s.bytes, static_cast<std::size_t>(n) * sizeof(value));
}

// The read index (detail/read_index.hpp) answers most lookups from a flat copy
// shared by many versions, with per-slot version stamps. Every held snapshot
// must still read exactly its own version through every path the index has:
// built-in keys, keys appended after the build, a key's successor value, keys
// in trie mode (changed twice, erased), re-inserted keys, absent keys, and
// rebuilds (the index filling up, too many keys in trie mode, clear()).
TEST(SnapshotMap, EveryHeldVersionReadsItsOwnContentsThroughTheIndex) {
  using map_t = polymap::snapshot_map<int, int>;
  using ref_t = std::map<int, int>;
  map_t m;
  ref_t ref;
  std::mt19937 rng(2026);
  const int key_space = 400;  // small: keys change many times between rebuilds
  std::vector<std::pair<map_t::snapshot_type, ref_t>> held;
  auto check = [&](const auto& reader, const ref_t& want, const char* what) {
    for (int k = -5; k < key_space + 40; ++k) {
      const auto it = want.find(k);
      const auto got = reader.find(k);
      ASSERT_EQ(got.has_value(), it != want.end()) << what << ": key " << k;
      if (got) {
        ASSERT_EQ(*got, it->second) << what << ": key " << k;
      }
      ASSERT_EQ(reader.contains(k), it != want.end()) << what << ": key " << k;
    }
  };
  const int ops = 6000 / kScale;
  for (int i = 0; i < ops; ++i) {
    // Mostly keys inside the key space; now and then a burst of new keys
    // beyond it, so the index fills and is rebuilt larger.
    const int k = (i % 700 < 40) ? key_space + static_cast<int>(rng() % 40) : static_cast<int>(rng() % key_space);
    const int v = static_cast<int>(rng() % 1000);
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
        m.insert_or_assign(k, v);
        ref[k] = v;
        break;
      case 3:
        if (m.insert(k, v)) ref.emplace(k, v);
        break;
      case 4:
      case 5:
        m.erase(k);
        ref.erase(k);
        break;
      case 6:
        ref[k] = m.update(k, [&](const int* cur) { return cur ? *cur + 1 : v; });
        break;
      case 7: {
        const auto it = ref.find(k);
        if (it != ref.end() && m.compare_exchange(k, it->second, v)) it->second = v;
        break;
      }
      case 8: {
        map_t::batch b;
        for (int j = 0; j < 5; ++j) {
          const int bk = static_cast<int>(rng() % key_space);
          if (rng() % 3 == 0) {
            b.erase(bk);
            ref.erase(bk);
          } else {
            b.insert_or_assign(bk, j);
            ref[bk] = j;
          }
        }
        m.apply(b);
        break;
      }
      default:
        if (i % 2000 == 1999) {
          m.clear();
          ref.clear();
        } else if (i % 500 == 499) {
          const int mod = 3 + static_cast<int>(rng() % 5);
          m.erase_if([&](int key, int) { return key % mod == 0; });
          std::erase_if(ref, [&](const auto& e) { return e.first % mod == 0; });
        }
    }
    if (rng() % 50 == 0) {
      if (held.size() >= 10) held.erase(held.begin() + static_cast<std::ptrdiff_t>(rng() % held.size()));
      held.emplace_back(m.snapshot(), ref);
    }
    if (i % 150 == 0) {
      check(m, ref, "map");
      for (auto& [snap, want] : held) {
        check(snap, want, "held snapshot");
        if (testing::Test::HasFatalFailure()) return;
      }
    }
    if (testing::Test::HasFatalFailure()) return;
  }
  for (auto& [snap, want] : held) check(snap, want, "held snapshot at the end");
  // The index was rebuilt along the way (stats().growths counts rebuilds), so
  // the snapshots above spanned several indexes, each serving many versions.
  EXPECT_GT(m.stats().growths, 3u);
  EXPECT_LT(m.stats().growths, static_cast<std::uint64_t>(ops / 20));
}

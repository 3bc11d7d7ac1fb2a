// The per-process hash seed (detail/hash.hpp, SEED): hashers carry the seed
// they were built with; keys crafted offline against one seed collide under
// it and spread under another; POLYMAP_HASH_SEED fixes it; the reclamation
// backlog of a stalled reader is visible in stats().
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <latch>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "polymap/concurrent_map.hpp"
#include "polymap/detail/hash.hpp"
#include "polymap/snapshot_map.hpp"

namespace {

// Restores the process seed after a test changes it.
struct seed_scope {
  std::uint64_t saved = polymap::hash_seed();
  explicit seed_scope(std::uint64_t s) { polymap::set_hash_seed(s); }
  ~seed_scope() { polymap::set_hash_seed(saved); }
};

std::size_t longest_probe(const polymap::stats_t& s) {
  return s.probe_length_histogram.size();
}

}  // namespace

TEST(HashSeed, HashersKeepTheSeedTheyWereBuiltWith) {
  polymap::hash<std::string> a, b;
  {
    seed_scope scope(a.seed ^ 0x5bd1e995u);
    polymap::hash<std::string> c;
    polymap::hash<std::uint64_t> ci;
    EXPECT_NE(c.seed, a.seed);
    EXPECT_NE(c("user:1062"), a("user:1062"));
    EXPECT_NE(ci(42), polymap::hash<std::uint64_t>{.seed = a.seed}(42));
  }
  EXPECT_EQ(a("user:1062"), b("user:1062"));
  EXPECT_EQ(polymap::hash<std::string>{}("x"), a("x"));  // seed restored
  // Transparent: every string-like spelling hashes alike under one seed.
  EXPECT_EQ(a(std::string("abc")), a(std::string_view("abc")));
}

TEST(HashSeed, EnvironmentFixesTheSeed) {
  ASSERT_EQ(::setenv("POLYMAP_HASH_SEED", "0x1234abcd", 1), 0);
  EXPECT_EQ(polymap::detail::initial_hash_seed(), 0x1234abcdu);
  ASSERT_EQ(::setenv("POLYMAP_HASH_SEED", "77", 1), 0);
  EXPECT_EQ(polymap::detail::initial_hash_seed(), 77u);
  ASSERT_EQ(::setenv("POLYMAP_HASH_SEED", "not-a-number", 1), 0);
  const auto a = polymap::detail::initial_hash_seed(), b = polymap::detail::initial_hash_seed();
  EXPECT_NE(a, b) << "an invalid POLYMAP_HASH_SEED must fall back to a random seed";
  ::unsetenv("POLYMAP_HASH_SEED");
}

// The attack the seed defends against: keys crafted offline (here, against
// seed s0) to share the low bits that pick a concurrent_map's home group.
TEST(HashSeed, KeysCraftedForOneSeedSpreadUnderAnother) {
  constexpr std::uint64_t s0 = 0x0123456789abcdefull, s1 = 0xfedcba9876543210ull;
  constexpr std::size_t kKeys = 600;
  constexpr std::uint64_t kMask = (1u << 12) - 1;
  const polymap::hash<std::string> h0{.seed = s0};
  std::vector<std::string> crafted;
  const std::uint64_t target = h0("seed") & kMask;
  for (std::uint64_t i = 0; crafted.size() < kKeys; ++i) {
    std::string k = "user:" + std::to_string(i);
    if ((h0(k) & kMask) == target) crafted.push_back(std::move(k));
  }
  std::size_t under_s0 = 0, under_s1 = 0;
  {
    seed_scope scope(s0);
    polymap::concurrent_map<std::string, polymap::value> m;
    for (const auto& k : crafted) ASSERT_TRUE(m.insert(k, polymap::value(std::int64_t{1})));
    under_s0 = longest_probe(m.stats());
  }
  {
    seed_scope scope(s1);
    polymap::concurrent_map<std::string, polymap::value> m;
    for (const auto& k : crafted) ASSERT_TRUE(m.insert(k, polymap::value(std::int64_t{1})));
    for (const auto& k : crafted) ASSERT_TRUE(m.contains(k));
    under_s1 = longest_probe(m.stats());
  }
  // Under s0 the 600 keys share one home group: ~40 groups probed for the
  // last of them. Under s1 they are ordinary keys.
  EXPECT_GE(under_s0, 20u) << "the crafted keys should collide under the seed they were crafted for";
  EXPECT_LE(under_s1, 8u) << "keys crafted for another seed must not collide";
}

// A read-side callback that blocks holds back reclamation for the whole
// domain; stats() shows the backlog growing, and draining once it returns.
TEST(ReclaimBacklog, StalledVisitShowsInStats) {
  polymap::concurrent_map<std::string, polymap::value> m;
  m.insert("blocker", polymap::value(std::int64_t{0}));
  std::latch inside(1), release(1);
  std::thread reader([&] {
    m.visit("blocker", [&](const polymap::value&) {
      inside.count_down();
      release.wait();
    });
  });
  inside.wait();
  const auto before = m.stats().retired_pending;
  const std::string payload(64, 'x');  // heap payloads: overwriting retires the old one
  // Keys past inline_string_key's 32 bytes: each erase retires a key block,
  // whose bytes the stats count, whichever string policy the map has (with
  // inline_string_traits a short key lives in its slot and has no block).
  const auto key = [](int i) { return std::string(40, 'k') + std::to_string(i % 50); };
  for (int i = 0; i < 2000; ++i) m.insert_or_assign(key(i), polymap::value(payload));
  for (int i = 0; i < 2000; ++i) m.erase(key(i)), m.insert(key(i), polymap::value(payload));
  const auto during = m.stats();
  EXPECT_GT(during.retired_pending, before + 100) << "overwrites during a stalled read must show as a backlog";
  EXPECT_GT(during.retired_pending_bytes, 0u);
  release.count_down();
  reader.join();
  polymap::detail::epoch_domain::global().barrier();
  EXPECT_LT(m.stats().retired_pending, during.retired_pending);
}

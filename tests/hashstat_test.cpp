// hashstat: the value type does not change a table's statistics for the same
// key set; the identity hash on sequential keys does.
#include "../tools/polymap/hashstat.hpp"

#include <gtest/gtest.h>

#include <string>

namespace hs = polymap::hashstat;

namespace {

constexpr std::size_t kN = 8000;  // small enough for the sanitizer builds
// The Boost row that trusts the identity costs O(n^2): keep it smaller.
constexpr std::size_t kQuadraticN = 3000;
constexpr std::uint64_t kSeed = 42;

void expect_same_distribution(const hs::row& a, const hs::row& b) {
  EXPECT_TRUE(a.available) << a.note;
  EXPECT_TRUE(a.same_distribution(b)) << a.table << " / " << a.hash << " / " << a.keys << ": "
                                      << hs::render_table({a, b});
}

}  // namespace

TEST(Hashstat, ValueTypeDoesNotChangeAnyTable) {
  for (auto kp : {hs::key_pattern::sequential, hs::key_pattern::random}) {
    const auto keys = hs::make_keys(kp, kN, kSeed);
    for (auto h : {hs::hash_choice::identity, hs::hash_choice::mixer}) {
      expect_same_distribution(hs::measure_polymap(keys, kp, hs::value_mix::int64_only, h),
                               hs::measure_polymap(keys, kp, hs::value_mix::mixed, h));
      expect_same_distribution(hs::measure_boost(keys, kp, hs::value_mix::int64_only, h),
                               hs::measure_boost(keys, kp, hs::value_mix::mixed, h));
      expect_same_distribution(hs::measure_std(keys, kp, hs::value_mix::int64_only, h),
                               hs::measure_std(keys, kp, hs::value_mix::mixed, h));
    }
  }
}

TEST(Hashstat, MixedValuesReallyAreMixed) {
  EXPECT_TRUE(hs::make_value(hs::value_mix::mixed, 0).is<std::int64_t>());
  EXPECT_TRUE(hs::make_value(hs::value_mix::mixed, 1).is<std::string>());
  EXPECT_TRUE(hs::make_value(hs::value_mix::mixed, 2).is<hs::kib_struct>());
  EXPECT_TRUE(hs::make_value(hs::value_mix::int64_only, 2).is<std::int64_t>());
  EXPECT_EQ(sizeof(hs::kib_struct), 1024u);
}

TEST(Hashstat, IdentityHashOnSequentialKeysDiffersFromTheMixer) {
  const auto kp = hs::key_pattern::sequential;
  const auto keys = hs::make_keys(kp, kN, kSeed);
  const auto v = hs::value_mix::int64_only;
  // polymap's table: home group from the low bits, tag from the top 7 bits.
  // Sequential keys under the identity have a zero top byte: every tag is
  // equal, so most lookups compare keys that merely share the tag.
  const auto pid = hs::measure_polymap(keys, kp, v, hs::hash_choice::identity);
  const auto pmx = hs::measure_polymap(keys, kp, v, hs::hash_choice::mixer);
  EXPECT_GT(*pid.tag_collision_rate, 0.5);
  EXPECT_LT(*pmx.tag_collision_rate, 0.1);
  EXPECT_FALSE(pid.same_distribution(pmx));

  // Boost post-mixes a hash not marked avalanching, so std::hash is safe
  // there; trusting the identity (home group from the high bits, all zero)
  // piles every key into one probe sequence.
  const auto bid = hs::measure_boost(keys, kp, v, hs::hash_choice::identity);
  const auto btr = hs::measure_boost(hs::make_keys(kp, kQuadraticN, kSeed), kp, v, hs::hash_choice::identity_trusted);
  const auto bmx = hs::measure_boost(keys, kp, v, hs::hash_choice::mixer);
  ASSERT_TRUE(bid.available && btr.available && bmx.available) << bid.note << btr.note << bmx.note;
  EXPECT_LT(*bid.avg_probe, 1.5);
  EXPECT_LT(*bmx.avg_probe, 1.5);
  EXPECT_GT(*btr.avg_probe, 50.0);  // about n / 30: all keys on one probe sequence

  // std::unordered_map: identity mod a prime puts sequential keys one per
  // bucket, better than any mixer (which gives Poisson-distributed chains).
  const auto sid = hs::measure_std(keys, kp, v, hs::hash_choice::identity);
  const auto smx = hs::measure_std(keys, kp, v, hs::hash_choice::mixer);
  EXPECT_EQ(*sid.max_chain, 1u);
  EXPECT_DOUBLE_EQ(*sid.avg_chain, 1.0);
  EXPECT_GT(*smx.max_chain, 1u);
  EXPECT_FALSE(sid.same_distribution(smx));
}

TEST(Hashstat, ProbeStatisticsAreConsistent) {
  const auto kp = hs::key_pattern::random;
  const auto keys = hs::make_keys(kp, kN, kSeed);
  EXPECT_EQ(keys.size(), kN);
  for (const auto& r : {hs::measure_polymap(keys, kp, hs::value_mix::int64_only, hs::hash_choice::mixer),
                        hs::measure_boost(keys, kp, hs::value_mix::int64_only, hs::hash_choice::mixer)}) {
    ASSERT_TRUE(r.available) << r.note;
    EXPECT_GE(*r.avg_probe, 1.0);
    EXPECT_LE(*r.avg_probe, static_cast<double>(*r.max_probe));
    EXPECT_GE(*r.false_matches_per_lookup, *r.tag_collision_rate);
    EXPECT_GT(r.capacity, kN);
    EXPECT_FALSE(r.avg_chain);
  }
}

TEST(Hashstat, ConclusionFollowsTheNumbers) {
  hs::options o;
  o.n = 3000;
  const auto rows = hs::run(o);
  EXPECT_EQ(rows.size(), 28u);  // 2 key patterns x 2 value mixes x (2 + 3 + 2) hashes
  const std::string c = hs::conclusion(rows);
  EXPECT_NE(c.find("The value type changed nothing"), std::string::npos) << c;
  EXPECT_NE(c.find("hash function"), std::string::npos) << c;

  // A doctored row: the conclusion must report the difference, not recite a verdict.
  auto doctored = rows;
  for (auto& r : doctored) {
    if (r.table == hs::kStdTable && r.values == "mixed") r.max_chain = *r.max_chain + 1;
  }
  const std::string d = hs::conclusion(doctored);
  EXPECT_EQ(d.find("changed nothing"), std::string::npos) << d;
  EXPECT_NE(d.find("changed the statistics in"), std::string::npos) << d;
}

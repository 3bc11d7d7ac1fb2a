// concurrent_map's conformance suite for every key policy and value codec
// of its one table core (issue 15): word keys with word values, long string
// keys (40-200 bytes, key blocks whose bytes Eq must read to the end), a
// 64-byte V and a std::vector<int> V (boxed codec), a two-word key
// (boxed_key), and long keys under inline_string_key (its block path).
// concurrent_map<> with short string keys (1-8 bytes) runs it in
// concurrent_map_test, with the concurrency suite, in both string policies.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "conformance.hpp"
#include "polymap/concurrent_map.hpp"
#include "wide_types.hpp"

namespace {

using polymap::testing::big_value;
using polymap::testing::pair_key;
namespace pd = polymap::detail;

// The instantiations below hit the policies they are named for.
static_assert(
    std::is_same_v<pd::key_policy_for<std::uint64_t, std::equal_to<std::uint64_t>>, pd::word_key<std::uint64_t>>);
static_assert(std::is_same_v<pd::key_policy_for<std::string, std::equal_to<>>, pd::string_key>);
static_assert(std::is_same_v<pd::key_policy_for<std::string, std::equal_to<>, true>, pd::inline_string_key>);
static_assert(std::is_same_v<pd::key_policy_for<pair_key, std::equal_to<pair_key>>, pd::boxed_key<pair_key>>);
static_assert(std::is_same_v<pd::value_codec_for<std::uint64_t>, pd::word_codec<std::uint64_t>>);
static_assert(std::is_same_v<pd::value_codec_for<big_value>, pd::boxed_codec<big_value>>);
static_assert(std::is_same_v<pd::value_codec_for<std::vector<int>>, pd::boxed_codec<std::vector<int>>>);
static_assert(polymap::concurrent_map<std::uint64_t, std::uint64_t>::inline_slots);
static_assert(!polymap::concurrent_map<std::uint64_t, big_value>::inline_slots);

using typed_maps = ::testing::Types<
    polymap::concurrent_map<std::uint64_t, std::uint64_t>,
    conformance::setup<polymap::concurrent_map<>, conformance::long_string_keys>,
    polymap::concurrent_map<std::uint64_t, big_value>,
    conformance::setup<polymap::concurrent_map<std::string, big_value>, conformance::long_string_keys>,
    polymap::concurrent_map<pair_key, std::vector<int>>,
    conformance::setup<polymap::concurrent_map<std::string, polymap::value, polymap::hash<std::string>,
                                               polymap::key_equal<std::string>, polymap::inline_string_traits>,
                       conformance::long_string_keys>>;

struct typed_names {
  template <class T>
  static std::string GetName(int i) {
    static const char* const names[] = {"u64_u64",       "longstr_value", "u64_big64",
                                        "longstr_big64", "pair_vector",   "inline_policy_longstr_value"};
    return names[i];
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(concurrent, MapConformance, typed_maps, typed_names);

namespace {

using inline_map = polymap::concurrent_map<std::string, polymap::value, polymap::hash<std::string>,
                                           polymap::key_equal<std::string>, polymap::inline_string_traits>;

// Keys of every length from 0 to 70 (inline up to 32 bytes, key blocks past
// it), each with near misses: the same bytes but the last (which
// equal_words reads in its tail word), one byte fewer and one more.
std::vector<std::string> keys_of_every_length(int variant) {
  std::vector<std::string> keys;
  for (std::size_t n = 0; n <= 70; ++n) {
    std::string k(n, 'a');
    for (std::size_t i = 0; i < n; ++i)
      k[i] = static_cast<char>('a' + (i * 7 + static_cast<std::size_t>(variant)) % 26);
    keys.push_back(std::move(k));
  }
  return keys;
}

}  // namespace

TEST(InlineStringKeys, EveryLengthAroundTheInlineLimitAndItsNearMisses) {
  static_assert(pd::inline_string_key::kInlineBytes == 32);
  inline_map m;
  const auto keys = keys_of_every_length(0);
  for (std::size_t i = 0; i < keys.size(); ++i) ASSERT_TRUE(m.insert(keys[i], polymap::value(std::int64_t(i))));
  EXPECT_EQ(m.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = keys[i];
    ASSERT_EQ(m.find(k), polymap::value(std::int64_t(i))) << k.size();
    ASSERT_TRUE(m.contains(std::string_view(k))) << k.size();
    if (!k.empty()) {
      std::string last = k;
      last.back() = static_cast<char>(last.back() == 'z' ? 'y' : last.back() + 1);
      EXPECT_FALSE(m.contains(last)) << "last byte differs, length " << k.size();
      std::string first = k;
      first.front() = '#';
      EXPECT_FALSE(m.contains(first)) << "first byte differs, length " << k.size();
    }
    EXPECT_FALSE(m.contains(k + std::string(1, '\0'))) << "a longer key with a zero byte, length " << k.size();
  }
  // Growths move inline keys by rehashing their bytes (no stored hash):
  // thousands more keys, then every one of them and of the above again.
  std::vector<std::string> more;
  for (int i = 0; i < 20'000; ++i)
    more.push_back("k" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 40), 'x'));
  for (std::size_t i = 0; i < more.size(); ++i)
    ASSERT_TRUE(m.insert(more[i], polymap::value(std::int64_t(-1 - static_cast<std::int64_t>(i)))));
  EXPECT_GT(m.stats().growths, 3u);
  for (std::size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(m.find(keys[i]), polymap::value(std::int64_t(i))) << i;
  for (std::size_t i = 0; i < more.size(); ++i)
    ASSERT_EQ(m.find(more[i]), polymap::value(std::int64_t(-1 - static_cast<std::int64_t>(i))));
  // for_each hands out the keys' bytes (a view into the slot's copy for
  // inline ones); erase, overwrite and reinsert by every length.
  std::size_t seen = 0, short_seen = 0;
  m.for_each([&](const std::string& k, const polymap::value&) {
    ++seen;
    short_seen += k.size() <= 32 && k.find_first_not_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos;
  });
  EXPECT_EQ(seen, keys.size() + more.size());
  EXPECT_EQ(short_seen, 33u);  // lengths 0-32 of `keys`, and no `more` key is only letters
  for (std::size_t i = 0; i < keys.size(); i += 2) ASSERT_TRUE(m.erase(keys[i]));
  for (std::size_t i = 1; i < keys.size(); i += 2) EXPECT_FALSE(m.insert_or_assign(keys[i], polymap::value("v")));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i % 2 == 0)
      EXPECT_FALSE(m.contains(keys[i])) << i;
    else
      EXPECT_EQ(m.find(keys[i]), polymap::value("v")) << i;
  }
  for (std::size_t i = 0; i < keys.size(); i += 2) EXPECT_TRUE(m.insert(keys[i], polymap::value(true)));
  EXPECT_EQ(m.size(), keys.size() + more.size());
}

// Only long keys own a block: stats().bytes counts the inline ones' as
// part of the table alone.
TEST(InlineStringKeys, OnlyKeysPastTheLimitHaveBlocks) {
  inline_map shorts, longs;
  for (int i = 0; i < 1000; ++i) {
    shorts.insert(std::string(32, 's'), polymap::value(std::int64_t(i)));  // one key, inserted once
    shorts.insert(fmt::format("{:032}", i), polymap::value(std::int64_t(i)));
    longs.insert(fmt::format("{:033}", i), polymap::value(std::int64_t(i)));
  }
  shorts.reserve(4096), longs.reserve(4096);
  EXPECT_EQ(shorts.size(), 1001u);
  EXPECT_EQ(longs.size(), 1000u);
  const std::size_t table = shorts.stats().bytes;
  EXPECT_EQ(longs.stats().bytes, table + 1000 * (16 + 33)) << "a 33-byte key's block: a 16-byte header and its bytes";
}

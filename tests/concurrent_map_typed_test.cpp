// concurrent_map's conformance suite for every key policy and value codec
// of its one table core (issue 15): word keys with word values, long string
// keys (40-200 bytes, key blocks whose bytes Eq must read to the end), a
// 64-byte V and a std::vector<int> V (boxed codec), a two-word key
// (boxed_key). concurrent_map<> with short string keys (1-8 bytes) runs it
// in concurrent_map_test, with the concurrency suite.
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
static_assert(std::is_same_v<pd::key_policy_for<pair_key, std::equal_to<pair_key>>, pd::boxed_key<pair_key>>);
static_assert(std::is_same_v<pd::value_codec_for<std::uint64_t>, pd::word_codec<std::uint64_t>>);
static_assert(std::is_same_v<pd::value_codec_for<big_value>, pd::boxed_codec<big_value>>);
static_assert(std::is_same_v<pd::value_codec_for<std::vector<int>>, pd::boxed_codec<std::vector<int>>>);
static_assert(polymap::concurrent_map<std::uint64_t, std::uint64_t>::inline_slots);
static_assert(!polymap::concurrent_map<std::uint64_t, big_value>::inline_slots);

using typed_maps =
    ::testing::Types<polymap::concurrent_map<std::uint64_t, std::uint64_t>,
                     conformance::setup<polymap::concurrent_map<>, conformance::long_string_keys>,
                     polymap::concurrent_map<std::uint64_t, big_value>,
                     conformance::setup<polymap::concurrent_map<std::string, big_value>, conformance::long_string_keys>,
                     polymap::concurrent_map<pair_key, std::vector<int>>>;

struct typed_names {
  template <class T>
  static std::string GetName(int i) {
    static const char* const names[] = {"u64_u64", "longstr_value", "u64_big64", "longstr_big64", "pair_vector"};
    return names[i];
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(concurrent, MapConformance, typed_maps, typed_names);

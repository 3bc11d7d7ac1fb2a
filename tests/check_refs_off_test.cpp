// With POLYMAP_CHECKED_REFS=0 (the default in release builds) a checked_ref
// is a bare pointer: no generation, no cost. The checked and unchecked
// variants live in different inline namespaces, so this translation unit and
// one built with checks do not violate the one-definition rule.
#define POLYMAP_CHECKED_REFS 0
#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <unordered_map>

#include "polymap/check/checked.hpp"

namespace check = polymap::check;

TEST(CheckedRefsOff, RefIsABarePointer) {
  static_assert(sizeof(check::checked_ref<const int>) == sizeof(const int*));
  static_assert(std::is_same_v<check::checked_ref<const int>, check::refs_off::checked_ref<const int>>);
  check::checked<std::unordered_map<std::string, int>> m;
  m.insert_or_assign("a", 1);
  auto r = m.ref("a");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.get(), 1);
  m.insert_or_assign("a", 2);  // an overwrite: not checked in this mode, and the slot is still live
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(*r, 2);
}

// A callback that calls back into the map it runs under gets a clear
// std::logic_error, never a silent deadlock (detail/reentry.hpp), whatever
// the key; the map is left as it was and stays usable.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "polymap/locked_map.hpp"
#include "polymap/snapshot_map.hpp"

using polymap::value;

namespace {

template <class M>
void expect_write_from_callback_is_refused(M& m, const char* map_name) {
  for (int i = 0; i < 2000; ++i) {
    const std::string k = "user:" + std::to_string(i);
    m.insert_or_assign(k, value(std::int64_t{i}));
    try {
      m.update(k, [&](const value* cur) {
        m.insert_or_assign("other:" + std::to_string(i), value(std::int64_t{1}));  // forbidden
        return value(*cur->template get<std::int64_t>() + 1);
      });
      ADD_FAILURE() << "no error for key " << k;
    } catch (const std::logic_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(map_name), std::string::npos) << what;
      EXPECT_NE(what.find("update"), std::string::npos) << what;
      EXPECT_NE(what.find("same map"), std::string::npos) << what;
    }
    // Unchanged: neither the update nor the write inside it happened.
    EXPECT_EQ(*m.template get<std::int64_t>(k), i);
    EXPECT_FALSE(m.contains("other:" + std::to_string(i)));
  }
  EXPECT_THROW(m.insert_or_visit("user:7", value(std::int64_t{0}), [&](value&) { m.erase("user:8"); }),
               std::logic_error);
  EXPECT_THROW(m.erase_if([&](const std::string&, const value&) { return m.erase("user:9"); }), std::logic_error);
  EXPECT_TRUE(m.contains("user:8"));
  EXPECT_TRUE(m.contains("user:9"));
  // Usable afterwards, from the same thread.
  EXPECT_TRUE(m.insert("after", value(std::int64_t{1})));
  EXPECT_EQ(m.size(), 2001u);
}

}  // namespace

TEST(Reentry, LockedMapWriteFromUpdateIsAnError) {
  polymap::locked_map<> m;
  expect_write_from_callback_is_refused(m, "locked_map");
}

TEST(Reentry, SnapshotMapWriteFromUpdateIsAnError) {
  polymap::snapshot_map<std::string, value> m;
  expect_write_from_callback_is_refused(m, "snapshot_map");
}

// locked_map's visit and for_each hold the lock shared: a write from them
// would wait for itself, and so would a read from update's callback (the
// lock is held exclusive); a read from a read callback is fine.
TEST(Reentry, LockedMapLockModes) {
  polymap::locked_map<> m;
  m.insert("a", value(std::int64_t{1}));
  EXPECT_THROW(m.visit("a", [&](const value&) { m.erase("a"); }), std::logic_error);
  EXPECT_THROW(m.for_each([&](const std::string&, const value&) { m.insert("b", value()); }), std::logic_error);
  EXPECT_THROW(m.update("a", [&](const value*) { return value(std::int64_t{m.contains("a")}); }), std::logic_error);
  std::size_t seen = 0;
  m.for_each([&](const std::string& k, const value&) { seen += m.contains(k); });
  EXPECT_TRUE(m.visit("a", [&](const value&) { seen += m.size(); }));
  EXPECT_EQ(seen, 2u);
  EXPECT_TRUE(m.contains("a"));
  EXPECT_FALSE(m.contains("b"));
}

// snapshot_map's callbacks may read the map (reads take no lock), and a
// callback of one map may write another.
TEST(Reentry, ReadsAndOtherMapsAreAllowed) {
  polymap::snapshot_map<std::string, value> m, other;
  m.insert("a", value(std::int64_t{1}));
  m.update("a", [&](const value* cur) {
    EXPECT_TRUE(m.contains("a"));
    other.insert_or_assign("seen", *cur);
    return value(std::int64_t{2});
  });
  EXPECT_EQ(*m.get<std::int64_t>("a"), 2);
  EXPECT_EQ(*other.get<std::int64_t>("seen"), 1);
  polymap::locked_map<> l1, l2;
  l1.insert("x", value(std::int64_t{1}));
  l1.update("x", [&](const value*) {
    l2.insert("y", value(std::int64_t{2}));
    return value(std::int64_t{3});
  });
  EXPECT_EQ(*l2.get<std::int64_t>("y"), 2);
}

// context: inline storage without allocation, typed keys, fork fall-through,
// merge policies, the lifetime rule, and concurrent fan-out writes.
#include "polymap/context.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "concurrency.hpp"
#include "replaced_new.hpp"

// --- a counting global operator new -------------------------------------------
// Counts allocations made by the current thread while counting is on, so that
// gtest's own allocations on other threads or outside the measured region do
// not disturb the count.
namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;

struct allocation_counter {
  allocation_counter() {
    allocations = 0;
    counting = true;
  }
  ~allocation_counter() { counting = false; }
  std::size_t count() const { return allocations; }
};

}  // namespace

void replaced_new::before_allocation() {
  if (counting) ++allocations;
}

namespace {

using polymap::context;
using polymap::merge_policy;
using polymap::value;

const polymap::key<std::int64_t> user_id{"user_id"};
const polymap::key<std::string> region{"region"};
const polymap::key<bool> cache_hit{"cache_hit"};
const polymap::key<double> budget{"budget"};

}  // namespace

TEST(Context, NoAllocationForUpToEightEntries) {
  std::size_t through_eight = 0, ninth = 0;
  {
    allocation_counter c;
    context ctx;
    for (int i = 0; i < 8; ++i) ctx.set(polymap::key<std::int64_t>{"k" + std::to_string(i)}, i);
    // Overwrites, typed reads and a fork with local writes stay inline as well.
    ctx.set(polymap::key<std::int64_t>{"k3"}, 33);
    EXPECT_EQ(ctx.get(polymap::key<std::int64_t>{"k3"}), 33);
    {
      context child = ctx.fork();
      child.set(cache_hit, true);
      EXPECT_EQ(child.get(polymap::key<std::int64_t>{"k7"}), 7);
    }
    EXPECT_TRUE(ctx.is_inline());
    through_eight = c.count();
    ctx.set(polymap::key<std::int64_t>{"k8"}, 8);  // the 9th entry
    ninth = c.count() - through_eight;
    EXPECT_FALSE(ctx.is_inline());
    EXPECT_EQ(ctx.size(), 9u);
  }
  EXPECT_EQ(through_eight, 0u) << "a context must not allocate for its first 8 entries";
  EXPECT_GE(ninth, 1u) << "the 9th entry goes to the overflow table (so the counter works)";
}

TEST(Context, TypedKeysAndStringNames) {
  context ctx;
  EXPECT_TRUE(ctx.set(user_id, 42));
  EXPECT_FALSE(ctx.set(user_id, 43));
  ctx.set(region, "eu");
  ctx.set(budget, 1.5);
  EXPECT_EQ(ctx.get(user_id), 43);
  EXPECT_EQ(ctx.get(region), std::string("eu"));
  EXPECT_EQ(ctx.get<double>("budget"), 1.5);

  ctx.set("raw", value("text"));
  auto wrong = ctx.get(polymap::key<std::int64_t>{"raw"});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.code(), polymap::errc::type_mismatch);
  EXPECT_NE(wrong.error().message().find("raw"), std::string::npos);
  EXPECT_NE(wrong.error().message().find("string"), std::string::npos);

  auto missing = ctx.get(cache_hit);
  EXPECT_EQ(missing.code(), polymap::errc::not_found);
  EXPECT_NE(missing.error().message().find("cache_hit"), std::string::npos);

  EXPECT_EQ(*ctx.find("raw"), value("text"));
  EXPECT_TRUE(ctx.erase("raw"));
  EXPECT_FALSE(ctx.erase("raw"));
  EXPECT_FALSE(ctx.contains("raw"));
  EXPECT_EQ(ctx.update(user_id, [](const std::int64_t* c) { return c ? *c + 1 : 0; }), 44);
  EXPECT_EQ(ctx.update(region, [](const std::string*) { return std::string("x"); }), std::string("x"));
  ctx.set("n", value(1.0));
  EXPECT_EQ(ctx.update(polymap::key<std::int64_t>{"n"}, [](const std::int64_t*) { return std::int64_t{1}; }).code(),
            polymap::errc::type_mismatch);
}

TEST(Context, ManyEntriesSpillAndEraseBothSides) {
  context ctx;
  for (int i = 0; i < 100; ++i) ctx.set("name-" + std::to_string(i), value(i));
  EXPECT_EQ(ctx.size(), 100u);
  for (int i = 0; i < 100; i += 2) EXPECT_TRUE(ctx.erase("name-" + std::to_string(i)));
  EXPECT_EQ(ctx.size(), 50u);
  for (int i = 0; i < 100; ++i) {
    auto v = ctx.get<std::int64_t>("name-" + std::to_string(i));
    if (i % 2)
      EXPECT_EQ(v, i);
    else
      EXPECT_EQ(v.code(), polymap::errc::not_found);
  }
  std::int64_t sum = 0;
  ctx.for_each([&](const std::string&, const value& v) { sum += *v.get<std::int64_t>(); });
  EXPECT_EQ(sum, 2500);
  ctx.clear();
  EXPECT_EQ(ctx.size(), 0u);
  EXPECT_TRUE(ctx.is_inline());
}

TEST(Context, ForkReadsFallThroughWritesStayLocal) {
  context request;
  request.set(user_id, 7);
  request.set(region, "eu");
  context stage = request.fork();
  EXPECT_EQ(stage.parent(), &request);
  EXPECT_EQ(stage.get(user_id), 7);  // falls through
  EXPECT_TRUE(stage.contains("region"));
  stage.set(region, "us");  // shadows, locally
  stage.set(cache_hit, true);
  EXPECT_EQ(stage.get(region), std::string("us"));
  EXPECT_EQ(request.get(region), std::string("eu"));
  EXPECT_FALSE(request.contains("cache_hit"));
  EXPECT_EQ(stage.size(), 2u);
  // The parent's later writes are visible through the child.
  request.set(budget, 2.5);
  EXPECT_EQ(stage.get(budget), 2.5);
  // Erase is local: the parent's value shows through again.
  EXPECT_TRUE(stage.erase("region"));
  EXPECT_EQ(stage.get(region), std::string("eu"));
  // Grandchildren read through two levels.
  context leaf = stage.fork();
  EXPECT_EQ(leaf.get(user_id), 7);
  EXPECT_EQ(leaf.get(cache_hit), true);
}

TEST(Context, SharedParentOutlivesItsOwner) {
  auto config = std::make_shared<context>();
  config->set(polymap::key<std::int64_t>{"max_conns"}, 100);
  context request = context::fork(std::shared_ptr<const context>(config));
  config.reset();  // the child keeps the snapshot alive
  EXPECT_EQ(request.get(polymap::key<std::int64_t>{"max_conns"}), 100);
  EXPECT_THROW(context::fork(std::shared_ptr<const context>()), std::invalid_argument);
}

TEST(ContextDeathTest, ParentDestroyedBeforeChildAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* parent = new context;
        context child = parent->fork();
        delete parent;  // the child still reads through it
      },
      "still read through it");
}

TEST(Context, MergeTakesChildWritesWithoutConflicts) {
  context request;
  request.set(user_id, 1);
  request.set(region, "eu");
  context stage = request.fork();
  stage.set(region, "us");  // an override of what the stage saw: not a conflict
  stage.set(cache_hit, true);
  for (auto policy : {merge_policy::fail, merge_policy::keep_parent, merge_policy::take_child}) {
    auto r = request.merge(stage, policy);
    EXPECT_TRUE(r);
    EXPECT_TRUE(r.conflicts.empty());
    EXPECT_EQ(r.applied, 2u);
    EXPECT_EQ(request.get(region), std::string("us"));
    EXPECT_EQ(request.get(cache_hit), true);
  }
}

TEST(Context, MergePoliciesOnConflict) {
  for (auto policy : {merge_policy::fail, merge_policy::keep_parent, merge_policy::take_child}) {
    context request;
    request.set(region, "eu");
    context a = request.fork();
    context b = request.fork();
    a.set(region, "us");
    a.set(user_id, 5);
    b.set(region, "ap");
    b.set(budget, 1.0);
    ASSERT_TRUE(request.merge(a, merge_policy::fail));  // first merge: no conflict
    auto r = request.merge(b, policy);                  // b's region conflicts with a's
    ASSERT_EQ(r.conflicts.size(), 1u);
    EXPECT_EQ(r.conflicts[0], "region");
    switch (policy) {
      case merge_policy::fail:
        EXPECT_FALSE(r);
        EXPECT_EQ(r.applied, 0u);
        EXPECT_EQ(request.get(region), std::string("us"));
        EXPECT_FALSE(request.contains("budget"));  // nothing written
        break;
      case merge_policy::keep_parent:
        EXPECT_TRUE(r);
        EXPECT_EQ(r.applied, 1u);
        EXPECT_EQ(request.get(region), std::string("us"));
        EXPECT_EQ(request.get(budget), 1.0);
        break;
      case merge_policy::take_child:
        EXPECT_TRUE(r);
        EXPECT_EQ(r.applied, 2u);
        EXPECT_EQ(request.get(region), std::string("ap"));
        EXPECT_EQ(request.get(budget), 1.0);
        break;
    }
  }
}

TEST(Context, EqualValuesDoNotConflictAndMergeRebases) {
  context request;
  context a = request.fork();
  context b = request.fork();
  a.set(region, "eu");
  b.set(region, "eu");
  ASSERT_TRUE(request.merge(a, merge_policy::fail));
  ASSERT_TRUE(request.merge(b, merge_policy::fail));  // same value: no conflict
  // After its merge, a's earlier write is no longer a conflict for a.
  a.set(region, "us");
  auto r = request.merge(a, merge_policy::fail);
  EXPECT_TRUE(r);
  EXPECT_EQ(request.get(region), std::string("us"));
  context stranger;
  EXPECT_THROW(stranger.merge(a, merge_policy::fail), std::invalid_argument);
}

// Fan-out: stages write distinct names and bump one shared counter into the
// same context concurrently, while readers read through forks.
TEST(Context, ConcurrentFanOutWrites) {
  context request;
  request.set(user_id, 99);
  constexpr int per = 300;
  const int n = concurrency::thread_count();
  const polymap::key<std::int64_t> counter{"counter"};
  concurrency::run_threads(n, [&](int t) {
    context view = request.fork();
    for (int i = 0; i < per; ++i) {
      request.set("t" + std::to_string(t) + "." + std::to_string(i % 20), value(static_cast<std::int64_t>(i)));
      request.update(counter, [](const std::int64_t* c) { return c ? *c + 1 : 1; });
      ASSERT_EQ(view.get(user_id), 99);
      view.set(cache_hit, i % 2 == 0);  // local to each thread's view
    }
  });
  EXPECT_EQ(request.get(counter), static_cast<std::int64_t>(n) * per);
  EXPECT_EQ(request.size(), static_cast<std::size_t>(n * 20 + 2));
  for (int t = 0; t < n; ++t) {
    for (int j = 0; j < 20; ++j) {
      // The last write of name j by thread t was i = per - 20 + j.
      EXPECT_EQ(request.get<std::int64_t>("t" + std::to_string(t) + "." + std::to_string(j)), per - 20 + j);
    }
  }
  EXPECT_FALSE(request.contains("cache_hit"));
}

// Stages fork from one request, write concurrently, and merge back concurrently.
TEST(Context, ConcurrentForkAndMerge) {
  context request;
  request.set("shared", value(0));
  const int n = concurrency::thread_count();
  std::atomic<int> conflicts{0};
  concurrency::run_threads(n, [&](int t) {
    for (int round = 0; round < 50; ++round) {
      context stage = request.fork();
      stage.set("stage" + std::to_string(t), value(round));
      stage.set("shared", value(t));  // every stage writes it: conflicts are expected
      auto r = request.merge(stage, merge_policy::take_child);
      ASSERT_TRUE(r);
      conflicts.fetch_add(static_cast<int>(r.conflicts.size()), std::memory_order_relaxed);
    }
  });
  for (int t = 0; t < n; ++t) EXPECT_EQ(request.get<std::int64_t>("stage" + std::to_string(t)), 49);
  auto shared = request.get<std::int64_t>("shared");
  ASSERT_TRUE(shared);
  EXPECT_GE(*shared, 0);
  EXPECT_LT(*shared, n);
  EXPECT_LE(conflicts.load(), n * 50);
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MapConcurrency);

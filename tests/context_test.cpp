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
#include <thread>
#include <utility>

#include <pthread.h>

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

// A merge of two child writes, one of which (`name`) conflicts: the outcome
// that each policy promises for the merge_result itself.
void expect_one_conflict_of_two(const polymap::merge_result& r, merge_policy policy, const std::string& name) {
  ASSERT_EQ(r.conflicts.size(), 1u);
  EXPECT_EQ(r.conflicts[0], name);
  EXPECT_EQ(static_cast<bool>(r), policy != merge_policy::fail);
  EXPECT_EQ(r.applied, policy == merge_policy::fail ? 0u : policy == merge_policy::keep_parent ? 1u : 2u);
}

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
  for (auto policy : {merge_policy::fail, merge_policy::keep_parent, merge_policy::take_child}) {
    context request;
    request.set(user_id, 1);
    request.set(region, "eu");
    context stage = request.fork();
    stage.set(region, "us");  // an override of what the stage saw: not a conflict
    stage.set(cache_hit, true);
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
    expect_one_conflict_of_two(r, policy, "region");
    EXPECT_EQ(request.get(region), std::string(policy == merge_policy::take_child ? "ap" : "us"));
    if (policy == merge_policy::fail)
      EXPECT_FALSE(request.contains("budget"));  // nothing written
    else
      EXPECT_EQ(request.get(budget), 1.0);
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

// Stages fork, write and merge while another thread erases and rewrites the
// parent's names (tombstones come and go with the children).
TEST(Context, ConcurrentMergesAgainstParentErases) {
  context request;
  const int n = concurrency::thread_count();
  std::atomic<bool> stop{false};
  std::thread eraser([&] {
    std::int64_t i = 0;
    while (!stop.load()) {
      request.set("shared", value(++i));
      request.erase("shared");
      request.erase("stage0");
    }
  });
  concurrency::run_threads(n, [&](int t) {
    for (int round = 0; round < 100; ++round) {
      context stage = request.fork();
      stage.set("stage" + std::to_string(t), value(round));
      stage.set("shared", value(t));
      auto r = request.merge(stage, round % 2 ? merge_policy::take_child : merge_policy::keep_parent);
      ASSERT_TRUE(r);
      ASSERT_LE(r.applied, 2u);
      stage.set("late", value(round));  // after the merge: only this is new for the next one
      auto again = request.merge(stage, merge_policy::take_child);
      ASSERT_TRUE(again);
      ASSERT_EQ(again.applied, 1u);
    }
  });
  stop.store(true);
  eraser.join();
  for (int t = 1; t < n; ++t) EXPECT_EQ(request.get<std::int64_t>("stage" + std::to_string(t)), 99);
  EXPECT_TRUE(request.contains("late"));
}

// The three merge rules of issue 20: merge looks at what the child wrote since
// its fork or last merge (versions), not at every value the child holds.
TEST(Context, MergeAgainKeepsParentRewriteOfUntouchedName) {
  for (auto policy : {merge_policy::fail, merge_policy::keep_parent, merge_policy::take_child}) {
    context request;
    context stage = request.fork();
    stage.set(region, "eu");
    stage.set(user_id, 1);
    ASSERT_TRUE(request.merge(stage, merge_policy::fail));
    request.set(region, "us");  // the parent rewrites a name the stage no longer touches
    stage.set(user_id, 2);      // the stage changes something else
    auto r = request.merge(stage, policy);
    EXPECT_TRUE(r);
    EXPECT_TRUE(r.conflicts.empty()) << "region was not written by the stage since its first merge";
    EXPECT_EQ(r.applied, 1u);
    EXPECT_EQ(request.get(region), std::string("us")) << "a merge must not revert the parent to a stale value";
    EXPECT_EQ(request.get(user_id), 2);
    // Nothing new on either side: a third merge applies nothing.
    auto again = request.merge(stage, policy);
    EXPECT_TRUE(again);
    EXPECT_EQ(again.applied, 0u);
    EXPECT_EQ(request.get(region), std::string("us"));
  }
}

TEST(Context, ParentEraseOfMergedNameStands) {
  for (auto policy : {merge_policy::fail, merge_policy::keep_parent, merge_policy::take_child}) {
    context request;
    context stage = request.fork();
    stage.set(region, "eu");
    ASSERT_TRUE(request.merge(stage, merge_policy::fail));
    ASSERT_TRUE(request.erase("region"));  // after the merge; the stage still holds its old entry
    stage.set(cache_hit, true);
    auto r = request.merge(stage, policy);
    EXPECT_TRUE(r);
    EXPECT_TRUE(r.conflicts.empty());
    EXPECT_FALSE(request.contains("region")) << "merge brought back a name the parent erased";
    EXPECT_EQ(request.get(cache_hit), true);
  }
}

TEST(Context, ParentEraseAgainstChildWriteIsAConflict) {
  for (auto policy : {merge_policy::fail, merge_policy::keep_parent, merge_policy::take_child}) {
    context request;
    request.set(region, "eu");
    context stage = request.fork();
    ASSERT_TRUE(request.erase("region"));  // after the fork
    EXPECT_FALSE(stage.contains("region"));
    stage.set(region, "us");  // the stage writes the name the parent erased
    stage.set(user_id, 3);
    auto r = request.merge(stage, policy);
    expect_one_conflict_of_two(r, policy, "region");
    if (policy == merge_policy::take_child)
      EXPECT_EQ(request.get(region), std::string("us"));
    else
      EXPECT_FALSE(request.contains("region"));  // the erase stands
    if (policy == merge_policy::fail)
      EXPECT_FALSE(request.contains("user_id"));  // nothing written
    else
      EXPECT_EQ(request.get(user_id), 3);
  }
}

TEST(Context, TombstonesReadAsAbsentAndGoWithTheChildren) {
  context request;
  for (int i = 0; i < 8; ++i) request.set("k" + std::to_string(i), value(i));
  {
    context stage = request.fork();
    EXPECT_TRUE(request.erase("k0"));
    EXPECT_FALSE(request.erase("k0"));
    EXPECT_FALSE(request.contains("k0"));
    EXPECT_EQ(request.size(), 7u);
    int seen = 0;
    request.for_each([&](const std::string& name, const value&) {
      EXPECT_NE(name, "k0");
      ++seen;
    });
    EXPECT_EQ(seen, 7);
    EXPECT_TRUE(request.set("k0", value(10)));  // new again: reuses the tombstone
    EXPECT_EQ(request.get<std::int64_t>("k0"), 10);
    request.clear();
    EXPECT_EQ(request.size(), 0u);
    EXPECT_FALSE(stage.contains("k3"));
  }
  // No child left: the next write drops the tombstones, so all 8 slots are inline again.
  for (int i = 0; i < 8; ++i) request.set("n" + std::to_string(i), value(i));
  EXPECT_TRUE(request.is_inline());
  EXPECT_EQ(request.size(), 8u);
}

// An erase in the middle of a chain hides only that level's entry.
TEST(Context, EraseInTheMiddleOfAChainFallsThrough) {
  context root;
  root.set(region, "eu");
  context mid = root.fork();
  mid.set(region, "us");
  context leaf = mid.fork();
  EXPECT_EQ(leaf.get(region), std::string("us"));
  ASSERT_TRUE(mid.erase("region"));  // a tombstone in mid (leaf is alive)
  EXPECT_EQ(leaf.get(region), std::string("eu"));
  EXPECT_EQ(mid.get(region), std::string("eu"));
}

namespace {

// Runs f on a thread with a small stack, so that a walk or release that
// recursed once per chain level would overflow it for the depths below.
void run_on_small_stack(std::size_t stack_bytes, void (*f)(void*), void* arg) {
  struct call {
    void (*f)(void*);
    void* arg;
  } c{f, arg};
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, stack_bytes), 0);
  pthread_t th;
  ASSERT_EQ(pthread_create(
                &th, &attr,
                [](void* p) -> void* {
                  auto* cc = static_cast<call*>(p);
                  cc->f(cc->arg);
                  return nullptr;
                },
                &c),
            0);
  pthread_attr_destroy(&attr);
  ASSERT_EQ(pthread_join(th, nullptr), 0);
}

}  // namespace

// A chain 50,000 deep of shared parents, read from the leaf and destroyed,
// on a 256 KiB stack: a walk or release that recursed would need more than
// 5 bytes per level, less than any call frame, so it would overflow; the
// loops make the depth (one million, or more) irrelevant to the stack.
TEST(Context, DeepForkChainReadsAndDiesWithoutRecursion) {
  constexpr int depth = 50'000;
  struct state {
    std::shared_ptr<const context> leaf;
    std::optional<value> found;
    bool contains_missing = true;
    polymap::errc missing_code{};
    std::int64_t via_get = 0;
  } s;
  {
    auto root = std::make_shared<context>();
    root->set(user_id, 42);
    std::shared_ptr<const context> cur = root;
    for (int i = 0; i < depth; ++i) {
      auto next = std::shared_ptr<context>(new context(context::fork(std::move(cur))));
      if (i == depth / 2) next->set(region, "mid");
      cur = std::move(next);
    }
    s.leaf = std::move(cur);  // the only owner of the whole chain
  }
  run_on_small_stack(
      256 * 1024,
      [](void* p) {
        auto& st = *static_cast<state*>(p);
        st.found = st.leaf->find("user_id");
        st.via_get = st.leaf->get(region) == std::string("mid") ? 1 : 0;
        st.contains_missing = st.leaf->contains("absent");
        st.missing_code = st.leaf->get(cache_hit).code();
        st.leaf.reset();  // destroys all levels
      },
      &s);
  ASSERT_TRUE(s.found);
  EXPECT_EQ(*s.found, value(42));
  EXPECT_EQ(s.via_get, 1);
  EXPECT_FALSE(s.contains_missing);
  EXPECT_EQ(s.missing_code, polymap::errc::not_found);
  EXPECT_FALSE(s.leaf);
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MapConcurrency);

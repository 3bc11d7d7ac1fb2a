// node_pool: per-thread free lists behind concurrent_map's nodes. A freed
// node is reused by the next allocation on the same thread, the list is
// bounded, and a thread's list is returned to the heap when it exits (run
// under asan, where the pool is off and every node is a heap block, and
// under tsan).
#include "polymap/detail/node_pool.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

using pool = polymap::detail::node_pool<32, 8>;

TEST(NodePool, ReusesTheLastFreedNodeOnTheSameThread) {
  void* a = pool::allocate();
  void* b = pool::allocate();
  ASSERT_NE(a, b);
  pool::deallocate(a);
#if POLYMAP_NODE_POOL
  EXPECT_EQ(pool::allocate(), a);  // LIFO: the cache-warm block comes back
#else
  a = pool::allocate();
#endif
  pool::deallocate(a);
  pool::deallocate(b);
}

TEST(NodePool, BoundedAndDrainedAtThreadExit) {
  // More frees than the list holds: the rest go to the heap (asan/lsan would
  // report a leak if either path lost a block).
  void* expected = nullptr;
  void* got = nullptr;
  std::thread t([&] {
    std::vector<void*> blocks;
    for (std::uint32_t i = 0; i < pool::kMax + 100; ++i) blocks.push_back(pool::allocate());
    for (void* p : blocks) pool::deallocate(p);
    // The list now holds kMax blocks; they are reused before the heap is asked.
    std::vector<void*> again;
    for (std::uint32_t i = 0; i < 10; ++i) again.push_back(pool::allocate());
    expected = blocks[pool::kMax - 1];  // the last block the full list took
    got = again[0];
    for (void* p : again) pool::deallocate(p);
  });
  t.join();
#if POLYMAP_NODE_POOL
  EXPECT_EQ(got, expected);
#else
  (void)got;
  (void)expected;
#endif
  // Memory freed on one thread can be allocated and freed on another.
  void* p = nullptr;
  std::thread([&] { p = pool::allocate(); }).join();
  std::thread([&] { pool::deallocate(p); }).join();
}

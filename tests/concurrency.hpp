// tests/concurrency.hpp — concurrency tests for every thread-safe map.
//
// Threads start together from a latch, use fixed seeds, and the end state is
// checked against an oracle computed from what each thread did. Run under the
// tsan and asan presets as well as the default one.
//   INSTANTIATE_TYPED_TEST_SUITE_P(my_map, MapConcurrency, ::testing::Types<my_map<>>);
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "polymap/value.hpp"

namespace concurrency {

inline int thread_count() {
  return 4;
}

// Runs body(t) on `n` threads released together.
template <class Body>
void run_threads(int n, Body body) {
  std::latch start(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
  for (auto& th : threads) th.join();
}

// A value whose payload can be checked against its key: "<key>|<n>".
inline polymap::value tagged(const std::string& k, int n) {
  return polymap::value(k + "|" + std::to_string(n));
}
inline bool is_tagged_for(const polymap::value& v, const std::string& k) {
  const auto* s = v.get_if<std::string>();
  return s && s->size() > k.size() && s->compare(0, k.size(), k) == 0 && (*s)[k.size()] == '|';
}

}  // namespace concurrency

template <class M>
class MapConcurrency : public ::testing::Test {
 protected:
  M map;
};
TYPED_TEST_SUITE_P(MapConcurrency);

TYPED_TEST_P(MapConcurrency, DisjointInsertsAllLand) {
  auto& m = this->map;
  constexpr int per = 2000;
  const int n = concurrency::thread_count();
  concurrency::run_threads(n, [&](int t) {
    for (int i = 0; i < per; ++i) {
      const std::string k = std::to_string(t) + ":" + std::to_string(i);
      ASSERT_TRUE(m.insert(k, (t * per + i) % 2 ? polymap::value(i) : polymap::value(k)));
    }
  });
  ASSERT_EQ(m.size(), static_cast<std::size_t>(n * per));
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < per; ++i) {
      const std::string k = std::to_string(t) + ":" + std::to_string(i);
      auto v = m.find(k);
      ASSERT_TRUE(v) << k;
      if ((t * per + i) % 2) {
        ASSERT_EQ(*v, polymap::value(i));
      } else {
        ASSERT_EQ(*v, polymap::value(k));
      }
    }
  }
}

TYPED_TEST_P(MapConcurrency, SameKeyInsertHasOneWinner) {
  auto& m = this->map;
  constexpr int keys = 500;
  std::atomic<int> wins{0};
  concurrency::run_threads(concurrency::thread_count(), [&](int t) {
    for (int i = 0; i < keys; ++i) {
      if (m.insert("k" + std::to_string(i), t)) wins.fetch_add(1);
    }
  });
  EXPECT_EQ(wins.load(), keys);
  EXPECT_EQ(m.size(), static_cast<std::size_t>(keys));
}

TYPED_TEST_P(MapConcurrency, UpdateCountsExactly) {
  auto& m = this->map;
  constexpr int per = 3000, keys = 3;
  const int n = concurrency::thread_count();
  concurrency::run_threads(n, [&](int t) {
    for (int i = 0; i < per; ++i) {
      m.update("c" + std::to_string((i + t) % keys),
               [](const polymap::value* cur) { return polymap::value(cur ? *cur->get<std::int64_t>() + 1 : 1); });
    }
  });
  std::int64_t total = 0;
  for (int k = 0; k < keys; ++k) total += *m.template get<std::int64_t>("c" + std::to_string(k));
  EXPECT_EQ(total, std::int64_t{n} * per);
}

TYPED_TEST_P(MapConcurrency, InsertOrVisitCountsExactly) {
  auto& m = this->map;
  constexpr int per = 3000;
  const int n = concurrency::thread_count();
  concurrency::run_threads(n, [&](int) {
    for (int i = 0; i < per; ++i) {
      m.insert_or_visit("hits", 1, [](polymap::value& v) { v = polymap::value(*v.get<std::int64_t>() + 1); });
    }
  });
  EXPECT_EQ(m.template get<std::int64_t>("hits"), std::int64_t{n} * per);
}

TYPED_TEST_P(MapConcurrency, CompareExchangeLoopCountsExactly) {
  auto& m = this->map;
  m.insert("cas", 0);
  constexpr int per = 2000;
  const int n = concurrency::thread_count();
  concurrency::run_threads(n, [&](int) {
    for (int i = 0; i < per; ++i) {
      for (;;) {
        auto cur = m.find("cas");
        if (m.compare_exchange("cas", *cur, polymap::value(*cur->template get<std::int64_t>() + 1))) break;
      }
    }
  });
  EXPECT_EQ(m.template get<std::int64_t>("cas"), std::int64_t{n} * per);
}

// Writers overwrite keys with values of changing types and sizes while readers
// check that every value they see belongs to its key and is whole.
TYPED_TEST_P(MapConcurrency, ReadersNeverSeeTornOrForeignValues) {
  auto& m = this->map;
  constexpr int keys = 64, writes = 4000;
  for (int k = 0; k < keys; ++k) m.insert("k" + std::to_string(k), concurrency::tagged("k" + std::to_string(k), 0));
  std::atomic<bool> done{false};
  std::atomic<long> bad{0}, reads{0};
  const int n = concurrency::thread_count();
  concurrency::run_threads(n, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
    if (t < n / 2) {
      for (int i = 0; i < writes; ++i) {
        const std::string k = "k" + std::to_string(rng() % keys);
        if (i % 3 == 0)
          m.insert_or_assign(k, polymap::value(concurrency::tagged(k, i).to_string() + std::string(rng() % 300, 'p')));
        else
          m.insert_or_assign(k, concurrency::tagged(k, i));
      }
      done.store(true);
    } else {
      // do-while: each reader reads at least once, even if the writers finish
      // before it is scheduled (a loaded machine), so `reads > 0` holds.
      do {
        const std::string k = "k" + std::to_string(rng() % keys);
        m.visit(k, [&](const polymap::value& v) {
          if (!concurrency::is_tagged_for(v, k)) bad.fetch_add(1);
        });
        auto v = m.find(k);
        if (!v || !concurrency::is_tagged_for(*v, k)) bad.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      } while (!done.load());
    }
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

// Inserts and erases churn a key range while other threads grow the map.
TYPED_TEST_P(MapConcurrency, ChurnWithGrowthKeepsOracle) {
  auto& m = this->map;
  const int n = concurrency::thread_count();
  constexpr int per = 3000;
  concurrency::run_threads(n, [&](int t) {
    for (int i = 0; i < per; ++i) {
      const std::string k = "t" + std::to_string(t) + "-" + std::to_string(i);
      ASSERT_TRUE(m.insert(k, i));
      if (i % 3 == 0) {
        ASSERT_TRUE(m.erase(k));
      }
      if (i % 5 == 0) {
        ASSERT_EQ(m.contains(k), i % 3 != 0);
      }
    }
  });
  std::size_t expect = 0;
  for (int i = 0; i < per; ++i) expect += (i % 3 != 0);
  EXPECT_EQ(m.size(), expect * static_cast<std::size_t>(n));
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < per; ++i) {
      ASSERT_EQ(m.contains("t" + std::to_string(t) + "-" + std::to_string(i)), i % 3 != 0);
    }
  }
}

TYPED_TEST_P(MapConcurrency, ClearWhileVisiting) {
  auto& m = this->map;
  std::atomic<bool> done{false};
  std::atomic<long> bad{0};
  concurrency::run_threads(concurrency::thread_count(), [&](int t) {
    if (t == 0) {
      for (int round = 0; round < 200; ++round) {
        for (int i = 0; i < 50; ++i)
          m.insert_or_assign("k" + std::to_string(i), concurrency::tagged("k" + std::to_string(i), round));
        m.clear();
      }
      done.store(true);
    } else {
      while (!done.load()) {
        for (int i = 0; i < 50; ++i) {
          const std::string k = "k" + std::to_string(i);
          m.visit(k, [&](const polymap::value& v) { bad += !concurrency::is_tagged_for(v, k); });
        }
        m.for_each([&](const std::string& k, const polymap::value& v) { bad += !concurrency::is_tagged_for(v, k); });
      }
    }
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(m.size(), 0u);
}

REGISTER_TYPED_TEST_SUITE_P(MapConcurrency, DisjointInsertsAllLand, SameKeyInsertHasOneWinner, UpdateCountsExactly,
                            InsertOrVisitCountsExactly, CompareExchangeLoopCountsExactly,
                            ReadersNeverSeeTornOrForeignValues, ChurnWithGrowthKeepsOracle, ClearWhileVisiting);

// Scenario 1, "article": the article's reproduction. 50 threads, started
// together from a latch, each write one key into one shared map: even ids an
// int64, odd ids a 2048-byte buffer. Then every key is checked for presence,
// type and payload.
//
// Against std::unordered_map<std::string, std::any> with no lock this is a
// data race: undefined behaviour. Each round runs in a child process so that a
// crash is contained and counted. Against polymap::locked_map the same program
// is correct and must show no anomaly in any round.
#include <any>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "lab.hpp"
#include "polymap/locked_map.hpp"

namespace polymap::lab {
namespace {

constexpr int kWriters = 50;
constexpr std::size_t kBufferSize = 2048;

std::string key_of(int id) {
  return fmt::format("key-{}", id);
}
std::uint8_t fill_of(int id) {
  return static_cast<std::uint8_t>(id * 7 + 1);
}

// Runs the 50 writers; put(id) writes one key.
template <class Put>
void run_writers(Put put) {
  std::latch start(kWriters);
  std::vector<std::thread> threads;
  threads.reserve(kWriters);
  for (int id = 0; id < kWriters; ++id) {
    threads.emplace_back([&, id] {
      start.arrive_and_wait();
      put(id);
    });
  }
  for (auto& t : threads) t.join();
}

round_counts naive_round() {
  std::unordered_map<std::string, std::any> m;  // shared, unsynchronized: the article's bug
  run_writers([&](int id) {
    if (id % 2 == 0)
      m[key_of(id)] = std::int64_t{id};
    else
      m[key_of(id)] = std::vector<std::uint8_t>(kBufferSize, fill_of(id));
  });
  round_counts c;
  std::int64_t present = 0;
  for (int id = 0; id < kWriters; ++id) {
    auto it = m.find(key_of(id));
    if (it == m.end()) {
      ++c.lost;
      continue;
    }
    ++present;
    if (id % 2 == 0) {
      const auto* p = std::any_cast<std::int64_t>(&it->second);
      if (!p || *p != id) ++c.wrong;
    } else {
      const auto* p = std::any_cast<std::vector<std::uint8_t>>(&it->second);
      bool ok = p && p->size() == kBufferSize;
      if (ok) {
        for (auto b : *p) ok = ok && b == fill_of(id);
      }
      if (!ok) ++c.wrong;
    }
  }
  // A size that disagrees with what find() sees is corruption too.
  if (static_cast<std::int64_t>(m.size()) != present) ++c.wrong;
  return c;
}

round_counts locked_round() {
  polymap::locked_map<> m;
  run_writers([&](int id) {
    if (id % 2 == 0)
      m.insert_or_assign(key_of(id), std::int64_t{id});
    else
      m.insert_or_assign(key_of(id), polymap::make_bytes(kBufferSize, std::byte{fill_of(id)}));
  });
  round_counts c;
  for (int id = 0; id < kWriters; ++id) {
    auto v = m.find(key_of(id));
    if (!v) {
      ++c.lost;
      continue;
    }
    if (id % 2 == 0) {
      auto r = v->get<std::int64_t>();
      if (!r || *r != id) ++c.wrong;
    } else {
      const auto* p = v->get_if<polymap::bytes>();
      bool ok = p && p->size() == kBufferSize;
      if (ok) {
        for (auto b : *p) ok = ok && b == std::byte{fill_of(id)};
      }
      if (!ok) ++c.wrong;
    }
  }
  if (static_cast<std::int64_t>(m.size()) != kWriters) ++c.wrong;
  return c;
}

std::vector<row> run(const options& opt) {
  std::vector<row> rows;
  auto report = [&](const row& r, int done) {
    if (opt.progress && (done % 50 == 0 || done == opt.rounds)) {
      opt.progress(fmt::format("article / {}: {}/{} rounds, {} crashes, {} lost, {} wrong", r.container, done,
                               opt.rounds, r.crashes, r.lost, r.wrong));
    }
  };

  row naive;
  naive.scenario = "article";
  naive.container = "std::unordered_map<string, any> (no lock)";
  naive.rounds = opt.rounds;
  if (built_with_tsan()) {
    naive.rounds = 0;
    naive.outcome = verdict::silent_ub;
    naive.note =
        "skipped in this ThreadSanitizer build: TSan reports the race on the first round "
        "(run the default build to count crashes)";
  } else {
    for (int i = 0; i < opt.rounds; ++i) {
      round_counts c;
      if (run_contained(naive_round, c, opt.quiet_children)) {
        naive.lost += c.lost;
        naive.wrong += c.wrong;
      } else {
        ++naive.crashes;
      }
      report(naive, i + 1);
    }
    naive.outcome = naive_verdict(naive);
    naive.note = naive.outcome == verdict::silent_ub
                     ? "a clean run proves nothing: the program is a data race (undefined behaviour) that can "
                       "run silently; ThreadSanitizer reports it every time"
                     : "each round ran in a child process; a crash there is contained and counted";
  }
  rows.push_back(naive);

  row locked;
  locked.scenario = "article";
  locked.container = "polymap::locked_map";
  locked.rounds = opt.rounds;
  for (int i = 0; i < opt.rounds; ++i) {
    round_counts c = locked_round();
    locked.lost += c.lost;
    locked.wrong += c.wrong;
    report(locked, i + 1);
  }
  locked.outcome = polymap_verdict(locked);
  locked.note = locked.outcome == verdict::safe ? "all 50 entries present, right type and payload, every round"
                                                : "polymap::locked_map lost or corrupted an entry: please report";
  rows.push_back(locked);
  return rows;
}

const registrar reg{{"article", "the article's 50 writers of int64 and 2048-byte values into one map", &run}};

}  // namespace
}  // namespace polymap::lab

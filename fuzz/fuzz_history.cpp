// Concurrent fuzzing: the input becomes 2 or 3 threads' operation scripts on a
// few keys; the threads run them on one map through recorded<M>, and the
// history goes to the linearizability checker. A violation aborts with the
// minimal failing sub-history.
//
// Input: byte 0 picks the map (bit 0..1) and the thread count (bit 2); the
// rest is dealt round-robin to the threads in pairs (operation, argument).
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <thread>
#include <vector>

#include "polymap/locked_map.hpp"
#include "polymap/verify/verify.hpp"

#if __has_include("polymap/concurrent_map.hpp")
#include "polymap/concurrent_map.hpp"
#define POLYMAP_FUZZ_HAS_CONCURRENT_MAP 1
#endif
#if __has_include("polymap/snapshot_map.hpp")
#include "polymap/snapshot_map.hpp"
#define POLYMAP_FUZZ_HAS_SNAPSHOT_MAP 1
#endif

namespace {

using polymap::value;
namespace pv = polymap::verify;

value value_of(std::uint8_t b) {
  switch (b % 4) {
    case 0:
    case 1:
      return value(static_cast<std::int64_t>(b >> 2) % 5);
    case 2:
      return value(std::string((b >> 2) % 3, 's'));
    default:
      return value((b >> 2) % 2 == 0);
  }
}

template <class R>
void run_script(R& r, const std::vector<std::uint8_t>& s) {
  static const std::string keys[4] = {"a", "b", "", std::string(20, 'L')};
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    const std::uint8_t op = s[i], arg = s[i + 1];
    const std::string& k = keys[(op >> 4) % 4];
    switch (op % 8) {
      case 0:
        r.insert(k, value_of(arg));
        break;
      case 1:
        r.insert_or_assign(k, value_of(arg));
        break;
      case 2:
        r.find(k);
        break;
      case 3:
        r.contains(k);
        break;
      case 4:
        r.erase(k);
        break;
      case 5:
        r.add(k, value(static_cast<std::int64_t>(arg % 3)));
        break;
      case 6: {
        auto cur = r.find(k);
        r.compare_exchange(k, (arg & 1) && cur ? *cur : value_of(arg), value_of(arg >> 1));
        break;
      }
      default:
        r.update(k, [v = value_of(arg)](const value*) { return v; });
        break;
    }
  }
}

template <class M>
void run(const std::uint8_t* data, std::size_t size, std::size_t threads, const char* name) {
  std::vector<std::vector<std::uint8_t>> scripts(threads);
  for (std::size_t i = 0; i + 1 < size; i += 2) {
    auto& s = scripts[(i / 2) % threads];
    s.push_back(data[i]);
    s.push_back(data[i + 1]);
  }
  M map;
  pv::recorder<std::string, value> rec(threads, size / 2 + 1);
  std::latch start(static_cast<std::ptrdiff_t>(threads));
  std::vector<std::thread> ts;
  for (std::size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      pv::recorded<M> r(map, rec.log(t));
      start.arrive_and_wait();
      run_script(r, scripts[t]);
    });
  }
  for (auto& th : ts) th.join();
  auto result = pv::check(rec.collect());
  if (!result.ok()) {
    std::fprintf(stderr, "polymap fuzz_history: %s is not linearizable:\n%s", name, result.report().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t threads = (data[0] & 4) ? 3 : 2;
  switch (data[0] % 4) {
#ifdef POLYMAP_FUZZ_HAS_CONCURRENT_MAP
    case 1:
      run<polymap::concurrent_map<>>(data + 1, size - 1, threads, "concurrent_map");
      break;
#endif
#ifdef POLYMAP_FUZZ_HAS_SNAPSHOT_MAP
    case 2:
      run<polymap::snapshot_map<>>(data + 1, size - 1, threads, "snapshot_map");
      break;
#endif
    default:
      run<polymap::locked_map<>>(data + 1, size - 1, threads, "locked_map");
      break;
  }
#if defined(POLYMAP_FUZZ_HAS_CONCURRENT_MAP) || defined(POLYMAP_FUZZ_HAS_SNAPSHOT_MAP)
  // Free what the maps retired (see fuzz_concurrent_map.cpp).
  polymap::detail::epoch_domain::global().barrier();
#endif
  return 0;
}

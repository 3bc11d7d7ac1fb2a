// A service whose config lives in etcd: worker threads serve "requests",
// each reading the config in force from a lock-free snapshot, while an
// operator changes it with etcdctl. Every instance of the service that
// watches the same prefix takes each change, validated, whole, in order.
//
//   etcd_service [etcd://127.0.0.1:2379/app/] [SECONDS]
//
// Then, in another shell:
//   ETCDCTL_API=3 etcdctl put /app/greeting '"hello, fleet"'
//   ETCDCTL_API=3 etcdctl put /app/http/timeout_ms 250
//   ETCDCTL_API=3 etcdctl put /app/http/timeout_ms 0      # rejected: out of range
//   ETCDCTL_API=3 etcdctl txn -i                            # a and b together
// Stops after SECONDS (default: runs until killed).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <polymap/config/config_store.hpp>
#include <polymap/config/etcd_source.hpp>

namespace cfg = polymap::config;

int main(int argc, char** argv) {
  const std::string url = argc > 1 ? argv[1] : "etcd://127.0.0.1:2379/app/";
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 0;

  const cfg::config_key<std::string> greeting{"greeting", "hello", cfg::non_empty()};
  const cfg::config_key<std::int64_t> timeout_ms{"http.timeout_ms", 1000, cfg::in_range(1, 60000)};
  const cfg::config_key<std::int64_t> a{"a", 50}, b{"b", 50};  // an invariant across keys: a + b == 100

  std::unique_ptr<cfg::config_store> store;
  try {
    std::vector<std::unique_ptr<cfg::config_source>> sources;
    sources.push_back(std::make_unique<cfg::etcd_source>(url));
    store = std::make_unique<cfg::config_store>(std::move(sources), cfg::schema(greeting, timeout_ms, a, b));
  } catch (const cfg::config_error& e) {
    std::fprintf(stderr, "etcd_service: %s\n", e.what());
    return 1;
  }
  store->on_reload([](const cfg::reload_event& ev) {
    if (ev.accepted)
      std::printf("config version %llu: %zu key(s) changed\n", static_cast<unsigned long long>(ev.version),
                  ev.changed_keys.size());
    else
      std::printf("config change rejected, the last good one stays: %s\n", ev.error.c_str());
    std::fflush(stdout);
  });

  // The service: each request reads one snapshot, so the values it uses
  // belong to one config version.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> served{0}, broken{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t) {
    workers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a stop flag, ordering nothing
        auto snap = store->snapshot();
        const auto va = snap.get(a), vb = snap.get(b);
        if (!va || !vb || *va + *vb != 100) broken.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
        served.fetch_add(1, std::memory_order_relaxed);                                      // relaxed: a count
        std::this_thread::sleep_for(std::chrono::milliseconds(1));                           // the request's own work
      }
    });
  }

  const auto start = std::chrono::steady_clock::now();
  while (seconds <= 0 || std::chrono::steady_clock::now() - start < std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const auto snap = store->snapshot();
    const auto st = store->stats();
    const char* state = "?";
    for (const auto& s : st.sources) state = s.ok ? "ok" : "failing";
    std::printf("served %llu requests (a + b != 100: %llu); greeting='%s' timeout_ms=%lld; etcd revision %llu (%s)\n",
                static_cast<unsigned long long>(served.load()), static_cast<unsigned long long>(broken.load()),
                snap.get(greeting).value_or("?").c_str(), static_cast<long long>(snap.get(timeout_ms).value_or(-1)),
                static_cast<unsigned long long>(st.sources.empty() ? 0 : st.sources[0].revision), state);
    std::fflush(stdout);
  }
  stop = true;
  for (auto& w : workers) w.join();
  return broken.load() == 0 ? 0 : 1;
}

// The benchmark driver; the method is described in bench/driver.hpp.
#include "bench/driver.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <latch>
#include <memory>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "bench/adapters.hpp"
#include "bench/workload.hpp"
#include "polymap/detail/epoch.hpp"
#include "polymap/detail/inline_table.hpp"

#ifndef POLYMAP_BENCH_BUILD_TYPE
#define POLYMAP_BENCH_BUILD_TYPE "unknown"
#endif

namespace polymap::bench {
namespace {

using clock_type = std::chrono::steady_clock;

// Operations each worker has pre-generated; it walks them cyclically.
constexpr std::size_t ops_per_thread = std::size_t{1} << 18;
constexpr int poll_every = 256;  // ops between two looks at the stop flag

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Keeps the finds' results alive so the compiler cannot drop them.
std::atomic<std::uint64_t> global_sink{0};

// One map for one key type, behind a virtual interface so the driver's loops
// are written once; every timed loop is inside the adapter's instantiation.
template <class K>
class runner {
 public:
  virtual ~runner() = default;
  virtual void prefill(const std::vector<K>& keys) = 0;
  virtual double run_mixed(const std::vector<K>& keys, const std::vector<std::vector<std::uint32_t>>& ops, int threads,
                           double seconds, std::size_t total_ops) = 0;
  virtual double run_insert(const std::vector<K>& keys, int threads, double seconds, bool one_round) = 0;
  virtual double bytes_per_entry(const std::vector<K>& keys) = 0;
  virtual std::string check(const std::vector<K>& keys, const K& absent) = 0;
};

using adapters::with_thread_scope;

value value_of(std::uint64_t i) {
  return value(static_cast<std::int64_t>(i));
}

template <template <class> class Adapter, class K>
class runner_impl final : public runner<K> {
  using A = Adapter<K>;

 public:
  void prefill(const std::vector<K>& keys) override {
    map_.reset();
    map_ = std::make_unique<A>(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) map_->insert(keys[i], value_of(i));
  }

  // Mops/s of the mixed operations on the prefilled map.
  double run_mixed(const std::vector<K>& keys, const std::vector<std::vector<std::uint32_t>>& ops, int threads,
                   double seconds, std::size_t total_ops) override {
    A& map = *map_;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> done_total{0};
    std::latch ready(threads), go(1);
    const std::size_t quota = total_ops ? std::max<std::size_t>(1, total_ops / static_cast<std::size_t>(threads)) : 0;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        with_thread_scope(map, [&] {
          const auto& mine = ops[static_cast<std::size_t>(t)];
          const std::size_t len = mine.size();
          std::uint64_t sink = 0, done = 0;
          std::size_t i = 0;
          ready.count_down();
          go.wait();
          for (;;) {
            for (int j = 0; j < poll_every; ++j) {
              const std::uint32_t op = mine[i];
              if (++i == len) i = 0;
              const K& k = keys[op & ~write_bit];
              if (op & write_bit)
                map.insert_or_assign(k, value_of(op));
              else
                map.find(k, sink);
            }
            done += poll_every;
            // relaxed: a stop request; the join below orders everything else.
            if (quota ? done >= quota : stop.load(std::memory_order_relaxed)) break;
          }
          done_total.fetch_add(done, std::memory_order_relaxed);
          global_sink.fetch_add(sink, std::memory_order_relaxed);
        });
      });
    }
    ready.wait();
    const auto t0 = clock_type::now();
    go.count_down();
    if (!quota) {
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      stop.store(true, std::memory_order_relaxed);
    }
    for (auto& w : workers) w.join();
    const double elapsed = seconds_since(t0);
    return static_cast<double>(done_total.load()) / elapsed / 1e6;
  }

  // Mops/s of inserting every key into fresh maps, rounds repeated until
  // `seconds` of timed inserting (or one round).
  double run_insert(const std::vector<K>& keys, int threads, double seconds, bool one_round) override {
    map_.reset();
    double timed = 0;
    std::size_t inserted = 0;
    do {
      auto map = std::make_unique<A>(keys.size());
      std::latch ready(threads), go(1);
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
          with_thread_scope(*map, [&] {
            const std::size_t lo = keys.size() * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
            const std::size_t hi = keys.size() * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
            ready.count_down();
            go.wait();
            for (std::size_t i = lo; i < hi; ++i) map->insert(keys[i], value_of(i));
          });
        });
      }
      ready.wait();
      const auto t0 = clock_type::now();
      go.count_down();
      for (auto& w : workers) w.join();
      timed += seconds_since(t0);
      inserted += keys.size();
    } while (!one_round && timed < seconds);
    return static_cast<double>(inserted) / timed / 1e6;
  }

  double bytes_per_entry(const std::vector<K>& keys) override {
    map_.reset();
    // Frees what earlier cells retired (their maps' old tables and nodes):
    // freed during the count below they would be subtracted from this map's
    // bytes (measured: concurrent_map read 10.7 bytes/entry). What this map
    // itself retires and has not freed by the end still counts.
    polymap::detail::epoch_domain::global().barrier();
    // The spare table an earlier map's growth left (RECYCLE) would serve
    // this map's growths uncounted: measured after another concurrent_map,
    // string keys at 2M read 73.6 bytes per entry instead of 107.
    polymap::release_spare_table_memory();
    const long long before = counted_heap_bytes();
    const long long mapped_before = polymap::detail::mapped_table_bytes();
    set_heap_counting(true);
    auto map = std::make_unique<A>(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) map->insert(keys[i], value_of(i));
    set_heap_counting(false);
    // concurrent_map's tables of 1 MB or more are mappings, not heap: their
    // bytes (and the spare table it keeps for the next growth) count too.
    const long long bytes = counted_heap_bytes() - before + polymap::detail::mapped_table_bytes() - mapped_before +
                            static_cast<long long>(sizeof(A));
    set_heap_counting(true);  // count the frees too, so the counter returns to before
    map.reset();
    set_heap_counting(false);
    return static_cast<double>(bytes) / static_cast<double>(keys.size());
  }

  std::string check(const std::vector<K>& keys, const K& absent) override {
    const std::size_t n = keys.size();
    A map(n);
    std::uint64_t sink = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (!map.insert(keys[i], value_of(i))) return fmt::format("insert of a new key #{} returned false", i);
    for (std::size_t i = 0; i < n; ++i)
      if (map.insert(keys[i], value_of(0))) return fmt::format("insert of a present key #{} returned true", i);
    for (std::size_t i = 0; i < n; ++i)
      if (!map.find(keys[i], sink)) return fmt::format("find missed key #{}", i);
    if (map.find(absent, sink)) return "find of an absent key succeeded";
    for (std::size_t i = 0; i < n; i += 3) map.insert_or_assign(keys[i], value_of(i + 1));
    if (map.size() != n) return fmt::format("size {} after assigning, expected {}", map.size(), n);
    map.insert_or_assign(absent, value_of(7));
    if (!map.find(absent, sink) || map.size() != n + 1) return "insert_or_assign of a new key did not insert";
    if (A::info().concurrent) {
      // Two threads insert disjoint halves at once, then all must be there.
      A shared(n);
      std::vector<std::thread> ts;
      for (int t = 0; t < 2; ++t) {
        ts.emplace_back([&, t] {
          with_thread_scope(shared, [&] {
            for (std::size_t i = static_cast<std::size_t>(t); i < n; i += 2) shared.insert(keys[i], value_of(i));
          });
        });
      }
      for (auto& th : ts) th.join();
      if (shared.size() != n) return fmt::format("size {} after two threads inserted {} keys", shared.size(), n);
      for (std::size_t i = 0; i < n; ++i)
        if (!shared.find(keys[i], sink)) return fmt::format("key #{} lost by concurrent inserts", i);
    }
    return "";
  }

 private:
  std::unique_ptr<A> map_;
};

struct map_entry {
  map_info info;
  bool by_default = true;  // run when --maps is not given
  std::unique_ptr<runner<std::uint64_t>> (*make_u64)();
  std::unique_ptr<runner<std::string>> (*make_str)();
};

template <template <class> class Adapter>
map_entry entry(bool by_default = true) {
  return {Adapter<std::uint64_t>::info(), by_default,
          [] { return std::unique_ptr<runner<std::uint64_t>>(new runner_impl<Adapter, std::uint64_t>()); },
          [] { return std::unique_ptr<runner<std::string>>(new runner_impl<Adapter, std::string>()); }};
}

const std::vector<map_entry>& registry() {
  static const std::vector<map_entry> maps = [] {
    std::vector<map_entry> v;
    adapters::visit_adapters(
        [&]<template <class> class A>() { v.push_back(entry<A>(!adapters::opt_in<A<std::uint64_t>>())); });
    return v;
  }();
  return maps;
}

const map_entry* find_entry(const std::string& name) {
  for (const auto& e : registry())
    if (e.info.name == name) return &e;
  return nullptr;
}

std::vector<const map_entry*> selected(const matrix& m) {
  std::vector<const map_entry*> out;
  for (const auto& e : registry()) {
    const bool named = std::find(m.maps.begin(), m.maps.end(), e.info.name) != m.maps.end();
    if (m.maps.empty() ? e.by_default : named) out.push_back(&e);
  }
  return out;
}

std::vector<workload> mixed_of(const matrix& m) {
  std::vector<workload> v;
  for (auto w : m.workloads)
    if (w != workload::insert) v.push_back(w);
  return v;
}
bool has_insert(const matrix& m) {
  return std::find(m.workloads.begin(), m.workloads.end(), workload::insert) != m.workloads.end();
}
std::vector<int> threads_for(const map_entry& e, const matrix& m) {
  std::vector<int> v;
  for (int t : m.threads)
    if (e.info.concurrent || t == 1) v.push_back(t);
  return v;
}

// How much slower than the model's reference machine this one is right now
// (load included): 200,000 inserts into a std::unordered_map, timed once.
double machine_factor() {
  static const double factor = [] {
    constexpr std::size_t n = 200'000;
    std::unordered_map<std::uint64_t, std::uint64_t> m;
    const auto t0 = clock_type::now();
    for (std::size_t i = 0; i < n; ++i) m.emplace(splitmix64(i), i);
    const double per_insert = seconds_since(t0) / static_cast<double>(n);
    return std::clamp(per_insert / 1e-7, 0.5, 50.0);
  }();
  return factor;
}

// Rough cost of one insert, for the estimate only: grows with N as the table
// leaves the caches.
double per_key_seconds(key_kind k, std::size_t n) {
  const double base = k == key_kind::u64 ? 1e-7 : 2.5e-7;  // on an idle core
  const double size = 1.0 + std::max(0.0, std::log2(static_cast<double>(n) / 10'000.0)) / 4.0;
  return base * size * machine_factor();
}
double mixed_seconds(const matrix& m) {
  return m.repeats * (m.ops_per_run ? static_cast<double>(m.ops_per_run) * 1e-7 : m.seconds_per_run + 0.002);
}
double insert_seconds(const matrix& m, key_kind k, std::size_t n) {
  const double round = static_cast<double>(n) * per_key_seconds(k, n) * 1.5;
  return m.repeats * (m.ops_per_run ? round : std::max(m.seconds_per_run, round) + round * 0.5);
}
double prefill_seconds(key_kind k, std::size_t n) {
  return static_cast<double>(n) * per_key_seconds(k, n);
}

}  // namespace

// Declared in driver.hpp (bench/publish.cpp uses it too).
machine_info detect_machine() {
  machine_info mi;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      mi.cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  mi.cores = static_cast<int>(std::thread::hardware_concurrency());
  mi.compiler = fmt::format("g++ {}", __VERSION__);
#ifdef __clang__
  mi.compiler = fmt::format("clang {}", __clang_version__);
#endif
  mi.build_type = POLYMAP_BENCH_BUILD_TYPE;
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  mi.date = buf;
  mi.probe_start = probe_host();
  return mi;
}

void finish_machine(machine_info& m) {
  m.probe_end = probe_host();
}

std::string read_loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "";
  return a + " " + b + " " + c;
}

namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

matrix quick_matrix() {
  matrix m;
  m.keys = {key_kind::u64, key_kind::str};
  m.ns = {10'000};
  m.dists = {distribution::uniform};
  m.threads = {1, 2};
  m.repeats = 3;
  m.seconds_per_run = 0.06;
  return m;
}

std::vector<map_info> available_maps() {
  std::vector<map_info> v;
  for (const auto& e : registry()) v.push_back(e.info);
  return v;
}

std::vector<missing_peer> missing_peers() {
  std::vector<missing_peer> v;
#ifndef POLYMAP_BENCH_HAVE_TBB
  v.push_back({"tbb_hash_map", "tbb::concurrent_hash_map (oneTBB)", "libtbb-dev"});
#endif
#ifndef POLYMAP_BENCH_HAVE_LIBCUCKOO
  v.push_back({"cuckoo_map", "libcuckoo cuckoohash_map", "libcuckoo-dev"});
#endif
#ifndef POLYMAP_BENCH_HAVE_XENIUM
  v.push_back({"xenium_hm", "xenium harris_michael_hash_map", "libxenium-dev"});
#endif
  return v;
}

std::vector<std::string> unknown_maps(const matrix& m) {
  std::vector<std::string> v;
  for (const auto& name : m.maps)
    if (!find_entry(name)) v.push_back(name);
  return v;
}

double estimate_seconds(const matrix& m) {
  double s = 0;
  const auto maps = selected(m);
  const auto mixed = mixed_of(m);
  for (auto k : m.keys) {
    for (auto n : m.ns) {
      s += prefill_seconds(k, n);  // building the keys
      for (const auto* e : maps) {
        const auto ts = threads_for(*e, m);
        if (!mixed.empty()) {
          s += prefill_seconds(k, n);
          s += static_cast<double>(m.dists.size() * ts.size() * mixed.size()) * mixed_seconds(m);
        }
        if (has_insert(m)) s += static_cast<double>(ts.size()) * insert_seconds(m, k, n);
        if (m.memory) s += 2 * prefill_seconds(k, n);
      }
    }
  }
  return s;
}

namespace {

template <class K>
void run_keys(const matrix& m, const std::vector<K>& keys, key_kind kk, results& r, progress& p,
              clock_type::time_point start, double estimate_total, double& estimate_done,
              const std::function<void(const progress&)>& on_progress) {
  const std::size_t n = keys.size();
  const auto mixed = mixed_of(m);
  auto report = [&](const measurement* last, double estimated, std::string note) {
    estimate_done += estimated;
    if (last) ++p.done;
    p.last = last;
    p.note = std::move(note);
    p.elapsed_seconds = seconds_since(start);
    // Scale the model's remaining time by how fast it has proved so far.
    const double speed = estimate_done > 0 ? p.elapsed_seconds / estimate_done : 1.0;
    p.eta_seconds = std::max(0.0, (estimate_total - estimate_done) * speed);
    if (on_progress) on_progress(p);
  };
  // Operations depend on the distribution, workload and thread count only, so
  // every map of this (keys, N) replays the same ones.
  struct op_set {
    distribution dist;
    workload wl;
    int threads;
    std::vector<std::vector<std::uint32_t>> ops;
  };
  std::vector<op_set> op_sets;
  int max_threads = 1;
  for (int t : m.threads) max_threads = std::max(max_threads, t);
  if (!mixed.empty()) {
    for (auto d : m.dists) {
      const key_chooser choose(n, d, 42);
      for (auto w : mixed) {
        auto all = make_ops(choose, w, max_threads, ops_per_thread, 1000 + static_cast<std::uint64_t>(w));
        op_sets.push_back({d, w, max_threads, std::move(all)});
      }
    }
  }
  auto ops_for = [&](distribution d, workload w) -> const std::vector<std::vector<std::uint32_t>>& {
    for (const auto& s : op_sets)
      if (s.dist == d && s.wl == w) return s.ops;
    throw std::logic_error("no operations generated");
  };

  // Every map of this (keys, N) is built and prefilled first; then each
  // cell runs its repeats round-robin over the maps (map A, B, C, A, B,
  // C, ...), so the maps of one cell are measured seconds apart, not a whole
  // map's matrix apart: on a shared machine whose speed drifts, the ratios
  // between maps are what stays comparable. Memory: every selected map is
  // prefilled at once (at N = 2M with string keys, a few hundred MB each).
  struct live_map {
    const map_entry* e;
    std::unique_ptr<runner<K>> run;
    std::vector<int> ts;
    bool has(int t) const { return std::find(ts.begin(), ts.end(), t) != ts.end(); }
  };
  std::vector<live_map> live;
  for (const auto* e : selected(m)) {
    live_map l{e, nullptr, threads_for(*e, m)};
    if constexpr (std::is_same_v<K, std::uint64_t>)
      l.run = e->make_u64();
    else
      l.run = e->make_str();
    live.push_back(std::move(l));
  }
  // One cell: `measure(run)` once per repeat per map that runs at t threads.
  auto cell = [&](workload w, distribution d, int t, double seconds_each, auto&& measure) {
    std::vector<measurement> rows;
    std::vector<live_map*> who;
    for (auto& l : live) {
      if (!l.has(t)) continue;
      measurement row;
      row.cfg = {l.e->info.name, w, kk, n, d, t};
      rows.push_back(std::move(row));
      who.push_back(&l);
    }
    for (int rep = 0; rep < m.repeats; ++rep)
      for (std::size_t i = 0; i < who.size(); ++i) {
        // What a map's repeat retired to the epoch (old tables, values) is
        // freed here, between turns, not in the next map's timed window.
        polymap::detail::epoch_domain::global().barrier();
        rows[i].mops.push_back(measure(*who[i]->run));
      }
    for (auto& row : rows) {
      row.median = median_of(row.mops);
      r.rows.push_back(std::move(row));
      report(&r.rows.back(), seconds_each, "");
    }
  };
  if (!mixed.empty()) {
    for (auto& l : live) {
      report(nullptr, 0, fmt::format("prefilling {} with {} {} keys", l.e->info.name, n, name(kk)));
      l.run->prefill(keys);
      estimate_done += prefill_seconds(kk, n);
    }
    for (auto d : m.dists)
      for (int t : m.threads)
        for (auto w : mixed)
          cell(w, d, t, mixed_seconds(m),
               [&](runner<K>& run) { return run.run_mixed(keys, ops_for(d, w), t, m.seconds_per_run, m.ops_per_run); });
  }
  if (has_insert(m)) {
    for (int t : m.threads)
      cell(workload::insert, distribution::uniform, t, insert_seconds(m, kk, n),
           [&](runner<K>& run) { return run.run_insert(keys, t, m.seconds_per_run, m.ops_per_run != 0); });
  }
  if (m.memory) {
    for (auto& l : live) {
      r.memory.push_back({l.e->info.name, kk, n, l.run->bytes_per_entry(keys)});
      estimate_done += 2 * prefill_seconds(kk, n);
    }
  }
}

}  // namespace

results run(const matrix& m, const std::function<void(const progress&)>& on_progress) {
  if (auto bad = unknown_maps(m); !bad.empty()) throw std::invalid_argument("unknown map: " + bad.front());
  results r;
  r.machine = detect_machine();
  r.settings.repeats = m.repeats;
  r.settings.seconds_per_run = m.seconds_per_run;
  r.settings.ops_per_run = m.ops_per_run;
  r.settings.memory_method =
      "heap bytes live after one thread inserts N keys into a fresh map (no reserve), counted by a replaced global "
      "operator new (malloc_usable_size per block), plus the bytes of table mappings concurrent_map made meanwhile "
      "(its tables of 1 MB or more, and the freed table it keeps for the next growth), plus sizeof(adapter), "
      "divided by N";
  r.settings.timing_method =
      m.ops_per_run ? fmt::format(
                          "each repeat runs {} pre-generated operations split over the threads; a cell's repeats "
                          "take turns over the maps",
                          m.ops_per_run)
                    : fmt::format(
                          "each repeat runs pre-generated operations for {} s of wall time; a cell's repeats take "
                          "turns over the maps; median of {} repeats",
                          m.seconds_per_run, m.repeats);
  for (const auto* e : selected(m)) r.maps.push_back(e->info);

  progress p;
  for (const auto* e : selected(m)) {
    const std::size_t per = threads_for(*e, m).size();
    p.total += m.keys.size() * m.ns.size() * per * (m.dists.size() * mixed_of(m).size() + (has_insert(m) ? 1 : 0));
  }
  const auto start = clock_type::now();
  const double estimate_total = estimate_seconds(m);
  double estimate_done = 0;
  for (auto k : m.keys) {
    for (auto n : m.ns) {
      if (k == key_kind::u64) {
        const auto keys = make_u64_keys(n);
        estimate_done += prefill_seconds(k, n);
        run_keys(m, keys, k, r, p, start, estimate_total, estimate_done, on_progress);
      } else {
        const auto keys = make_string_keys(n);
        estimate_done += prefill_seconds(k, n);
        run_keys(m, keys, k, r, p, start, estimate_total, estimate_done, on_progress);
      }
    }
  }
  r.elapsed_seconds = seconds_since(start);
  finish_machine(r.machine);
  compute_ratios(r);
  return r;
}

std::string check_adapter(const std::string& map, key_kind keys, std::size_t n) {
  const auto* e = find_entry(map);
  if (!e) return "unknown map " + map;
  if (keys == key_kind::u64) return e->make_u64()->check(make_u64_keys(n), splitmix64(n + 12345));
  return e->make_str()->check(make_string_keys(n), std::string("absent-key-0123456789"));
}

}  // namespace polymap::bench

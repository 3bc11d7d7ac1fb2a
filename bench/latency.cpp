// `polymap bench latency`: per-operation latency while a map grows. The
// method is in bench/latency.hpp.
#include "bench/latency.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <latch>
#include <memory>
#include <stdexcept>
#include <thread>

#include <sys/resource.h>

#include <fmt/format.h>

#include "bench/adapters.hpp"
#include "bench/driver.hpp"
#include "bench/workload.hpp"
#include "polymap/concurrent_map.hpp"
#include "polymap/detail/epoch.hpp"

namespace polymap::bench::latency {

std::uint64_t histogram::upper(std::size_t i) {
  if (i < exact_limit) return i;
  const unsigned shift = static_cast<unsigned>(i >> sub_bits) - 1;
  const std::uint64_t mantissa = (i & ((std::size_t{1} << sub_bits) - 1)) + (std::uint64_t{1} << sub_bits);
  const std::uint64_t next = (mantissa + 1) << shift;
  return next == 0 ? ~std::uint64_t{0} : next - 1;  // the top bucket ends at 2^64 - 1
}

void histogram::merge(const histogram& o) {
  for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
}

std::uint64_t histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  const auto rank =
      std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_) - 1e-9)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(upper(i), max_);
  }
  return max_;
}

const char* name(phase p) {
  switch (p) {
    case phase::insert:
      return "insert";
    case phase::mixed_find:
      return "mixed_find";
    case phase::mixed_insert:
      return "mixed_insert";
    case phase::find:
      return "find";
  }
  return "?";
}

const char* title(phase p, bool reserved) {
  switch (p) {
    case phase::insert:
      return reserved ? "insert N keys into a map reserved for N (no growth)" : "insert N keys from empty";
    case phase::mixed_find:
      return reserved ? "50/50 mixed, the finds (reserved: no growth)"
                      : "50/50 mixed, the finds (table crossing a growth)";
    case phase::mixed_insert:
      return reserved ? "50/50 mixed, the inserts (reserved: no growth)"
                      : "50/50 mixed, the inserts (table crossing a growth)";
    case phase::find:
      return reserved ? "finds after the mixed phase (steady state)" : "finds after the growth (steady state)";
  }
  return "?";
}

std::vector<phase> all_phases() {
  return {phase::insert, phase::mixed_find, phase::mixed_insert, phase::find};
}

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t phase_count = 4;

// Keeps the finds' results alive so the compiler cannot drop them.
std::atomic<std::uint64_t> global_sink{0};

std::uint64_t ns_between(clock_type::time_point a, clock_type::time_point b) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

value value_of(std::uint64_t i) {
  return value(static_cast<std::int64_t>(i));
}

// A uniform index below `bound` from a counter, without division.
std::size_t pick(std::uint64_t seed, std::uint64_t i, std::size_t bound) {
  const auto r = static_cast<unsigned __int128>(splitmix64(seed ^ splitmix64(i))) * bound;
  return static_cast<std::size_t>(r >> 64);
}

// What one run of one map measured.
struct run_sample {
  std::array<histogram, phase_count> h;
  std::array<double, phase_count> seconds{};
  std::array<std::uint64_t, phase_count> ops{};
  // The phase's threads while they ran it (sched_now): involuntary context
  // switches, and nanoseconds runnable but waiting for a CPU.
  std::array<std::uint64_t, phase_count> switches{}, waited{};
  std::vector<std::string> errors;
};

// This thread's involuntary context switches so far (getrusage's
// ru_nivcsw, RUSAGE_THREAD: a preemption, or a yield that let another task
// run) and its nanoseconds spent runnable on a run queue, waiting for a CPU
// (/proc/thread-self/schedstat's second field). 0 where the kernel does not
// say.
struct sched_counts {
  std::uint64_t switches = 0, waited_ns = 0;
};
sched_counts sched_now() {
  sched_counts c;
  rusage u{};
  if (::getrusage(RUSAGE_THREAD, &u) == 0) c.switches = static_cast<std::uint64_t>(u.ru_nivcsw);
  if (std::ifstream f("/proc/thread-self/schedstat"); f) {
    std::uint64_t run = 0, wait = 0;
    if (f >> run >> wait) c.waited_ns = wait;
  }
  return c;
}

class subject {
 public:
  virtual ~subject() = default;
  virtual void run(const std::vector<std::uint64_t>& keys, const settings& s, int run_index, run_sample& out) = 0;
};

// Whether an adapter has reserve(n) (bench/adapters.hpp), for --reserve.
template <class A>
constexpr bool can_reserve = requires(A& a) {
  a.reserve(std::size_t{});
};

template <template <class> class Adapter>
class subject_impl final : public subject {
  using A = Adapter<std::uint64_t>;

 public:
  void run(const std::vector<std::uint64_t>& keys, const settings& s, int run_index, run_sample& out) override {
    const std::size_t n = keys.size(), half = n / 2;
    const int threads = s.threads;
    const std::uint64_t seed = s.seed + static_cast<std::uint64_t>(run_index) * 0x9e3779b97f4a7c15ull;
    auto slice = [&](std::size_t lo, std::size_t hi, int t) {
      const auto len = hi - lo;
      return std::make_pair(lo + len * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads),
                            lo + len * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads));
    };
    {
      // insert: from empty, every insert timed alone.
      auto map = make_map(n, s);
      std::vector<std::uint64_t> failed(static_cast<std::size_t>(threads));
      out.seconds[0] = on_threads(
          *map, threads, out.h[0], out.h[0],
          [&](int t, histogram& h, histogram&) {
            const auto [lo, hi] = slice(0, n, t);
            std::uint64_t bad = 0;
            for (std::size_t i = lo; i < hi; ++i) {
              const auto t0 = clock_type::now();
              const bool inserted = map->insert(keys[i], value_of(i));
              const auto t1 = clock_type::now();
              h.record(ns_between(t0, t1));
              bad += !inserted;
            }
            failed[static_cast<std::size_t>(t)] = bad;
          },
          &out, 0);
      out.ops[0] = n;
      check(out, "insert", failed, map->size(), n);
      map.reset();
      settle();
    }
    if (!s.mixed) return;
    auto map = make_map(n, s);
    {
      // The prefill, untimed.
      histogram unused;
      on_threads(*map, threads, unused, unused, [&](int t, histogram&, histogram&) {
        const auto [lo, hi] = slice(0, half, t);
        for (std::size_t i = lo; i < hi; ++i) map->insert(keys[i], value_of(i));
      });
    }
    {
      // mixed: a find of a present key, then an insert of a new one.
      std::vector<std::uint64_t> failed(static_cast<std::size_t>(threads));
      std::vector<std::uint64_t> missed(static_cast<std::size_t>(threads));
      const double secs = on_threads(
          *map, threads, out.h[1], out.h[2],
          [&](int t, histogram& finds, histogram& inserts) {
            const auto [lo, hi] = slice(half, n, t);
            std::uint64_t bad = 0, miss = 0, sink = 0;
            for (std::size_t i = lo; i < hi; ++i) {
              const std::size_t j = pick(seed, i, half);
              auto t0 = clock_type::now();
              const bool found = map->find(keys[j], sink);
              auto t1 = clock_type::now();
              finds.record(ns_between(t0, t1));
              t0 = clock_type::now();
              const bool inserted = map->insert(keys[i], value_of(i));
              t1 = clock_type::now();
              inserts.record(ns_between(t0, t1));
              miss += !found;
              bad += !inserted;
            }
            failed[static_cast<std::size_t>(t)] = bad;
            missed[static_cast<std::size_t>(t)] = miss;
            // relaxed: a sum nobody reads; it only keeps the finds' results used.
            global_sink.fetch_add(sink, std::memory_order_relaxed);
          },
          &out, 1);
      out.seconds[1] = out.seconds[2] = secs;
      out.switches[2] = out.switches[1];  // one phase, two kinds of rows
      out.waited[2] = out.waited[1];
      out.ops[1] = out.ops[2] = n - half;
      check(out, "mixed_insert", failed, map->size(), n);
      check_misses(out, "mixed_find", missed);
    }
    {
      // find: the grown map, steady state.
      std::vector<std::uint64_t> missed(static_cast<std::size_t>(threads));
      out.seconds[3] = on_threads(
          *map, threads, out.h[3], out.h[3],
          [&](int t, histogram& h, histogram&) {
            const auto [lo, hi] = slice(0, half, t);
            std::uint64_t miss = 0, sink = 0;
            for (std::size_t i = lo; i < hi; ++i) {
              const std::size_t j = pick(seed + 1, i, n);
              const auto t0 = clock_type::now();
              const bool found = map->find(keys[j], sink);
              const auto t1 = clock_type::now();
              h.record(ns_between(t0, t1));
              miss += !found;
            }
            missed[static_cast<std::size_t>(t)] = miss;
            global_sink.fetch_add(sink, std::memory_order_relaxed);  // relaxed: as above
          },
          &out, 3);
      out.ops[3] = half;
      check_misses(out, "find", missed);
    }
    map.reset();
    settle();
  }

 private:
  // A fresh map, reserved for n entries where the run asks it (validate()
  // lets only maps that can reserve into such a run). Untimed.
  static std::unique_ptr<A> make_map(std::size_t n, const settings& s) {
    auto map = std::make_unique<A>(n);
    if constexpr (can_reserve<A>)
      if (s.reserve) map->reserve(n);
    return map;
  }
  // Every run starts as in a fresh process: the destroyed map's memory is
  // returned before the next map starts. A peer's destructor frees its
  // array there and then; polymap's retired tables are freed by the
  // barrier, the spare kept for later growths is unmapped, and the threads
  // unmapping large tables are waited for. Without this they ran into the
  // next run: its longest insert was 5-13 ms, a writer preempted by the
  // last map's unmap (docs/concurrent_map.md, session 19).
  static void settle() {
    polymap::detail::epoch_domain::global().barrier();
    polymap::release_spare_table_memory();
    polymap::detail::wait_for_aside_unmaps();
  }
  // Runs body(t, first, second) on `threads` threads released together from a
  // latch, each with histograms of its own, merged into first and second
  // after the join (the same histogram may be passed twice). Returns the
  // wall time from the release to the last join; adds the threads'
  // involuntary context switches and run-queue waits during body to
  // out.switches[ph] and out.waited[ph] (if out is given).
  template <class Body>
  static double on_threads(A& map, int threads, histogram& first, histogram& second, Body body,
                           run_sample* out = nullptr, std::size_t ph = 0) {
    std::vector<std::unique_ptr<std::array<histogram, 2>>> hs;
    for (int t = 0; t < threads; ++t) hs.push_back(std::make_unique<std::array<histogram, 2>>());
    std::vector<sched_counts> sched(static_cast<std::size_t>(threads));
    std::latch ready(threads), go(1);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        adapters::with_thread_scope(map, [&] {
          auto& mine = *hs[static_cast<std::size_t>(t)];
          ready.count_down();
          go.wait();
          const sched_counts before = sched_now();
          body(t, mine[0], mine[1]);
          const sched_counts after = sched_now();
          sched[static_cast<std::size_t>(t)] = {after.switches - before.switches, after.waited_ns - before.waited_ns};
        });
      });
    }
    ready.wait();
    const auto t0 = clock_type::now();
    go.count_down();
    for (auto& w : workers) w.join();
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    for (auto& h : hs) {
      first.merge((*h)[0]);
      second.merge((*h)[1]);
    }
    if (out != nullptr)
      for (const auto& c : sched) {
        out->switches[ph] += c.switches;
        out->waited[ph] += c.waited_ns;
      }
    return secs;
  }

  static void check(run_sample& out, const char* what, const std::vector<std::uint64_t>& failed, std::size_t size,
                    std::size_t expected) {
    std::uint64_t bad = 0;
    for (auto f : failed) bad += f;
    if (bad) out.errors.push_back(fmt::format("{}: {} insert(s) of a new key returned false", what, bad));
    if (size != expected)
      out.errors.push_back(fmt::format("{}: size {} after the phase, expected {}", what, size, expected));
  }
  static void check_misses(run_sample& out, const char* what, const std::vector<std::uint64_t>& missed) {
    std::uint64_t m = 0;
    for (auto x : missed) m += x;
    if (m) out.errors.push_back(fmt::format("{}: {} find(s) of a present key missed", what, m));
  }
};

struct entry {
  map_info info;
  bool by_default;
  bool reserves;  // can_reserve: may run with --reserve
  std::unique_ptr<subject> (*make)();
};

// No map: the same timed loop, clock reads and value construction with no
// map call inside (find says every key is present; insert counts in a
// per-thread slot so size() is exact). Its percentiles are the floor of
// this machine under the same threads: what preemption, interrupts and the
// clock alone cost, which no map can go below.
template <class K>
class no_map {
 public:
  explicit no_map(std::size_t) {}
  bool find(const K& k, std::uint64_t& sink) {
    sink += static_cast<std::uint64_t>(k);
    return true;
  }
  bool insert(const K&, const value&) {
    // relaxed: a count read after the join (which orders it); slots spread the threads.
    slots_[slot_of_this_thread()].n.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  std::size_t size() {
    std::size_t n = 0;
    for (const auto& x : slots_) n += x.n.load(std::memory_order_relaxed);  // relaxed: after the join
    return n;
  }
  void reserve(std::size_t) noexcept {}  // nothing to size
  static map_info info() {
    return {"no_map", "no map (the machine's floor)", "the timed loop with no map call: clock reads, loop, one value",
            true};
  }

 private:
  static std::size_t slot_of_this_thread() {
    static std::atomic<std::size_t> next{0};
    // relaxed: any spread of the threads over the slots will do.
    static thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
    return mine;
  }
  static constexpr std::size_t kSlots = 64;
  struct alignas(64) slot {
    std::atomic<std::size_t> n{0};
  };
  std::array<slot, kSlots> slots_;
};

// Every map of the adapter layer; by default the concurrent maps of this
// build but the baseline-style ones (one lock, shards), the opt-in ones and
// the fixed-size xenium map, which never grows.
const std::vector<entry>& registry() {
  static const std::vector<entry> maps = [] {
    std::vector<entry> v;
    adapters::visit_adapters([&]<template <class> class Ad>() {
      const map_info info = Ad<std::uint64_t>::info();
      const bool by_default = !adapters::opt_in<Ad<std::uint64_t>>() && info.concurrent &&
                              info.name != "std_shared_mutex" && info.name != "sharded_flat" &&
                              info.name != "xenium_hm";
      v.push_back({info, by_default, can_reserve<Ad<std::uint64_t>>,
                   [] { return std::unique_ptr<subject>(new subject_impl<Ad>()); }});
    });
    v.push_back({no_map<std::uint64_t>::info(), true, can_reserve<no_map<std::uint64_t>>,
                 [] { return std::unique_ptr<subject>(new subject_impl<no_map>()); }});
    return v;
  }();
  return maps;
}

const entry* find_entry(const std::string& name) {
  for (const auto& e : registry())
    if (e.info.name == name) return &e;
  return nullptr;
}

template <class T>
T median_of(std::vector<T> v) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  if (n % 2) return v[n / 2];
  return static_cast<T>((v[n / 2 - 1] + v[n / 2]) / 2);
}

// The clock's own cost: two back-to-back reads, many times.
std::pair<std::uint64_t, std::uint64_t> clock_cost() {
  histogram h;
  for (int i = 0; i < 200'000; ++i) {
    const auto t0 = clock_type::now();
    const auto t1 = clock_type::now();
    h.record(ns_between(t0, t1));
  }
  return {h.percentile(50), h.percentile(99)};
}

std::string clock_source() {
  std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  std::string s;
  f >> s;
  return s;
}

}  // namespace

// The maps a run takes: those named, else the defaults (with --reserve, the
// defaults that can reserve).
static std::vector<std::string> maps_of(const settings& s) {
  if (!s.maps.empty()) return s.maps;
  std::vector<std::string> v;
  for (const auto& e : registry())
    if (e.by_default && (!s.reserve || e.reserves)) v.push_back(e.info.name);
  return v;
}

std::vector<std::string> default_maps() {
  return maps_of(settings{});
}

std::vector<map_info> available_maps() {
  std::vector<map_info> v;
  for (const auto& e : registry()) v.push_back(e.info);
  return v;
}

std::string validate(const settings& s) {
  if (s.n < 100 || s.n > (std::size_t{1} << 31)) return fmt::format("--n {}: give 100 to 2^31 keys", s.n);
  if (s.threads < 1 || s.threads > 256) return fmt::format("--threads {}: give 1 to 256", s.threads);
  if (static_cast<std::size_t>(s.threads) * 4 > s.n)
    return fmt::format("--n {} is too small for {} threads (at least 4 keys per thread)", s.n, s.threads);
  if (s.runs < 1 || s.runs > 1000) return fmt::format("--runs {}: give 1 to 1000", s.runs);
  for (const auto& m : s.maps) {
    const auto* e = find_entry(m);
    if (!e) {
      std::string known;
      for (const auto& i : registry()) known += " " + i.info.name;
      return fmt::format("--maps: '{}' is not in this build; available:{}", m, known);
    }
    if (!e->info.concurrent && s.threads > 1)
      return fmt::format("--maps: {} runs on one thread only (give --threads 1)", m);
    if (s.reserve && !e->reserves) return fmt::format("--reserve: {} has no reserve in this benchmark", m);
  }
  return "";
}

double estimate_seconds(const settings& s) {
  const auto maps = maps_of(s);
  double per_run = 0;
  for (const auto& m : maps) {
    // Measured here (2 vCPUs): 72 million operations of 4 maps took 69 s
    // under load, clock reads, prefill and teardown included.
    const double per_op = m == "snapshot_map" ? 1e-5 : 1.5e-6;
    const double ops = static_cast<double>(s.n) * (s.mixed ? 3.0 : 1.0);
    per_run += ops * per_op / std::min(s.threads, std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  }
  return per_run * s.runs + 0.05;
}

const row* find_row(const results& r, const std::string& map, phase p) {
  for (const auto& x : r.rows)
    if (x.map == map && x.phase == p) return &x;
  return nullptr;
}

results run(const settings& s, const std::function<void(const progress&)>& on_progress) {
  if (auto bad = validate(s); !bad.empty()) throw std::invalid_argument(bad);
  results r;
  r.machine = detect_machine();
  r.load_average = read_loadavg();
  r.config = s;
  r.config.maps = maps_of(s);
  const auto [c50, c99] = clock_cost();
  r.clock_p50_ns = c50;
  r.clock_p99_ns = c99;
  const std::string source = clock_source();
  r.clock = fmt::format("std::chrono::steady_clock::now() around each call (clock_gettime(CLOCK_MONOTONIC){})",
                        source.empty() ? "" : ", clock source " + source);
  for (const auto& m : r.config.maps) r.maps.push_back(find_entry(m)->info);

  const auto start = clock_type::now();
  const auto keys = make_u64_keys(s.n);
  const std::size_t maps = r.config.maps.size();
  // Pooled over the runs, per map and phase.
  std::vector<std::array<histogram, phase_count>> pooled(maps);
  std::vector<std::array<std::vector<std::uint64_t>, phase_count>> run_max(maps);
  std::vector<std::array<std::vector<double>, phase_count>> mops(maps);
  std::vector<std::array<std::vector<std::uint64_t>, phase_count>> switches(maps), waited(maps);
  progress p;
  p.total = maps * static_cast<std::size_t>(s.runs);
  for (int run_index = 0; run_index < s.runs; ++run_index) {
    for (std::size_t mi = 0; mi < maps; ++mi) {
      const auto& map = r.config.maps[mi];
      auto sample = std::make_unique<run_sample>();
      find_entry(map)->make()->run(keys, s, run_index, *sample);
      for (std::size_t ph = 0; ph < phase_count; ++ph) {
        if (sample->h[ph].count() == 0) continue;
        pooled[mi][ph].merge(sample->h[ph]);
        run_max[mi][ph].push_back(sample->h[ph].max());
        switches[mi][ph].push_back(sample->switches[ph]);
        waited[mi][ph].push_back(sample->waited[ph]);
        mops[mi][ph].push_back(static_cast<double>(sample->ops[ph]) / sample->seconds[ph] / 1e6);
      }
      for (const auto& e : sample->errors) r.errors.push_back(fmt::format("{} run {}: {}", map, run_index + 1, e));
      ++p.done;
      p.elapsed_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
      p.eta_seconds = p.elapsed_seconds / static_cast<double>(p.done) * static_cast<double>(p.total - p.done);
      const auto& ins = sample->h[0];
      p.line = fmt::format(
          "run {}/{} {:<15} insert p99 {} p99.99 {} max {} ({} involuntary switches, {} waited for a CPU), {:.2f} "
          "Mops/s{}",
          run_index + 1, s.runs, map, format_ns(ins.percentile(99)), format_ns(ins.percentile(99.99)),
          format_ns(ins.max()), sample->switches[0], format_ns(sample->waited[0]), mops[mi][0].back(),
          s.mixed ? fmt::format("; mixed find p99.99 {}, insert max {}", format_ns(sample->h[1].percentile(99.99)),
                                format_ns(sample->h[2].max()))
                  : std::string());
      if (on_progress) on_progress(p);
    }
  }
  for (std::size_t mi = 0; mi < maps; ++mi) {
    for (std::size_t ph = 0; ph < phase_count; ++ph) {
      const histogram& h = pooled[mi][ph];
      if (h.count() == 0) continue;
      row x;
      x.map = r.config.maps[mi];
      x.phase = all_phases()[ph];
      x.ops = h.count();
      x.p50_ns = h.percentile(50);
      x.p99_ns = h.percentile(99);
      x.p999_ns = h.percentile(99.9);
      x.p9999_ns = h.percentile(99.99);
      x.max_ns = h.max();
      x.run_max_ns = run_max[mi][ph];
      x.run_switches = switches[mi][ph];
      x.run_waited_ns = waited[mi][ph];
      x.median_run_max_ns = median_of(x.run_max_ns);
      x.mops = mops[mi][ph];
      x.median_mops = median_of(x.mops);
      r.rows.push_back(std::move(x));
    }
  }
  r.elapsed_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  finish_machine(r.machine);
  return r;
}

std::string format_ns(std::uint64_t ns) {
  const double v = static_cast<double>(ns);
  // Three significant digits ("4.49", "17.7", "100"); under 1000 in each unit.
  auto three = [](double x) { return fmt::format("{:.3g}", x); };
  if (ns < 1000) return fmt::format("{} ns", ns);
  if (ns < 1'000'000) return three(v / 1e3) + " us";
  if (ns < 1'000'000'000) return three(v / 1e6) + " ms";
  return three(v / 1e9) + " s";
}

std::string runs_with_switches(const row& x) {
  std::string out;
  for (std::size_t i = 0; i < x.run_max_ns.size(); ++i) {
    out += (out.empty() ? "" : ", ") + format_ns(x.run_max_ns[i]);
    if (i < x.run_switches.size() && i < x.run_waited_ns.size())
      out += fmt::format(" ({}, {})", x.run_switches[i], format_ns(x.run_waited_ns[i]));
  }
  return out;
}

std::string render_table(const results& r) {
  std::string out =
      "| map | phase | ops | p50 | p99 | p99.9 | p99.99 | max | max, median of runs | Mops/s, median | each run's max "
      "(involuntary switches, time waited for a CPU) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& x : r.rows)
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2f} | {} |\n", x.map, name(x.phase), x.ops,
                       format_ns(x.p50_ns), format_ns(x.p99_ns), format_ns(x.p999_ns), format_ns(x.p9999_ns),
                       format_ns(x.max_ns), format_ns(x.median_run_max_ns), x.median_mops, runs_with_switches(x));
  return out;
}

nlohmann::json to_json(const results& r) {
  nlohmann::json j;
  j["benchmark"] = "latency";
  j["schema"] = 1;
  j["machine"] = machine_json(r.machine, {{"load_average_at_start", r.load_average}});
  j["settings"] = {{"n", r.config.n},
                   {"threads", r.config.threads},
                   {"runs", r.config.runs},
                   {"maps", r.config.maps},
                   {"mixed", r.config.mixed},
                   {"reserve", r.config.reserve},
                   {"seed", r.config.seed},
                   {"clock", r.clock},
                   {"clock_overhead_ns", {{"p50", r.clock_p50_ns}, {"p99", r.clock_p99_ns}}},
                   {"histogram",
                    "log-linear (HdrHistogram-style): exact below 128 ns, then 64 buckets per power of two; a "
                    "percentile is its bucket's upper bound (at most 1/64 above the true value); max exact"},
                   {"throughput", "operations of the row's kind over the phase's wall time, clock reads included"}};
  j["maps"] = nlohmann::json::array();
  for (const auto& m : r.maps)
    j["maps"].push_back({{"name", m.name}, {"label", m.label}, {"description", m.description}});
  j["rows"] = nlohmann::json::array();
  for (const auto& x : r.rows)
    j["rows"].push_back({{"map", x.map},
                         {"phase", name(x.phase)},
                         {"ops", x.ops},
                         {"p50_ns", x.p50_ns},
                         {"p99_ns", x.p99_ns},
                         {"p99_9_ns", x.p999_ns},
                         {"p99_99_ns", x.p9999_ns},
                         {"max_ns", x.max_ns},
                         {"run_max_ns", x.run_max_ns},
                         {"median_run_max_ns", x.median_run_max_ns},
                         {"run_involuntary_switches", x.run_switches},
                         {"run_queue_wait_ns", x.run_waited_ns},
                         {"mops", x.mops},
                         {"median_mops", x.median_mops}});
  j["errors"] = r.errors;
  j["elapsed_seconds"] = r.elapsed_seconds;
  return j;
}

}  // namespace polymap::bench::latency

#include "bench/checked_overhead.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include "polymap/check/checked.hpp"
#include "polymap/check/stale.hpp"
#include "polymap/locked_map.hpp"

namespace polymap::bench {
namespace {

using clock_type = std::chrono::steady_clock;
namespace check = polymap::check;

// Makes the compiler believe v is read, in a register: the lookup and the
// load of its value cannot be dropped or hoisted out of the loop. No memory
// clobber, so nothing else in the loop is pessimized.
template <class T>
inline void sink(T v) {
  static_assert(std::is_scalar_v<T>);
  asm volatile("" : : "r"(v));
}

// A bijection on 64-bit words (splitmix64's finalizer): distinct inputs give
// distinct keys spread over the whole range.
std::uint64_t mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The calling thread's CPU time: on a machine shared with other work, time
// spent descheduled is not counted against whichever variant was running.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct probe {
  std::uint64_t key;
  std::uint64_t write;  // mixed workload: 1 for insert_or_assign, 0 for find
};

enum class workload_kind { find, contains, mixed };
constexpr workload_kind kWorkloads[] = {workload_kind::find, workload_kind::contains, workload_kind::mixed};
const char* name(workload_kind w) {
  switch (w) {
    case workload_kind::find:
      return "find";
    case workload_kind::contains:
      return "contains";
    case workload_kind::mixed:
      return "mixed90/10";
  }
  return "?";
}

// The value found for k (a hit): through the iterator of a std-like map, or
// the optional of a polymap map.
template <class Map>
inline std::uint64_t found(Map& m, std::uint64_t k) {
  if constexpr (requires { m.find(k)->second; })
    return m.find(k)->second;
  else
    return *m.find(k);
}

// The timed loop, one instantiation per map type and workload.
template <workload_kind W, class Map>
[[gnu::noinline]] double timed_ns_per_op(Map& m, const std::vector<probe>& probes, std::size_t ops) {
  const probe* p = probes.data();
  const std::size_t n = probes.size();
  std::size_t j = 0;
  const double t0 = thread_cpu_ns();
  for (std::size_t i = 0; i < ops; ++i) {
    const probe& q = p[j];
    if (++j == n) j = 0;
    if constexpr (W == workload_kind::find) {
      sink(found(m, q.key));
    } else if constexpr (W == workload_kind::contains) {
      const bool hit = m.contains(q.key);
      sink(hit);
    } else {
      if (q.write) {
        m.insert_or_assign(q.key, static_cast<std::uint64_t>(i));
      } else {
        sink(found(m, q.key));
      }
    }
  }
  const double t1 = thread_cpu_ns();
  return (t1 - t0) / static_cast<double>(ops);
}

template <class Map>
double run_one(workload_kind w, Map& m, const std::vector<probe>& probes, std::size_t ops) {
  switch (w) {
    case workload_kind::find:
      return timed_ns_per_op<workload_kind::find>(m, probes, ops);
    case workload_kind::contains:
      return timed_ns_per_op<workload_kind::contains>(m, probes, ops);
    case workload_kind::mixed:
      return timed_ns_per_op<workload_kind::mixed>(m, probes, ops);
  }
  return 0;
}

// The three maps of one container type, filled identically.
template <class M>
struct trio {
  static constexpr int variants = 3;
  static constexpr const char* names[] = {"bare", "checked<count>", "checked<validate>"};
  M bare;
  check::checked<M, check::read_check::count> counted;
  check::checked<M, check::read_check::validate> validated;

  explicit trio(const std::vector<std::uint64_t>& keys) {
    for (auto k : keys) {
      bare.insert_or_assign(k, k);
      counted.unchecked().insert_or_assign(k, k);
      validated.unchecked().insert_or_assign(k, k);
    }
  }
  double run(int variant, workload_kind w, const std::vector<probe>& probes, std::size_t ops) {
    switch (variant) {
      case 0:
        return run_one(w, bare, probes, ops);
      case 1:
        return run_one(w, counted, probes, ops);
      default:
        return run_one(w, validated, probes, ops);
    }
  }
};

// polymap::locked_map bare and under stale_checked<> (check/stale.hpp), filled
// identically.
struct stale_pair {
  using map_type = polymap::locked_map<std::uint64_t, std::uint64_t>;
  static constexpr int variants = 2;
  static constexpr const char* names[] = {"bare", "stale_checked"};
  map_type bare;
  check::stale_checked<map_type> stale;

  explicit stale_pair(const std::vector<std::uint64_t>& keys) {
    for (auto k : keys) {
      bare.insert_or_assign(k, k);
      stale.insert_or_assign(k, k);
    }
  }
  double run(int variant, workload_kind w, const std::vector<probe>& probes, std::size_t ops) {
    return variant == 0 ? run_one(w, bare, probes, ops) : run_one(w, stale, probes, ops);
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string one;
  if (f >> one) return one;
  return "unknown";
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

// One container's rows: [workload][variant]. Maps: trio<M> or stale_pair
// (variant 0 is the bare container).
template <class Maps>
void measure(const char* label, const checked_overhead_options& opt, const std::vector<std::uint64_t>& keys,
             const std::vector<probe>& probes, checked_overhead_results& out) {
  constexpr int nv = Maps::variants;
  Maps maps(keys);
  std::vector<std::vector<double>> samples(std::size(kWorkloads) * nv);
  // Warm-up: one pass over the probes, untimed.
  for (std::size_t w = 0; w < std::size(kWorkloads); ++w) {
    for (int v = 0; v < nv; ++v) (void)maps.run(v, kWorkloads[w], probes, probes.size());
  }
  for (int r = 0; r < opt.repeats; ++r) {
    for (std::size_t w = 0; w < std::size(kWorkloads); ++w) {
      for (int i = 0; i < nv; ++i) {
        const int v = (i + r) % nv;  // rotate the order: no variant always runs first
        samples[w * nv + v].push_back(maps.run(v, kWorkloads[w], probes, opt.ops));
      }
    }
  }
  for (std::size_t w = 0; w < std::size(kWorkloads); ++w) {
    const auto& bare = samples[w * nv];
    for (int v = 0; v < nv; ++v) {
      checked_overhead_row row;
      row.container = label;
      row.workload = name(kWorkloads[w]);
      row.variant = Maps::names[v];
      row.ns_per_op = samples[w * nv + v];
      row.median = median(row.ns_per_op);
      // Paired: each repeat's time over the bare time of the same repeat,
      // measured next to it, so that load on a shared machine cancels out.
      std::vector<double> ratios;
      for (std::size_t r = 0; r < bare.size(); ++r) {
        if (bare[r] > 0) ratios.push_back(row.ns_per_op[r] / bare[r]);
      }
      row.ratio = ratios.empty() ? 0 : median(ratios);
      out.rows.push_back(std::move(row));
    }
  }
}

}  // namespace

checked_overhead_results run_checked_overhead(const checked_overhead_options& opt) {
  if (opt.size == 0) throw std::invalid_argument("size must be at least 1");
  if (opt.ops == 0) throw std::invalid_argument("ops must be at least 1");
  if (opt.repeats < 3) throw std::invalid_argument("repeats must be at least 3");
  const auto start = clock_type::now();

  checked_overhead_results r;
  r.options = opt;
  r.cpu = cpu_model();
  r.cores = static_cast<int>(std::thread::hardware_concurrency());
  r.load_before = load_average();
#ifdef __clang__
  r.compiler = fmt::format("clang {}", __clang_version__);
#else
  r.compiler = fmt::format("g++ {}", __VERSION__);
#endif
#ifdef POLYMAP_BENCH_BUILD_TYPE
  r.build_type = POLYMAP_BENCH_BUILD_TYPE;
#endif
  r.checked_refs = POLYMAP_CHECKED_REFS != 0;

  std::vector<std::uint64_t> keys(opt.size);
  for (std::size_t i = 0; i < opt.size; ++i) keys[i] = mix(i + 1);

  // Probes: whole shuffles of the keys, at least 4096 entries in all.
  std::mt19937_64 rng(opt.seed);
  std::vector<probe> probes;
  const std::size_t want = std::max<std::size_t>(opt.size, 4096);
  std::vector<std::uint64_t> order = keys;
  while (probes.size() < want) {
    std::shuffle(order.begin(), order.end(), rng);
    for (auto k : order) probes.push_back({k, rng() % 10 == 0 ? 1u : 0u});
  }

  measure<trio<std::unordered_map<std::uint64_t, std::uint64_t>>>("std::unordered_map", opt, keys, probes, r);
  measure<trio<boost::unordered_flat_map<std::uint64_t, std::uint64_t>>>("boost::unordered_flat_map", opt, keys, probes,
                                                                         r);
  measure<stale_pair>("polymap::locked_map", opt, keys, probes, r);
  r.load_after = load_average();
  r.elapsed_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return r;
}

std::string render_checked_overhead_table(const checked_overhead_results& r) {
  std::string out = fmt::format(
      "checked<> overhead, one thread: N={} uint64 keys (all hits), {} ops per run, median of {} runs\n"
      "{} ({} hardware threads, load average {} before, {} after); {}; {} build; checked refs {}\n"
      "ratio: the median over the runs of (this run / the bare run next to it)\n\n",
      r.options.size, r.options.ops, r.options.repeats, r.cpu, r.cores, r.load_before, r.load_after, r.compiler,
      r.build_type.empty() ? "unknown" : r.build_type, r.checked_refs ? "on" : "off");
  std::size_t wc = std::string_view("container").size(), ww = std::string_view("workload").size(),
              wv = std::string_view("variant").size();
  for (const auto& row : r.rows) {
    wc = std::max(wc, row.container.size());
    ww = std::max(ww, row.workload.size());
    wv = std::max(wv, row.variant.size());
  }
  out += fmt::format("| {:<{}} | {:<{}} | {:<{}} | {:>8} | {:>6} | {:>15} |\n", "container", wc, "workload", ww,
                     "variant", wv, "ns/op", "ratio", "runs min-max");
  out +=
      fmt::format("|{:-<{}}|{:-<{}}|{:-<{}}|{:-<10}|{:-<8}|{:-<17}|\n", "", wc + 2, "", ww + 2, "", wv + 2, "", "", "");
  for (const auto& row : r.rows) {
    const auto [lo, hi] = std::minmax_element(row.ns_per_op.begin(), row.ns_per_op.end());
    out += fmt::format("| {:<{}} | {:<{}} | {:<{}} | {:>8.2f} | {:>6.3f} | {:>15} |\n", row.container, wc, row.workload,
                       ww, row.variant, wv, row.median, row.ratio,
                       row.ns_per_op.empty() ? std::string("-") : fmt::format("{:.2f}-{:.2f}", *lo, *hi));
  }
  out += fmt::format("\ntarget: ratio <= {:.2f} for checked<>, <= {:.2f} for stale_checked<> (issue 18)\n",
                     checked_overhead_target, stale_checked_overhead_target);
  for (const char* variant : {"checked<count>", "checked<validate>", "stale_checked"}) {
    const double target =
        std::string_view(variant) == "stale_checked" ? stale_checked_overhead_target : checked_overhead_target;
    int met = 0, total = 0;
    double worst = 0;
    for (const auto& row : r.rows) {
      if (row.variant != variant) continue;
      ++total;
      met += row.ratio <= target;
      worst = std::max(worst, row.ratio);
    }
    out += fmt::format("  {:<17}: met in {}/{} rows (worst ratio {:.3f})\n", variant, met, total, worst);
  }
  return out;
}

nlohmann::json to_json(const checked_overhead_results& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : r.rows) {
    rows.push_back({{"container", row.container},
                    {"workload", row.workload},
                    {"variant", row.variant},
                    {"ns_per_op", row.ns_per_op},
                    {"median_ns_per_op", row.median},
                    {"ratio", row.ratio},
                    {"ratio_method", "median of per-run ratios to the adjacent bare run"}});
  }
  return {{"benchmark", "checked_overhead"},
          {"settings",
           {{"size", r.options.size},
            {"ops", r.options.ops},
            {"repeats", r.options.repeats},
            {"seed", r.options.seed},
            {"checked_refs", r.checked_refs}}},
          {"machine",
           {{"cpu", r.cpu},
            {"hardware_threads", r.cores},
            {"load_average_before", r.load_before},
            {"load_average_after", r.load_after},
            {"compiler", r.compiler},
            {"build_type", r.build_type}}},
          {"target_ratio", checked_overhead_target},
          {"target_ratio_stale_checked", stale_checked_overhead_target},
          {"elapsed_seconds", r.elapsed_seconds},
          {"rows", rows}};
}

}  // namespace polymap::bench

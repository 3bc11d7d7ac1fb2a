// The read-while-publishing benchmark and the write-latency measurement; the
// method is described in bench/publish.hpp.
#include "bench/publish.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <latch>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "bench/driver.hpp"
#include "bench/workload.hpp"
#include "polymap/concurrent_map.hpp"
#include "polymap/locked_map.hpp"
#include "polymap/snapshot_map.hpp"
#include "polymap/value.hpp"

namespace polymap::bench::publish {
namespace {

using clock_type = std::chrono::steady_clock;

constexpr std::size_t ops_per_reader = std::size_t{1} << 18;  // pre-generated key indices per reader
constexpr int poll_every = 256;                               // finds between looks at the stop flag
constexpr std::uint64_t check_every = 1024;                   // finds between two snapshot batch checks
constexpr std::size_t max_checked_keys = 16;                  // batch keys one check reads
constexpr std::size_t prefill_chunk = std::size_t{1} << 16;   // keys per prefill step (one apply)
constexpr std::uint64_t index_mask = 0xffff'ffffull;
constexpr std::size_t max_size = std::size_t{1} << 30;

// Keeps the finds' results alive so the compiler cannot drop them.
std::atomic<std::uint64_t> global_sink{0};

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::uint64_t word_of(std::uint64_t round, std::size_t index) {
  return (round << 32) | static_cast<std::uint64_t>(index);
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest rank: the smallest value with at least q of the values at or below it.
double quantile_of(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

// How a value word is stored in V and read back.
template <class V>
struct codec;
template <>
struct codec<std::uint64_t> {
  static std::uint64_t make(std::uint64_t w) { return w; }
  static std::uint64_t word(const std::uint64_t& v) { return v; }
};
template <>
struct codec<value> {
  // Rounds stay far below 2^31, so every word fits an int64.
  static value make(std::uint64_t w) { return value(static_cast<std::int64_t>(w)); }
  static std::uint64_t word(const value& v) {
    const auto* p = v.get_if<std::int64_t>();
    return p ? static_cast<std::uint64_t>(*p) : ~std::uint64_t{0};  // a non-int64 is a bad value
  }
};

template <class M>
inline constexpr bool is_snapshot = false;
template <class V>
inline constexpr bool is_snapshot<polymap::snapshot_map<std::uint64_t, V>> = true;

using key_list = std::vector<std::uint64_t>;
using op_lists = std::vector<std::vector<std::uint32_t>>;

// One map, behind a virtual interface so the orchestration is written once;
// every timed loop is inside the map's own instantiation.
class subject {
 public:
  virtual ~subject() = default;
  // Builds a fresh map holding every key at round 0; tick(i) after each chunk.
  virtual void prefill(const key_list& keys, const std::function<void(std::size_t)>& tick) = 0;
  virtual sample run(const key_list& keys, const op_lists& ops, int readers, bool writer, const settings& s) = 0;
  // Nanoseconds of each timed insert_or_assign of keys[picks[i]].
  virtual std::vector<double> write_latency(const key_list& keys, const std::vector<std::uint32_t>& picks,
                                            std::size_t warmup) = 0;
  virtual void drop() = 0;
};

template <class Map, class V>
class subject_impl final : public subject {
  using C = codec<V>;

 public:
  void prefill(const key_list& keys, const std::function<void(std::size_t)>& tick) override {
    map_.reset();
    map_ = std::make_unique<Map>();
    next_round_ = 1;
    for (std::size_t lo = 0; lo < keys.size(); lo += prefill_chunk) {
      const std::size_t hi = std::min(keys.size(), lo + prefill_chunk);
      if constexpr (is_snapshot<Map>) {
        typename Map::batch b;
        for (std::size_t i = lo; i < hi; ++i) b.insert_or_assign(keys[i], C::make(word_of(0, i)));
        map_->apply(b);
      } else {
        for (std::size_t i = lo; i < hi; ++i) map_->insert(keys[i], C::make(word_of(0, i)));
      }
      if (tick) tick(hi);
    }
  }

  sample run(const key_list& keys, const op_lists& ops, int readers, bool writer, const settings& s) override {
    Map& map = *map_;
    const std::size_t n = keys.size();
    const std::size_t batch = s.batch;
    const bool verify = is_snapshot<Map> && s.verify && batch > 1 && writer;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> latest_round{0};  // the round being or last written in this run; 0: none yet
    std::latch ready(readers + (writer ? 1 : 0)), go(1);
    clock_type::time_point t0;  // written before go opens; read after it

    struct reader_out {
      std::uint64_t ops = 0, hits = 0, bad = 0, checks = 0, violations = 0;
      double seconds = 0;
    };
    std::vector<reader_out> outs(static_cast<std::size_t>(readers));
    std::vector<double> round_us;
    std::uint64_t publishes = 0, missed = 0;

    auto check_batch = [&](reader_out& out) {
      if constexpr (is_snapshot<Map>) {
        // relaxed: only picks a recent key; the snapshot decides what is seen.
        const std::uint64_t latest = latest_round.load(std::memory_order_relaxed);
        if (latest == 0) return;
        const auto snap = map.snapshot();
        const std::size_t first = static_cast<std::size_t>(((latest - 1) * batch) % n);
        ++out.checks;
        const auto v = snap.find(keys[first]);
        if (!v || (C::word(*v) & index_mask) != first) {
          ++out.violations;
          return;
        }
        const std::uint64_t r = C::word(*v) >> 32;
        if (r == 0) return;
        const std::size_t start = static_cast<std::size_t>(((r - 1) * batch) % n);
        const std::size_t count = std::min(batch, max_checked_keys);
        for (std::size_t m = 0; m < count; ++m) {
          const std::size_t j = batch <= max_checked_keys ? m : m * batch / max_checked_keys;
          const std::size_t idx = (start + j) % n;
          const auto u = snap.find(keys[idx]);
          if (!u || (C::word(*u) & index_mask) != idx || (C::word(*u) >> 32) < r) {
            ++out.violations;
            return;
          }
        }
      } else {
        (void)out;
      }
    };

    std::vector<std::thread> threads;
    for (int t = 0; t < readers; ++t) {
      threads.emplace_back([&, t] {
        const auto& mine = ops[static_cast<std::size_t>(t)];
        const std::size_t len = mine.size();
        reader_out& out = outs[static_cast<std::size_t>(t)];
        std::uint64_t sink = 0, done = 0, hits = 0, bad = 0;
        std::size_t i = 0;
        ready.count_down();
        go.wait();
        for (;;) {
          for (int j = 0; j < poll_every; ++j) {
            const std::uint32_t idx = mine[i];
            if (++i == len) i = 0;
            if (const auto v = map.find(keys[idx])) {
              ++hits;
              const std::uint64_t w = C::word(*v);
              sink += w;
              bad += (w & index_mask) != idx ? 1 : 0;
            }
          }
          done += poll_every;
          if (verify && done % check_every == 0) check_batch(out);
          // relaxed: a stop request; the join orders everything else.
          if (stop.load(std::memory_order_relaxed)) break;
        }
        out.seconds = seconds_between(t0, clock_type::now());
        out.ops = done;
        out.hits = hits;
        out.bad = bad;
        global_sink.fetch_add(sink, std::memory_order_relaxed);
      });
    }
    if (writer) {
      threads.emplace_back([&] {
        const auto period = std::chrono::microseconds(s.period_us);
        round_us.reserve(static_cast<std::size_t>(s.duration * 1e6 / static_cast<double>(s.period_us)) + 16);
        ready.count_down();
        go.wait();
        for (std::uint64_t slot = 1;;) {
          std::this_thread::sleep_until(t0 + static_cast<std::int64_t>(slot) * period);
          if (stop.load(std::memory_order_relaxed)) break;  // relaxed: as the readers'
          const std::uint64_t r = next_round_++;
          // Announced before it is written, so that readers check the round
          // in progress: a torn publish shows up there, not in finished ones.
          latest_round.store(r, std::memory_order_relaxed);  // relaxed: see check_batch
          const auto w0 = clock_type::now();
          write_round(map, keys, r, batch);
          const auto w1 = clock_type::now();
          round_us.push_back(seconds_between(w0, w1) * 1e6);
          ++publishes;
          // The next slot still ahead; any passed meanwhile are missed.
          const auto passed = static_cast<std::uint64_t>((w1 - t0) / period);
          const std::uint64_t next = std::max(slot + 1, passed + 1);
          missed += next - slot - 1;
          slot = next;
        }
      });
    }
    ready.wait();
    t0 = clock_type::now();
    go.count_down();
    std::this_thread::sleep_for(std::chrono::duration<double>(s.duration));
    const auto t_stop = clock_type::now();
    stop.store(true, std::memory_order_relaxed);
    for (auto& th : threads) th.join();

    sample out;
    const double window = seconds_between(t0, t_stop);
    out.window_seconds = window;
    for (const auto& o : outs) {
      const double mops = o.seconds > 0 ? static_cast<double>(o.ops) / o.seconds / 1e6 : 0;
      out.reader_mops.push_back(mops);
      out.mops += mops;
      out.seconds = std::max(out.seconds, o.seconds);
      out.ops += o.ops;
      out.hits += o.hits;
      out.bad_values += o.bad;
      out.checks += o.checks;
      out.violations += o.violations;
    }
    if (writer) {
      out.publishes = publishes;
      out.scheduled = static_cast<std::uint64_t>(window * 1e6 / static_cast<double>(s.period_us));
      out.missed_slots = missed;
      out.publish_us_median = median_of(round_us);
      out.publish_us_p99 = quantile_of(round_us, 0.99);
    }
    return out;
  }

  std::vector<double> write_latency(const key_list& keys, const std::vector<std::uint32_t>& picks,
                                    std::size_t warmup) override {
    Map& map = *map_;
    for (std::size_t i = 0; i < warmup; ++i) {
      const std::uint32_t idx = picks[i % picks.size()];
      map.insert_or_assign(keys[idx], C::make(word_of(next_round_++, idx)));
    }
    std::vector<double> ns;
    ns.reserve(picks.size());
    for (const std::uint32_t idx : picks) {
      V v = C::make(word_of(next_round_++, idx));
      const auto a = clock_type::now();
      map.insert_or_assign(keys[idx], std::move(v));
      const auto b = clock_type::now();
      ns.push_back(std::chrono::duration<double, std::nano>(b - a).count());
    }
    return ns;
  }

  void drop() override { map_.reset(); }

 private:
  static void write_round(Map& map, const key_list& keys, std::uint64_t r, std::size_t batch) {
    const std::size_t n = keys.size();
    const std::size_t start = static_cast<std::size_t>(((r - 1) * batch) % n);
    if constexpr (is_snapshot<Map>) {
      typename Map::batch b;
      for (std::size_t j = 0; j < batch; ++j) {
        const std::size_t idx = (start + j) % n;
        b.insert_or_assign(keys[idx], C::make(word_of(r, idx)));
      }
      map.apply(b);  // one publish for the whole round
    } else {
      for (std::size_t j = 0; j < batch; ++j) {
        const std::size_t idx = (start + j) % n;
        map.insert_or_assign(keys[idx], C::make(word_of(r, idx)));
      }
    }
  }

  std::unique_ptr<Map> map_;
  std::uint64_t next_round_ = 1;  // the writer's next round; only one thread writes at a time
};

template <class V>
std::unique_ptr<subject> make_subject_for(const std::string& map) {
  if (map == "snapshot_map") return std::make_unique<subject_impl<polymap::snapshot_map<std::uint64_t, V>, V>>();
  if (map == "concurrent_map") return std::make_unique<subject_impl<polymap::concurrent_map<std::uint64_t, V>, V>>();
  if (map == "locked_map") return std::make_unique<subject_impl<polymap::locked_map<std::uint64_t, V>, V>>();
  throw std::invalid_argument("bench publish: unknown map " + map);
}

std::unique_ptr<subject> make_subject(const std::string& map, value_kind v) {
  return v == value_kind::u64 ? make_subject_for<std::uint64_t>(map) : make_subject_for<value>(map);
}

// Rough per-key prefill cost and per-write cost on an idle core, for the
// estimate only.
double prefill_cost(const std::string& map, std::size_t n) {
  return static_cast<double>(n) * (map == "snapshot_map" ? 1.5e-6 : 2e-7);
}
double write_cost(const std::string& map) {
  return map == "snapshot_map" ? 1e-5 : 5e-7;
}

std::vector<std::string> selected(const settings& s) {
  if (s.maps.empty()) return map_names();
  // Table order, whatever order they were given in.
  std::vector<std::string> v;
  for (const auto& m : map_names())
    if (std::find(s.maps.begin(), s.maps.end(), m) != s.maps.end()) v.push_back(m);
  return v;
}

std::string fmt_mops(double x) {
  return x >= 100 ? fmt::format("{:.0f}", x) : x >= 10 ? fmt::format("{:.1f}", x) : fmt::format("{:.2f}", x);
}
std::string fmt_us(double x) {
  return x >= 100 ? fmt::format("{:.0f}", x) : x >= 10 ? fmt::format("{:.1f}", x) : fmt::format("{:.2f}", x);
}
std::string fmt_ratio(const std::optional<double>& r) {
  return r ? fmt::format("{:.2f}x", *r) : "-";
}

}  // namespace

const char* name(value_kind v) {
  return v == value_kind::u64 ? "u64" : "value";
}

std::optional<value_kind> parse_value_kind(const std::string& s) {
  if (s == "u64" || s == "uint64") return value_kind::u64;
  if (s == "value") return value_kind::value;
  return std::nullopt;
}

std::vector<std::string> map_names() {
  return {"snapshot_map", "concurrent_map", "locked_map"};
}

std::string validate(const settings& s) {
  if (s.size < 1 || s.size > max_size) return fmt::format("--size must be 1 to {} (got {})", max_size, s.size);
  if (s.readers.empty()) return "--readers needs at least one reader count";
  for (int r : s.readers)
    if (r < 1 || r > 256) return fmt::format("--readers: each reader count must be 1 to 256 (got {})", r);
  if (!(s.duration > 0) || s.duration > 600)
    return fmt::format("--duration must be more than 0 and at most 600 seconds (got {})", s.duration);
  if (s.period_us < 1 || s.period_us > 10'000'000)
    return fmt::format("--period-us must be 1 to 10000000 microseconds (got {})", s.period_us);
  if (s.repeats < 1 || s.repeats > 1000) return fmt::format("--repeats must be 1 to 1000 (got {})", s.repeats);
  if (s.batch < 1 || s.batch > s.size)
    return fmt::format("--batch must be 1 to --size ({}) keys per publish (got {})", s.size, s.batch);
  for (const auto& m : s.maps) {
    const auto known = map_names();
    if (std::find(known.begin(), known.end(), m) == known.end())
      return fmt::format("--maps: unknown map '{}' (known: snapshot_map, concurrent_map, locked_map)", m);
  }
  if (s.values.empty()) return "--values needs at least one of u64, value";
  if (!s.throughput && !s.latency) return "--no-throughput and --no-latency together leave nothing to run";
  if (s.latency) {
    if (s.latency_sizes.empty()) return "--latency-sizes needs at least one size";
    for (auto n : s.latency_sizes)
      if (n < 1 || n > max_size) return fmt::format("--latency-sizes: each size must be 1 to {} (got {})", max_size, n);
    if (s.latency_writes < 1 || s.latency_writes > 100'000'000)
      return fmt::format("--latency-writes must be 1 to 100000000 (got {})", s.latency_writes);
  }
  return "";
}

double estimate_seconds(const settings& s) {
  const auto maps = selected(s);
  const double v = static_cast<double>(s.values.size());
  double t = 0;
  if (s.throughput) {
    for (const auto& m : maps) t += v * prefill_cost(m, s.size);
    t += v * static_cast<double>(s.repeats) * static_cast<double>(s.readers.size()) * 2 *
         static_cast<double>(maps.size()) * (s.duration + 0.005);
  }
  if (s.latency)
    for (auto n : s.latency_sizes)
      for (const auto& m : maps)
        t += v *
             (prefill_cost(m, n) + static_cast<double>(s.latency_writes) * 1.1 * write_cost(m) * (n > 100'000 ? 3 : 1));
  return t;
}

results run(const settings& s, const std::function<void(const progress&)>& on_progress) {
  const std::string bad = validate(s);
  if (!bad.empty()) throw std::invalid_argument("bench publish: " + bad);
  results r;
  r.machine = detect_machine();
  r.load_average = read_loadavg();
  r.config = s;
  const auto maps = selected(s);
  const auto start = clock_type::now();

  progress p;
  if (s.throughput)
    p.total += s.values.size() * static_cast<std::size_t>(s.repeats) * s.readers.size() * 2 * maps.size();
  if (s.latency) p.total += s.values.size() * s.latency_sizes.size() * maps.size();
  const double estimate_total = estimate_seconds(s);
  double estimate_done = 0;
  auto report = [&](std::string line, double estimated, bool step) {
    estimate_done += estimated;
    if (step) ++p.done;
    p.line = std::move(line);
    p.elapsed_seconds = seconds_between(start, clock_type::now());
    // Scale the model's remaining time by how fast it has proved so far.
    const double speed = estimate_done > 0 ? p.elapsed_seconds / estimate_done : 1.0;
    p.eta_seconds = std::max(0.0, (estimate_total - estimate_done) * speed);
    if (on_progress) on_progress(p);
  };
  // Prefills of large maps say how far they are (about every half second).
  auto prefill = [&](subject& subj, const std::string& map, const key_list& keys) {
    const auto t = clock_type::now();
    const bool chatty = keys.size() >= 200'000;
    double credited = 0;
    auto last = t;
    subj.prefill(keys, [&](std::size_t done) {
      // At most a line every half second, and the last one.
      const auto now = clock_type::now();
      if (!chatty || (done < keys.size() && seconds_between(last, now) < 0.5)) return;
      last = now;
      const double part = prefill_cost(map, done) - credited;
      credited += part;
      report(fmt::format("prefilling {} with {} keys: {}/{} ({:.1f} s)", map, keys.size(), done, keys.size(),
                         seconds_between(t, clock_type::now())),
             part, false);
    });
    const double secs = seconds_between(t, clock_type::now());
    estimate_done += prefill_cost(map, keys.size()) - credited;
    return secs;
  };

  if (s.throughput) {
    const key_list keys = make_u64_keys(s.size);
    const int max_readers = *std::max_element(s.readers.begin(), s.readers.end());
    // The same key choices for every map: per reader, uniform over N.
    op_lists ops(static_cast<std::size_t>(max_readers));
    for (int t = 0; t < max_readers; ++t) {
      std::mt19937_64 rng(splitmix64(s.seed + static_cast<std::uint64_t>(t) * 7919));
      std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(s.size - 1));
      auto& v = ops[static_cast<std::size_t>(t)];
      v.resize(ops_per_reader);
      for (auto& x : v) x = pick(rng);
    }
    for (const auto vk : s.values) {
      std::vector<std::unique_ptr<subject>> subjects;
      for (const auto& m : maps) {
        subjects.push_back(make_subject(m, vk));
        const double secs = prefill(*subjects.back(), m, keys);
        report(fmt::format("prefilled {} ({} values) with {} keys in {:.2f} s", m, name(vk), s.size, secs), 0, false);
      }
      const std::size_t first_cell = r.cells.size();
      auto cell_index = [&](std::size_t ri, bool writer, std::size_t mi) {
        return first_cell + (mi * s.readers.size() + ri) * 2 + (writer ? 1 : 0);
      };
      for (std::size_t mi = 0; mi < maps.size(); ++mi)
        for (int rd : s.readers)
          for (bool w : {false, true}) {
            cell c;
            c.map = maps[mi];
            c.values = vk;
            c.readers = rd;
            c.writer = w;
            r.cells.push_back(std::move(c));
          }
      for (int rep = 0; rep < s.repeats; ++rep)
        for (std::size_t ri = 0; ri < s.readers.size(); ++ri)
          for (bool w : {false, true})
            for (std::size_t mi = 0; mi < maps.size(); ++mi) {
              cell& c = r.cells[cell_index(ri, w, mi)];
              sample smp = subjects[mi]->run(keys, ops, c.readers, w, s);
              std::string pub;
              if (w) pub = fmt::format(", {}/{} publishes", smp.publishes, smp.scheduled);
              const std::string line =
                  fmt::format("{} {} readers={} writer={} repeat {}/{}: {} Mops/s{}", c.map, name(vk), c.readers,
                              w ? "on" : "off", rep + 1, s.repeats, fmt_mops(smp.mops), pub);
              c.samples.push_back(std::move(smp));
              report(line, s.duration + 0.005, true);
            }
      for (auto& subj : subjects) subj->drop();
    }
  }

  if (s.latency) {
    for (const auto vk : s.values) {
      for (const std::size_t n : s.latency_sizes) {
        const key_list keys = make_u64_keys(n);
        std::mt19937_64 rng(splitmix64(s.seed ^ 0x1a7e9c11ull ^ n));
        std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(n - 1));
        std::vector<std::uint32_t> picks(s.latency_writes);
        for (auto& x : picks) x = pick(rng);
        for (const auto& m : maps) {
          auto subj = make_subject(m, vk);
          latency_row row;
          row.map = m;
          row.values = vk;
          row.n = n;
          row.writes = s.latency_writes;
          row.prefill_seconds = prefill(*subj, m, keys);
          const auto ns = subj->write_latency(keys, picks, std::max<std::size_t>(1, s.latency_writes / 10));
          subj->drop();
          row.median_us = median_of(ns) / 1e3;
          row.p99_us = quantile_of(ns, 0.99) / 1e3;
          double sum = 0, mx = 0;
          for (double x : ns) {
            sum += x;
            mx = std::max(mx, x);
          }
          row.mean_us = sum / static_cast<double>(ns.size()) / 1e3;
          row.max_us = mx / 1e3;
          const std::string line =
              fmt::format("write latency {} {} N={}: median {} us, p99 {} us (prefill {:.2f} s)", m, name(vk), n,
                          fmt_us(row.median_us), fmt_us(row.p99_us), row.prefill_seconds);
          r.latency.push_back(std::move(row));
          report(line, static_cast<double>(s.latency_writes) * 1.1 * write_cost(m) * (n > 100'000 ? 3 : 1), true);
        }
      }
    }
  }

  // Medians, sums and ratios.
  for (auto& c : r.cells) {
    std::vector<double> mops, pubs, sched, med, p99;
    for (const auto& smp : c.samples) {
      mops.push_back(smp.mops);
      const double secs = smp.window_seconds > 0 ? smp.window_seconds : s.duration;
      pubs.push_back(static_cast<double>(smp.publishes) / secs);
      sched.push_back(static_cast<double>(smp.scheduled) / secs);
      med.push_back(smp.publish_us_median);
      p99.push_back(smp.publish_us_p99);
      c.ops += smp.ops;
      c.misses += smp.ops - smp.hits;
      c.bad_values += smp.bad_values;
      c.checks += smp.checks;
      c.violations += smp.violations;
    }
    c.mops = median_of(mops);
    c.mops_per_thread = c.mops / c.readers;
    if (c.writer) {
      c.publishes_per_s = median_of(pubs);
      c.scheduled_per_s = median_of(sched);
      c.publish_us_median = median_of(med);
      c.publish_us_p99 = median_of(p99);
    }
  }
  for (auto& c : r.cells) {
    for (const auto& o : r.cells) {
      if (o.values != c.values || o.readers != c.readers) continue;
      if (o.map == reference_map && o.writer == c.writer && o.mops > 0) c.vs_reference = c.mops / o.mops;
      if (c.writer && o.map == c.map && !o.writer && o.mops > 0) c.vs_idle = c.mops / o.mops;
    }
  }
  for (auto& row : r.latency)
    for (const auto& o : r.latency)
      if (o.map == reference_map && o.values == row.values && o.n == row.n && o.median_us > 0)
        row.vs_reference = row.median_us / o.median_us;
  r.elapsed_seconds = seconds_between(start, clock_type::now());
  finish_machine(r.machine);
  return r;
}

std::string render_table(const results& r) {
  const auto& s = r.config;
  std::string out;
  std::vector<value_kind> kinds;
  for (const auto& c : r.cells)
    if (std::find(kinds.begin(), kinds.end(), c.values) == kinds.end()) kinds.push_back(c.values);
  for (const auto vk : kinds) {
    out += fmt::format(
        "## Reads while one writer publishes every {} us ({} key{} per publish), N = {}, {} values\n\n"
        "Reader Mops/s: median of {} repeat{} of {} s, all readers together. vs {}: against {} in the same "
        "cell of this run. vs idle: against the same map with no writer. Publishes: achieved per second "
        "(scheduled per second); round: the writer's time for one publish, lock waits included, median / p99 "
        "us.\n\n",
        s.period_us, s.batch, s.batch == 1 ? "" : "s", s.size, name(vk), s.repeats, s.repeats == 1 ? "" : "s",
        s.duration, reference_map, reference_map);
    out +=
        "| map | readers | writer | reader Mops/s | per thread | vs locked_map | vs idle | publishes/s (scheduled) | "
        "round us median / p99 | misses | violations |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& c : r.cells) {
      if (c.values != vk) continue;
      const std::string pubs = c.writer ? fmt::format("{:.0f} ({:.0f})", c.publishes_per_s, c.scheduled_per_s) : "-";
      const std::string round =
          c.writer ? fmt::format("{} / {}", fmt_us(c.publish_us_median), fmt_us(c.publish_us_p99)) : "-";
      std::string viol = fmt::format("{}", c.bad_values + c.violations);
      if (c.checks) viol += fmt::format(" in {} checks", c.checks);
      out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", c.map, c.readers,
                         c.writer ? "on" : "off", fmt_mops(c.mops), fmt_mops(c.mops_per_thread),
                         fmt_ratio(c.vs_reference), fmt_ratio(c.vs_idle), pubs, round, c.misses, viol);
    }
    out += "\n";
  }
  kinds.clear();
  for (const auto& l : r.latency)
    if (std::find(kinds.begin(), kinds.end(), l.values) == kinds.end()) kinds.push_back(l.values);
  for (const auto vk : kinds) {
    out += fmt::format(
        "## Single-key insert_or_assign latency, one thread, no readers, {} values\n\n"
        "Each write of a present key timed alone (steady_clock), after an untimed warm-up; p99 by nearest "
        "rank.\n\n"
        "| map | N | prefill s | writes | median us | p99 us | mean us | max us | median vs locked_map |\n"
        "|---|---|---|---|---|---|---|---|---|\n",
        name(vk));
    for (const auto& l : r.latency) {
      if (l.values != vk) continue;
      out += fmt::format("| {} | {} | {:.2f} | {} | {} | {} | {} | {} | {} |\n", l.map, l.n, l.prefill_seconds,
                         l.writes, fmt_us(l.median_us), fmt_us(l.p99_us), fmt_us(l.mean_us), fmt_us(l.max_us),
                         fmt_ratio(l.vs_reference));
    }
    out += "\n";
  }
  return out;
}

nlohmann::json to_json(const results& r) {
  using nlohmann::json;
  const auto& s = r.config;
  auto opt = [](const std::optional<double>& x) { return x ? json(*x) : json(nullptr); };
  json j;
  j["schema"] = "polymap-bench-publish/1";
  j["machine"] = machine_json(r.machine, {{"load_average_at_start", r.load_average}});
  json values = json::array();
  for (auto v : s.values) values.push_back(name(v));
  j["settings"] = {{"size", s.size},
                   {"readers", s.readers},
                   {"duration_seconds", s.duration},
                   {"period_us", s.period_us},
                   {"repeats", s.repeats},
                   {"batch", s.batch},
                   {"maps", selected(s)},
                   {"values", values},
                   {"verify", s.verify},
                   {"throughput", s.throughput},
                   {"latency", s.latency},
                   {"latency_sizes", s.latency_sizes},
                   {"latency_writes", s.latency_writes},
                   {"seed", s.seed},
                   {"reference_map", reference_map}};
  j["elapsed_seconds"] = r.elapsed_seconds;
  j["throughput"] = json::array();
  for (const auto& c : r.cells) {
    json o = {{"map", c.map},
              {"values", name(c.values)},
              {"readers", c.readers},
              {"writer", c.writer},
              {"reader_mops_median", c.mops},
              {"reader_mops_per_thread_median", c.mops_per_thread},
              {"vs_reference", opt(c.vs_reference)},
              {"vs_no_writer", opt(c.vs_idle)},
              {"ops", c.ops},
              {"misses", c.misses},
              {"bad_values", c.bad_values},
              {"batch_checks", c.checks},
              {"batch_violations", c.violations}};
    if (c.writer) {
      o["publishes_per_second_median"] = c.publishes_per_s;
      o["scheduled_per_second_median"] = c.scheduled_per_s;
      o["publish_us_median"] = c.publish_us_median;
      o["publish_us_p99"] = c.publish_us_p99;
    }
    o["repeats"] = json::array();
    for (const auto& smp : c.samples) {
      json e = {{"seconds", smp.seconds},
                {"window_seconds", smp.window_seconds},
                {"reader_mops", smp.reader_mops},
                {"mops", smp.mops},
                {"ops", smp.ops},
                {"hits", smp.hits},
                {"bad_values", smp.bad_values},
                {"checks", smp.checks},
                {"violations", smp.violations}};
      if (c.writer) {
        e["publishes"] = smp.publishes;
        e["scheduled"] = smp.scheduled;
        e["missed_slots"] = smp.missed_slots;
        e["publish_us_median"] = smp.publish_us_median;
        e["publish_us_p99"] = smp.publish_us_p99;
      }
      o["repeats"].push_back(std::move(e));
    }
    j["throughput"].push_back(std::move(o));
  }
  j["write_latency"] = json::array();
  for (const auto& l : r.latency)
    j["write_latency"].push_back({{"map", l.map},
                                  {"values", name(l.values)},
                                  {"n", l.n},
                                  {"writes", l.writes},
                                  {"prefill_seconds", l.prefill_seconds},
                                  {"median_us", l.median_us},
                                  {"p99_us", l.p99_us},
                                  {"mean_us", l.mean_us},
                                  {"max_us", l.max_us},
                                  {"median_vs_reference", opt(l.vs_reference)}});
  return j;
}

}  // namespace polymap::bench::publish

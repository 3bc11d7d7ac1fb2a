// tools/polymap/hashstat.hpp — the article's section 2.2 hash experiment, done
// honestly: what changes how keys spread over a hash table?
//
// The article inserts 100,000 uint64 keys with values that are all int64 or a
// mix of int64, string and a 1 KiB struct, and claims the mixed values spread
// worse. A table places an entry by its key's hash alone, so the claim cannot
// hold; what does change the spread is the hash function and the pattern of
// the keys. This file measures all three on real tables:
//
//   table                          measured                how
//   polymap (table_core)           probe length, 7-bit     flat_table::find_probe: the
//                                  tag false matches       table's own lookup, instrumented
//   boost::unordered_flat_map      probe length, 8-bit     the real table's memory: element
//                                  tag false matches       slot from its address (allocator
//                                                          logs the array), tags and overflow
//                                                          bytes read from the group array
//   std::unordered_map             bucket chain length     bucket_size() of every bucket
//
// Definitions (identical for both open-addressing tables):
//   probe length   groups visited by a successful lookup, home group = 1.
//   false match    a slot the lookup compared because its tag equalled the
//                  key's tag but held another key (slots before the key's own
//                  slot in its group, all matching slots in earlier groups).
//   tag_collision_rate  fraction of successful lookups with >= 1 false match.
//   chain length   std::unordered_map: entries per non-empty bucket.
//
// Boost 1.81 has no statistics API, so its layout (15-slot groups, home group
// = hash >> (64 - log2 groups), triangular probing, xmx post-mix unless the
// hash is marked avalanching, one allocation holding elements then groups) is
// taken from boost/unordered/detail/foa.hpp and *checked* on every run: the
// allocation size must match, every element's tag byte must be a full tag, and
// every group a lookup passes before its element must have the element's
// overflow bit set. A mismatch (another Boost version) reports the row as
// unavailable instead of printing wrong numbers.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>
#include <boost/unordered/hash_traits.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/version.hpp>
// Boost 1.81's flat map includes xmx.hpp itself; newer ones (built with
// -DPOLYMAP_BOOST_UNORDERED_INCLUDE, docs/bench/README.md) do not.
#if __has_include(<boost/unordered/detail/xmx.hpp>)
#include <boost/unordered/detail/xmx.hpp>
#endif

#include "polymap/detail/flat_table.hpp"
#include "polymap/detail/hash.hpp"
#include "polymap/value.hpp"

namespace polymap::hashstat {

// The article's large value: a 1 KiB struct, stored in a value's payload.
struct kib_struct {
  std::array<unsigned char, 1024> bytes{};
  friend bool operator==(const kib_struct&, const kib_struct&) = default;
};

enum class key_pattern { sequential, random };
enum class value_mix { int64_only, mixed };
// identity: libstdc++'s std::hash<uint64_t> (the key itself). For Boost,
// identity_trusted is the same function marked is_avalanching, which turns off
// Boost's own post-mix: what a table without a post-mix does with it.
enum class hash_choice { identity, identity_trusted, mixer };

inline const char* name_of(key_pattern k) {
  return k == key_pattern::sequential ? "sequential" : "random";
}
inline const char* name_of(value_mix v) {
  return v == value_mix::int64_only ? "int64" : "mixed";
}
inline const char* name_of(hash_choice h) {
  switch (h) {
    case hash_choice::identity:
      return "identity";
    case hash_choice::identity_trusted:
      return "identity (marked avalanching)";
    case hash_choice::mixer:
      return "polymap::hash";
  }
  return "?";
}

inline constexpr const char* kPolymapTable = "polymap";
inline constexpr const char* kBoostTable = "boost::unordered_flat_map";
inline constexpr const char* kStdTable = "std::unordered_map";

struct row {
  std::string table, hash, keys, values;
  std::size_t n = 0;
  std::size_t capacity = 0;  // slots (open addressing) or buckets
  double load_factor = 0;
  // open addressing
  std::optional<double> avg_probe;
  std::optional<std::size_t> max_probe;
  std::optional<double> tag_collision_rate;
  std::optional<double> false_matches_per_lookup;
  // chaining
  std::optional<double> avg_chain;
  std::optional<std::size_t> max_chain;
  std::string note;  // why a row is unavailable, or what to know about it
  bool available = true;

  // The distribution statistics only (not labels): used to decide "identical".
  bool same_distribution(const row& o) const {
    return capacity == o.capacity && avg_probe == o.avg_probe && max_probe == o.max_probe &&
           tag_collision_rate == o.tag_collision_rate && false_matches_per_lookup == o.false_matches_per_lookup &&
           avg_chain == o.avg_chain && max_chain == o.max_chain;
  }
};

// --- inputs ---------------------------------------------------------------------
inline std::vector<std::uint64_t> make_keys(key_pattern p, std::size_t n, std::uint64_t seed) {
  std::vector<std::uint64_t> keys;
  keys.reserve(n);
  if (p == key_pattern::sequential) {
    for (std::size_t i = 0; i < n; ++i) keys.push_back(i);
    return keys;
  }
  std::mt19937_64 rng(seed);
  std::unordered_set<std::uint64_t> seen;
  seen.reserve(n);
  while (keys.size() < n) {
    const std::uint64_t k = rng();
    if (seen.insert(k).second) keys.push_back(k);
  }
  return keys;
}

// The i-th value: int64 only, or int64 / 24-char string / 1 KiB struct in turn.
inline polymap::value make_value(value_mix m, std::size_t i) {
  const auto n = static_cast<std::int64_t>(i);
  if (m == value_mix::int64_only || i % 3 == 0) return polymap::value(n);
  if (i % 3 == 1) return polymap::value(fmt::format("value-{:018}", i));
  kib_struct s;
  s.bytes.fill(static_cast<unsigned char>(i));
  return polymap::value(s);
}

// --- hash functions -------------------------------------------------------------
struct identity_trusted_hash {
  using is_avalanching = void;  // a lie: turns off Boost's post-mix
  std::size_t operator()(std::uint64_t k) const noexcept { return static_cast<std::size_t>(k); }
};

// --- summaries --------------------------------------------------------------------
struct probe_sums {
  std::uint64_t lookups = 0, groups = 0, max_groups = 0, false_matches = 0, lookups_with_false = 0;
  void add(std::size_t g, std::size_t fm) {
    ++lookups;
    groups += g;
    max_groups = std::max<std::uint64_t>(max_groups, g);
    false_matches += fm;
    if (fm) ++lookups_with_false;
  }
  void fill(row& r) const {
    const double l = lookups ? static_cast<double>(lookups) : 1.0;
    r.avg_probe = static_cast<double>(groups) / l;
    r.max_probe = static_cast<std::size_t>(max_groups);
    r.tag_collision_rate = static_cast<double>(lookups_with_false) / l;
    r.false_matches_per_lookup = static_cast<double>(false_matches) / l;
  }
};

inline row make_row(const char* table, hash_choice h, key_pattern k, value_mix v, std::size_t n) {
  row r;
  r.table = table;
  r.hash = name_of(h);
  r.keys = name_of(k);
  r.values = name_of(v);
  r.n = n;
  return r;
}

// --- polymap's table ----------------------------------------------------------------
template <class Hash>
row measure_polymap_with(const std::vector<std::uint64_t>& keys, value_mix v, row r) {
  polymap::detail::flat_table<std::uint64_t, polymap::value, Hash> t;
  for (std::size_t i = 0; i < keys.size(); ++i) t.insert(keys[i], make_value(v, i));
  probe_sums s;
  for (std::uint64_t k : keys) {
    polymap::detail::probe_record rec;
    if (!t.find_probe(k, rec)) throw std::logic_error("hashstat: polymap table lost a key");
    s.add(rec.groups, rec.tag_false_positives);
  }
  s.fill(r);
  r.capacity = t.capacity();
  r.load_factor = static_cast<double>(t.size()) / static_cast<double>(r.capacity);
  return r;
}

inline row measure_polymap(const std::vector<std::uint64_t>& keys, key_pattern kp, value_mix v, hash_choice h) {
  row r = make_row(kPolymapTable, h, kp, v, keys.size());
  r.note = "7-bit tags; no post-mix";
  if (h == hash_choice::mixer) return measure_polymap_with<polymap::hash<std::uint64_t>>(keys, v, std::move(r));
  return measure_polymap_with<polymap::identity_hash<std::uint64_t>>(keys, v, std::move(r));
}

// --- boost::unordered_flat_map ------------------------------------------------------
struct allocation_log {
  void* last = nullptr;
  std::size_t last_count = 0;  // in units of the allocated type
};

// Records the latest allocation: for a flat map, the live element+group array.
template <class T>
struct logging_allocator {
  using value_type = T;
  allocation_log* log;
  explicit logging_allocator(allocation_log* l) noexcept : log(l) {}
  template <class U>
  logging_allocator(const logging_allocator<U>& o) noexcept : log(o.log) {}  // NOLINT
  T* allocate(std::size_t n) {
    T* p = std::allocator<T>{}.allocate(n);
    log->last = p;
    log->last_count = n;
    return p;
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>{}.deallocate(p, n); }
  template <class U>
  bool operator==(const logging_allocator<U>& o) const noexcept {
    return log == o.log;
  }
};

template <class Hash>
row measure_boost_with(const std::vector<std::uint64_t>& keys, value_mix v, row r) {
  using pair_t = std::pair<const std::uint64_t, polymap::value>;
  using map_t = boost::unordered_flat_map<std::uint64_t, polymap::value, Hash, std::equal_to<std::uint64_t>,
                                          logging_allocator<pair_t>>;
  constexpr std::size_t N = 15;  // slots per group (foa.hpp, group15)
  allocation_log log;
  map_t m(0, Hash{}, std::equal_to<std::uint64_t>{}, logging_allocator<pair_t>(&log));
  for (std::size_t i = 0; i < keys.size(); ++i) m.emplace(keys[i], make_value(v, i));

  auto unavailable = [&](const std::string& why) {
    r.available = false;
    r.note = "unavailable: " + why + " (Boost " + std::to_string(BOOST_VERSION) + ")";
    return r;
  };
  const std::size_t groups = (m.bucket_count() + 1) / N;  // capacity = groups * 15 - 1 (sentinel)
  if (groups < 2 || !std::has_single_bit(groups) || groups * N - 1 != m.bucket_count())
    return unavailable("bucket_count() is not 15 * 2^k - 1");
  // buffer_size() in foa.hpp: elements, then 16-byte groups aligned to 16.
  const std::size_t buffer_bytes = sizeof(pair_t) * (groups * N - 1) + 16 * (groups + 1) - 1;
  if (log.last_count != (buffer_bytes + sizeof(pair_t) - 1) / sizeof(pair_t))
    return unavailable("the element array is not one elements+groups allocation");
  auto* elements = static_cast<pair_t*>(log.last);
  auto* gp = reinterpret_cast<unsigned char*>(elements + groups * N - 1);
  gp += (16 - reinterpret_cast<std::uintptr_t>(gp) % 16) % 16;
  const unsigned char* meta = gp;
  const std::size_t mask = groups - 1;
  const int size_index = 64 - std::countr_zero(groups);

  probe_sums s;
  for (std::uint64_t k : keys) {
    auto it = m.find(k);
    if (it == m.end()) throw std::logic_error("hashstat: boost table lost a key");
    const auto idx = static_cast<std::size_t>(&*it - elements);
    if (idx >= groups * N) return unavailable("an element lies outside the logged array");
    const std::size_t g = idx / N, slot = idx % N;
    std::size_t h = Hash{}(k);
    if constexpr (!boost::unordered::hash_is_avalanching<Hash>::value) {
#if __has_include(<boost/unordered/detail/mulx.hpp>)  // Boost 1.83+ mixes with mulx (bench builds with newer headers)
      h = boost::unordered::detail::mulx(h);
#else
      h = boost::unordered::detail::xmx(h);
#endif
    }
    const unsigned char tag = meta[g * 16 + slot];
    if (tag < 2) return unavailable("an element's slot has no full tag");
    std::size_t pos = h >> size_index, step = 0, visited = 1, false_matches = 0;
    for (;;) {
      const unsigned char* grp = meta + pos * 16;
      const std::size_t limit = pos == g ? slot : N;  // the lookup stops at its own slot
      for (std::size_t i = 0; i < limit; ++i) false_matches += grp[i] == tag;
      if (pos == g) break;
      // Boost set bit h % 8 of the overflow byte of every full group an insert passed.
      if (!(grp[15] & (1u << (h % 8)))) return unavailable("a passed group lacks the overflow bit");
      if (++step > mask) return unavailable("an element is not on its probe sequence");
      pos = (pos + step) & mask;
      ++visited;
    }
    s.add(visited, false_matches);
  }
  s.fill(r);
  r.capacity = m.bucket_count();
  r.load_factor = m.load_factor();
  return r;
}

inline row measure_boost(const std::vector<std::uint64_t>& keys, key_pattern kp, value_mix v, hash_choice h) {
  row r = make_row(kBoostTable, h, kp, v, keys.size());
  switch (h) {
    case hash_choice::identity:
      r.note = "8-bit tags; Boost post-mixes std::hash (xmx)";
      return measure_boost_with<std::hash<std::uint64_t>>(keys, v, std::move(r));
    case hash_choice::identity_trusted:
      r.note = "8-bit tags; post-mix skipped: home = high bits";
      return measure_boost_with<identity_trusted_hash>(keys, v, std::move(r));
    case hash_choice::mixer:
      r.note = "8-bit tags; avalanching hash, no post-mix";
      return measure_boost_with<polymap::hash<std::uint64_t>>(keys, v, std::move(r));
  }
  return r;
}

// --- std::unordered_map ----------------------------------------------------------
template <class Hash>
row measure_std_with(const std::vector<std::uint64_t>& keys, value_mix v, row r) {
  std::unordered_map<std::uint64_t, polymap::value, Hash> m;
  for (std::size_t i = 0; i < keys.size(); ++i) m.emplace(keys[i], make_value(v, i));
  std::size_t used = 0, longest = 0;
  for (std::size_t b = 0; b < m.bucket_count(); ++b) {
    const std::size_t len = m.bucket_size(b);
    if (!len) continue;
    ++used;
    longest = std::max(longest, len);
  }
  r.avg_chain = used ? static_cast<double>(m.size()) / static_cast<double>(used) : 0.0;
  r.max_chain = longest;
  r.capacity = m.bucket_count();
  r.load_factor = m.load_factor();
  return r;
}

inline row measure_std(const std::vector<std::uint64_t>& keys, key_pattern kp, value_mix v, hash_choice h) {
  row r = make_row(kStdTable, h, kp, v, keys.size());
  r.note = "bucket = hash mod prime";
  if (h == hash_choice::mixer) return measure_std_with<polymap::hash<std::uint64_t>>(keys, v, std::move(r));
  return measure_std_with<std::hash<std::uint64_t>>(keys, v, std::move(r));
}

// --- the whole experiment ------------------------------------------------------------
// Above this n the Boost "identity marked avalanching" row on sequential keys
// is skipped: it takes O(n^2 / 15) probes (about 1 s at n = 100,000).
inline constexpr std::size_t kMaxQuadraticN = 200000;

struct options {
  std::size_t n = 100000;
  std::uint64_t seed = 0x9e3779b97f4a7c15ull;
  std::function<void(const std::string&)> progress;  // one line per row, may be empty
};

inline std::vector<row> run(const options& o) {
  std::vector<row> rows;
  for (key_pattern kp : {key_pattern::sequential, key_pattern::random}) {
    const auto keys = make_keys(kp, o.n, o.seed);
    for (value_mix v : {value_mix::int64_only, value_mix::mixed}) {
      auto note = [&](const char* t, hash_choice h) {
        if (o.progress)
          o.progress(fmt::format("{} / {} / {} keys / {} values", t, name_of(h), name_of(kp), name_of(v)));
      };
      for (hash_choice h : {hash_choice::identity, hash_choice::mixer}) {
        note(kPolymapTable, h);
        rows.push_back(measure_polymap(keys, kp, v, h));
      }
      for (hash_choice h : {hash_choice::identity, hash_choice::identity_trusted, hash_choice::mixer}) {
        if (h == hash_choice::identity_trusted && kp == key_pattern::sequential && o.n > kMaxQuadraticN) {
          // Every key probes the same sequence: quadratic time in n.
          row r = make_row(kBoostTable, h, kp, v, o.n);
          r.available = false;
          r.note =
              fmt::format("skipped above n={}: all keys share one probe sequence (quadratic time)", kMaxQuadraticN);
          rows.push_back(std::move(r));
          continue;
        }
        note(kBoostTable, h);
        rows.push_back(measure_boost(keys, kp, v, h));
      }
      for (hash_choice h : {hash_choice::identity, hash_choice::mixer}) {
        note(kStdTable, h);
        rows.push_back(measure_std(keys, kp, v, h));
      }
    }
  }
  // Order for reading: table, hash, keys, then int64 next to mixed.
  std::stable_sort(rows.begin(), rows.end(), [](const row& a, const row& b) {
    auto rank = [](const std::string& t) { return t == kPolymapTable ? 0 : t == kBoostTable ? 1 : 2; };
    if (rank(a.table) != rank(b.table)) return rank(a.table) < rank(b.table);
    if (a.hash != b.hash) return a.hash < b.hash;
    if (a.keys != b.keys) return a.keys > b.keys;  // sequential first
    return a.values < b.values;                    // int64 before mixed
  });
  return rows;
}

// --- presentation --------------------------------------------------------------------
inline std::string fmt_opt(const std::optional<double>& x, const char* spec = "{:.3f}") {
  return x ? fmt::format(fmt::runtime(spec), *x) : std::string("-");
}
inline std::string fmt_opt(const std::optional<std::size_t>& x) {
  return x ? fmt::format("{}", *x) : std::string("-");
}

inline std::string render_table(const std::vector<row>& rows) {
  std::string out = fmt::format("{:<26} {:<30} {:<10} {:<6} {:>9} {:>6} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9}  {}\n",
                                "table", "hash", "keys", "values", "capacity", "load", "avg_probe", "max_probe",
                                "tag_coll", "false/lkp", "avg_chain", "max_chain", "note");
  for (const auto& r : rows) {
    out += fmt::format("{:<26} {:<30} {:<10} {:<6} {:>9} {:>6.3f} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9}  {}\n", r.table,
                       r.hash, r.keys, r.values, r.capacity, r.load_factor, fmt_opt(r.avg_probe, "{:.4f}"),
                       fmt_opt(r.max_probe), fmt_opt(r.tag_collision_rate, "{:.4f}"),
                       fmt_opt(r.false_matches_per_lookup, "{:.4f}"), fmt_opt(r.avg_chain, "{:.4f}"),
                       fmt_opt(r.max_chain), r.note);
  }
  return out;
}

// A scalar "how bad" per row for comparisons: probe length for open
// addressing (plus false matches, each one a wasted key compare), chain
// length for chaining.
inline double cost_of(const row& r) {
  if (r.avg_probe) return *r.avg_probe + r.false_matches_per_lookup.value_or(0.0);
  return r.avg_chain.value_or(0.0);
}

// The conclusion, computed from the rows: whether the value type changed the
// statistics, then per table the largest effect of the hash function, and the
// largest effect of the key pattern.
inline std::string conclusion(const std::vector<row>& rows) {
  auto find = [&](const row& like, const char* hash, const char* keys, const char* values) -> const row* {
    for (const auto& r : rows) {
      if (r.available && r.table == like.table && r.hash == (hash ? hash : like.hash) &&
          r.keys == (keys ? keys : like.keys) && r.values == (values ? values : like.values))
        return &r;
    }
    return nullptr;
  };
  auto ratio = [](double x, double y) { return std::max(x, y) / std::max(std::min(x, y), 1e-12); };
  auto describe = [](const row& r) {
    if (r.avg_probe)
      return fmt::format("avg probe {:.3f} groups (max {}) and {:.1f}% of lookups with a false tag match", *r.avg_probe,
                         *r.max_probe, 100.0 * r.tag_collision_rate.value_or(0));
    return fmt::format("avg chain {:.3f} (max {})", r.avg_chain.value_or(0), r.max_chain.value_or(0));
  };
  struct effect {
    const row* a = nullptr;
    const row* b = nullptr;
    double q = 1;
    void offer(const row* x, const row* y, double r) {
      if (r > q) *this = {x, y, r};
    }
  };

  std::size_t pairs = 0, identical = 0;
  double worst_value_diff = 0;
  std::vector<std::pair<std::string, effect>> hash_effects;  // per table, in row order
  effect keys_effect;
  for (const auto& r : rows) {
    if (!r.available || r.values != name_of(value_mix::int64_only)) continue;
    if (const row* m = find(r, nullptr, nullptr, name_of(value_mix::mixed))) {
      ++pairs;
      if (r.same_distribution(*m)) ++identical;
      worst_value_diff = std::max(worst_value_diff, std::abs(cost_of(r) - cost_of(*m)));
    }
    if (r.hash != name_of(hash_choice::mixer)) {
      if (const row* m = find(r, name_of(hash_choice::mixer), nullptr, nullptr)) {
        auto it = std::find_if(hash_effects.begin(), hash_effects.end(), [&](auto& e) { return e.first == r.table; });
        if (it == hash_effects.end()) it = hash_effects.insert(hash_effects.end(), {r.table, effect{}});
        it->second.offer(&r, m, ratio(cost_of(r), cost_of(*m)));
      }
    }
    if (r.keys == name_of(key_pattern::sequential)) {
      if (const row* m = find(r, nullptr, name_of(key_pattern::random), nullptr))
        keys_effect.offer(&r, m, ratio(cost_of(r), cost_of(*m)));
    }
  }

  std::string out;
  if (pairs && identical == pairs) {
    out += fmt::format(
        "The value type changed nothing: in all {} configurations the int64-only and the mixed "
        "int64/string/1 KiB runs gave identical statistics, because a table places an entry by its key's hash "
        "alone.",
        pairs);
  } else {
    out += fmt::format(
        "The value type changed the statistics in {} of {} configurations (largest cost difference {:.4f}).",
        pairs - identical, pairs, worst_value_diff);
  }
  bool any_hash = false;
  for (const auto& [table, e] : hash_effects) {
    if (!e.a || e.q < 1.05) continue;
    out += fmt::format(" {} {}, {} keys gave {} with the {} hash and {} with polymap::hash ({:.1f}x).",
                       any_hash ? "For"
                                : "What does change the distribution is the hash function and the key "
                                  "pattern. For",
                       table, e.a->keys, describe(*e.a), e.a->hash, describe(*e.b), e.q);
    any_hash = true;
  }
  if (!any_hash) out += " The hash function changed no statistic by more than 5%.";
  if (keys_effect.a && keys_effect.q >= 1.05) {
    out += fmt::format(
        " The key pattern did too: {} with the {} hash gave {} on sequential keys and {} on random "
        "keys ({:.1f}x).",
        keys_effect.a->table, keys_effect.a->hash, describe(*keys_effect.a), describe(*keys_effect.b), keys_effect.q);
  } else {
    out += " The key pattern changed no statistic by more than 5%.";
  }
  return out;
}

}  // namespace polymap::hashstat

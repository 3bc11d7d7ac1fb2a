// bench/workload.hpp — keys and pre-generated operations (see driver.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/results.hpp"

namespace polymap::bench {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// N distinct keys: splitmix64 is a bijection, so its outputs are distinct.
inline std::vector<std::uint64_t> make_u64_keys(std::size_t n) {
  std::vector<std::uint64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = splitmix64(i);
  return keys;
}

// N distinct 16-24 character keys: 16 distinct hex digits, then 0-8 more
// letters, so no string fits libstdc++'s 15-byte small-string buffer.
inline std::vector<std::string> make_string_keys(std::size_t n) {
  std::vector<std::string> keys(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t h = splitmix64(i);
    static constexpr char hex[] = "0123456789abcdef";
    std::string s(16 + (splitmix64(h) % 9), 'x');
    for (int d = 0; d < 16; ++d) s[static_cast<std::size_t>(d)] = hex[(h >> (4 * d)) & 15];
    for (std::size_t d = 16; d < s.size(); ++d) s[d] = static_cast<char>('a' + (splitmix64(h + d) % 26));
    keys[i] = std::move(s);
  }
  return keys;
}

// Zipf over ranks 0..n-1 with exponent theta (Gray et al., "Quickly
// generating billion-record synthetic databases", as YCSB does it).
class zipf_generator {
 public:
  zipf_generator(std::size_t n, double theta) : n_(n), theta_(theta) {
    for (std::size_t i = 1; i <= n; ++i) zetan_ += 1.0 / std::pow(static_cast<double>(i), theta);
    const double zeta2 = 1.0 + 1.0 / std::pow(2.0, theta);
    alpha_ = 1.0 / (1.0 - theta);
    eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) / (1.0 - zeta2 / zetan_);
  }
  template <class Rng>
  std::size_t operator()(Rng& rng) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const double uz = u * zetan_;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
    auto r = static_cast<std::size_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return r < n_ ? r : n_ - 1;
  }

 private:
  std::size_t n_;
  double theta_;
  double zetan_ = 0, alpha_ = 0, eta_ = 0;
};

// An operation word: the key index in the low 31 bits, the write flag on top.
inline constexpr std::uint32_t write_bit = 1u << 31;

inline double write_share(workload w) {
  switch (w) {
    case workload::find100:
      return 0.0;
    case workload::find95:
      return 0.05;
    case workload::find50:
      return 0.5;
    case workload::insert:
      return 1.0;
  }
  return 0.0;
}

// How keys are chosen: uniformly, or by Zipf rank scattered over the keys by
// a fixed permutation so that hot keys do not sit next to each other. Built
// once per (N, distribution): Zipf's normalization walks all N ranks.
class key_chooser {
 public:
  key_chooser(std::size_t n, distribution d, std::uint64_t seed) : n_(n) {
    if (d == distribution::zipf) {
      scatter_.resize(n);
      std::iota(scatter_.begin(), scatter_.end(), 0u);
      std::mt19937_64 rng(seed ^ 0x5ca77e4ull);
      std::shuffle(scatter_.begin(), scatter_.end(), rng);
      zipf_.emplace(n, 0.99);
    }
  }
  template <class Rng>
  std::size_t operator()(Rng& rng) const {
    if (zipf_) return scatter_[(*zipf_)(rng)];
    return std::uniform_int_distribution<std::size_t>(0, n_ - 1)(rng);
  }

 private:
  std::size_t n_;
  std::vector<std::uint32_t> scatter_;
  std::optional<zipf_generator> zipf_;
};

// Per-thread operation arrays for a mixed workload.
inline std::vector<std::vector<std::uint32_t>> make_ops(const key_chooser& choose, workload w, int threads,
                                                        std::size_t ops_per_thread, std::uint64_t seed) {
  std::vector<std::vector<std::uint32_t>> ops(static_cast<std::size_t>(threads));
  const auto write_threshold = static_cast<std::uint64_t>(write_share(w) * 1e6);
  for (int t = 0; t < threads; ++t) {
    std::mt19937_64 rng(splitmix64(seed + static_cast<std::uint64_t>(t) * 7919));
    std::uniform_int_distribution<std::uint64_t> millionth(0, 999'999);
    auto& v = ops[static_cast<std::size_t>(t)];
    v.resize(ops_per_thread);
    for (auto& op : v) {
      const std::size_t k = choose(rng);
      op = static_cast<std::uint32_t>(k) | (millionth(rng) < write_threshold ? write_bit : 0u);
    }
  }
  return ops;
}

}  // namespace polymap::bench

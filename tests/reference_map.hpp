// tests/reference_map.hpp — the stable API over a plain std::unordered_map,
// single-threaded. The conformance suite runs against it first, so the suite's
// expectations are checked against std semantics before any polymap map.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "polymap/detail/map_api.hpp"
#include "polymap/stats.hpp"
#include "polymap/value.hpp"

namespace polymap::testing {

template <class K = std::string, class V = polymap::value>
class reference_map : public polymap::detail::typed_access<reference_map<K, V>, K, V> {
 public:
  using key_type = K;
  using mapped_type = V;
  bool insert(K k, V v) { return m_.try_emplace(std::move(k), std::move(v)).second; }
  bool insert_or_assign(K k, V v) { return m_.insert_or_assign(std::move(k), std::move(v)).second; }
  template <class F>
  bool insert_or_visit(K k, V v, F f) {
    if (auto it = m_.find(k); it != m_.end()) {
      V copy = it->second;
      f(copy);
      it->second = std::move(copy);
      return false;
    }
    m_.emplace(std::move(k), std::move(v));
    return true;
  }
  template <class F>
  V update(K k, F f) {
    auto it = m_.find(k);
    V next = f(it == m_.end() ? nullptr : &it->second);
    m_.insert_or_assign(std::move(k), next);
    return next;
  }
  template <class Q>
  bool compare_exchange(const Q& q, const V& expected, V desired) {
    auto it = m_.find(K(q));
    if (it == m_.end() || !(it->second == expected)) return false;
    it->second = std::move(desired);
    return true;
  }
  template <class Q>
  bool erase(const Q& q) {
    return m_.erase(K(q)) > 0;
  }
  template <class P>
  std::size_t erase_if(P pred) {
    std::vector<K> doomed;
    for (auto& [k, v] : m_)
      if (pred(k, v)) doomed.push_back(k);
    for (auto& k : doomed) m_.erase(k);
    return doomed.size();
  }
  template <class Q>
  std::optional<V> find(const Q& q) const {
    auto it = m_.find(K(q));
    if (it == m_.end()) return std::nullopt;
    return it->second;
  }
  template <class Q>
  bool contains(const Q& q) const {
    return m_.count(K(q)) > 0;
  }
  template <class Q, class F>
  bool visit(const Q& q, F f) const {
    auto it = m_.find(K(q));
    if (it == m_.end()) return false;
    f(static_cast<const V&>(it->second));
    return true;
  }
  template <class F>
  void for_each(F f) const {
    for (auto& [k, v] : m_) f(k, v);
  }
  std::size_t size() const { return m_.size(); }
  void clear() { m_.clear(); }
  void reserve(std::size_t n) { m_.reserve(n); }
  polymap::stats_t stats() const {
    polymap::stats_t s;
    s.map = "reference_map";
    s.size = m_.size();
    s.capacity = m_.bucket_count();
    s.load_factor = m_.load_factor();
    return s;
  }

 private:
  std::unordered_map<K, V> m_;
};

}  // namespace polymap::testing

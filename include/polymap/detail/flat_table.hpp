// polymap/detail/flat_table.hpp — the sequential front end of table_core:
// the same groups, tags and probing as concurrent_map (group.hpp), with
// nodes in the slots, plain (unsynchronized) words and no locks.
// Single-threaded only.
//
// It exists to measure the table itself: `find_probe` reports per lookup the
// groups visited and the tag matches whose key differed (7-bit tag false
// positives), and stats() the probe-length histogram, for `polymap hashstat`.
// Nodes are deleted at once (no reader can hold one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "polymap/detail/group.hpp"
#include "polymap/detail/hash.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/detail/table_core.hpp"
#include "polymap/stats.hpp"

namespace polymap::detail {

template <class K, class V, class Hash = polymap::hash<K>, class Eq = polymap::key_equal<K>>
class flat_table {
  using node = map_node<K, V>;
  using table = table_core<node, plain_atomic, null_group_lock<plain_atomic>>;

 public:
  flat_table() : table_(std::make_unique<table>(1)) {}
  explicit flat_table(std::size_t capacity) : table_(std::make_unique<table>(table::groups_for(capacity))) {}
  flat_table(const flat_table&) = delete;
  flat_table& operator=(const flat_table&) = delete;
  ~flat_table() { free_nodes(); }

  // Inserts (k, v) if k is absent; returns true if inserted.
  bool insert(K k, V v) {
    const std::size_t h = hash_(lookup_arg<K>(k));
    if (table_->find(h, k, eq_)) return false;
    auto n = std::make_unique<node>(node{h, std::move(k), std::move(v)});
    if (table_->needs_rebuild()) rebuild(table::groups_for(2 * table_->size() + 1));
    table_->unprotected_insert(n.release());
    return true;
  }

  bool insert_or_assign(K k, V v) {
    const std::size_t h = hash_(lookup_arg<K>(k));
    if (auto loc = table_->find(h, k, eq_)) {
      table_->unprotected_replace(loc, new node{h, std::move(k), std::move(v)});
      delete loc.node;
      return false;
    }
    return insert(std::move(k), std::move(v));
  }

  template <class Q>
  const V* find(const Q& q) const {
    probe_record unused;
    return find_probe(q, unused);
  }

  // As find, and records what the lookup cost in rec.
  template <class Q>
  const V* find_probe(const Q& q, probe_record& rec) const {
    rec = probe_record{};
    auto loc = table_->find(hash_(lookup_arg<K>(q)), lookup_arg<K>(q), eq_, &rec);
    return loc ? &loc.node->value : nullptr;
  }

  template <class Q>
  bool erase(const Q& q) {
    auto loc = table_->find(hash_(lookup_arg<K>(q)), lookup_arg<K>(q), eq_);
    if (!loc) return false;
    table_->unprotected_erase(loc);
    delete loc.node;
    return true;
  }

  void reserve(std::size_t n) {
    if (n > table_->max_load()) rebuild(table::groups_for(n));
  }

  template <class F>
  void for_each(F f) const {
    table_->for_each_node([&](const node* n) { invoke_entry(f, n->key, n->value); });
  }

  std::size_t size() const { return table_->size(); }
  std::size_t capacity() const { return table_->capacity(); }
  std::size_t groups() const { return table_->groups(); }

  stats_t stats() const {
    stats_t s;
    s.map = "flat_table";
    s.size = table_->size();
    s.capacity = table_->capacity();
    s.load_factor = s.capacity ? static_cast<double>(s.size) / static_cast<double>(s.capacity) : 0.0;
    s.probe_length_histogram = table_->probe_histogram();
    s.growths = growths_;
    s.bytes = sizeof(*this) + table_->bytes() + s.size * sizeof(node);
    return s;
  }

 private:
  void rebuild(std::size_t groups) {
    auto fresh = std::make_unique<table>(groups);
    table_->for_each_node([&](node* n) { fresh->unprotected_insert(n); });
    if (fresh->groups() > table_->groups()) ++growths_;
    table_ = std::move(fresh);
  }
  void free_nodes() {
    table_->for_each_node([](node* n) { delete n; });
  }

  std::unique_ptr<table> table_;
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] Eq eq_;
  std::uint64_t growths_ = 0;
};

}  // namespace polymap::detail

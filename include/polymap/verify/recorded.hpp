// polymap/verify/recorded.hpp — recorded<M>: check your own map.
//
// A thin wrapper over any map with polymap's stable API that records every
// call into a thread_log (history.hpp). One wrapper per thread, all over one
// shared map and one recorder:
//
//   polymap::locked_map<> map;
//   polymap::verify::recorder<std::string, polymap::value> rec(threads);
//   // on thread t:
//   polymap::verify::recorded r(map, rec.log(t));
//   r.insert("k", 1); r.add("hits", 1); r.find("k"); ...
//   // after joining:
//   auto result = polymap::verify::check(rec.collect());
//   if (!result.ok()) std::cerr << result.report();
//
// M may itself be a wrapper, e.g. perturbed<M> (perturb.hpp). A call that
// throws is not recorded (the maps promise a throwing call changes nothing)
// and the exception propagates.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "polymap/verify/history.hpp"
#include "polymap/verify/model.hpp"

// GCC 12 warns that a disengaged std::optional<polymap::value> moved in
// run() "may be used uninitialized" (its move reads the value only when
// engaged: GCC bug 80635). Off for this header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace polymap::verify {

template <class M>
class recorded {
 public:
  using key_type = typename M::key_type;
  using mapped_type = typename M::mapped_type;
  using log_type = thread_log<key_type, mapped_type>;

  recorded(M& map, log_type& log) : map_(map), log_(log) {}

  bool insert(key_type k, mapped_type v) {
    return run(op_kind::insert, k, v, {}, [&] { return std::pair{map_.insert(std::move(k), std::move(v)), none()}; });
  }
  bool insert_or_assign(key_type k, mapped_type v) {
    return run(op_kind::insert_or_assign, k, v, {}, [&] {
      return std::pair{map_.insert_or_assign(std::move(k), std::move(v)), none()};
    });
  }
  std::optional<mapped_type> find(const key_type& k) {
    std::optional<mapped_type> r;
    run(op_kind::find, k, {}, {}, [&] {
      r = map_.find(k);
      return std::pair{r.has_value(), r};
    });
    return r;
  }
  bool contains(const key_type& k) {
    return run(op_kind::contains, k, {}, {}, [&] { return std::pair{map_.contains(k), none()}; });
  }
  bool erase(const key_type& k) {
    return run(op_kind::erase, k, {}, {}, [&] { return std::pair{map_.erase(k), none()}; });
  }
  // update(k, f) with f = "current + delta, or delta" (value_traits<V>::add):
  // fully checkable. Returns the value stored.
  mapped_type add(key_type k, mapped_type delta) {
    std::optional<mapped_type> r;
    run(op_kind::update_add, k, delta, {}, [&] {
      r = map_.update(std::move(k),
                      [&delta](const mapped_type* cur) { return value_traits<mapped_type>::add(cur, delta); });
      return std::pair{true, r};
    });
    return std::move(*r);
  }
  // update(k, f) with any f: the checker takes the stored value as given.
  template <class F>
  mapped_type update(key_type k, F f) {
    std::optional<mapped_type> r;
    run(op_kind::update, k, {}, {}, [&] {
      r = map_.update(std::move(k), std::move(f));
      return std::pair{true, r};
    });
    return std::move(*r);
  }
  bool compare_exchange(const key_type& k, const mapped_type& expected, mapped_type desired) {
    return run(op_kind::compare_exchange, k, desired, expected, [&] {
      return std::pair{map_.compare_exchange(k, expected, std::move(desired)), none()};
    });
  }

  M& map() noexcept { return map_; }

 private:
  static std::optional<mapped_type> none() { return std::nullopt; }

  template <class Call>
  bool run(op_kind kind, const key_type& k, const mapped_type& arg, const mapped_type& expected, Call call) {
    const std::size_t slot = log_.begin(kind, k, arg, expected);
    try {
      auto [ok, out] = call();
      log_.end(slot, ok, std::move(out));
      return ok;
    } catch (...) {
      log_.abandon(slot);
      throw;
    }
  }

  M& map_;
  log_type& log_;
};

}  // namespace polymap::verify

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

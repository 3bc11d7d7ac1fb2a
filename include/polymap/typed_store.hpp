// polymap/typed_store.hpp — one map per value type, addressed by key<T>.
//
// WHAT IT IS
//   The article's recommended defense ("key domains with one map per value
//   type": configInts, configBytes, configStrings) as a type:
//
//     polymap::typed_store<std::int64_t, std::string, polymap::bytes> config;
//     inline const polymap::key<std::int64_t> timeout{"timeout"};
//     config.set(timeout, 30);                   // stored as std::int64_t
//     polymap::result<std::int64_t> t = config.get(timeout);
//     config.set(timeout, "30");                 // does not compile: not an int64
//     config.get(polymap::key<double>{"x"});     // does not compile: no double map
//
//   Each T in Ts gets its own thread-safe map Map<std::string, T>; values are
//   stored as T (no polymap::value box, no type tag, no type check at run
//   time: the key's type picks the map at compile time). A read therefore
//   cannot see a value of the wrong type, and errc::type_mismatch cannot
//   happen: a typed read either finds a T or is errc::not_found.
//
// CONTRACT
//   - Names are per type domain, as in the article's separate maps: key<int64>
//     "port" and key<std::string> "port" are two independent entries.
//   - Every single-key operation is exactly the underlying map's operation, so
//     it is linearizable when the map's is. Operations on different types touch
//     different maps and are not atomic with each other; size() and for_each()
//     over all types visit one map after the other (weakly consistent).
//   - A key<T> whose T is not one of Ts does not compile. The member functions
//     are constrained by the concept polymap::store_value_type<T, Ts...>, so the
//     compiler's note names that concept and the offending T, and a requires
//     expression can test it (a static_assert inside the body could not be
//     detected by a requires expression: it is a hard error). map<T>() and
//     stats<T>() additionally static_assert with a message.
//   - Writes through a key<T> take any U that converts to T without narrowing,
//     exactly like typed_access::set on the many-typed maps.
//
// THE MAP TEMPLATE
//   basic_typed_store<Map, Ts...> works with any polymap map template whose
//   first two parameters are K and V (the rest defaulted); Map is a variadic
//   template template parameter so that clang (which does not enable P0522's
//   relaxed matching by default) accepts templates with defaulted trailing
//   parameters. typed_store<Ts...> is the version over the library's default
//   concurrent map (see the alias at the end of this file).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "polymap/concurrent_map.hpp"
#include "polymap/detail/map_api.hpp"
#include "polymap/locked_map.hpp"
#include "polymap/result.hpp"
#include "polymap/stats.hpp"
#include "polymap/value.hpp"

namespace polymap {

namespace detail {

template <class T, class... Ts>
inline constexpr bool is_one_of = (std::is_same_v<T, Ts> || ...);

template <class... Ts>
struct all_distinct : std::true_type {};
template <class T, class... Rest>
struct all_distinct<T, Rest...> : std::bool_constant<!is_one_of<T, Rest...> && all_distinct<Rest...>::value> {};

// The atomic constraint a compiler prints when a key's type is not in the store.
template <class T, class... Ts>
inline constexpr bool key_value_type_is_one_of_the_store_types = is_one_of<T, Ts...>;

}  // namespace detail

// T is one of the store's value types Ts. A call with a key<T> outside Ts fails
// this concept; the compiler's note reads
//   "key_value_type_is_one_of_the_store_types<T, Ts ...> [with T = ...]".
template <class T, class... Ts>
concept store_value_type = detail::key_value_type_is_one_of_the_store_types<T, Ts...>;

template <template <class...> class Map, class... Ts>
class basic_typed_store {
  static_assert(sizeof...(Ts) > 0, "polymap::typed_store needs at least one value type");
  static_assert(detail::all_distinct<Ts...>::value,
                "polymap::typed_store: each value type may appear only once in typed_store<Ts...>");
  static_assert(((std::is_same_v<Ts, std::remove_cvref_t<Ts>>)&&...),
                "polymap::typed_store: value types must be plain object types (no const, no references)");

 public:
  // The map holding the values of type T.
  template <class T>
  using map_type = Map<std::string, T>;

  // True when T is one of the store's value types.
  template <class T>
  static constexpr bool holds = detail::is_one_of<T, Ts...>;

  basic_typed_store() = default;
  basic_typed_store(const basic_typed_store&) = delete;
  basic_typed_store& operator=(const basic_typed_store&) = delete;

  // --- the map of one type ---------------------------------------------------
  template <class T>
  map_type<T>& map() noexcept {
    static_assert(holds<T>, "polymap::typed_store: T is not one of the store's value types (typed_store<Ts...>)");
    return std::get<map_type<T>>(maps_);
  }
  template <class T>
  const map_type<T>& map() const noexcept {
    static_assert(holds<T>, "polymap::typed_store: T is not one of the store's value types (typed_store<Ts...>)");
    return std::get<map_type<T>>(maps_);
  }

  // --- typed reads -----------------------------------------------------------
  // The value of k, or errc::not_found naming the key.
  template <class T>
  requires store_value_type<T, Ts...> result<T> get(const key<T>& k)
  const {
    std::optional<T> v = map<T>().find(k.name());
    if (!v) return detail::not_found_error(k.name());
    return std::move(*v);
  }

  // The same by name, in the domain of T: store.get<std::int64_t>("timeout").
  template <class T, class Q>
  requires(store_value_type<T, Ts...>&& std::is_convertible_v<const Q&, std::string_view> &&
           !detail::is_key<Q>::value) result<T> get(const Q& name)
  const {
    const std::string_view n(name);
    std::optional<T> v = map<T>().find(n);
    if (!v) return detail::not_found_error(n);
    return std::move(*v);
  }

  template <class T>
  requires store_value_type<T, Ts...> std::optional<T> find(const key<T>& k)
  const { return map<T>().find(k.name()); }

  template <class T>
  requires store_value_type<T, Ts...>
  bool contains(const key<T>& k) const { return map<T>().contains(k.name()); }

  // Calls f(const T&) under the map's protection if k is present.
  template <class T, class F>
  requires store_value_type<T, Ts...>
  bool visit(const key<T>& k, F f) const {
    static_assert(std::is_invocable_v<F&, const T&>, "polymap::typed_store::visit: f must take (const T&)");
    return map<T>().visit(k.name(), std::move(f));
  }

  // Calls f(const std::string& name, const T& v) for every entry of type T.
  template <class T, class F>
  requires store_value_type<T, Ts...>
  void for_each(F f) const { map<T>().for_each(std::move(f)); }

  // Calls f(name, v) for every entry of every type that f accepts, one map
  // after the other (a generic lambda visits them all).
  template <class F>
  void for_each(F f) const {
    (for_each_if_invocable<Ts>(f), ...);
  }

  template <class T>
  requires store_value_type<T, Ts...> std::size_t size()
  const { return map<T>().size(); }
  std::size_t size() const { return (map<Ts>().size() + ...); }
  bool empty() const { return size() == 0; }

  // --- typed writes ----------------------------------------------------------
  // Inserts or assigns; x must convert to T without narrowing. True if inserted.
  template <class T, class U>
  requires(store_value_type<T, Ts...>&& non_narrowing<U, T>) bool set(const key<T>& k, U&& x) {
    return map<T>().insert_or_assign(k.name(), T{std::forward<U>(x)});
  }

  template <class T, class U>
  requires(store_value_type<T, Ts...>&& non_narrowing<U, T>) bool insert_or_assign(const key<T>& k, U&& x) {
    return map<T>().insert_or_assign(k.name(), T{std::forward<U>(x)});
  }

  // Inserts only when absent; false (store unchanged) if k is present.
  template <class T, class U>
  requires(store_value_type<T, Ts...>&& non_narrowing<U, T>) bool insert(const key<T>& k, U&& x) {
    return map<T>().insert(k.name(), T{std::forward<U>(x)});
  }

  // Atomic: inserts x, or calls f(T&) on the stored value. True if inserted.
  template <class T, class U, class F>
  requires(store_value_type<T, Ts...>&& non_narrowing<U, T>) bool insert_or_visit(const key<T>& k, U&& x, F f) {
    static_assert(std::is_invocable_v<F&, T&>, "polymap::typed_store::insert_or_visit: f must take (T&)");
    return map<T>().insert_or_visit(k.name(), T{std::forward<U>(x)}, std::move(f));
  }

  // Atomic read-modify-write: stores f(cur) (cur is nullptr when absent) and
  // returns the value stored.
  template <class T, class F>
  requires store_value_type<T, Ts...> T update(const key<T>& k, F f) {
    static_assert(std::is_convertible_v<std::invoke_result_t<F&, const T*>, T>,
                  "polymap::typed_store::update: f must take (const T*) and return a T");
    return map<T>().update(k.name(), [&f](const T* cur) -> T { return f(cur); });
  }

  template <class T, class U>
  requires(store_value_type<T, Ts...>&& non_narrowing<U, T>) bool compare_exchange(
      const key<T>& k, const std::type_identity_t<T>& expected, U&& desired) {
    return map<T>().compare_exchange(k.name(), expected, T{std::forward<U>(desired)});
  }

  template <class T>
  requires store_value_type<T, Ts...>
  bool erase(const key<T>& k) { return map<T>().erase(k.name()); }

  // Erases the entries of type T for which pred(name, v) is true.
  template <class T, class P>
  requires store_value_type<T, Ts...> std::size_t erase_if(P pred) { return map<T>().erase_if(std::move(pred)); }

  template <class T>
  requires store_value_type<T, Ts...>
  void clear() { map<T>().clear(); }
  void clear() { (map<Ts>().clear(), ...); }

  template <class T>
  requires store_value_type<T, Ts...>
  void reserve(std::size_t n) { map<T>().reserve(n); }

  // --- statistics ------------------------------------------------------------
  template <class T>
  stats_t stats() const {
    static_assert(holds<T>, "polymap::typed_store: T is not one of the store's value types (typed_store<Ts...>)");
    return map<T>().stats();
  }

  // The sum over every type's map: sizes, capacities, growths, lock waits,
  // bytes and probe-length histograms add up; the load factor is recomputed.
  stats_t stats() const {
    stats_t total;
    (add_stats(total, map<Ts>().stats()), ...);
    total.map = "typed_store<" + (total.map.empty() ? std::string("?") : total.map) + ">";
    total.load_factor = total.capacity ? static_cast<double>(total.size) / static_cast<double>(total.capacity) : 0.0;
    return total;
  }

 private:
  template <class T, class F>
  void for_each_if_invocable(F& f) const {
    if constexpr (std::is_invocable_v<F&, const std::string&, const T&>) {
      map<T>().for_each([&f](const std::string& k, const T& v) { f(k, v); });
    }
  }

  static void add_stats(stats_t& total, const stats_t& s) {
    if (total.map.empty()) total.map = s.map;
    total.size += s.size;
    total.capacity += s.capacity;
    total.growths += s.growths;
    total.lock_waits += s.lock_waits;
    total.bytes += s.bytes;
    if (total.probe_length_histogram.size() < s.probe_length_histogram.size())
      total.probe_length_histogram.resize(s.probe_length_histogram.size());
    for (std::size_t i = 0; i < s.probe_length_histogram.size(); ++i)
      total.probe_length_histogram[i] += s.probe_length_histogram[i];
  }

  std::tuple<map_type<Ts>...> maps_;
};

// The store over the library's concurrent map: lock-free reads, per-group
// write locks. basic_typed_store<locked_map, Ts...> is the baseline.
template <class... Ts>
using typed_store = basic_typed_store<concurrent_map, Ts...>;

}  // namespace polymap

// polymap/verify/checker.hpp — a per-key linearizability checker.
//
// WHAT IT DECIDES
//   Whether a recorded history (history.hpp) can be explained by some total
//   order of its operations that (1) respects real time: if A returned before
//   B was invoked, A comes first, and (2) replays correctly against the
//   sequential model (model.hpp), starting from an empty map.
//
// ALGORITHM
//   Wing & Gong's search with Lowe's memoization, in the iterative form that
//   Porcupine uses, run once per key (P-compositionality: a map's operations
//   on different keys are independent, so the history is linearizable iff
//   every key's sub-history is; this turns one huge search into many small
//   ones).
//     * The key's operations become call and return events, sorted by time
//       (a call before a return at an equal stamp: overlapping), in a doubly
//       linked list.
//     * Walk the list from its head. At a call, try to linearize the
//       operation now: if the model accepts its result from the current
//       state and (linearized set, new state) was never seen, push
//       (operation, old state), unlink its call and return, restart from the
//       head. At a return, the operation it belongs to cannot be put off any
//       longer, so this branch failed: pop, relink, try the next call.
//     * An empty list means every operation found its place: linearizable.
//       Popping an empty stack means no order works: a violation.
//   The memo holds each (linearized set, state) pair once. The set is kept
//   as a 128-bit Zobrist hash (the XOR of a random 128-bit word per
//   operation), updated in O(1) per step instead of copying an N-bit bitset:
//   two different sets share a hash with probability about 2^-128 per pair.
//
// MINIMAL FAILING SUB-HISTORY
//   For a failing key: the shortest failing prefix (by invocation order) is
//   found by bisection, then shrunk by delta debugging (drop chunks of
//   operations, halving the chunk size, keeping every drop after which the
//   rest still fails; ends with single operations), so what is printed is
//   1-minimal: removing any one operation makes it linearizable.
//
// LIMITS
//   The search is exponential in the worst case (many overlapping
//   operations whose results fit several orders). options::max_steps bounds
//   the work per key; a key that hits it is reported as `inconclusive`, not
//   as passed or failed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "polymap/detail/hash.hpp"
#include "polymap/verify/history.hpp"
#include "polymap/verify/model.hpp"

namespace polymap::verify {

struct check_options {
  std::uint64_t max_steps = 50'000'000;  // search steps per key before giving up (inconclusive)
  bool minimize = true;                  // shrink failing keys to a minimal sub-history
  std::size_t max_reported = 3;          // violations to minimize and print in full
};

enum class verdict { linearizable, violation, inconclusive };

template <class K, class V>
struct violation {
  K key;
  std::vector<operation<K, V>> ops;  // the minimal failing sub-history, by invocation
  std::string text;                  // ops printed, one per line
};

template <class K, class V>
struct check_result {
  std::size_t operations = 0;
  std::size_t keys = 0;
  std::size_t violating_keys = 0;
  std::size_t inconclusive_keys = 0;
  std::uint64_t steps = 0;  // search steps over all keys
  std::vector<violation<K, V>> violations;

  bool ok() const noexcept { return violating_keys == 0 && inconclusive_keys == 0; }
  std::string report() const {
    std::string s = fmt::format("{} operations on {} keys: {} violating, {} inconclusive\n", operations, keys,
                                violating_keys, inconclusive_keys);
    for (const auto& v : violations) s += v.text;
    return s;
  }
};

namespace detail_check {

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct zobrist {
  std::uint64_t a = 0, b = 0;
  void flip(std::size_t i) noexcept {
    a ^= splitmix64(2 * i + 1);
    b ^= splitmix64(2 * i + 0x5bd1e995ull);
  }
};

template <class V>
struct memo_entry {
  zobrist z;
  std::optional<V> state;
  std::size_t h;
  bool operator==(const memo_entry& o) const { return z.a == o.z.a && z.b == o.z.b && state == o.state; }
};
struct memo_hash {
  template <class E>
  std::size_t operator()(const E& e) const noexcept {
    return e.h;
  }
};

struct event {
  std::uint32_t op;
  bool is_call;
  std::uint64_t time;
  event* prev = nullptr;
  event* next = nullptr;
  event* match = nullptr;  // a call's return event
};

}  // namespace detail_check

// Checks one key's operations (any order); `steps` accumulates search work.
template <class K, class V>
verdict check_key(const std::vector<const operation<K, V>*>& ops, std::uint64_t max_steps, std::uint64_t& steps,
                  const std::optional<V>& initial = std::nullopt) {
  using namespace detail_check;
  using M = model<V>;
  const std::size_t n = ops.size();
  if (n == 0) return verdict::linearizable;

  std::vector<event> ev;
  ev.reserve(2 * n + 1);
  ev.push_back(event{0, false, 0});  // head sentinel
  for (std::uint32_t i = 0; i < n; ++i) {
    ev.push_back(event{i, true, ops[i]->invoke});
    ev.push_back(event{i, false, ops[i]->response});
  }
  std::vector<event*> order;
  order.reserve(2 * n);
  for (std::size_t i = 1; i < ev.size(); ++i) order.push_back(&ev[i]);
  std::sort(order.begin(), order.end(), [](const event* x, const event* y) {
    if (x->time != y->time) return x->time < y->time;
    return x->is_call && !y->is_call;  // equal stamps: overlapping
  });
  event* head = &ev[0];
  event* prev = head;
  for (event* e : order) {
    prev->next = e;
    e->prev = prev;
    prev = e;
  }
  for (std::uint32_t i = 0; i < n; ++i) ev[1 + 2 * i].match = &ev[2 + 2 * i];

  auto lift = [](event* call) {
    call->prev->next = call->next;
    if (call->next) call->next->prev = call->prev;
    event* ret = call->match;
    ret->prev->next = ret->next;
    if (ret->next) ret->next->prev = ret->prev;
  };
  auto unlift = [](event* call) {
    event* ret = call->match;
    ret->prev->next = ret;
    if (ret->next) ret->next->prev = ret;
    call->prev->next = call;
    if (call->next) call->next->prev = call;
  };

  struct frame {
    event* call;
    std::optional<V> state;
    zobrist z;
  };
  std::vector<frame> stack;
  stack.reserve(n);
  std::unordered_set<memo_entry<V>, memo_hash> memo;
  memo.reserve(n * 2);

  std::optional<V> state = initial;
  zobrist z;
  event* e = head->next;
  std::optional<V> next;
  while (head->next != nullptr) {
    if (++steps, --max_steps == 0) return verdict::inconclusive;
    if (e->is_call) {
      const auto& o = *ops[e->op];
      if (M::step(state, o, next)) {
        zobrist z2 = z;
        z2.flip(e->op);
        memo_entry<V> me{z2, next, z2.a ^ M::hash(next)};
        if (memo.insert(std::move(me)).second) {
          stack.push_back(frame{e, std::move(state), z});
          state = std::move(next);
          z = z2;
          lift(e);
          e = head->next;
          continue;
        }
      }
      e = e->next;
    } else {
      if (stack.empty()) return verdict::violation;
      frame f = std::move(stack.back());
      stack.pop_back();
      state = std::move(f.state);
      z = f.z;
      unlift(f.call);
      e = f.call->next;
    }
  }
  return verdict::linearizable;
}

// True for an operation that cannot change the key's state whatever order it
// takes (a read, or a write that reported it did nothing). Dropping one from
// a failing history only removes constraints, so what remains is a genuine
// failing sub-history, never an artifact such as a read of a value whose
// write was dropped.
template <class K, class V>
bool is_observer(const operation<K, V>& o) {
  switch (o.kind) {
    case op_kind::find:
    case op_kind::contains:
      return true;
    case op_kind::insert:
    case op_kind::erase:
    case op_kind::compare_exchange:
      return !o.ok;
    default:
      return false;
  }
}

// A failing key history shrunk for people to read: `ops` in invocation order
// and the states the window may start from (empty: the key is absent).
template <class K, class V>
struct minimal_failure {
  std::vector<const operation<K, V>*> ops;
  std::vector<std::optional<V>> initial;  // every candidate fails
};

// Shrinks a failing key history:
//   1. the shortest failing prefix (by invocation; bisection keeps it failing);
//   2. the latest start s such that the window [s, end) fails from every
//      state the earlier operations could have left (over-approximated by:
//      absent, or any value written before s);
//   3. delta debugging over the window's observers (is_observer): drop chunks,
//      halving the chunk size, while the rest still fails.
// Steps 1 and 2 cut only where the cut is real-time: every operation before
// it returned before the first one after it was invoked. Any linearization
// then orders the two sides the same way, so a failing piece is a genuine
// witness. A cut through overlapping operations is not: an operation invoked
// later may take effect earlier (e.g. the write an update's result depends
// on), and dropping it made a correct history look wrong (seen under TSan:
// `insert_or_assign(k, 2); update(k, add 2) -> 6`, whose 4 was written by a
// dropped, overlapping call).
template <class K, class V>
minimal_failure<K, V> minimize(std::vector<const operation<K, V>*> ops, std::uint64_t max_steps,
                               const std::optional<V>& start = std::nullopt) {
  using op_ptr = const operation<K, V>*;
  std::uint64_t steps = 0;
  std::size_t budget = 4000;  // checks, in all
  auto fails_from = [&](const std::vector<op_ptr>& sub, const std::vector<std::optional<V>>& starts) {
    for (const auto& s0 : starts) {
      if (budget == 0) return false;
      --budget;
      if (check_key<K, V>(sub, max_steps, steps, s0) != verdict::violation) return false;
    }
    return true;
  };
  std::sort(ops.begin(), ops.end(), [](op_ptr a, op_ptr b) { return a->invoke < b->invoke; });
  const std::vector<std::optional<V>> from_empty{start};
  auto range = [&](std::size_t b, std::size_t e) {
    return std::vector<op_ptr>(ops.begin() + static_cast<std::ptrdiff_t>(b),
                               ops.begin() + static_cast<std::ptrdiff_t>(e));
  };

  // The real-time cuts: 0, n, and every i where ops [0, i) all returned
  // before ops[i] was invoked (ops are sorted by invocation, so also before
  // every later one). A call and a return at an equal stamp overlap.
  std::vector<std::size_t> cuts{0};
  {
    std::uint64_t last_return = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (i > 0 && last_return < ops[i]->invoke) cuts.push_back(i);
      last_return = std::max(last_return, ops[i]->response);
    }
    if (!ops.empty()) cuts.push_back(ops.size());
  }

  // 1. The shortest failing prefix: the whole history fails, the empty one
  //    does not; bisect over the cuts.
  std::size_t lo = 0, hi = cuts.size() - 1;
  while (hi - lo > 1) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (fails_from(range(0, cuts[mid]), from_empty))
      hi = mid;
    else
      lo = mid;
  }
  const std::size_t end = cuts[hi];
  const std::size_t end_cut = hi;

  // 2. The latest start. Candidates: absent and the distinct values written
  //    before the start (the most recent 64, to bound the work).
  auto starts_before = [&](std::size_t s) {
    std::vector<std::optional<V>> c{std::nullopt};
    if (start) c.push_back(start);
    for (std::size_t i = s; i-- > 0 && c.size() < 65;) {
      const auto& o = *ops[i];
      std::optional<V> w;
      if ((o.kind == op_kind::insert && o.ok) || o.kind == op_kind::insert_or_assign ||
          (o.kind == op_kind::compare_exchange && o.ok))
        w = o.arg;
      else if (o.kind == op_kind::update || o.kind == op_kind::update_add)
        w = o.out;
      if (w && std::find(c.begin(), c.end(), w) == c.end()) c.push_back(std::move(w));
    }
    return c;
  };
  // Indices into cuts: [cuts[good], end) fails; [cuts[bad], end) is not known to.
  std::size_t good = 0, bad = end_cut;
  while (bad - good > 1) {
    const std::size_t mid = good + (bad - good) / 2;
    if (fails_from(range(cuts[mid], end), starts_before(cuts[mid])))
      good = mid;
    else
      bad = mid;
  }
  minimal_failure<K, V> out;
  out.ops = range(cuts[good], end);
  out.initial = cuts[good] == 0 ? from_empty : starts_before(cuts[good]);

  // 3. Drop observers while the rest still fails.
  for (std::size_t chunk = std::max<std::size_t>(out.ops.size() / 2, 1);; chunk /= 2) {
    for (std::size_t i = 0; i < out.ops.size();) {
      std::vector<op_ptr> rest;
      std::size_t dropped = 0;
      for (std::size_t j = 0; j < out.ops.size(); ++j) {
        if (j >= i && j < i + chunk && is_observer(*out.ops[j])) {
          ++dropped;
          continue;
        }
        rest.push_back(out.ops[j]);
      }
      if (dropped > 0 && !rest.empty() && fails_from(rest, out.initial))
        out.ops = std::move(rest);
      else
        i += chunk;
    }
    if (chunk == 1) break;
  }
  return out;
}

template <class K, class V>
std::string format_ops(const std::vector<const operation<K, V>*>& ops) {
  std::string s;
  if (ops.empty()) return s;
  std::uint64_t t0 = ops.front()->invoke;
  for (auto* o : ops) t0 = std::min(t0, o->invoke);
  for (auto* o : ops) {
    s += fmt::format("    T{} [{:>10.3f} .. {:>10.3f}] us  {}\n", o->thread, static_cast<double>(o->invoke - t0) / 1e3,
                     static_cast<double>(o->response - t0) / 1e3, model<V>::describe(*o));
  }
  return s;
}

// The map's contents when the history began (quiescent: no call in flight);
// keys not in it start absent.
template <class K, class V>
using initial_state = std::unordered_map<K, V, polymap::hash<K>, polymap::key_equal<K>>;

// Checks a whole history, key by key, from `initial` (empty by default).
template <class K, class V>
check_result<K, V> check(const history<K, V>& h, const check_options& opt = {},
                         const initial_state<K, V>& initial = {}) {
  using Hash = polymap::hash<K>;
  using Eq = polymap::key_equal<K>;
  check_result<K, V> r;
  r.operations = h.size();
  std::unordered_map<K, std::vector<const operation<K, V>*>, Hash, Eq> by_key;
  for (const auto& o : h) by_key[o.key].push_back(&o);
  r.keys = by_key.size();
  for (auto& [k, ops] : by_key) {
    std::optional<V> start;
    if (auto it = initial.find(k); it != initial.end()) start = it->second;
    const verdict v = check_key<K, V>(ops, opt.max_steps, r.steps, start);
    if (v == verdict::linearizable) continue;
    if (v == verdict::inconclusive) {
      ++r.inconclusive_keys;
      continue;
    }
    ++r.violating_keys;
    if (r.violations.size() >= opt.max_reported) continue;
    minimal_failure<K, V> shown{ops, {start}};
    if (opt.minimize) shown = minimize<K, V>(ops, opt.max_steps, start);
    violation<K, V> viol{k, {}, {}};
    for (auto* o : shown.ops) viol.ops.push_back(*o);
    std::string from = "the key absent";
    if (shown.initial.size() == 1 && shown.initial.front()) from = value_traits<V>::show(*shown.initial.front());
    if (shown.initial.size() > 1) {
      from = "any of: ";
      for (std::size_t i = 0; i < shown.initial.size() && i < 8; ++i) {
        const auto& s0 = shown.initial[i];
        from += (i ? ", " : "") + (s0 ? value_traits<V>::show(*s0) : std::string("absent"));
      }
      if (shown.initial.size() > 8)
        from += fmt::format(" (and {} more values written earlier)", shown.initial.size() - 8);
    }
    viol.text = fmt::format(
        "  key {}: not linearizable ({} operations on the key); {} failing sub-history ({} operations), "
        "starting from {}:\n{}",
        show_key(k), ops.size(), opt.minimize ? "minimal" : "whole", shown.ops.size(), from,
        format_ops<K, V>(shown.ops));
    r.violations.push_back(std::move(viol));
  }
  return r;
}

}  // namespace polymap::verify

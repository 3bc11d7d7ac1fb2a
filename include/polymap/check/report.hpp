// polymap/check/report.hpp — what polymap's misuse detectors report, and who
// hears it.
//
// TERMS
//   site     one side of a conflict: the operation's name ("insert_or_assign"),
//            the caller's source location (file, function, line) and the calling thread's id.
//   report   a detected misuse: its kind, the object it happened on, the site
//            that detected it ("here") and, where known, the other side.
//   handler  the object that receives reports. One process-wide handler, set
//            with set_report_handler() or, for a scope, scoped_report_handler.
//
// KINDS
//   write_write       two writers inside one container at once (checked<M>)
//   read_write        a reader and a writer inside one container at once
//   unlocked_access   a guarded<M> touched without holding its mutex
//   stale_reference   a checked_ref used after its container was changed by an
//                     erase, an overwrite, a clear or a growth
//   stale_write       a write based on a stale read (stale_checked<M>, stale.hpp):
//                     this thread read a key, another thread's write of it landed,
//                     then this thread wrote it; the report also names the read
//                     (`read`), the key and how many writes were overwritten unseen
//
// HANDLERS
//   The default handler (abort_handler) prints the report to stderr and calls
//   std::abort(): a detected race is a bug, and going on risks memory
//   corruption, exactly as Go's runtime does with "concurrent map writes".
//   counting_handler logs the first few reports and counts all of them, for a
//   production canary that must not take the service down; recording_handler
//   keeps every report, for tests.
//
//   A handler runs on the thread that detected the misuse, possibly on several
//   threads at once: it must be thread-safe. It must not call back into the
//   container it is told about.
//
// WHY NOT A MUTEX AROUND THE HANDLER POINTER
//   The handler pointer is an atomic read with acquire on every report, not a
//   lock: a mutex taken by every reporting thread would be "incidental
//   synchronization" (hazard 2 in seed/README.md) and could hide the very race
//   being reported from ThreadSanitizer.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace polymap::check {

enum class conflict : unsigned char {
  write_write,
  read_write,
  unlocked_access,
  stale_reference,
  stale_write,
};

constexpr std::string_view to_string(conflict c) noexcept {
  switch (c) {
    case conflict::write_write:
      return "concurrent writes";
    case conflict::read_write:
      return "concurrent read and write";
    case conflict::unlocked_access:
      return "access without holding the container's mutex";
    case conflict::stale_reference:
      return "reference used after its container changed";
    case conflict::stale_write:
      return "write based on a stale read (lost update)";
  }
  return "unknown";
}

// Where in the source a call was made (see site.hpp for how it is captured).
struct code_location {
  const char* file = "";
  const char* function = "";
  std::uint_least32_t line = 0;
};

// One side of a conflict.
struct site {
  std::string_view op;  // a string literal: the operation's name; empty if unknown
  code_location where{};
  std::thread::id thread{};

  bool known() const noexcept { return !op.empty(); }
};

struct report {
  conflict kind = conflict::write_write;
  const void* object = nullptr;  // the container (or mutex) concerned
  std::string_view object_type;  // e.g. "checked<std::unordered_map<...>>"; may be empty
  site here;                     // the site that detected the misuse
  site other;                    // the other side, where known
  std::string detail;            // one line: what was seen, what to do
  // stale_write only: the read `here`'s write was based on (same thread), the
  // key as text, and the writes of it this write overwrote unseen (0: unknown).
  site read;
  std::string key;
  std::uint64_t lost_writes = 0;
};

inline std::string describe(const site& s) {
  if (!s.known()) return "unknown site";
  std::ostringstream os;
  os << s.op << " at " << s.where.file << ':' << s.where.line;
  if (s.where.function && *s.where.function) os << " in " << s.where.function;
  os << " (thread " << s.thread << ')';
  return os.str();
}

// The report as the default handler prints it: several lines, no trailing newline.
inline std::string to_string(const report& r) {
  std::ostringstream os;
  os << "polymap check: " << to_string(r.kind);
  if (!r.object_type.empty()) os << " on " << r.object_type;
  os << " @" << r.object << "\n  this side:  " << describe(r.here);
  if (r.read.known()) os << "\n  read before: " << describe(r.read);
  os << "\n  other side: " << (r.other.known() ? describe(r.other) : std::string("not recorded"));
  if (!r.detail.empty()) os << "\n  " << r.detail;
  return os.str();
}

class report_handler {
 public:
  virtual ~report_handler() = default;
  virtual void on_report(const report& r) = 0;
};

// Prints and aborts: the default.
class abort_handler final : public report_handler {
 public:
  void on_report(const report& r) override {
    std::fprintf(stderr, "%s\n  aborting (install polymap::check::counting_handler to log and go on)\n",
                 to_string(r).c_str());
    std::fflush(stderr);
    std::abort();
  }
};

// Logs the first `log_limit` reports to stderr and counts every report: for
// production canaries. count() may be read from any thread.
class counting_handler final : public report_handler {
 public:
  explicit counting_handler(std::uint64_t log_limit = 10) : log_limit_(log_limit) {}
  void on_report(const report& r) override {
    // relaxed: a counter; nothing else is published through it.
    const auto n = count_.fetch_add(1, std::memory_order_relaxed);
    if (n < log_limit_) std::fprintf(stderr, "%s\n", to_string(r).c_str());
  }
  std::uint64_t count() const noexcept {
    return count_.load(std::memory_order_relaxed);  // relaxed: pairs with the fetch_add above, a statistic
  }

 private:
  std::uint64_t log_limit_;
  std::atomic<std::uint64_t> count_{0};
};

// Keeps every report: for tests. The mutex is only taken when a report is
// made, never on the detectors' fast paths.
class recording_handler final : public report_handler {
 public:
  void on_report(const report& r) override {
    std::lock_guard lock(mutex_);
    reports_.push_back(r);
  }
  std::vector<report> reports() const {
    std::lock_guard lock(mutex_);
    return reports_;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return reports_.size();
  }
  std::size_t count(conflict kind) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& r : reports_) n += r.kind == kind;
    return n;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    reports_.clear();
  }

 private:
  mutable std::mutex mutex_;  // Protects: reports_.
  std::vector<report> reports_;
};

namespace detail {
inline abort_handler default_handler;
// acquire/release: the release in set_report_handler publishes the handler
// object's construction to the acquire load in deliver().
inline std::atomic<report_handler*> current_handler{&default_handler};
}  // namespace detail

// Installs h (nullptr: the default) and returns the previous handler. The
// handler must outlive its installation.
inline report_handler* set_report_handler(report_handler* h) noexcept {
  return detail::current_handler.exchange(h ? h : &detail::default_handler, std::memory_order_acq_rel);
}

inline report_handler* get_report_handler() noexcept {
  return detail::current_handler.load(std::memory_order_acquire);  // acquire: pairs with set_report_handler
}

// Installs a handler for the lifetime of this object.
class scoped_report_handler {
 public:
  explicit scoped_report_handler(report_handler& h) noexcept : previous_(set_report_handler(&h)) {}
  ~scoped_report_handler() { set_report_handler(previous_); }
  scoped_report_handler(const scoped_report_handler&) = delete;
  scoped_report_handler& operator=(const scoped_report_handler&) = delete;

 private:
  report_handler* previous_;
};

// Sends r to the current handler. Never inlined: it is the cold path.
[[gnu::noinline, gnu::cold]] inline void deliver(const report& r) {
  get_report_handler()->on_report(r);
}

}  // namespace polymap::check

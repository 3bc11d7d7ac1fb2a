// polymap/detail/table_memory.hpp — where concurrent_map's large tables
// get their memory: zero-page mappings (map_table), faulting them in ahead
// of use (populate_pages, TOUCH), opt-in huge pages, unmapping aside, and
// the one freed table the process keeps for the next growth (RECYCLE).
// inline_table.hpp decides when; this file knows only pages.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <utility>

namespace polymap::detail {

// Opt-in huge pages (POLYMAP_HUGE_PAGES set to anything but empty or "0",
// read once per process): a table of kHugeMinBytes or more asks for
// transparent huge pages (MADV_HUGEPAGE), its range aligned to 2 MB. One
// fault per 2 MB instead of 512: 2M u64 inserts from empty, 2 threads, p99
// 14 -> 4.5 us and 1.2x the throughput, but p99.99 70 -> 110 us (each huge
// fault zeroes 2 MB in one insert), and where the system's THP defrag
// policy compacts on fault, a fault may stall for longer. Off by default
// for that reason (docs/concurrent_map.md, session 12).
inline bool table_huge_pages() noexcept {
  static const bool on = [] {
    const char* e = std::getenv("POLYMAP_HUGE_PAGES");
    return e != nullptr && e[0] != '\0' && e[0] != '0';
  }();
  return on;
}
inline constexpr std::size_t kHugePage = std::size_t{2} << 20, kHugeMinBytes = std::size_t{4} << 20;

// TOUCH: on this project's VMs the first user-mode write into each 2 MB
// region of a mapping costs about 150 us, even after MADV_POPULATE_WRITE
// faulted its pages in (the hypervisor builds its view of that region's
// page table then); later first writes to its pages cost about 5 us. A
// migration's first moves write groups all over the next table, so they
// paid it for region after region: the 0.5-2 ms inserts at each growth's
// start (docs/concurrent_map.md, session 19). Writing one byte per region
// right after populating it pays it once, in the populate step.
inline constexpr std::size_t kTouchRegion = std::size_t{2} << 20;

// Writes a zero byte at each kTouchRegion-aligned address in [p, p + n)
// and, if start, at p. Precondition: those bytes are zero and no other
// thread uses them (a table not yet shared). volatile: the store must
// happen though it writes the value already there.
inline void touch_regions(char* p, std::size_t n, bool start) noexcept {
  if (n == 0) return;
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::size_t off = (kTouchRegion - addr % kTouchRegion) % kTouchRegion;
  if (start && off != 0) *static_cast<volatile char*>(p) = 0;
  for (; off < n; off += kTouchRegion) *static_cast<volatile char*>(p + off) = 0;
}

// Faults in n bytes of a mapping for writing now (and TOUCH: pays each 2 MB
// region's first write; start: also the region p lies in). False where the
// kernel has no MADV_POPULATE_WRITE (older than 5.14) or refuses it: the
// pages then fault on first write. Precondition: as touch_regions.
inline bool populate_pages(char* p, std::size_t n, bool start) noexcept {
#ifdef MADV_POPULATE_WRITE
  if (::madvise(p, n, MADV_POPULATE_WRITE) != 0) return false;
  touch_regions(p, n, start);
  return true;
#else
  (void)p;
  (void)n;
  (void)start;
  return false;
#endif
}

// A table of this many bytes or more is "large": its freed mapping is kept
// for the next growth (RECYCLE, below) or, if not, unmapped by a short-lived
// thread (unmap_aside, below). Both because unmapping it costs a
// writer milliseconds (about 60 us per MB on these VMs).
inline constexpr std::size_t kLargeTableBytes = std::size_t{8} << 20;

// Tables being unmapped by unmap_aside's threads now. relaxed: a count that
// wait_for_aside_unmaps polls; nothing is published through it.
inline std::atomic<int> aside_unmaps{0};

// Bytes of table mappings the process holds now (map_table's, the spare
// RECYCLE keeps; a mapping handed to unmap_aside no longer counts): what a
// count of operator new misses (the bench's bytes per entry adds it).
// relaxed: a statistic; nothing is published through it.
inline std::atomic<long long> mapped_table_bytes_now{0};
inline long long mapped_table_bytes() noexcept {
  return mapped_table_bytes_now.load(std::memory_order_relaxed);
}
inline void count_mapped(std::size_t n, int sign) noexcept {
  mapped_table_bytes_now.fetch_add(sign * static_cast<long long>(n), std::memory_order_relaxed);
}

// Unmaps [p, p + n) on a short-lived detached thread (inline on the caller
// if no thread can be started): unmapping a large populated table takes
// milliseconds (about 60 us per MB here), which the writer whose epoch poll
// freed it would otherwise pay.
inline void unmap_aside(void* p, std::size_t n) noexcept {
  count_mapped(n, -1);
  aside_unmaps.fetch_add(1, std::memory_order_relaxed);  // relaxed: see aside_unmaps
  try {
    std::thread([p, n] {
      ::munmap(p, n);
      aside_unmaps.fetch_sub(1, std::memory_order_relaxed);
    }).detach();
  } catch (...) {
    ::munmap(p, n);
    aside_unmaps.fetch_sub(1, std::memory_order_relaxed);
  }
}
// Unmaps a table's mapping (nothing for p == nullptr): aside if it is large.
inline void unmap_table(void* p, std::size_t n) noexcept {
  if (p == nullptr) return;
  if (n >= kLargeTableBytes) {
    unmap_aside(p, n);
  } else {
    count_mapped(n, -1);
    ::munmap(p, n);
  }
}

// Test hook: fill the heap tables that are allocated unzeroed (PREPARE)
// with 0xA5 bytes, so a populate step left out shows as garbage groups
// whatever the allocator handed back (asan and tsan hand out fresh zero
// pages). relaxed: a setting read alone.
inline std::atomic<bool> debug_dirty_unzeroed_tables{false};

// RECYCLE: the process keeps one freed table mapping (recycle_min_bytes or
// more, its pages still resident) for the next large table it maps: mremap
// moves the spare's pages to the front of the new range (page-table
// entries move; no page is freed or faulted), and the new table zeroes
// that stale front itself (a memset of warm memory, in its populate steps
// when it is prepared) instead of faulting fresh pages there.
// Why: a map that grows by doubling frees the table before last while its
// next successor is still to come. Unmapping it took a writer's core for
// 2-6 ms on 2 vCPUs (the aside thread preempts a writer: the longest
// insert of `bench latency`), and the successor faulted as many fresh
// pages. The cost: until the next growth takes it (or release() is
// called) the spare stays resident, at most one freed table per process.
// Off with POLYMAP_HUGE_PAGES (huge-page tables keep their 2 MB alignment).
class table_spare {
 public:
  // Never destroyed: tables freed by the epoch domain at exit still call keep().
  static table_spare& get() noexcept {
    static table_spare* const s = new table_spare;
    return *s;
  }
  // A mapping of n bytes whose first `stale` bytes hold old data (the rest
  // zero pages), or nullptr (no spare fits, or mremap refused: then the
  // caller maps fresh pages as before).
  // The mremap runs outside the lock, so another map's keep() never waits
  // behind it.
  void* take(std::size_t n, std::size_t& stale) noexcept {
    void* p = nullptr;
    std::size_t m = 0;
    {
      std::lock_guard lock(mu_);
      if (p_ == nullptr || bytes_ > n) return nullptr;
      p = std::exchange(p_, nullptr);
      m = std::exchange(bytes_, 0);
    }
    void* q = ::mremap(p, m, n, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {  // the spare goes back (or is unmapped, aside, if another took its place)
      const auto [u, un] = keep_any(p, m);
      unmap_table(u, un);
      return nullptr;
    }
    count_mapped(n - m, +1);  // grown from the spare's m bytes
    stale = m;
    std::lock_guard lock(mu_);
    ++reused_;
    return q;
  }
  // Keeps p (n bytes) as the spare if it is at least as large as the one
  // held; returns the mapping the caller must unmap ({p, n}, the displaced
  // spare, or {nullptr, 0}).
  std::pair<void*, std::size_t> keep(void* p, std::size_t n) noexcept {
    if (n < recycle_min_bytes.load(std::memory_order_relaxed) || table_huge_pages()) return {p, n};
    return keep_any(p, n);
  }
  // Unmaps the spare; returns its bytes.
  std::size_t release() noexcept {
    std::lock_guard lock(mu_);
    const std::size_t n = bytes_;
    if (p_ != nullptr) {
      count_mapped(bytes_, -1);
      ::munmap(p_, bytes_);
    }
    p_ = nullptr;
    bytes_ = 0;
    return n;
  }
  std::size_t bytes() noexcept {
    std::lock_guard lock(mu_);
    return bytes_;
  }
  std::size_t reused() noexcept {
    std::lock_guard lock(mu_);
    return reused_;
  }
  // The smallest freed table kept (tests lower it to reach the path with
  // small maps). relaxed: a setting read alone.
  std::atomic<std::size_t> recycle_min_bytes{kLargeTableBytes};

 private:
  std::pair<void*, std::size_t> keep_any(void* p, std::size_t n) noexcept {
    std::lock_guard lock(mu_);
    if (bytes_ > n) return {p, n};
    const std::pair<void*, std::size_t> out{p_, bytes_};
    p_ = p;
    bytes_ = n;
    return out;
  }
  std::mutex mu_;
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
  std::size_t reused_ = 0;
};

// Returns once no aside unmap is in flight (or after `limit`): for a
// benchmark that must not time one map's teardown in the next map's run.
inline void wait_for_aside_unmaps(std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) noexcept {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (aside_unmaps.load(std::memory_order_relaxed) > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// n bytes of zero pages for a table's blocks (all-zero blocks are empty
// groups), page-aligned, populated now if populate. Throws std::bad_alloc
// if the kernel refuses. Unmapped with munmap(p, n).
inline void* map_table(std::size_t n, bool populate) {
  const bool huge = n >= kHugeMinBytes && table_huge_pages();
  const std::size_t extra = huge ? kHugePage : 0;
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | (populate && !huge ? MAP_POPULATE : 0);
  void* p = ::mmap(nullptr, n + extra, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  count_mapped(n, +1);  // the head and tail trimmed below never count
  char* b = static_cast<char*>(p);
  if (!huge) {
    if (populate) touch_regions(b, n, true);
    return b;
  }
  const auto addr = reinterpret_cast<std::uintptr_t>(b);
  char* a = b + ((kHugePage - addr % kHugePage) % kHugePage);
  if (a > b) ::munmap(b, static_cast<std::size_t>(a - b));  // the head and tail outside [a, a + n)
  if (b + n + extra > a + n) ::munmap(a + n, static_cast<std::size_t>(b + n + extra - (a + n)));
#ifdef MADV_HUGEPAGE
  (void)::madvise(a, n, MADV_HUGEPAGE);  // advice only: 4 KB pages where it is refused
#endif
  if (populate) populate_pages(a, n, true);  // else the pages fault in on first write
  return a;
}

}  // namespace polymap::detail

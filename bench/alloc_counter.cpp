// The counting global operator new behind bytes-per-entry (see driver.hpp).
// Counting is off except while one thread fills a map to measure it, so the
// timed runs pay one relaxed load per allocation and nothing else.
#include <atomic>
#include <cstdlib>
#include <new>

#include <malloc.h>

#include "bench/driver.hpp"

namespace {

// relaxed: both are read only by the measuring thread, after the allocations
// it measures; other threads allocate nothing while it measures.
std::atomic<bool> counting{false};
std::atomic<long long> live_bytes{0};

void* counted(void* p) {
  if (!p) throw std::bad_alloc();
  if (counting.load(std::memory_order_relaxed))
    live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}

void uncounted(void* p) noexcept {
  if (p && counting.load(std::memory_order_relaxed))
    live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

void* aligned(std::size_t n, std::align_val_t a) {
  const auto al = static_cast<std::size_t>(a);
  return std::aligned_alloc(al, (n + al - 1) / al * al);
}

}  // namespace

namespace polymap::bench {

long long counted_heap_bytes() {
  return live_bytes.load(std::memory_order_relaxed);
}
void set_heap_counting(bool on) {
  counting.store(on, std::memory_order_relaxed);
}

}  // namespace polymap::bench

void* operator new(std::size_t n) {
  return counted(std::malloc(n ? n : 1));
}
void* operator new[](std::size_t n) {
  return counted(std::malloc(n ? n : 1));
}
void* operator new(std::size_t n, std::align_val_t a) {
  return counted(aligned(n ? n : 1, a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted(aligned(n ? n : 1, a));
}
void operator delete(void* p) noexcept {
  uncounted(p);
}
void operator delete[](void* p) noexcept {
  uncounted(p);
}
void operator delete(void* p, std::size_t) noexcept {
  uncounted(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  uncounted(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  uncounted(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  uncounted(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  uncounted(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  uncounted(p);
}

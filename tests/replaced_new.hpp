// tests/replaced_new.hpp — replaces the whole global operator new/delete
// family with malloc/aligned_alloc/free, calling
//   void replaced_new::before_allocation();
// (defined by the including test) before every allocation: a counter, or a
// fault injector that throws std::bad_alloc. The nothrow forms turn a throw
// into nullptr. Include it in exactly one file of a test executable.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace replaced_new {

void before_allocation();

inline void* allocate(std::size_t n) {
  before_allocation();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
inline void* allocate_aligned(std::size_t n, std::align_val_t a) {
  before_allocation();
  const auto al = static_cast<std::size_t>(a);
  const std::size_t rounded = n == 0 ? al : (n + al - 1) / al * al;  // aligned_alloc wants a multiple of al
  if (void* p = std::aligned_alloc(al, rounded)) return p;
  throw std::bad_alloc();
}
template <class F>
void* no_throw(F f) noexcept {
  try {
    return f();
  } catch (...) {
    return nullptr;
  }
}

}  // namespace replaced_new

// GCC sees the replaced aligned new/delete pairs as malloc'ed memory handed
// to operator delete; every pair below is consistent (malloc or
// aligned_alloc, then free).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  return replaced_new::allocate(n);
}
void* operator new[](std::size_t n) {
  return replaced_new::allocate(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return replaced_new::no_throw([&] { return replaced_new::allocate(n); });
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return replaced_new::no_throw([&] { return replaced_new::allocate(n); });
}
void* operator new(std::size_t n, std::align_val_t a) {
  return replaced_new::allocate_aligned(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return replaced_new::allocate_aligned(n, a);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

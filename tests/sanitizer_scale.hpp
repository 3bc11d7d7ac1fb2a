// Whether this test binary runs under AddressSanitizer or ThreadSanitizer
// (GCC defines __SANITIZE_*__, clang answers __has_feature): stress tests
// divide their sizes by a factor there to stay within CI's time. The one
// place that asks; tests include it rather than repeat the #if.
#pragma once

#if !defined(__has_feature)
#define POLYMAP_TEST_HAS_FEATURE(x) 0
#else
#define POLYMAP_TEST_HAS_FEATURE(x) __has_feature(x)
#endif

namespace polymap::testing {

#if defined(__SANITIZE_THREAD__) || POLYMAP_TEST_HAS_FEATURE(thread_sanitizer)
inline constexpr bool under_thread_sanitizer = true;
#else
inline constexpr bool under_thread_sanitizer = false;
#endif
#if defined(__SANITIZE_ADDRESS__) || POLYMAP_TEST_HAS_FEATURE(address_sanitizer)
inline constexpr bool under_address_sanitizer = true;
#else
inline constexpr bool under_address_sanitizer = false;
#endif
inline constexpr bool under_sanitizer = under_thread_sanitizer || under_address_sanitizer;

}  // namespace polymap::testing

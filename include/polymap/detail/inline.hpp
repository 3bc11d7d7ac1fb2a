// polymap/detail/inline.hpp — POLYMAP_ALWAYS_INLINE, for the small functions
// on the lookup and write paths.
//
// Why: GCC's -O2 inliner stops inlining once a translation unit has grown
// past its unit-growth budget. In the benchmark driver (one large TU with
// every peer instantiated) it left version_lock::lock, inline_table::read,
// group_meta::load, the pin's fence and concurrent_map_traits::domain
// as calls on every write (perf, session 6), where a small test program
// inlined all of them. A user's service TU is as large, so the hot helpers
// are forced inline rather than left to the budget.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define POLYMAP_ALWAYS_INLINE [[gnu::always_inline]] inline
#else
#define POLYMAP_ALWAYS_INLINE inline
#endif

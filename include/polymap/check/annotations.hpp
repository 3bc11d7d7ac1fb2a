// polymap/check/annotations.hpp — Clang thread-safety annotations.
//
// Under clang with -Wthread-safety these let the compiler check that a
// guarded member is only touched with its mutex held (see
// https://clang.llvm.org/docs/ThreadSafetyAnalysis.html). Under g++ they
// expand to nothing: the runtime check in guarded<> still runs.
#pragma once

#if defined(__clang__)
#define POLYMAP_TSA(x) __attribute__((x))
#else
#define POLYMAP_TSA(x)
#endif

#define POLYMAP_CAPABILITY(x) POLYMAP_TSA(capability(x))
#define POLYMAP_SCOPED_CAPABILITY POLYMAP_TSA(scoped_lockable)
#define POLYMAP_GUARDED_BY(x) POLYMAP_TSA(guarded_by(x))
#define POLYMAP_PT_GUARDED_BY(x) POLYMAP_TSA(pt_guarded_by(x))
#define POLYMAP_REQUIRES(...) POLYMAP_TSA(requires_capability(__VA_ARGS__))
#define POLYMAP_REQUIRES_SHARED(...) POLYMAP_TSA(requires_shared_capability(__VA_ARGS__))
#define POLYMAP_ACQUIRE(...) POLYMAP_TSA(acquire_capability(__VA_ARGS__))
#define POLYMAP_ACQUIRE_SHARED(...) POLYMAP_TSA(acquire_shared_capability(__VA_ARGS__))
#define POLYMAP_RELEASE(...) POLYMAP_TSA(release_capability(__VA_ARGS__))
#define POLYMAP_RELEASE_SHARED(...) POLYMAP_TSA(release_shared_capability(__VA_ARGS__))
#define POLYMAP_RELEASE_GENERIC(...) POLYMAP_TSA(release_generic_capability(__VA_ARGS__))
#define POLYMAP_TRY_ACQUIRE(...) POLYMAP_TSA(try_acquire_capability(__VA_ARGS__))
#define POLYMAP_TRY_ACQUIRE_SHARED(...) POLYMAP_TSA(try_acquire_shared_capability(__VA_ARGS__))
#define POLYMAP_EXCLUDES(...) POLYMAP_TSA(locks_excluded(__VA_ARGS__))
#define POLYMAP_RETURN_CAPABILITY(x) POLYMAP_TSA(lock_returned(x))
#define POLYMAP_NO_THREAD_SAFETY_ANALYSIS POLYMAP_TSA(no_thread_safety_analysis)

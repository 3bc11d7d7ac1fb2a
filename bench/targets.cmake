# polymap_bench: the benchmark's adapters, workloads, driver and report, and
# the read-while-publishing benchmark (publish.cpp), as a library for
# `polymap bench` and tests/bench_*_test.cpp. Included from
# tools/polymap/CMakeLists.txt (tools/ is configured before bench/, and the
# CLI links this) or else from bench/CMakeLists.txt.
#
# Each peer is compiled only where its Debian package is found; the driver
# lists the maps this build has (`polymap bench --list`).
if(TARGET polymap_bench)
  return()
endif()

find_package(nlohmann_json REQUIRED)
set(_bench ${PROJECT_SOURCE_DIR}/bench)
add_library(polymap_bench STATIC
  ${_bench}/alloc_counter.cpp ${_bench}/charts.cpp ${_bench}/checked_overhead.cpp ${_bench}/driver.cpp ${_bench}/host_probe.cpp ${_bench}/latency.cpp ${_bench}/publish.cpp
  ${_bench}/report.cpp ${_bench}/results.cpp)
target_include_directories(polymap_bench PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(polymap_bench PUBLIC polymap::polymap nlohmann_json::nlohmann_json)
target_compile_definitions(polymap_bench PUBLIC POLYMAP_HAVE_BENCH=1
  PRIVATE POLYMAP_BENCH_BUILD_TYPE="$<IF:$<CONFIG:>,none,$<CONFIG>>")
target_compile_options(polymap_bench PRIVATE -Wall -Wextra)

find_package(TBB CONFIG QUIET)
if(TBB_FOUND)
  target_link_libraries(polymap_bench PRIVATE TBB::tbb)
  target_compile_definitions(polymap_bench PRIVATE POLYMAP_BENCH_HAVE_TBB=1)
endif()
find_package(libcuckoo CONFIG QUIET)
if(libcuckoo_FOUND)
  target_link_libraries(polymap_bench PRIVATE libcuckoo::libcuckoo)
  target_compile_definitions(polymap_bench PRIVATE POLYMAP_BENCH_HAVE_LIBCUCKOO=1)
endif()
find_path(POLYMAP_XENIUM_INCLUDE_DIR xenium/harris_michael_hash_map.hpp)
if(POLYMAP_XENIUM_INCLUDE_DIR)
  target_include_directories(polymap_bench SYSTEM PRIVATE ${POLYMAP_XENIUM_INCLUDE_DIR})
  target_compile_definitions(polymap_bench PRIVATE POLYMAP_BENCH_HAVE_XENIUM=1)
endif()
message(STATUS "polymap bench peers: tbb=${TBB_FOUND} libcuckoo=${libcuckoo_FOUND} "
               "xenium=${POLYMAP_XENIUM_INCLUDE_DIR}")

# Embeds polymap in a tiny parent project through add_subdirectory, as
# FetchContent does, with no POLYMAP_* option set: only the library is built
# (the options default to PROJECT_IS_TOP_LEVEL), none of polymap's tests is
# registered, and the parent's program links and runs.
# Arguments: SOURCE_DIR WORK_DIR CXX [LAUNCHER]
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/parent)
file(WRITE ${WORK_DIR}/parent/CMakeLists.txt "cmake_minimum_required(VERSION 3.25)
project(parent LANGUAGES CXX)
enable_testing()
add_subdirectory(\"${SOURCE_DIR}\" polymap)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE polymap::polymap)
add_test(NAME parent.app COMMAND app)
")
file(WRITE ${WORK_DIR}/parent/main.cpp [=[
#include <cstdio>
#include <polymap/polymap.hpp>
int main() {
  polymap::concurrent_map<> m;
  m.insert("answer", polymap::value(42));
  auto v = m.get<std::int64_t>("answer");
  if (!v || *v != 42) return 1;
  std::puts("parent app: ok");
  return 0;
}
]=])
set(launcher "")
if(LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${WORK_DIR}/parent -B ${WORK_DIR}/build -G Ninja
  -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release ${launcher}
  RESULT_VARIABLE rc OUTPUT_VARIABLE cfg_out ERROR_VARIABLE cfg_err)
if(rc)
  message(FATAL_ERROR "configuring the parent project failed: ${rc}\n${cfg_out}\n${cfg_err}")
endif()
file(STRINGS ${WORK_DIR}/build/CMakeCache.txt cache REGEX "^POLYMAP_BUILD_(TESTS|TOOLS|BENCH):")
foreach(line ${cache})
  if(NOT line MATCHES "=OFF$")
    message(FATAL_ERROR "an embedded polymap must default to the library only, but the cache has ${line}")
  endif()
endforeach()
# Every target the build would make: only the library and the parent's app.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build --target help
  RESULT_VARIABLE rc OUTPUT_VARIABLE targets)
foreach(unwanted polymap_cli polymap_lab polymap_bench polymap_test_pch _test: polymap_lab_tsan polymap_lab_asan)
  if(targets MATCHES "${unwanted}")
    message(FATAL_ERROR "the parent's build has polymap's ${unwanted} target:\n${targets}")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the parent project failed: ${rc}")
endif()
# No executable of polymap's in the build tree: only the parent's app.
file(GLOB_RECURSE built LIST_DIRECTORIES false ${WORK_DIR}/build/*)
foreach(f ${built})
  get_filename_component(name ${f} NAME)
  if(NOT IS_SYMLINK ${f} AND NOT name MATCHES "\\.(a|o|so|txt|cmake|ninja|log|json|bin|d|c|cpp|cxx|h|hpp|gch|in|pc)$"
     AND NOT f MATCHES "/CMakeFiles/" AND NOT name STREQUAL "app")
    execute_process(COMMAND test -x ${f} RESULT_VARIABLE not_exec)
    if(NOT not_exec)
      message(FATAL_ERROR "polymap built an executable in the parent's tree: ${f}")
    endif()
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} -N WORKING_DIRECTORY ${WORK_DIR}/build OUTPUT_VARIABLE tests)
if(NOT tests MATCHES "Total Tests: 1")
  message(FATAL_ERROR "the parent's ctest must list only its own test, not polymap's:\n${tests}")
endif()
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} --output-on-failure WORKING_DIRECTORY ${WORK_DIR}/build
  RESULT_VARIABLE rc OUTPUT_VARIABLE run_out)
message("${run_out}")
if(rc)
  message(FATAL_ERROR "the parent's app failed")
endif()

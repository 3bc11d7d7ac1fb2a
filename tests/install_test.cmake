# Installs the build tree into a scratch prefix, then, as an outside project:
#   1. configures, builds and runs examples/ with find_package(polymap);
#   2. compiles examples/quickstart.cpp with `pkg-config --cflags --libs polymap`
#      and runs it;
#   3. runs the installed `polymap lab` (if the CLI is installed) and checks
#      that it found its sanitizer children (no "not run (no polymap_lab_...").
# Arguments: SOURCE_DIR BINARY_DIR WORK_DIR CXX LIBDIR BINDIR [LAUNCHER]
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix}
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
set(launcher "")
if(LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${WORK_DIR}/build -G Ninja
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} ${launcher}
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring examples/ against the install tree failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building examples/ failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/quickstart RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message("${out}")
if(rc)
  message(FATAL_ERROR "examples/quickstart failed: ${rc}")
endif()

# --- 2. pkg-config ---------------------------------------------------------------
find_program(PKG_CONFIG pkg-config)
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config not found (scripts/setup.sh installs it)")
endif()
set(pc_dir ${prefix}/${LIBDIR}/pkgconfig)
if(NOT EXISTS ${pc_dir}/polymap.pc)
  message(FATAL_ERROR "polymap.pc was not installed in ${pc_dir}")
endif()
# Only the scratch prefix and the system's own .pc files: no polymap from elsewhere.
execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir}
  ${PKG_CONFIG} --cflags --libs polymap
  RESULT_VARIABLE rc OUTPUT_VARIABLE pc_flags ERROR_VARIABLE pc_err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(rc)
  message(FATAL_ERROR "pkg-config --cflags --libs polymap failed: ${pc_err}")
endif()
message("pkg-config --cflags --libs polymap: ${pc_flags}")
if(NOT pc_flags MATCHES "-I${prefix}/include" OR NOT pc_flags MATCHES "-lpolymap")
  message(FATAL_ERROR "polymap.pc does not point into the install prefix ${prefix}: ${pc_flags}")
endif()
separate_arguments(pc_args UNIX_COMMAND "${pc_flags}")
execute_process(COMMAND ${CXX} -std=c++20 ${SOURCE_DIR}/examples/quickstart.cpp ${pc_args}
  -o ${WORK_DIR}/quickstart_pkgconfig RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "compiling examples/quickstart.cpp with pkg-config's flags failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/quickstart_pkgconfig RESULT_VARIABLE rc OUTPUT_VARIABLE out2)
if(rc OR NOT out2 STREQUAL out)
  message(FATAL_ERROR "quickstart built with pkg-config: exit ${rc}, output\n${out2}")
endif()

# --- 3. the installed CLI finds its sanitizer children ---------------------------------
# Scenario "torn" runs both children (about 2 s for one round): the TSan child
# reports the race, the ASan child runs. Away from the build tree and without
# the $POLYMAP_LAB_* overrides, so only <prefix>/libexec/polymap can serve.
set(cli ${prefix}/${BINDIR}/polymap)
if(EXISTS ${cli})
  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=POLYMAP_LAB_TSAN --unset=POLYMAP_LAB_ASAN
    --unset=POLYMAP_LAB_TSAN_CLANG ${cli} lab --scenario torn --rounds 1 --json ${WORK_DIR}/lab.json
    WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE lab_out ERROR_VARIABLE lab_err)
  if(NOT EXISTS ${WORK_DIR}/lab.json)
    message(FATAL_ERROR "the installed polymap lab wrote no JSON (exit ${rc}):\n${lab_out}\n${lab_err}")
  endif()
  file(READ ${WORK_DIR}/lab.json lab_json)
  if(lab_json MATCHES "not run \\(no polymap_lab" OR NOT lab_json MATCHES "\"tsan\": \"REPORTED"
     OR NOT lab_json MATCHES "\"asan\": \"(silent|REPORTED)")
    message(FATAL_ERROR "the installed polymap lab did not run its sanitizer children (exit ${rc}):\n${lab_json}")
  endif()
  message("installed polymap lab ran its sanitizer children from ${prefix}/libexec/polymap")
endif()

# The CLI's output contract, from the outside (run with cmake -P):
#   CASE=json_stdout: every command's `--json -` (with its quickest options)
#     writes ONLY JSON to stdout: python3's json parser (and CMake's) must
#     accept all of stdout, and the human table must be on stderr.
#   CASE=bad_output: an unwritable --json/--html path fails before the work
#     starts (exit 1, "cannot write"), and two outputs on stdout are refused.
#   CASE=lab_width: no line of the lab's table (a quick run) is wider than 120
#     columns, and the table has its numbered notes below it.
# Inputs: POLYMAP (the CLI), WORK_DIR, DATA_DIR (tests/data), CASE, BENCH (ON
# where `polymap bench` was built).
cmake_minimum_required(VERSION 3.25)

function(fail msg)
  message(FATAL_ERROR "cli ${CASE}: ${msg}")
endfunction()

file(MAKE_DIRECTORY ${WORK_DIR})
find_program(PYTHON3 python3)

# Runs `polymap <args> --json -`; fails unless it exits 0 and stdout is one
# JSON document with nothing before or after it.
function(expect_json_stdout name)
  set(out_file ${WORK_DIR}/${name}.stdout)
  execute_process(COMMAND ${POLYMAP} ${ARGN} --json - RESULT_VARIABLE rc OUTPUT_FILE ${out_file}
                  ERROR_VARIABLE err TIMEOUT 300)
  file(READ ${out_file} out)
  if(NOT rc EQUAL 0)
    fail("${name}: exit ${rc}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  string(STRIP "${out}" stripped)
  string(REGEX MATCH "^[[{].*[]}]$" whole "${stripped}")
  if(NOT whole)
    fail("${name}: stdout is not only JSON (text before or after it):\n${out}")
  endif()
  string(JSON type ERROR_VARIABLE bad TYPE "${out}")
  if(bad)
    fail("${name}: stdout does not parse as JSON: ${bad}\n${out}")
  endif()
  if(PYTHON3)
    execute_process(COMMAND ${PYTHON3} -m json.tool ${out_file} RESULT_VARIABLE prc OUTPUT_QUIET
                    ERROR_VARIABLE perr)
    if(NOT prc EQUAL 0)
      fail("${name}: python3 -m json.tool rejects stdout: ${perr}\n${out}")
    endif()
  endif()
  if(err STREQUAL "")
    fail("${name}: nothing on stderr (where did the human text go?)")
  endif()
  message(STATUS "${name}: stdout is pure JSON (${type})")
endfunction()

if(CASE STREQUAL "json_stdout")
  expect_json_stdout(lab lab --scenario article --rounds 2 --no-sanitizers)
  expect_json_stdout(hashstat hashstat --n 2000)
  expect_json_stdout(soak soak --seconds 1 --map locked_map --threads 2)
  if(BENCH)
    expect_json_stdout(bench bench --maps locked_map,std_shared_mutex --workload find100 --keys u64 --n 1000
                       --threads 1 --repeats 1 --ops-per-run 2000 --no-memory)
    expect_json_stdout(bench_report bench report --from ${DATA_DIR}/bench_small.json)
    expect_json_stdout(bench_checked bench checked --size 8 --ops 100 --repeats 3)
    expect_json_stdout(bench_publish bench publish --size 100 --duration 0.02 --repeats 1 --readers 1
                       --maps locked_map --latency-sizes 100 --latency-writes 10)
    expect_json_stdout(bench_latency bench latency --n 2000 --runs 1)
  endif()
elseif(CASE STREQUAL "bad_output")
  set(bad_path ${WORK_DIR}/no/such/dir/out.json)
  set(cmds "lab --scenario article --rounds 1 --no-sanitizers" "hashstat --n 1000" "soak --seconds 1")
  if(BENCH)
    list(APPEND cmds "bench --maps locked_map --n 1000 --threads 1 --repeats 1 --ops-per-run 100 --no-memory"
         "bench checked --size 8 --ops 100 --repeats 3" "bench publish --size 100 --duration 0.02 --repeats 1"
         "bench latency --n 1000 --runs 1")
  endif()
  foreach(cmd IN LISTS cmds)
    separate_arguments(args UNIX_COMMAND "${cmd}")
    string(TIMESTAMP t0 "%s")
    execute_process(COMMAND ${POLYMAP} ${args} --json ${bad_path} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                    ERROR_VARIABLE err TIMEOUT 120)
    if(NOT rc EQUAL 1 OR NOT err MATCHES "cannot write --json ${bad_path}")
      fail("${cmd} --json ${bad_path}: exit ${rc}, want 1 and 'cannot write':\n${err}")
    endif()
    # Checked before the work: no table, no progress, no result printed.
    if(NOT out STREQUAL "")
      fail("${cmd}: printed results before refusing the output path:\n${out}")
    endif()
  endforeach()
  if(BENCH)
    execute_process(COMMAND ${POLYMAP} bench report --from ${DATA_DIR}/bench_small.json --html ${bad_path}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 1 OR NOT err MATCHES "cannot write --html")
      fail("bench report --html ${bad_path}: exit ${rc}:\n${err}")
    endif()
    execute_process(COMMAND ${POLYMAP} bench report --from ${DATA_DIR}/bench_small.json --html - --svg -
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 2 OR NOT err MATCHES "both write to stdout")
      fail("bench report --html - --svg -: exit ${rc}, want 2:\n${err}")
    endif()
  endif()
  # The check leaves no file behind where none was.
  set(fresh ${WORK_DIR}/fresh.json)
  file(REMOVE ${fresh})
  execute_process(COMMAND ${POLYMAP} soak --seconds 1 --map nosuch --json ${fresh} RESULT_VARIABLE rc
                  OUTPUT_QUIET ERROR_QUIET)
  if(EXISTS ${fresh})
    fail("a failed run left ${fresh} behind")
  endif()
elseif(CASE STREQUAL "lab_width")
  execute_process(COMMAND ${POLYMAP} lab --rounds 1 --no-sanitizers RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 600)
  if(NOT rc EQUAL 0)
    fail("lab --rounds 1 --no-sanitizers: exit ${rc}\n${out}\n${err}")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  set(n 0)
  foreach(line IN LISTS lines)
    string(LENGTH "${line}" len)
    if(len GREATER 120)
      fail("a line of ${len} columns (> 120):\n${line}\n\nwhole table:\n${out}")
    endif()
    math(EXPR n "${n} + 1")
  endforeach()
  if(NOT out MATCHES "\n\\[1\\] ")
    fail("no numbered notes ([1] ...) below the table:\n${out}")
  endif()
  message(STATUS "lab table: ${n} lines, none over 120 columns")
else()
  fail("unknown CASE")
endif()

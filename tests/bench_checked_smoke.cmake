# Smoke test of `polymap bench checked` (ctest cli.bench_checked_smoke): runs
# it with tiny sizes and checks that the table and the JSON name every row,
# container x workload x variant. Timings are not checked: on a shared
# machine they are whatever they are; the command is a measurement.
#
#   cmake -DPOLYMAP=<polymap binary> -DWORK_DIR=<dir> -P bench_checked_smoke.cmake
set(json ${WORK_DIR}/bench_checked_smoke.json)
file(REMOVE ${json})
execute_process(
  COMMAND ${POLYMAP} bench checked --size 64 --ops 2000 --repeats 3 --json ${json}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "polymap bench checked exited with ${rc}")
endif()

set(containers "std::unordered_map" "boost::unordered_flat_map")
set(workloads "find" "contains" "mixed90/10")
set(variants "bare" "checked<count>" "checked<validate>")
set(expected 0)
foreach(c IN LISTS containers)
  foreach(w IN LISTS workloads)
    foreach(v IN LISTS variants)
      math(EXPR expected "${expected} + 1")
      # The names hold no regex metacharacters; the cells are "| name |".
      set(re "\\| ${c} +\\| ${w} +\\| ${v} +\\| +[0-9]+\\.[0-9]+ \\| +[0-9]+\\.[0-9]+ \\|")
      if(NOT out MATCHES "${re}")
        message(FATAL_ERROR "the table has no row for ${c} / ${w} / ${v}")
      endif()
    endforeach()
  endforeach()
endforeach()
foreach(v "checked<count>" "checked<validate>")
  if(NOT out MATCHES "${v} *: met in [0-9]+/6 rows")
    message(FATAL_ERROR "no target summary line for ${v}")
  endif()
endforeach()

if(NOT EXISTS ${json})
  message(FATAL_ERROR "--json ${json} was not written")
endif()
file(READ ${json} text)
string(JSON n LENGTH "${text}" rows)
if(NOT n EQUAL expected)
  message(FATAL_ERROR "the JSON has ${n} rows, expected ${expected}")
endif()
string(JSON repeats GET "${text}" settings repeats)
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON c GET "${text}" rows ${i} container)
  string(JSON v GET "${text}" rows ${i} variant)
  string(JSON runs LENGTH "${text}" rows ${i} ns_per_op)
  if(NOT runs EQUAL repeats)
    message(FATAL_ERROR "JSON row ${i} (${c} / ${v}) has ${runs} runs, expected ${repeats}")
  endif()
endforeach()
message("bench checked: ${expected} rows in the table and the JSON")

# One Clang thread-safety check of guarded<> (tests/tsa/), run by ctest:
#
#   cmake -DCXX=clang++-14 -DSOURCE=bad_x.cpp -DINCLUDE_DIR=<repo>/include
#         -DEXPECT=pass|fail -P check_tsa.cmake
#
# pass: the file must compile under -Wthread-safety -Werror.
# fail: the compiler must reject it, every error must be a thread-safety
#       diagnostic ([-Werror,-Wthread-safety...]), and every
#       "// EXPECT-DIAGNOSTIC: <regex>" line of the file must match the output.
#       A file that fails for another reason (a missing include, a typo) fails
#       this check instead of passing it.
# Prints "TSA-SKIP:" (the test's SKIP_REGULAR_EXPRESSION) without a compiler.
if(NOT CXX)
  message("TSA-SKIP: clang++-14 was not found at configure time (scripts/setup.sh installs it)")
  return()
endif()
foreach(var SOURCE INCLUDE_DIR EXPECT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_tsa.cmake: -D${var}=... is required")
  endif()
endforeach()

set(cmd ${CXX} -std=c++20 -fsyntax-only -Wthread-safety -Werror -I${INCLUDE_DIR} ${SOURCE})
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(REPLACE ";" " " shown "${cmd}")
message("${shown}\nexit code: ${rc}\n${out}")

if(EXPECT STREQUAL "pass")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "expected ${SOURCE} to compile cleanly under -Wthread-safety -Werror")
  endif()
  return()
endif()

if(rc EQUAL 0)
  message(FATAL_ERROR "expected ${SOURCE} to be rejected by the thread-safety analysis, but it compiled")
endif()
string(REGEX MATCHALL "error:[^\n]*" errors "${out}")
list(LENGTH errors n_errors)
if(n_errors EQUAL 0)
  message(FATAL_ERROR "the compiler failed without any error line (exit code ${rc})")
endif()
foreach(e IN LISTS errors)
  if(NOT e MATCHES "\\[-Werror,-Wthread-safety[a-z-]*\\]")
    message(FATAL_ERROR "an error that is not a thread-safety diagnostic: ${e}")
  endif()
endforeach()
file(STRINGS ${SOURCE} expectations REGEX "^// EXPECT-DIAGNOSTIC: ")
if(NOT expectations)
  message(FATAL_ERROR "${SOURCE} names no EXPECT-DIAGNOSTIC line")
endif()
foreach(line IN LISTS expectations)
  string(REGEX REPLACE "^// EXPECT-DIAGNOSTIC: " "" want "${line}")
  if(NOT out MATCHES "${want}")
    message(FATAL_ERROR "no diagnostic matches '${want}'")
  endif()
endforeach()
message("rejected as expected: ${n_errors} thread-safety error(s)")

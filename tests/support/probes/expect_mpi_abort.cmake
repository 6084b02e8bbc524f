# cmake -DCOMMAND="mpirun|...|-np|2|dml_mpi_abort_probe" -DLIMIT_S=45 -P expect_mpi_abort.cmake
# Runs the abort probe (mpi_abort_probe.cpp) and passes only if the job ends by itself within LIMIT_S
# seconds, with a non-zero exit code, having printed rank 1's deliberate failure and the abort, and
# without starting the probe's second test. A hang (the bug this guards against) fails the test.
string(REPLACE "|" ";" command "${COMMAND}")
string(TIMESTAMP start "%s")
execute_process(COMMAND ${command} TIMEOUT ${LIMIT_S} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(TIMESTAMP end "%s")
math(EXPR seconds "${end} - ${start}")
message(STATUS "probe exit: '${rc}' after ${seconds} s; output:\n${out}")
if(NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "the probe did not end by itself within ${LIMIT_S} s (${rc}): a fatal failure on one rank "
                      "left the job hanging")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "the probe exited 0 although rank 1 failed")
endif()
foreach(expected "deliberate failure on rank 1" "[mpi rank 1] fatal failure in MpiAbortProbe.RankOneFailsWhileRankZeroWaits"
                 "[mpi rank 1] aborting the job")
  string(FIND "${out}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "'${expected}' is not in the probe's output")
  endif()
endforeach()
string(FIND "${out}" "second test started" at)
if(NOT at EQUAL -1)
  message(FATAL_ERROR "the probe's second test ran: the job was not aborted at the first fatal failure")
endif()

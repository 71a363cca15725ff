# Runs one case of no_exceptions_test whose process must end abnormally (abort) after printing `EXPECT` to
# stderr (the default handler) or stdout (a handler that returns). ctest alone cannot ask for both a failing
# exit status and a message. -DEMULATOR (optional, a list) runs the test under qemu or wine.
execute_process(COMMAND ${EMULATOR} ${EXE} ${CASE} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "exit status: ${status}\nstdout: ${out}\nstderr: ${err}")
if(status EQUAL 0)
  message(FATAL_ERROR "case ${CASE} exited with status 0; it must abort")
endif()
string(FIND "${out}${err}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "case ${CASE}: the output lacks \"${EXPECT}\"")
endif()

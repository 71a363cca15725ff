# cmake -DMODE=install|subdirectory -DSOURCE_DIR=<bitlinear> -DWORK_DIR=<scratch> -P run_package_test.cmake
# install: configure + install bitlinear into a temporary prefix, build a consumer with find_package, run it.
# subdirectory: build a consumer that add_subdirectory()s bitlinear, run it.
# plain: compile the consumer with `<CXX> -std=c++17 -O2 -I<bitlinear>/include` and nothing else, run it.
cmake_minimum_required(VERSION 3.16)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "command failed (${result}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_dir ${SOURCE_DIR}/tests/package)
if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/lib-build -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix
      -DBITLINEAR_BUILD_TESTS=OFF -DBITLINEAR_BUILD_BENCH=OFF -DBITLINEAR_BUILD_EXAMPLES=OFF)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/lib-build)
  if(NOT EXISTS ${WORK_DIR}/prefix/include/bitlinear/bitlinear.hpp)
    message(FATAL_ERROR "install did not place include/bitlinear/bitlinear.hpp")
  endif()
  run(${CMAKE_COMMAND} -S ${consumer_dir}/consumer -B ${WORK_DIR}/consumer-build
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
elseif(MODE STREQUAL "subdirectory")
  run(${CMAKE_COMMAND} -S ${consumer_dir}/subdir_consumer -B ${WORK_DIR}/consumer-build
      -DBITLINEAR_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release)
elseif(MODE STREQUAL "plain")
  file(MAKE_DIRECTORY ${WORK_DIR}/consumer-build)
  run(${CXX} -std=c++17 -O2 -I${SOURCE_DIR}/include ${consumer_dir}/consumer_main.cpp -o ${WORK_DIR}/consumer-build/consumer)
  run(${WORK_DIR}/consumer-build/consumer)
  return()
else()
  message(FATAL_ERROR "MODE must be install, subdirectory or plain, not '${MODE}'")
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run(${WORK_DIR}/consumer-build/consumer)

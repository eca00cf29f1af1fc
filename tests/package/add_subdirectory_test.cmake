# Builds a tiny project that pulls quantkit in with add_subdirectory and links quantkit::quantkit.
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)
file(REMOVE_RECURSE ${WORK})
# A Debug build: it is the one configuration nothing else in CI compiles, and at -O0 it takes half the time
# of a Release one. The test runs alone (RUN_SERIAL), so it may use every core.
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
run_step("configure" ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/add_subdirectory -B ${WORK}/build
         -DQK_SOURCE_DIR=${QK_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Debug)
run_step("build" ${CMAKE_COMMAND} --build ${WORK}/build --parallel ${cores})
run_step("run" ${WORK}/build/consumer)
if(NOT STEP_OUTPUT MATCHES "codes: -127 0 127")
  message(FATAL_ERROR "unexpected output:\n${STEP_OUTPUT}")
endif()

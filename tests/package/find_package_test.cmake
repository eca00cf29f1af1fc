# Installs the built quantkit into a scratch prefix, then builds examples/quickstart against it with
# find_package(quantkit CONFIG) and runs it.
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)
file(REMOVE_RECURSE ${WORK})
run_step("install" ${CMAKE_COMMAND} --install ${QK_BUILD_DIR} --prefix ${WORK}/prefix)
run_step("configure consumer" ${CMAKE_COMMAND} -S ${QK_SOURCE_DIR}/examples/quickstart -B ${WORK}/build
         -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
run_step("build consumer" ${CMAKE_COMMAND} --build ${WORK}/build)
run_step("run consumer" ${WORK}/build/quickstart ${WORK}/w.npz)
if(NOT STEP_OUTPUT MATCHES "read back identical")
  message(FATAL_ERROR "quickstart did not round-trip its file:\n${STEP_OUTPUT}")
endif()
message(STATUS "${STEP_OUTPUT}")

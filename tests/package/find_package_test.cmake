# Installs the built quantkit into a scratch prefix, then builds examples/quickstart against it with
# find_package(quantkit CONFIG) and runs it; then moves the prefix and runs the installed qtool's demo,
# which must find its data beside itself (not in the build's source tree or the configured prefix).
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)
file(REMOVE_RECURSE ${WORK})
run_step("install" ${CMAKE_COMMAND} --install ${QK_BUILD_DIR} --prefix ${WORK}/prefix)
run_step("configure consumer" ${CMAKE_COMMAND} -S ${QK_SOURCE_DIR}/examples/quickstart -B ${WORK}/build
         -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
run_step("build consumer" ${CMAKE_COMMAND} --build ${WORK}/build --parallel ${cores})
run_step("run consumer" ${WORK}/build/quickstart ${WORK}/w.npz)
if(NOT STEP_OUTPUT MATCHES "read back identical")
  message(FATAL_ERROR "quickstart did not round-trip its file:\n${STEP_OUTPUT}")
endif()
message(STATUS "${STEP_OUTPUT}")

# Every installed header compiles with nothing but the install prefix on the include path: no Eigen, no
# nlohmann-json, no {fmt} (they are private to the library's sources).
file(GLOB_RECURSE installed_headers RELATIVE ${WORK}/prefix/include ${WORK}/prefix/include/quantkit/*.hpp)
set(all_headers "")
foreach(h ${installed_headers})
  string(APPEND all_headers "#include \"${h}\"\n")
endforeach()
file(WRITE ${WORK}/all_headers.cpp "${all_headers}int main() { return 0; }\n")
run_step("compile every installed header without Eigen" ${CXX} -std=c++20 -fsyntax-only
         -I${WORK}/prefix/include ${WORK}/all_headers.cpp)

# The installed qtool finds the bundled weights relative to itself: after the prefix is moved (so the
# prefix it was installed to is gone), `qtool demo --json` must report data from the moved prefix.
if(EXISTS ${WORK}/prefix/bin/qtool)
  file(RENAME ${WORK}/prefix ${WORK}/moved)
  run_step("installed demo" ${WORK}/moved/bin/qtool demo --json)
  if(NOT STEP_OUTPUT MATCHES "\"data\": *\"${WORK}/moved/share/quantkit/data/silero_vad_v5_16k\"")
    message(FATAL_ERROR "the moved qtool did not use its own data:\n${STEP_OUTPUT}")
  endif()
  file(RENAME ${WORK}/moved ${WORK}/prefix)
endif()

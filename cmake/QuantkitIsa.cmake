# Per-ISA object libraries: SIMD sources are compiled with their ISA's flags and nothing else is. The
# library itself stays baseline x86-64 (never -march=native); dispatch.cpp picks a variant at run time.
set(QK_X86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(QK_X86 ON)
endif()

# qk_add_isa_objects(<name> FLAGS <flags...> SOURCES <files...>): an OBJECT library linked into quantkit.
function(qk_add_isa_objects name)
  cmake_parse_arguments(ARG "" "" "FLAGS;SOURCES" ${ARGN})
  add_library(${name} OBJECT ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${ARG_FLAGS} -Wall -Wextra)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PRIVATE Eigen3::Eigen)
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_compile_options(${name} PRIVATE $<$<OR:$<CXX_COMPILER_ID:GNU>,$<CXX_COMPILER_ID:Clang>>:-ffp-contract=off>)
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_sources(quantkit PRIVATE $<TARGET_OBJECTS:${name}>)
endfunction()

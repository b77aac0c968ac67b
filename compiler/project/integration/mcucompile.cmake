# mcucompile's CMake module: compile a model as part of the firmware build.
#
#   find_package(mcucompile REQUIRED)     # with -Dmcucompile_DIR="$(mcucompile --cmake-dir)"
#   # or: list(APPEND CMAKE_MODULE_PATH "<output of mcucompile --cmake-dir>") + include(mcucompile)
#   mcucompile_add_model(firmware MODEL model.onnx BOARD nucleo-f746zg
#                        [CALIB calib.npz] [NAME model] [OPTIONS --no-patch ...])
#
# At build time (a custom command, not at configure time) the model is compiled into
# ${CMAKE_CURRENT_BINARY_DIR}/mcucompile/<NAME>/ and its C library (target mcucompile_<NAME>, a static
# library with its include directory) is linked into <target>. The model is recompiled when the content of
# the model, of the calibration data, the board, the name, the options or the mcucompile version change, and
# only then: a build-time step hashes those inputs and rewrites a stamp file only when the hash differs, so
# a mere `touch` or a second build compile nothing. A missing model, an unknown board or a model that does
# not fit fail the build with mcucompile's one-line `mcucompile: error: ...`.
#
# Which mcucompile: MCUCOMPILE_EXECUTABLE (cache variable or environment), else the one installed next to
# this module (the Python environment mcucompile is installed in), else `mcucompile` on PATH.

cmake_minimum_required(VERSION 3.16)

if(DEFINED _MCUCOMPILE_MODULE_LOADED)
  return()
endif()
set(_MCUCOMPILE_MODULE_LOADED TRUE)
set(_MCUCOMPILE_MODULE_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(_mcucompile_find_executable out)
  if(MCUCOMPILE_EXECUTABLE)
    set(${out} "${MCUCOMPILE_EXECUTABLE}" PARENT_SCOPE)
    return()
  endif()
  if(DEFINED ENV{MCUCOMPILE_EXECUTABLE} AND NOT "$ENV{MCUCOMPILE_EXECUTABLE}" STREQUAL "")
    set(${out} "$ENV{MCUCOMPILE_EXECUTABLE}" PARENT_SCOPE)
    return()
  endif()
  # installed wheel: <prefix>/lib/pythonX.Y/site-packages/mcucompile/project/integration -> <prefix>/bin
  get_filename_component(_prefix "${_MCUCOMPILE_MODULE_DIR}/../../../../../.." ABSOLUTE)
  find_program(_MCUCOMPILE_EXE NAMES mcucompile
               HINTS "${_prefix}/bin" "${_prefix}/Scripts" "${_MCUCOMPILE_MODULE_DIR}/../../../.venv/bin"
               NO_CACHE)
  if(NOT _MCUCOMPILE_EXE)
    find_program(_MCUCOMPILE_EXE NAMES mcucompile NO_CACHE)
  endif()
  if(NOT _MCUCOMPILE_EXE)
    message(FATAL_ERROR "mcucompile: error: the mcucompile program was not found; install it "
                        "(pip install mcucompile) or set -DMCUCOMPILE_EXECUTABLE=/path/to/mcucompile")
  endif()
  set(${out} "${_MCUCOMPILE_EXE}" PARENT_SCOPE)
endfunction()

# --kernels cmsis-nn: the library calls Arm's CMSIS-NN, built from CMSIS_NN_DIR (a CMake variable or the
# environment) as the static library mcucompile_cmsis_nn, with its own flags (not held to our warnings)
function(_mcucompile_cmsis_nn exe lib)
  if(NOT CMSIS_NN_DIR AND DEFINED ENV{CMSIS_NN_DIR})
    set(CMSIS_NN_DIR "$ENV{CMSIS_NN_DIR}")
  endif()
  if(NOT EXISTS "${CMSIS_NN_DIR}/Include/arm_nnfunctions.h")
    message(FATAL_ERROR "mcucompile: error: --kernels cmsis-nn needs CMSIS-NN: set CMSIS_NN_DIR (-DCMSIS_NN_DIR=... or "
                        "the environment) to a CMSIS-NN checkout (git clone https://github.com/ARM-software/CMSIS-NN -b v7.0.0)")
  endif()
  if(NOT TARGET mcucompile_cmsis_nn)
    execute_process(COMMAND "${exe}" cmake-dir --cmsis-nn-sources "${CMSIS_NN_DIR}"
                    OUTPUT_VARIABLE sources RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${err}")
    endif()
    add_library(mcucompile_cmsis_nn STATIC ${sources})
    target_include_directories(mcucompile_cmsis_nn SYSTEM PUBLIC "${CMSIS_NN_DIR}/Include")
    set_target_properties(mcucompile_cmsis_nn PROPERTIES C_STANDARD 99)
    target_compile_options(mcucompile_cmsis_nn PRIVATE -O2)
  endif()
  target_link_libraries(${lib} PUBLIC mcucompile_cmsis_nn)
endfunction()

function(mcucompile_add_model target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "MODEL;BOARD;CALIB;NAME" "OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "mcucompile_add_model(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}; "
                        "give MODEL <file> BOARD <board> [CALIB <file>] [NAME <prefix>] [OPTIONS ...]")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "mcucompile_add_model(${target}): no target '${target}'; call add_executable(${target} ...) first")
  endif()
  if(NOT ARG_MODEL OR NOT ARG_BOARD)
    message(FATAL_ERROR "mcucompile_add_model(${target}): MODEL <file> and BOARD <board> are required")
  endif()
  if(NOT ARG_NAME)
    set(ARG_NAME model)
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(calib "")
  if(ARG_CALIB)
    get_filename_component(calib "${ARG_CALIB}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  endif()

  _mcucompile_find_executable(exe)
  # a reinstalled mcucompile rewrites its launcher: reconfigure, so its version and file list are read again
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${exe}")
  execute_process(COMMAND "${exe}" --version OUTPUT_VARIABLE version RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mcucompile: error: '${exe} --version' failed (${err}); reinstall mcucompile")
  endif()
  # the library's file names depend only on NAME and the mcucompile version, so they are known before the
  # model is compiled: the build-time command declares them as its outputs
  execute_process(COMMAND "${exe}" cmake-dir --sources "${ARG_NAME}"
                  OUTPUT_VARIABLE sources RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${err}")
  endif()

  set(out "${CMAKE_CURRENT_BINARY_DIR}/mcucompile/${ARG_NAME}")
  set(lib "${out}/lib/${ARG_NAME}")
  set(stamp "${CMAKE_CURRENT_BINARY_DIR}/mcucompile/${ARG_NAME}.inputs.sha256")
  set(outputs "")
  foreach(rel IN LISTS sources)
    list(APPEND outputs "${lib}/${rel}")
  endforeach()

  # always run (cheap: hashing, no Python): rewrites the stamp only when the inputs' hash changed
  add_custom_target(mcucompile_${ARG_NAME}_inputs
    COMMAND "${CMAKE_COMMAND}" "-DMODEL=${model}" "-DCALIB=${calib}" "-DBOARD=${ARG_BOARD}" "-DNAME=${ARG_NAME}"
            "-DOPTIONS=${ARG_OPTIONS}" "-DVERSION=${version}" "-DSTAMP=${stamp}"
            -P "${_MCUCOMPILE_MODULE_DIR}/mcucompile_stamp.cmake"
    BYPRODUCTS "${stamp}"
    COMMENT "mcucompile: checking ${ARG_MODEL} for changes"
    VERBATIM)

  set(calib_args "")
  if(calib)
    set(calib_args --calib "${calib}")
  endif()
  # the library's files are byproducts: a recompile rewrites only the files whose content changed (the others
  # keep their time stamps), so only those are compiled again; the done stamp is the command's output
  set(done "${CMAKE_CURRENT_BINARY_DIR}/mcucompile/${ARG_NAME}.compiled")
  add_custom_command(
    OUTPUT "${done}"
    BYPRODUCTS ${outputs}
    COMMAND "${exe}" "${model}" --board "${ARG_BOARD}" --name "${ARG_NAME}" ${calib_args} ${ARG_OPTIONS}
            -o "${out}" --quiet
    COMMAND "${CMAKE_COMMAND}" -E touch "${done}"
    DEPENDS "${stamp}"
    COMMENT "mcucompile: compiling ${ARG_MODEL} for ${ARG_BOARD}"
    VERBATIM)

  add_library(mcucompile_${ARG_NAME} STATIC ${outputs} "${done}")
  add_dependencies(mcucompile_${ARG_NAME} mcucompile_${ARG_NAME}_inputs)
  target_include_directories(mcucompile_${ARG_NAME} PUBLIC "${lib}/include" PRIVATE "${lib}/src")
  set_target_properties(mcucompile_${ARG_NAME} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  # the kernels' instruction counts (and bench's figures) are for -O2, whatever the build type
  target_compile_options(mcucompile_${ARG_NAME} PRIVATE ${MCUCOMPILE_LIBRARY_FLAGS})
  target_link_libraries(${target} PRIVATE mcucompile_${ARG_NAME})
  if(";${ARG_OPTIONS};" MATCHES ";--kernels;cmsis-nn;|;--kernels=cmsis-nn;")
    _mcucompile_cmsis_nn("${exe}" mcucompile_${ARG_NAME})
  endif()
  set(MCUCOMPILE_${ARG_NAME}_DIR "${out}" PARENT_SCOPE)
endfunction()

if(NOT DEFINED MCUCOMPILE_LIBRARY_FLAGS)
  set(MCUCOMPILE_LIBRARY_FLAGS -O2 -Wall -Wextra CACHE STRING "Compile flags of mcucompile's model libraries")
endif()

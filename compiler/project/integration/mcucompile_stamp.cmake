# Build-time step of mcucompile_add_model (run with cmake -P): hash what the compiled library depends on
# (model and calibration content, board, name, options, mcucompile version) and rewrite STAMP only when
# the hash differs, so the compile step, which depends on STAMP, runs only then.
#
# A missing model or calibration file makes the stamp unique, so the compile step runs and fails with
# mcucompile's own one-line message naming the file.

set(parts "version=${VERSION}" "board=${BOARD}" "name=${NAME}" "options=${OPTIONS}")
foreach(kind MODEL CALIB)
  set(path "${${kind}}")
  if(path STREQUAL "")
    list(APPEND parts "${kind}=none")
  elseif(EXISTS "${path}" AND NOT IS_DIRECTORY "${path}")
    file(SHA256 "${path}" digest)
    list(APPEND parts "${kind}=${digest}")
  else()
    string(TIMESTAMP now "%Y-%m-%dT%H:%M:%S.%f")
    string(RANDOM LENGTH 16 salt)
    list(APPEND parts "${kind}=missing ${now} ${salt}")
  endif()
endforeach()
string(JOIN "\n" text ${parts})
string(SHA256 digest "${text}")
set(old "")
if(EXISTS "${STAMP}")
  file(READ "${STAMP}" old)
endif()
if(NOT old STREQUAL "${digest}\n")
  file(WRITE "${STAMP}" "${digest}\n")
  message(STATUS "mcucompile: ${NAME}: inputs changed, the model will be compiled")
else()
  message(STATUS "mcucompile: ${NAME}: model, calibration and options unchanged, not recompiling")
endif()

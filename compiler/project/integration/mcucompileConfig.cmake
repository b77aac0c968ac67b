# find_package(mcucompile) entry point: -Dmcucompile_DIR="$(mcucompile --cmake-dir)"
include("${CMAKE_CURRENT_LIST_DIR}/mcucompile.cmake")

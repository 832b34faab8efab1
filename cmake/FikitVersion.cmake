# fikit_version: an INTERFACE target whose generated header <fikit/version.h> gives every program's
# `--version` the project version and the git commit of the tree at configure time ("unknown"
# outside a git checkout, e.g. from a source tarball).
find_package(Git QUIET)
set(FIKIT_GIT_COMMIT "unknown")
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${CMAKE_SOURCE_DIR} rev-parse --short=12 HEAD
    OUTPUT_VARIABLE fikit_commit OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE fikit_commit_rc ERROR_QUIET)
  if(fikit_commit_rc EQUAL 0 AND fikit_commit)
    set(FIKIT_GIT_COMMIT ${fikit_commit})
  endif()
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in ${CMAKE_BINARY_DIR}/generated/fikit/version.h
  @ONLY)
add_library(fikit_version INTERFACE)
target_include_directories(fikit_version INTERFACE ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(fikit_version INTERFACE fikit_abi)

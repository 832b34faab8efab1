# Man pages generated from each program's --help by help2man (help2man.cmake), gzip'ed as Debian
# wants them, installed under mandir. Without help2man (or in a sanitizer build, whose programs
# may report leaks on exit) they are skipped with a message.

find_program(FIKIT_HELP2MAN help2man)
find_program(FIKIT_GZIP gzip)
if(NOT FIKIT_HELP2MAN OR NOT FIKIT_GZIP OR FIKIT_SANITIZE)
  message(STATUS "man pages are not built: needs help2man and gzip (scripts/install-deps.sh) "
                 "and a build without FIKIT_SANITIZE")
  set(FIKIT_MAN_PAGES OFF)
  return()
endif()
set(FIKIT_MAN_PAGES ON)

set(fikit_man_dir ${CMAKE_BINARY_DIR}/man)
set(fikit_man_script ${CMAKE_CURRENT_LIST_DIR}/help2man.cmake)
set(fikit_man_pages "")

# fikit_man_page(<program> <section> <whatis> [SUBCOMMANDS <name>...])
function(fikit_man_page program section whatis)
  cmake_parse_arguments(M "" "" "SUBCOMMANDS" ${ARGN})
  set(page ${fikit_man_dir}/${program}.${section}.gz)
  # fikit-calibrate links libcuda: the simulated driver lets its --help run on any machine.
  add_custom_command(OUTPUT ${page}
    COMMAND ${CMAKE_COMMAND} -DHELP2MAN=${FIKIT_HELP2MAN} -DGZIP=${FIKIT_GZIP}
            -DPROGRAM=$<TARGET_FILE:${program}> -DOUT=${page} -DSECTION=${section}
            -DWHATIS=${whatis} -DVERSION=${PROJECT_VERSION} "-DSUBCOMMANDS=${M_SUBCOMMANDS}"
            -DLIBRARY_PATH=${CMAKE_BINARY_DIR}/sim -P ${fikit_man_script}
    DEPENDS ${program} fikit_simcuda ${fikit_man_script}
    COMMENT "Generating the man page ${program}(${section})"
    VERBATIM)
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  set(fikit_man_pages ${fikit_man_pages} ${page} PARENT_SCOPE)
endfunction()

fikit_man_page(fikit-broker 8 "share one NVIDIA GPU between tasks of different priority"
               SUBCOMMANDS start stop status profile)
fikit_man_page(fikit-run 1 "run a program as a fikit tenant")
fikit_man_page(fikit-calibrate 1 "measure the GPU's time-slicing switch-back cost for fikit-broker")
if(TARGET fikit-top)
  fikit_man_page(fikit-top 1 "a live view of fikit-broker's tenants, per GPU")
endif()
if(TARGET fikit-audit)
  fikit_man_page(fikit-audit 8 "report the overhead of fikit's eBPF programs, hooks and broker")
endif()
add_custom_target(fikit_man ALL DEPENDS ${fikit_man_pages})

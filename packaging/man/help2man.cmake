# Write one gzip'ed man page from a program's --help (cmake -P, called by FikitMan.cmake):
#   -DHELP2MAN= -DGZIP= -DPROGRAM= -DOUT=<page>.gz -DSECTION= -DWHATIS= -DVERSION=
#   [-DSUBCOMMANDS=a;b] [-DLIBRARY_PATH=dir]
# The version is the number --version prints, else VERSION (the project version). Each subcommand
# whose `PROGRAM SUB --help` differs from `PROGRAM --help` gets a section of its own with that text.

set(run ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${LIBRARY_PATH})
get_filename_component(name ${PROGRAM} NAME)
get_filename_component(out_dir ${OUT} DIRECTORY)
file(MAKE_DIRECTORY ${out_dir})

execute_process(COMMAND ${run} ${PROGRAM} --help RESULT_VARIABLE rc OUTPUT_VARIABLE top_help
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${name} --help failed (exit ${rc}): ${err}")
endif()

# The footer shows the version number alone: --version's commit would change the page with every
# commit (and not fit the footer).
set(version ${VERSION})
execute_process(COMMAND ${run} ${PROGRAM} --version RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_QUIET)
if(rc EQUAL 0 AND out MATCHES "[0-9]+\\.[0-9]+(\\.[0-9]+)?")
  set(version ${CMAKE_MATCH_0})
endif()

# Subcommand texts as preformatted roff: escape backslashes and leading control characters.
set(include_file ${OUT}.h2m)
set(include_text "")
foreach(sub ${SUBCOMMANDS})
  execute_process(COMMAND ${run} ${PROGRAM} ${sub} --help RESULT_VARIABLE rc
                  OUTPUT_VARIABLE text ERROR_QUIET)
  if(NOT rc EQUAL 0 OR text STREQUAL top_help)
    continue()
  endif()
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  string(TOUPPER "${sub}" upper)
  string(APPEND include_text "[${upper} COMMAND]\n.nf\n${text}\n.fi\n")
endforeach()
set(include_args "")
if(include_text)
  file(WRITE ${include_file} "${include_text}")
  set(include_args --include=${include_file})
endif()

string(REGEX REPLACE "\\.gz$" "" page ${OUT})
execute_process(
  COMMAND ${run} ${HELP2MAN} --no-info --no-discard-stderr --section=${SECTION}
          --name=${WHATIS} --version-string=${version} ${include_args} --output=${page} ${PROGRAM}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man ${name} failed: ${err}")
endif()
execute_process(COMMAND ${GZIP} -9nf ${page} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${page} failed")
endif()
file(REMOVE ${include_file})

# Install rules and the Debian package (CPack DEB). Included from the top CMakeLists.txt after the
# programs are defined. `make install PREFIX=... DESTDIR=...` and `make deb` (Makefile) use it.
#
# Layout (GNUInstallDirs): programs in bindir, libfikit.so in libdir (lib/<multiarch> for prefix
# /usr, lib otherwise), client.h in includedir/fikit, the unit in /lib/systemd/system for prefix
# /usr (Debian 12 keeps units there) and <prefix>/lib/systemd/system otherwise, man pages and bash
# completion under datadir, the example configuration in sysconfdir/fikit (/etc/fikit for /usr).

include(GNUInstallDirs)

set(fikit_pkg ${CMAKE_SOURCE_DIR}/packaging)
# Empty: follow the prefix (computed at each configure, so a new prefix moves the unit too).
set(FIKIT_SYSTEMD_UNIT_DIR "" CACHE PATH "Where fikit-broker.service goes (empty: by prefix)")
if(NOT FIKIT_SYSTEMD_UNIT_DIR)
  if(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
    set(FIKIT_SYSTEMD_UNIT_DIR /lib/systemd/system)
  else()
    set(FIKIT_SYSTEMD_UNIT_DIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
  endif()
endif()
set(FIKIT_BASH_COMPLETION_DIR ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    CACHE PATH "Where the bash completions go (relative: under the prefix)")

# fikit-run looks for libfikit.so beside itself (<bin>/../lib, the build tree), then in the installed
# tree relative to its own bindir (so a DESTDIR or moved tree works), then at the compiled-in path.
file(RELATIVE_PATH fikit_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
target_compile_definitions(fikit-run PRIVATE
  FIKIT_BIN_TO_LIBDIR="${fikit_bin_to_lib}"
  FIKIT_INSTALL_LIBDIR="${CMAKE_INSTALL_FULL_LIBDIR}")

set(fikit_programs fikit-broker fikit-run fikit-calibrate)
foreach(t fikit-audit fikit-top)
  if(TARGET ${t})
    list(APPEND fikit_programs ${t})
  endif()
endforeach()
install(TARGETS ${fikit_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS fikit LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/fikit/client.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fikit)

# The unit runs the installed broker.
configure_file(${fikit_pkg}/systemd/fikit-broker.service.in
               ${CMAKE_BINARY_DIR}/packaging/fikit-broker.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/packaging/fikit-broker.service
        DESTINATION ${FIKIT_SYSTEMD_UNIT_DIR})
install(FILES ${fikit_pkg}/fikit/broker.conf DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/fikit)
install(FILES ${fikit_pkg}/bash-completion/fikit-broker ${fikit_pkg}/bash-completion/fikit-run
        DESTINATION ${FIKIT_BASH_COMPLETION_DIR})
if(TARGET fikit-top)
  install(FILES ${fikit_pkg}/bash-completion/fikit-top DESTINATION ${FIKIT_BASH_COMPLETION_DIR})
endif()

include(${fikit_pkg}/man/FikitMan.cmake)
include(${fikit_pkg}/debian/FikitDeb.cmake)

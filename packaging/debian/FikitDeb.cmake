# The Debian package `fikit` (CPack DEB), built by `make deb`: a build configured with prefix /usr
# and FIKIT_DEB=ON, which adds the files Debian wants in /usr/share/doc/fikit. The maintainer
# scripts create the groups `fikit` and `fikit-hp` and tell systemd of the unit; nothing is enabled
# or started (README.md, "Install").

option(FIKIT_DEB "Install the Debian package's doc files (copyright, changelog)" OFF)
set(FIKIT_DEB_MAINTAINER "fikit maintainers <fikit-maintainers@example.org>"
    CACHE STRING "Maintainer field of the Debian package")
set(FIKIT_DEB_RELEASE 1 CACHE STRING "Debian revision of the package version")
set(fikit_deb ${CMAKE_CURRENT_LIST_DIR})

if(FIKIT_DEB)
  set(fikit_doc ${CMAKE_BINARY_DIR}/packaging/doc)
  string(TIMESTAMP FIKIT_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
  configure_file(${fikit_deb}/changelog.in ${fikit_doc}/changelog.Debian @ONLY)
  # Debian wants the changelog gzip'ed without a timestamp (-n).
  add_custom_command(OUTPUT ${fikit_doc}/changelog.Debian.gz
    COMMAND gzip -9nkf ${fikit_doc}/changelog.Debian
    DEPENDS ${fikit_doc}/changelog.Debian VERBATIM)
  add_custom_target(fikit_deb_doc ALL DEPENDS ${fikit_doc}/changelog.Debian.gz)
  install(FILES ${fikit_deb}/copyright ${fikit_doc}/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

# Everything the package holds, for `make deb` to build without the tests and benchmarks.
add_custom_target(fikit_package_files)
add_dependencies(fikit_package_files fikit-broker fikit-run fikit-calibrate fikit)
foreach(t fikit-audit fikit-top fikit_man fikit_deb_doc)
  if(TARGET ${t})
    add_dependencies(fikit_package_files ${t})
  endif()
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fikit)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${FIKIT_DEB_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "share one NVIDIA GPU between tasks of different priority")
# CPack indents each line of the extended description; lintian wants them under 80 columns.
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "fikit runs a latency-bound, high-priority GPU task as if it had the GPU\n"
    "alone, while lower-priority tasks fill its inter-kernel idle time (FIKIT:\n"
    "Filling Inter-Kernel Idle Time). A broker daemon, fikit-broker, admits the\n"
    "tenants and grants their kernel launches; a client library, libfikit.so,\n"
    "preloaded into each tenant by fikit-run, holds lower-priority launches\n"
    "back until the broker grants them.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${FIKIT_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# fikit-calibrate needs the NVIDIA driver's libcuda.so.1, which no Debian package must provide:
# dpkg-shlibdeps finds the simulated driver's copy and is told to ignore its missing package.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/sim)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nvidia-cuda-mps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# triggers: ldconfig, for libfikit.so in the public libdir.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${fikit_deb}/postinst ${fikit_deb}/prerm ${fikit_deb}/postrm
    ${fikit_deb}/conffiles ${fikit_deb}/triggers)
include(CPack)

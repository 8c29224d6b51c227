# What a lab admin installs: systemd units and `cpack -G DEB` packages.
# Included before the subdirectories so that the default component below
# applies to their install() calls. One install component per .deb:
#   lib          libpesc0          the shared library
#   dev          libpesc-dev       headers, CMake config, pkg-config file
#   cli          pesc              the `pesc` command, and anything installed
#                                  without a COMPONENT (man pages in share/man)
#   coordinator  pesc-coordinator  the daemon, its unit, its account pesc-coordinator
#   worker       pesc-worker       the daemon, its unit, the rank user pesc
set(CMAKE_INSTALL_DEFAULT_COMPONENT_NAME cli)
# The R package builds the library alone and ships no packaging/.
if(NOT PESC_BUILD_DAEMONS)
  return()
endif()

set(pesc_packaging_dir ${PROJECT_SOURCE_DIR}/packaging)
set(pesc_packaging_out ${PROJECT_BINARY_DIR}/packaging)

# A unit names its binary and config by the prefix it is installed to
# (/usr: /usr/bin and /etc), known only at install time (cpack installs to /usr).
function(pesc_install_unit daemon component)
  install(CODE "
    if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
      set(PESC_SYSCONFDIR /etc)
    else()
      set(PESC_SYSCONFDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}\")
    endif()
    set(PESC_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    configure_file(\"${pesc_packaging_dir}/${daemon}.service.in\" \"${pesc_packaging_out}/${daemon}.service\" @ONLY)
    file(INSTALL \"${pesc_packaging_out}/${daemon}.service\" DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
    file(INSTALL \"${pesc_packaging_dir}/${daemon}.default\" DESTINATION \"\${PESC_SYSCONFDIR}/default\" RENAME ${daemon})
  " COMPONENT ${component})
  install(FILES ${pesc_packaging_dir}/${daemon}.sysusers DESTINATION lib/sysusers.d RENAME ${daemon}.conf
    COMPONENT ${component})
endfunction()

# The maintainer scripts of a daemon's package: its account, its unit.
function(pesc_maintainer_scripts component daemon user home on_purge)
  set(PESC_PACKAGE ${daemon})
  set(PESC_USER ${user})
  set(PESC_HOME ${home})
  set(PESC_ON_PURGE "${on_purge}")
  string(TOUPPER ${component} upper)
  set(scripts)
  foreach(script postinst prerm postrm)
    configure_file(${pesc_packaging_dir}/${script}.in ${pesc_packaging_out}/${component}/${script} @ONLY
      FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    list(APPEND scripts ${pesc_packaging_out}/${component}/${script})
  endforeach()
  # The admin's edits of the config survive upgrades.
  file(WRITE ${pesc_packaging_out}/${component}/conffiles "/etc/default/${daemon}\n")
  list(APPEND scripts ${pesc_packaging_out}/${component}/conffiles)
  set(CPACK_DEBIAN_${upper}_PACKAGE_CONTROL_EXTRA ${scripts} PARENT_SCOPE)
endfunction()

pesc_install_unit(pesc-coordinator coordinator)
pesc_install_unit(pesc-worker worker)
pesc_maintainer_scripts(coordinator pesc-coordinator pesc-coordinator /var/lib/pesc
  "[ ! -d /var/lib/pesc ] || echo 'pesc-coordinator: kept /var/lib/pesc (jobs, results, tokens); remove it by hand' >&2")
pesc_maintainer_scripts(worker pesc-worker pesc /nonexistent "rm -rf /var/lib/pesc-worker")

set(CPACK_PACKAGE_NAME pesc)
set(CPACK_PACKAGE_VENDOR "pesc authors")
set(CPACK_PACKAGE_CONTACT "pesc authors <pesc@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "parallel experiments for sequential code")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# With CPACK_SET_DESTDIR, cpack installs to CPACK_INSTALL_PREFIX below a DESTDIR.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev cli coordinator worker)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The commands need libpesc.so.0 before libpesc0 is installed: from the build tree.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/libpesc)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libpesc0)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libpesc-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_CLI_PACKAGE_NAME pesc)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME pesc-coordinator)
set(CPACK_DEBIAN_WORKER_PACKAGE_NAME pesc-worker)
set(CPACK_DEBIAN_WORKER_PACKAGE_RECOMMENDS bubblewrap)

include(CPackComponent)
cpack_add_component(lib DISPLAY_NAME "libpesc" DESCRIPTION "pesc: the C++ library that runs a program as N ranks")
cpack_add_component(dev DEPENDS lib DESCRIPTION "pesc: headers, CMake config and pkg-config file of libpesc")
cpack_add_component(cli DEPENDS lib DESCRIPTION "pesc: the command that runs a program as N ranks on a farm")
cpack_add_component(coordinator DEPENDS lib
  DESCRIPTION "pesc: the coordinator of a lab's farm (systemd unit pesc-coordinator)")
cpack_add_component(worker DEPENDS lib
  DESCRIPTION "pesc: a worker that runs a coordinator's ranks (systemd unit pesc-worker)")
foreach(component lib dev cli coordinator worker)
  string(TOUPPER ${component} upper)
  install(FILES ${pesc_packaging_dir}/copyright
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${CPACK_DEBIAN_${upper}_PACKAGE_NAME} COMPONENT ${component})
endforeach()
include(CPack)

# install.cmake - install-time part of `cmake --install` (run through install(SCRIPT) from
# CMakeLists.txt, which sets OMR_SOURCE_DIR, OMR_BINARY_DIR, OMR_SBINDIR and OMR_DATADIR first).
#
# Why not plain install(FILES): these destinations depend on the prefix actually used at install
# time (`cmake --install build --prefix /usr` overrides the configure-time prefix), and
# GNUInstallDirs' relative CMAKE_INSTALL_SYSCONFDIR is "etc", which puts the config in /usr/etc
# for prefix /usr. Here, as GNUInstallDirs documents for its FULL_ variables:
#   prefix /usr      -> /etc/omnirouter/omnirouter.yaml
#   prefix /opt/...  -> /etc/opt/.../omnirouter/omnirouter.yaml
#   any other prefix -> PREFIX/etc/omnirouter/omnirouter.yaml
# The systemd unit goes to PREFIX/lib/systemd/system (/usr/lib/systemd/system for /usr), the
# sysusers.d and tmpfiles.d snippets to PREFIX/lib/{sysusers,tmpfiles}.d/omnirouter.conf.
# The unit and the tmpfiles snippet name /usr/sbin/omnirouterd, /usr/share/omnirouter and
# /etc/omnirouter; for another prefix those paths are rewritten to where this install puts them.
#
# An existing config that differs from the shipped one is never overwritten: the new one is
# installed next to it as omnirouter.yaml.new. DESTDIR (staging) is honoured by file(INSTALL).

foreach(v OMR_SOURCE_DIR OMR_BINARY_DIR OMR_SBINDIR OMR_DATADIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "install.cmake: ${v} not set (run through CMakeLists.txt install rules)")
  endif()
endforeach()

string(REGEX REPLACE "/+$" "" _omr_prefix "${CMAKE_INSTALL_PREFIX}")
if(_omr_prefix STREQUAL "" OR _omr_prefix STREQUAL "/usr")
  set(_omr_etc "/etc")
elseif(_omr_prefix MATCHES "^/opt/")
  set(_omr_etc "/etc${_omr_prefix}")
else()
  set(_omr_etc "${_omr_prefix}/etc")
endif()
foreach(d SBINDIR DATADIR)
  if(IS_ABSOLUTE "${OMR_${d}}")
    set(_omr_full_${d} "${OMR_${d}}")
  else()
    set(_omr_full_${d} "${_omr_prefix}/${OMR_${d}}")
  endif()
endforeach()

# Config: never clobber a site's edited file.
set(_omr_conf_src "${OMR_SOURCE_DIR}/config/omnirouter.yaml")
set(_omr_conf_dir "${_omr_etc}/omnirouter")
set(_omr_conf_live "$ENV{DESTDIR}${_omr_conf_dir}/omnirouter.yaml")
if(NOT EXISTS "${_omr_conf_src}")
  message(FATAL_ERROR "install.cmake: ${_omr_conf_src} is missing")
endif()
set(_omr_conf_name omnirouter.yaml)
if(EXISTS "${_omr_conf_live}")
  file(SHA256 "${_omr_conf_live}" _omr_have)
  file(SHA256 "${_omr_conf_src}" _omr_ship)
  if(NOT _omr_have STREQUAL _omr_ship)
    set(_omr_conf_name omnirouter.yaml.new)
    message(STATUS "Keeping modified ${_omr_conf_live}; shipped version installed as "
                   "${_omr_conf_name}")
  endif()
endif()
file(INSTALL DESTINATION "${_omr_conf_dir}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${_omr_conf_src}" RENAME "${_omr_conf_name}")

# omr_install_rewritten(SRC DESTDIR NAME): installs SRC as DESTDIR/NAME with the /usr paths
# replaced by this install's paths (a no-op for prefix /usr).
function(omr_install_rewritten src dir name)
  file(READ "${src}" text)
  string(REPLACE "/usr/sbin/omnirouterd" "${_omr_full_SBINDIR}/omnirouterd" text "${text}")
  string(REPLACE "/usr/share/omnirouter" "${_omr_full_DATADIR}/omnirouter" text "${text}")
  string(REPLACE "/etc/omnirouter" "${_omr_conf_dir}" text "${text}")
  # A private temporary name: two installs of one build tree may run at once (ctest -j).
  string(RANDOM LENGTH 16 tag)
  set(tmp "${OMR_BINARY_DIR}/install-tmp-${tag}")
  file(MAKE_DIRECTORY "${tmp}")
  file(WRITE "${tmp}/${name}" "${text}")
  file(INSTALL DESTINATION "${dir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${tmp}/${name}")
  file(REMOVE_RECURSE "${tmp}")
endfunction()

omr_install_rewritten("${OMR_SOURCE_DIR}/systemd/omnirouterd.service"
                      "${_omr_prefix}/lib/systemd/system" omnirouterd.service)
omr_install_rewritten("${OMR_SOURCE_DIR}/systemd/omnirouter.sysusers"
                      "${_omr_prefix}/lib/sysusers.d" omnirouter.conf)
omr_install_rewritten("${OMR_SOURCE_DIR}/systemd/omnirouter.tmpfiles"
                      "${_omr_prefix}/lib/tmpfiles.d" omnirouter.conf)

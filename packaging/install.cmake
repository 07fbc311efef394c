# Installs the config, the shipped rules and the systemd unit. Runs at
# install time, since where they go depends on the prefix then in force:
# cpack installs into /usr whatever the build was configured with, and
# `cmake --install --prefix` may differ from the configured prefix too.
#
# Set beforehand by CMakeLists.txt: MQTTRULES_SOURCE_DIR,
# MQTTRULES_BINARY_DIR, MQTTRULES_RULES (the rule files), and
# MQTTRULES_BINDIR, MQTTRULES_SYSCONFDIR, MQTTRULES_DOCDIR (relative to
# the prefix).

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
	set(confdir /etc/mqttrules)
	set(unitdir /lib/systemd/system)
else()
	set(confdir ${CMAKE_INSTALL_PREFIX}/${MQTTRULES_SYSCONFDIR}/mqttrules)
	set(unitdir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(bindir ${CMAKE_INSTALL_PREFIX}/${MQTTRULES_BINDIR})
set(docdir ${CMAKE_INSTALL_PREFIX}/${MQTTRULES_DOCDIR})

# Files an operator edits: one already there is kept, and the shipped
# version goes beside it as NAME.new (which the daemon does not read).
function(install_config file dir)
	get_filename_component(name ${file} NAME)
	set(target $ENV{DESTDIR}${dir}/${name})
	if(NOT EXISTS ${target})
		file(INSTALL DESTINATION ${dir} TYPE FILE FILES ${file})
		return()
	endif()
	file(SHA256 ${file} shipped)
	file(SHA256 ${target} present)
	if(shipped STREQUAL present)
		message(STATUS "Up-to-date: ${target}")
		return()
	endif()
	message(STATUS "Keeping ${target}; the shipped one is ${name}.new")
	file(INSTALL DESTINATION ${dir} TYPE FILE FILES ${file}
	    RENAME ${name}.new)
endfunction()

install_config(${MQTTRULES_SOURCE_DIR}/etc/mqttrules.ini ${confdir})
foreach(rule ${MQTTRULES_RULES})
	install_config(${rule} ${confdir}/rules)
endforeach()

# The unit names /usr/bin, /usr/share/doc and /etc/mqttrules; another
# prefix gets its own paths. file(INSTALL) adds DESTDIR and records
# the files in the install manifest.
file(READ ${MQTTRULES_SOURCE_DIR}/packaging/mqttrules.service unit)
string(REPLACE "/usr/bin/mqttrules" "${bindir}/mqttrules" unit "${unit}")
string(REPLACE "/usr/share/doc/mqttrules" "${docdir}" unit "${unit}")
string(REPLACE "/etc/mqttrules" "${confdir}" unit "${unit}")
set(staged ${MQTTRULES_BINARY_DIR}/packaging/mqttrules.service)
file(WRITE ${staged} "${unit}")
file(INSTALL DESTINATION ${unitdir} TYPE FILE FILES ${staged})

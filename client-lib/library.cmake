# liboutpost as apps get it (docs/library.md, "Linking"):
#   outpost_shared  liboutpost.so.<ABI> with the soname; only OUTPOST_API symbols exported
#                   (hidden visibility for our code, outpost.map for the static archives)
#   outpost_bundle  liboutpost.a for static linking
# Both hold the library, the protocol, the encrypting VFS, the transport, and mbedTLS and
# libwebsockets from the dependency cache, so no private archive reaches the app. What the app
# still links are Debian's shared libraries, named in outpost.pc and OutpostConfig.cmake
# (Requires: sqlite3, which outpost.h includes; for static linking also msgpack-c, argon2, jansson,
# zlib, libcap, pthread, libm).
# The in-tree target `outpost` (static, internal archives beside it) stays what the tests use.
include(CMakePackageConfigHelpers)

# Bump when the ABI breaks (a removed or changed function, or a public struct that changed,
# appended fields included: see docs/library.md, "ABI"): the soname and the Debian package
# name follow. 1: outpost_sync_status and outpost_sync_config grew (rejected, round_trips,
# compressed; no_compression).
set(OUTPOST_ABI_VERSION 1)

set(outpost_parts outpost outpost_proto outpost_cryptvfs outpost_transport)
set(outpost_objects "")
foreach(part ${outpost_parts})
    list(APPEND outpost_objects $<TARGET_OBJECTS:${part}>)
endforeach()
# Debian's libraries the app links too (pkg-config module names, then link names).

add_library(outpost_shared SHARED ${outpost_objects})
set_target_properties(outpost_shared PROPERTIES
    OUTPUT_NAME outpost
    VERSION ${OUTPOST_ABI_VERSION}.${PROJECT_VERSION_MINOR}.${PROJECT_VERSION_PATCH}
    SOVERSION ${OUTPOST_ABI_VERSION}
    LINKER_LANGUAGE C)
target_link_libraries(outpost_shared PRIVATE outpost_lws outpost_mbedtls PkgConfig::SQLITE3
                      PkgConfig::MSGPACK PkgConfig::ARGON2 PkgConfig::JANSSON PkgConfig::ZLIB Threads::Threads)
target_link_options(outpost_shared PRIVATE
    "LINKER:--version-script=${CMAKE_CURRENT_LIST_DIR}/outpost.map" "LINKER:--no-undefined")
set_property(TARGET outpost_shared APPEND PROPERTY LINK_DEPENDS
             ${CMAKE_CURRENT_LIST_DIR}/outpost.map)

# The static bundle: every object of the parts above and of the cached mbedTLS and lws
# archives, in one archive (ar's MRI script), every name in it but the API's then prefixed
# outpost_private_ (cmake/localize_archive.cmake), as outpost.map hides them in the shared one.
set(bundle ${CMAKE_CURRENT_BINARY_DIR}/bundle/liboutpost.a)
set(outpost_public_headers ${CMAKE_CURRENT_LIST_DIR}/include/outpost.h
                           ${CMAKE_CURRENT_LIST_DIR}/include/outpost_sync.h)
set(mri ${CMAKE_CURRENT_BINARY_DIR}/bundle/liboutpost.mri)
set(mri_text "create ${bundle}\n")
foreach(part ${outpost_parts})
    string(APPEND mri_text "addlib $<TARGET_FILE:${part}>\n")
endforeach()
foreach(archive libmbedtls.a libmbedx509.a libmbedcrypto.a libwebsockets.a)
    string(APPEND mri_text "addlib ${OUTPOST_DEPS_PREFIX}/lib/${archive}\n")
endforeach()
string(APPEND mri_text "save\nend\n")
file(GENERATE OUTPUT ${mri} CONTENT "${mri_text}")
add_custom_command(OUTPUT ${bundle}
    COMMAND ${CMAKE_COMMAND} -E rm -f ${bundle}
    COMMAND ${CMAKE_AR} -M < ${mri}
    COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DOBJCOPY=${CMAKE_OBJCOPY} -DARCHIVE=${bundle}
            "-DHEADERS=${outpost_public_headers}"
            -P ${PROJECT_SOURCE_DIR}/cmake/localize_archive.cmake
    DEPENDS ${outpost_parts} ${mri} ${outpost_public_headers}
            ${PROJECT_SOURCE_DIR}/cmake/localize_archive.cmake
    COMMENT "Bundling liboutpost.a with its private archives"
    VERBATIM)
add_custom_target(outpost_bundle ALL DEPENDS ${bundle})

# Installed files: headers, both libraries, pkg-config and CMake package files.
install(FILES ${outpost_public_headers} ${PROJECT_BINARY_DIR}/include/outpost_version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(TARGETS outpost_shared
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
install(FILES ${bundle} DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)

# outpost.pc finds the prefix from its own place, so the tree installs anywhere (--prefix,
# DESTDIR, a package) and pkg-config still points at it.
file(RELATIVE_PATH OUTPOST_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${CMAKE_CURRENT_LIST_DIR}/outpost.pc.in ${CMAKE_CURRENT_BINARY_DIR}/outpost.pc
               @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/outpost.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

set(cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Outpost)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/OutpostConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/OutpostConfig.cmake
    INSTALL_DESTINATION ${cmake_dir}
    PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/OutpostConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/OutpostConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/OutpostConfigVersion.cmake
        DESTINATION ${cmake_dir} COMPONENT dev)

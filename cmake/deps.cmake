# Imported targets for what Outpost links:
#   Debian 12 packages (pkg-config): sqlite3, msgpack-c, zlib, jansson, cmocka, argon2; inih,
#   qrencode, libpq (server only)
#   built by scripts/deps.sh:        mbedTLS 3.6 and libwebsockets 4.3 on it (static)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3>=3.40)
pkg_check_modules(MSGPACK REQUIRED IMPORTED_TARGET msgpack>=4.0)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(ARGON2 REQUIRED IMPORTED_TARGET libargon2)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson) # forms and watch rules, both sides
# Only the server reads an ini file, draws QR codes and speaks to PostgreSQL.
if("server" IN_LIST OUTPOST_PARTS)
    pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
    pkg_check_modules(QRENCODE REQUIRED IMPORTED_TARGET libqrencode)
    pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq>=15)
endif()
find_package(Threads REQUIRED)

if(NOT OUTPOST_DEPS_PREFIX OR NOT EXISTS "${OUTPOST_DEPS_PREFIX}/include/mbedtls/version.h")
    message(FATAL_ERROR "OUTPOST_DEPS_PREFIX must name the prefix scripts/deps.sh printed "
                        "(it holds mbedTLS 3.6 and libwebsockets 4.3); got '${OUTPOST_DEPS_PREFIX}'")
endif()

function(outpost_static_import name file)
    add_library(${name} STATIC IMPORTED GLOBAL)
    set_target_properties(${name} PROPERTIES
        IMPORTED_LOCATION "${OUTPOST_DEPS_PREFIX}/lib/${file}"
        INTERFACE_INCLUDE_DIRECTORIES "${OUTPOST_DEPS_PREFIX}/include")
endfunction()
outpost_static_import(mbedcrypto libmbedcrypto.a)
outpost_static_import(mbedx509 libmbedx509.a)
outpost_static_import(mbedtls_ssl libmbedtls.a)
set_property(TARGET mbedx509 PROPERTY INTERFACE_LINK_LIBRARIES mbedcrypto)
set_property(TARGET mbedtls_ssl PROPERTY INTERFACE_LINK_LIBRARIES mbedx509 mbedcrypto Threads::Threads)

# One target for "mbedTLS 3.6": anything that includes mbedtls/*.h links this.
add_library(outpost_mbedtls INTERFACE)
target_link_libraries(outpost_mbedtls INTERFACE mbedtls_ssl)

outpost_static_import(lws_static libwebsockets.a)
set_property(TARGET lws_static PROPERTY INTERFACE_LINK_LIBRARIES
             outpost_mbedtls cap Threads::Threads ${CMAKE_DL_LIBS} m)
add_library(outpost_lws INTERFACE)
target_link_libraries(outpost_lws INTERFACE lws_static)

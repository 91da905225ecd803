# outpostd: the TLS WebSocket sync endpoint (server/src/daemon/, one module per job:
# config, log, tls, http, sync_handler, session, lockout, job, worker, server, main).
if(NOT TARGET outpost_store OR NOT TARGET outpost_proto)
    message(STATUS "outpostd: skipped (needs targets outpost_store and outpost_proto)")
    return()
endif()

file(GLOB outpostd_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/daemon/*.c)
add_executable(outpostd ${outpostd_sources})
target_include_directories(outpostd PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src
                                            ${CMAKE_CURRENT_SOURCE_DIR}/src/daemon)
target_link_libraries(outpostd PRIVATE outpost_store outpost_proto outpost_lws PkgConfig::INIH
                                       Threads::Threads outpost_warnings)
# lws 4.3.5's mbedTLS backend never applies a cipher list; tls.c enforces outpostd's TLS policy
# on every mbedtls_ssl_config lws makes by wrapping mbedtls_ssl_config_defaults (see tls.c).
target_link_options(outpostd PRIVATE "LINKER:--wrap=mbedtls_ssl_config_defaults")

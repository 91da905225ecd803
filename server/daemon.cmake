# outpostd: the TLS WebSocket sync endpoint (server/src/daemon/, one module per job:
# config, log, tls, http, sync_handler, session, lockout, job, worker, server, main).
if(NOT TARGET outpost_store OR NOT TARGET outpost_proto)
    message(STATUS "outpostd: skipped (needs targets outpost_store and outpost_proto)")
    return()
endif()

file(GLOB outpostd_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/daemon/*.c)

# The dashboard's files (server/web/) are compiled into outpostd: it serves every asset itself.
set(outpost_web_files index.html app.js app.css watch.js)
set(outpost_web_deps "")
foreach(f IN LISTS outpost_web_files)
    list(APPEND outpost_web_deps ${CMAKE_CURRENT_SOURCE_DIR}/web/${f})
endforeach()
add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/web_assets.c
    COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${CMAKE_CURRENT_SOURCE_DIR}/web
            "-DFILES=${outpost_web_files}" -DOUT=${CMAKE_CURRENT_BINARY_DIR}/web_assets.c
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_web.cmake
    DEPENDS ${outpost_web_deps} ${PROJECT_SOURCE_DIR}/cmake/embed_web.cmake
    COMMENT "Embedding the dashboard's web files"
    VERBATIM)

add_executable(outpostd ${outpostd_sources} ${CMAKE_CURRENT_BINARY_DIR}/web_assets.c)
target_include_directories(outpostd PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src
                                            ${CMAKE_CURRENT_SOURCE_DIR}/src/daemon)
target_link_libraries(outpostd PRIVATE outpost_store outpost_proto outpost_http_reply outpost_lws PkgConfig::INIH
                                       Threads::Threads outpost_version outpost_warnings)
# The admin section shows an enrollment code's QR (dash_people.c).
target_link_libraries(outpostd PRIVATE PkgConfig::QRENCODE)
# lws 4.3.5's mbedTLS backend never applies a cipher list; tls.c enforces outpostd's TLS policy
# on every mbedtls_ssl_config lws makes by wrapping mbedtls_ssl_config_defaults (see tls.c).
target_link_options(outpostd PRIVATE "LINKER:--wrap=mbedtls_ssl_config_defaults")
# The same backend loads only the first certificate of the cert file, so devices that pin a root
# CA never see the intermediates: tls.c hands mbedTLS the whole chain instead (see tls.c).
target_link_options(outpostd PRIVATE "LINKER:--wrap=mbedtls_ssl_conf_own_cert"
                                     "LINKER:--wrap=mbedtls_ssl_set_hs_own_cert")
# Failed TLS handshakes are counted for /metrics where mbedTLS reports them (tls.c).
target_link_options(outpostd PRIVATE "LINKER:--wrap=mbedtls_ssl_handshake_step")

install(TARGETS outpostd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT server)

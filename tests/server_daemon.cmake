# outpostd's integration tests: a real daemon on a free 127.0.0.1 port with certificates made
# for the run, driven by a test client built from the protocol library and lws.
if(TARGET outpostd AND TARGET outpost_store AND TARGET outpost_proto)
    add_library(outpost_testclient STATIC ${CMAKE_CURRENT_SOURCE_DIR}/integration/testclient.c
                                          ${CMAKE_CURRENT_SOURCE_DIR}/integration/daemon_fixture.c
                                          ${CMAKE_CURRENT_SOURCE_DIR}/integration/central_db.c
                                          ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_util.c)
    target_include_directories(outpost_testclient PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/integration
                                                         ${PROJECT_SOURCE_DIR}/server/src)
    target_link_libraries(outpost_testclient PUBLIC outpost_proto outpost_store outpost_lws
                                              PRIVATE outpost_warnings)
    target_compile_definitions(outpost_testclient PRIVATE
        OUTPOSTD_PATH="$<TARGET_FILE:outpostd>"
        OUTPOST_CERTS_SCRIPT="${PROJECT_SOURCE_DIR}/certs-example/make-dev-certs.sh")
    add_dependencies(outpost_testclient outpostd)

    outpost_add_test(test_daemon SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon.c
                     LIBS outpost_testclient LABELS integration TIMEOUT 300)
    # The session rules docs/protocol.md states, one by one.
    outpost_add_test(test_protocol_rules
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_protocol_rules.c
                             ${CMAKE_CURRENT_SOURCE_DIR}/integration/dash_client.c
                     LIBS outpost_testclient LABELS integration TIMEOUT 120)
    # /healthz, /metrics and its allow list, SIGHUP reloads, over real HTTPS (curl, openssl).
    outpost_add_test(test_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ops.c
                     LIBS outpost_testclient LABELS integration TIMEOUT 120)
    target_compile_definitions(test_ops PRIVATE
        OUTPOST_RENEW_SCRIPT="${PROJECT_SOURCE_DIR}/certs-example/renew-dev-cert.sh")
    # SIGKILL at random points while a device pushes (100 kills by default).
    outpost_add_test(test_daemon_crash
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_crash.c
                     LIBS outpost_testclient LABELS integration TIMEOUT 600)
endif()

# Unit tests of the daemon's self-contained modules.
if(TARGET outpostd)
    set(daemon_src ${PROJECT_SOURCE_DIR}/server/src/daemon)
    outpost_add_test(test_daemon_config
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_daemon_config.c
                             ${daemon_src}/config.c
                     LIBS PkgConfig::INIH PkgConfig::LIBPQ)
    target_include_directories(test_daemon_config PRIVATE ${daemon_src})
endif()

# Issue 12: what one device, one address or one account can make outpostd hold or do.
if(TARGET outpost_testclient)
    outpost_add_test(test_abuse SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_abuse.c
                     LIBS outpost_testclient outpost_lws LABELS integration TIMEOUT 120)
endif()

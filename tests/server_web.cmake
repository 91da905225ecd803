# The supervisor dashboard: store functions (accounts, audit chain, team-limited queries,
# conflict decisions), the daemon's reply writers and sessions, the HTTPS API against a real
# outpostd, and the browser tests in headless Chromium (tests/browser/run.sh).
if(TARGET outpost_store_fixture)
    outpost_add_test(test_dashboard SOURCES unit/test_dashboard.c
                     LIBS outpost_store_fixture PkgConfig::SQLITE3 LABELS store)
endif()

if(TARGET outpostd)
    set(daemon_src ${PROJECT_SOURCE_DIR}/server/src/daemon)
    outpost_add_test(test_dashboard_http
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_dashboard_http.c
                             ${daemon_src}/dash_buf.c ${daemon_src}/display_text.c
                             ${daemon_src}/dash_session.c
                             ${daemon_src}/config.c
                     LIBS outpost_store outpost_mbedtls PkgConfig::INIH)
    target_include_directories(test_dashboard_http PRIVATE ${daemon_src})
endif()

if(TARGET outpost_testclient AND TARGET outpost-admin)
    outpost_add_test(test_dashboard_api
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_dashboard_api.c
                             ${CMAKE_CURRENT_SOURCE_DIR}/integration/dash_client.c
                     LIBS outpost_testclient outpost_lws LABELS integration TIMEOUT 300)
    target_compile_definitions(test_dashboard_api PRIVATE
                               OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_dashboard_api outpost-admin)
    if(TARGET outpost_pg_cluster)
        # outpostd serving from PostgreSQL: a device pushes, another pulls, a conflict reaches
        # a supervisor (the same cases, on a private cluster).
        outpost_add_test(test_daemon_postgresql
                         SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_dashboard_api.c
                                 ${CMAKE_CURRENT_SOURCE_DIR}/integration/dash_client.c
                         LIBS outpost_testclient outpost_lws outpost_pg_cluster
                         LABELS integration TIMEOUT 300)
        target_include_directories(test_daemon_postgresql PRIVATE
                                   ${CMAKE_CURRENT_SOURCE_DIR}/unit)
        target_compile_definitions(test_daemon_postgresql PRIVATE OUTPOST_DASH_ON_POSTGRESQL
                                   OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
        # the SQLite-file cases stay compiled but unlisted
        target_compile_options(test_daemon_postgresql PRIVATE -Wno-unused-function)
        add_dependencies(test_daemon_postgresql outpost-admin)
    endif()
endif()

# Browser tests: Debian's chromium + playwright-core (both installed by run.sh when missing),
# devices that are the outpost CLI. Screenshots in BUILD/tests/artifacts/.
if(TARGET outpostd AND TARGET outpost-admin AND TARGET outpost_cli)
    add_test(NAME test_dashboard_browser
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/browser/run.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR})
    set_tests_properties(test_dashboard_browser PROPERTIES TIMEOUT 600 LABELS browser
                         RUN_SERIAL TRUE)
endif()

# test_daemon's group commit case also runs on PostgreSQL (outpost_pg_cluster comes from
# server_store.cmake, read after server_daemon.cmake).
if(TARGET test_daemon AND TARGET outpost_pg_cluster)
    target_link_libraries(test_daemon PRIVATE outpost_pg_cluster)
    target_include_directories(test_daemon PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
    target_compile_definitions(test_daemon PRIVATE OUTPOST_DAEMON_ON_POSTGRESQL)
endif()

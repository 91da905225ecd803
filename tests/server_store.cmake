# Central store, merge engine and outpost-admin tests (server/store.cmake).
if(TARGET outpost_store)
    add_library(outpost_store_fixture STATIC unit/store_fixture.c)
    target_link_libraries(outpost_store_fixture PUBLIC outpost_store PkgConfig::CMOCKA
                          PRIVATE outpost_warnings outpost_pg_cluster)
    target_include_directories(outpost_store_fixture PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    # A private PostgreSQL server for the tests that run on both engines (unit/pg_cluster.h).
    add_library(outpost_pg_cluster STATIC unit/pg_cluster.c)
    target_link_libraries(outpost_pg_cluster PRIVATE outpost_warnings)
    outpost_add_test(test_db SOURCES unit/test_db.c LIBS outpost_store outpost_pg_cluster
                     Threads::Threads LABELS store)
    outpost_add_test(test_store_engines SOURCES unit/test_store_engines.c
                     LIBS outpost_store outpost_pg_cluster Threads::Threads LABELS store)
    outpost_add_test(test_pg_failover SOURCES unit/test_pg_failover.c
                     LIBS outpost_store outpost_pg_cluster Threads::Threads LABELS store)
    outpost_add_test(test_merge SOURCES unit/test_merge.c LIBS outpost_store_fixture
                     LABELS store)
    outpost_add_test(test_store SOURCES unit/test_store.c LIBS outpost_store_fixture
                     LABELS store)
    outpost_add_test(test_store_wal SOURCES unit/test_store_wal.c LIBS outpost_store_fixture
                     LABELS store)
    outpost_add_test(test_store_backup SOURCES unit/test_store_backup.c
                     LIBS outpost_store_fixture LABELS store)
    outpost_add_test(test_forms SOURCES unit/test_forms.c LIBS outpost_store LABELS store)
    outpost_add_test(test_audit SOURCES unit/test_audit.c LIBS outpost_store_fixture
                     outpost_mbedtls LABELS store)
    if(TARGET outpost-admin)
        outpost_add_test(test_admin SOURCES unit/test_admin.c LIBS outpost_store_fixture
                         outpost_pg_cluster LABELS store)
        target_compile_definitions(test_admin PRIVATE
                                   OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
        add_dependencies(test_admin outpost-admin)
    endif()
endif()

# outpostd's NOTIFY between nodes (server/src/daemon/announce.c) against recorded effects, and
# through two handles on a private PostgreSQL.
if(TARGET outpost_store AND TARGET outpostd)
    set(announce_daemon_src ${PROJECT_SOURCE_DIR}/server/src/daemon)
    outpost_add_test(test_announce
                     SOURCES unit/test_announce.c ${announce_daemon_src}/announce.c
                             ${announce_daemon_src}/log.c
                     LIBS outpost_store outpost_pg_cluster outpost_mbedtls outpost_lws
                          outpost_http_reply
                     LABELS store)
    target_include_directories(test_announce PRIVATE ${announce_daemon_src})
endif()

# outpostd's pull pages read ahead (server/src/daemon/pull_ahead.c) over a real store, on both
# engines: served only when still exactly what the device may be sent, within their byte cap.
if(TARGET outpost_store AND TARGET outpostd)
    outpost_add_test(test_pull_ahead
                     SOURCES unit/test_pull_ahead.c
                             ${PROJECT_SOURCE_DIR}/server/src/daemon/pull_ahead.c
                     LIBS outpost_store_fixture Threads::Threads LABELS store)
    target_include_directories(test_pull_ahead PRIVATE ${PROJECT_SOURCE_DIR}/server/src/daemon
                                                       ${CMAKE_CURRENT_SOURCE_DIR})
endif()

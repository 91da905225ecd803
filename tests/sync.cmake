# liboutpost's sync engine end to end against a real outpostd (tests/integration/daemon_fixture).
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    outpost_add_test(test_sync SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sync.c
                     LIBS outpost_internal outpost_testclient outpost_faultproxy
                     LABELS integration TIMEOUT 600)
    if(TARGET outpost-admin) # a store upgrade under a device's first flight
        target_compile_definitions(test_sync PRIVATE
                                   OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
        add_dependencies(test_sync outpost-admin)
    endif()
    if(TARGET outpost_pg_cluster)
        # liboutpost devices against outpostd serving from PostgreSQL (the same cases).
        outpost_add_test(test_sync_postgresql
                         SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sync.c
                         LIBS outpost_internal outpost_testclient outpost_faultproxy
                              outpost_pg_cluster
                         LABELS integration TIMEOUT 600)
        target_include_directories(test_sync_postgresql PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
        target_compile_definitions(test_sync_postgresql PRIVATE OUTPOST_SYNC_ON_POSTGRESQL)
        if(TARGET outpost-admin)
            target_compile_definitions(test_sync_postgresql PRIVATE
                                       OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
        endif()
        # the SQLite-file cases stay compiled but unlisted
        target_compile_options(test_sync_postgresql PRIVATE -Wno-unused-function)
        # The same devices through a failover: the primary SIGKILLed, its synchronous standby
        # promoted, outpostd reconnecting by itself (docs/operations.md "Topology and failover").
        outpost_add_test(test_failover_postgresql
                         SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sync.c
                                 ${CMAKE_CURRENT_SOURCE_DIR}/integration/dash_client.c
                         LIBS outpost_internal outpost_testclient outpost_faultproxy
                              outpost_pg_cluster outpost_lws
                         LABELS integration TIMEOUT 300)
        target_include_directories(test_failover_postgresql PRIVATE
                                   ${CMAKE_CURRENT_SOURCE_DIR}/unit)
        target_compile_definitions(test_failover_postgresql PRIVATE OUTPOST_SYNC_ON_POSTGRESQL
                                   OUTPOST_SYNC_FAILOVER
                                   OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
        target_compile_options(test_failover_postgresql PRIVATE -Wno-unused-function)
    endif()
endif()

# The outpost CLI as a user meets it: the real binaries against a real outpostd.
if(TARGET outpost_cli AND TARGET outpost-admin AND TARGET outpost_testclient)
    outpost_add_test(test_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli.c
                     LIBS outpost_testclient LABELS integration TIMEOUT 300)
    target_compile_definitions(test_cli PRIVATE OUTPOST_CLI_PATH="$<TARGET_FILE:outpost_cli>"
                                                OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_cli outpost_cli outpost-admin)
endif()

# Forms from the admin's schema package to a device and the dashboard (docs/forms.md).
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost-admin)
    outpost_add_test(test_forms_sync
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_forms_sync.c
                             ${CMAKE_CURRENT_SOURCE_DIR}/integration/dash_client.c
                     LIBS outpost outpost_testclient outpost_lws LABELS integration TIMEOUT 120)
    target_compile_definitions(test_forms_sync PRIVATE
                               OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_forms_sync outpost-admin outpostd)
endif()

# Fault and oracle tests again with outpostd serving from a private PostgreSQL cluster
# (unit/pg_cluster.h; after server_store.cmake, which makes outpost_pg_cluster). They skip, as
# every pg_cluster test does, where the PostgreSQL binaries are not installed.
if(TARGET outpost_testclient AND TARGET outpost_pg_cluster)
    # SIGKILL of outpostd at random points while a device pushes.
    outpost_add_test(test_daemon_crash_postgresql
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_crash.c
                     LIBS outpost_testclient outpost_pg_cluster LABELS integration TIMEOUT 600)
    target_include_directories(test_daemon_crash_postgresql PRIVATE
                               ${CMAKE_CURRENT_SOURCE_DIR}/unit)
    target_compile_definitions(test_daemon_crash_postgresql PRIVATE OUTPOST_CRASH_ON_POSTGRESQL)
endif()

if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy
   AND TARGET outpost_pg_cluster)
    # The convergence oracle: the same model, 5 seeds (OUTPOST_SEEDS / OUTPOST_SEED to choose).
    outpost_add_test(test_convergence_postgresql
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_convergence.c
                     LIBS outpost_internal outpost_testclient outpost_faultproxy
                          outpost_pg_cluster
                     LABELS "integration;proof" TIMEOUT 300)
    target_include_directories(test_convergence_postgresql PRIVATE
                               ${CMAKE_CURRENT_SOURCE_DIR}/unit)
    target_compile_definitions(test_convergence_postgresql PRIVATE OUTPOST_ORACLE_ON_POSTGRESQL)
endif()

# outpostd benchmark: a 100,000-row push over TLS beside raw SQLite inserts, and server memory
# per idle connection with 1,000 held. Uses the integration tests' fixture and test client.
if(TARGET outpostd AND TARGET outpost_testclient)
    outpost_add_bench(bench_daemon SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/daemon_bench.c
                                           ${CMAKE_CURRENT_SOURCE_DIR}/bench_time.c
                      LIBS outpost_testclient PkgConfig::SQLITE3)
endif()
# Issue 12's figures: many devices multiplexed on one lws client context (bench_abuse.c); and
# issue 17's: the same load against 1 then 2 outpostd on one private PostgreSQL (pg_cluster.c).
if(TARGET outpostd AND TARGET outpost_testclient)
    outpost_add_bench(bench_abuse SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_abuse.c
                                          ${PROJECT_SOURCE_DIR}/tests/unit/pg_cluster.c
                      LIBS outpost_testclient outpost_store outpost_lws)
    target_include_directories(bench_abuse PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
endif()

# End to end through liboutpost over TLS on loopback: a 100,000-row push from one device and the
# initial pull into a fresh one, beside raw SQLite inserts of the same rows; wire bytes per row
# beside the changeset size; the pulling client's peak memory. Uses the integration fixture.
# Mode "pg": the same push into outpostd on a private PostgreSQL cluster (pg_cluster.c) beside
# raw libpq INSERT and COPY of the same rows (bench_pg_raw.c, shared with bench_db).
if(TARGET outpost AND TARGET outpost_testclient)
    outpost_add_bench(bench_sync SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_sync.c
                                         ${CMAKE_CURRENT_SOURCE_DIR}/bench_rows.c
                                         ${CMAKE_CURRENT_SOURCE_DIR}/bench_time.c
                                         ${CMAKE_CURRENT_SOURCE_DIR}/bench_pg_raw.c
                                         ${PROJECT_SOURCE_DIR}/tests/unit/pg_cluster.c
                      LIBS outpost_internal outpost_testclient PkgConfig::LIBPQ)
    target_include_directories(bench_sync PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
endif()

# The merge engine's throughput beside raw SQLite inserts of the same rows (server/store.cmake).
if(TARGET outpost_store)
    outpost_add_bench(bench_merge SOURCES bench_merge.c bench_time.c LIBS outpost_store)
    # The database seam on SQLite and PostgreSQL beside raw libpq INSERT and COPY.
    outpost_add_bench(bench_db SOURCES bench_db.c bench_pg_raw.c bench_time.c
                      ${PROJECT_SOURCE_DIR}/tests/unit/pg_cluster.c LIBS outpost_store)
    target_include_directories(bench_db PRIVATE ${PROJECT_SOURCE_DIR}/tests)
endif()

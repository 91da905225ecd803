# bench_rows.c: the contacts rows and schema these share; bench_time.c: clock and the common statistic.
# liboutpost write path: contacts inserted through the library's write API beside plain SQLite.
if(TARGET outpost)
    outpost_add_bench(bench_client
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_client.c ${CMAKE_CURRENT_LIST_DIR}/bench_rows.c
                ${CMAKE_CURRENT_LIST_DIR}/bench_time.c
        LIBS outpost_internal)
    # liboutpost with encryption at rest beside without: write path, pull-apply, Argon2id open.
    outpost_add_bench(bench_replica_crypt
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_replica_crypt.c
                ${CMAKE_CURRENT_LIST_DIR}/bench_rows.c ${CMAKE_CURRENT_LIST_DIR}/bench_time.c
        LIBS outpost_internal)
endif()

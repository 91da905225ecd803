# The merge engine's throughput beside raw SQLite inserts of the same rows (server/store.cmake).
if(TARGET outpost_store)
    outpost_add_bench(bench_merge SOURCES bench_merge.c bench_time.c LIBS outpost_store)
endif()

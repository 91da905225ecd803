# Load: 1,000 concurrent liboutpost devices doing small syncs against one outpostd (syncs/s,
# p50/p99 latency, server memory and CPU). Uses the integration tests' fixture.
if(TARGET outpost AND TARGET outpost_testclient)
    outpost_add_bench(bench_load SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_load.c
                                         ${CMAKE_CURRENT_LIST_DIR}/bench_time.c
                      LIBS outpost_internal outpost_testclient)
endif()

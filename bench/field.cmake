# A field worker's day (examples/outreach) over the fault proxy's 2G and 3G link shaper: wall
# time, round trips and bytes each way, cold and with the connection kept, beside a PouchDB-style
# JSON-over-HTTP replication of the same day (couch_baseline.c); idle wakes per hour.
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    outpost_add_bench(bench_field SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_field.c
                                          ${CMAKE_CURRENT_SOURCE_DIR}/bench_time.c
                                          ${CMAKE_CURRENT_SOURCE_DIR}/couch_baseline.c
                      LIBS outpost_internal outpost_testclient outpost_faultproxy
                           PkgConfig::JANSSON)
    target_compile_definitions(bench_field PRIVATE OUTPOST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()

# liboutpost tests: one cmocka program per module, plus the crash and bounded-heap tests.
if(TARGET outpost)
    foreach(module schema capture outbox pull status replica wipe uuid errors)
        outpost_add_test(test_client_${module}
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_${module}.c
            LIBS outpost
            LABELS client)
    endforeach()
    outpost_add_test(crash_replica
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/crash_replica.c
        LIBS outpost
        LABELS "client;fault"
        TIMEOUT 300)
    outpost_add_test(pull_heap_bound
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/pull_heap_bound.c
        LIBS outpost
        LABELS client
        TIMEOUT 300)
endif()

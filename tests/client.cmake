# liboutpost tests: one cmocka program per module, plus the crash and bounded-heap tests.
if(TARGET outpost)
    foreach(module schema capture outbox heal pull status replica wipe uuid errors encryption)
        outpost_add_test(test_client_${module}
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_${module}.c
            LIBS outpost_internal
            LABELS client)
    endforeach()
    outpost_add_test(crash_replica
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/crash_replica.c
        LIBS outpost_internal
        LABELS "client;fault"
        TIMEOUT 300)
    # The same 200 kills with the replica encrypted at rest.
    add_test(NAME crash_replica_encrypted COMMAND crash_replica --encrypted)
    set_tests_properties(crash_replica_encrypted PROPERTIES TIMEOUT 300 LABELS "client;fault;crypto")
    # Markers written through every library path, SIGKILL mid-transaction, no marker on disk.
    outpost_add_test(canary_replica
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/canary_replica.c
                ${CMAKE_CURRENT_LIST_DIR}/integration/canary_text.c
        LIBS outpost_internal
        LABELS "client;crypto;fault"
        TIMEOUT 300)
    outpost_add_test(pull_heap_bound
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/pull_heap_bound.c
        LIBS outpost_internal
        LABELS client
        TIMEOUT 300)
endif()

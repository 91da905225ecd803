# liboutpost's sync engine end to end against a real outpostd (tests/integration/daemon_fixture).
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    outpost_add_test(test_sync SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sync.c
                     LIBS outpost outpost_testclient outpost_faultproxy
                     LABELS integration TIMEOUT 600)
    target_compile_definitions(test_sync PRIVATE
                               OUTPOST_CERTS_DIR="${PROJECT_SOURCE_DIR}/certs-example")
endif()

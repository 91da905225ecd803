# liboutpost's sync engine end to end against a real outpostd (tests/integration/daemon_fixture).
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    outpost_add_test(test_sync SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sync.c
                     LIBS outpost_internal outpost_testclient outpost_faultproxy
                     LABELS integration TIMEOUT 600)
endif()

# The outpost CLI as a user meets it: the real binaries against a real outpostd.
if(TARGET outpost_cli AND TARGET outpost-admin AND TARGET outpost_testclient)
    outpost_add_test(test_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cli.c
                     LIBS outpost_testclient LABELS integration TIMEOUT 300)
    target_compile_definitions(test_cli PRIVATE OUTPOST_CLI_PATH="$<TARGET_FILE:outpost_cli>"
                                                OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_cli outpost_cli outpost-admin)
endif()

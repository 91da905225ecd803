# Needs attention (issue 19): watch rules evaluated by a real outpostd against the example
# schema while liboutpost devices sync, with the test-only watch clock (docs/watch.md).
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost-admin)
    outpost_add_test(test_watch SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_watch.c
                             ${CMAKE_CURRENT_SOURCE_DIR}/integration/dash_client.c
                     LIBS outpost_internal outpost_testclient outpost_lws
                     LABELS integration TIMEOUT 300)
    target_compile_definitions(test_watch PRIVATE
                               OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_watch outpost-admin)
endif()

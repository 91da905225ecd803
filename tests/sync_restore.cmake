# The central store restored from a backup, end to end: real outpostd, devices through
# liboutpost, outpost-admin backup/restore; one outpostd per store; outpostd killed mid-pull.
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost-admin)
    outpost_add_test(test_restore SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_restore.c
                     LIBS outpost outpost_testclient LABELS integration TIMEOUT 300)
    target_compile_definitions(test_restore PRIVATE
                               OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_restore outpost-admin)
endif()

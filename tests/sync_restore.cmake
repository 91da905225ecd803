# The central store restored from a backup, end to end: real outpostd, devices through
# liboutpost, outpost-admin backup/restore; one outpostd per store; outpostd killed mid-pull.
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost-admin)
    outpost_add_test(test_restore SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_restore.c
                     LIBS outpost outpost_testclient LABELS integration TIMEOUT 300)
    target_compile_definitions(test_restore PRIVATE
                               OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_restore outpost-admin)
endif()
# The same on PostgreSQL: pg_dump while outpostd serves, pg_restore, outpost-admin restored.
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost-admin
   AND TARGET outpost_pg_cluster)
    outpost_add_test(test_restore_postgresql
                     SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_restore.c
                     LIBS outpost outpost_testclient outpost_pg_cluster PkgConfig::LIBPQ
                     LABELS integration TIMEOUT 300)
    target_include_directories(test_restore_postgresql PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
    target_compile_definitions(test_restore_postgresql PRIVATE OUTPOST_RESTORE_ON_POSTGRESQL
                               OUTPOST_ADMIN_PATH="$<TARGET_FILE:outpost-admin>")
    add_dependencies(test_restore_postgresql outpost-admin)
    # the SQLite-file cases stay compiled but unlisted
    target_compile_options(test_restore_postgresql PRIVATE -Wno-unused-function)
endif()

# liboutpost core: the replica (encrypted at rest through outpost_cryptvfs), change capture, outbox, pull-apply. Public API in include/outpost.h;
# everything else has hidden visibility (CMAKE_C_VISIBILITY_PRESET) and is not API.
find_package(Threads REQUIRED)
add_library(outpost STATIC
    ${CMAKE_CURRENT_LIST_DIR}/src/error.c
    ${CMAKE_CURRENT_LIST_DIR}/src/forms.c
    ${CMAKE_CURRENT_LIST_DIR}/src/outbox.c
    ${CMAKE_CURRENT_LIST_DIR}/src/heal.c
    ${CMAKE_CURRENT_LIST_DIR}/src/pull.c
    ${CMAKE_CURRENT_LIST_DIR}/src/quarantine.c
    ${CMAKE_CURRENT_LIST_DIR}/src/replica.c
    ${CMAKE_CURRENT_LIST_DIR}/src/row_state.c
    ${CMAKE_CURRENT_LIST_DIR}/src/schema.c
    ${CMAKE_CURRENT_LIST_DIR}/src/scope.c
    ${CMAKE_CURRENT_LIST_DIR}/src/tx.c
    ${CMAKE_CURRENT_LIST_DIR}/src/uuid.c
    ${CMAKE_CURRENT_LIST_DIR}/src/worker_id.c
    ${CMAKE_CURRENT_LIST_DIR}/src/value.c
    ${CMAKE_CURRENT_LIST_DIR}/src/version.c
    ${CMAKE_CURRENT_LIST_DIR}/src/watch_items.c
    # The watch rules' checks are the server's own, compiled here too (docs/watch.md).
    ${PROJECT_SOURCE_DIR}/server/src/watch.c)
target_include_directories(outpost
    PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include
    PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src ${PROJECT_SOURCE_DIR}/server/src)
target_link_libraries(outpost
    PUBLIC outpost_proto outpost_version PkgConfig::SQLITE3 Threads::Threads
    PRIVATE outpost_cryptvfs outpost_warnings PkgConfig::JANSSON)
# The library's own tests and benchmarks also drive the sync engine's seams (outpost_engine.h:
# schema install, outbox entries, ACK/REJECT, rows-apply, in protocol types): they link this,
# apps and the CLI link `outpost` and see only include/.
add_library(outpost_internal INTERFACE)
target_include_directories(outpost_internal INTERFACE ${CMAKE_CURRENT_LIST_DIR}/src)
target_link_libraries(outpost_internal INTERFACE outpost)

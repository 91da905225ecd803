# Power loss: the replica (plain and encrypted), the rekey and the central store (its own
# transactions and device pushes; outpost_store_fixture comes from server_store.cmake) through a VFS
# that drops or tears every write not yet synced (tests/integration/powerloss_vfs.h).
if(TARGET outpost AND TARGET outpost_store)
    outpost_add_test(test_powerloss
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_powerloss.c
                             ${CMAKE_CURRENT_LIST_DIR}/integration/powerloss_vfs.c
                     LIBS outpost_internal outpost_store outpost_store_fixture
                     LABELS "client;store;fault;crypto" TIMEOUT 120)
    target_include_directories(test_powerloss PRIVATE ${PROJECT_SOURCE_DIR}/server/src)
endif()

# cryptvfs (the encrypting SQLite VFS under liboutpost): unit tests, the canary crash test and the
# rekey crash test. Built whenever the outpost_cryptvfs target is.
if(TARGET outpost_cryptvfs)
    outpost_add_test(test_cryptvfs
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_cryptvfs.c
        LIBS outpost_cryptvfs
        LABELS "client;crypto")
    outpost_add_test(canary_cryptvfs
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/canary_cryptvfs.c
                ${CMAKE_CURRENT_LIST_DIR}/integration/canary_text.c
        LIBS outpost_cryptvfs
        LABELS "client;crypto;fault"
        TIMEOUT 300)
    outpost_add_test(rekey_crash_cryptvfs
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/rekey_crash_cryptvfs.c
        LIBS outpost_cryptvfs
        LABELS "client;crypto;fault"
        TIMEOUT 300)
endif()

# cryptvfs: insert and bulk-apply rates with encryption beside the same without it, and the
# Argon2id key derivation time.
if(TARGET outpost_cryptvfs)
    outpost_add_bench(bench_cryptvfs
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_cryptvfs.c ${CMAKE_CURRENT_LIST_DIR}/bench_time.c
        LIBS outpost_cryptvfs)
endif()

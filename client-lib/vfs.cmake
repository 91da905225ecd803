# outpost_cryptvfs: the encrypting SQLite VFS every replica is opened through (AES-256-GCM pages
# on mbedTLS, Argon2id passphrases). Internal to liboutpost: its header stays beside the sources.
add_library(outpost_cryptvfs STATIC
    ${CMAKE_CURRENT_LIST_DIR}/src/cryptvfs.c
    ${CMAKE_CURRENT_LIST_DIR}/src/cryptvfs_file.c
    ${CMAKE_CURRENT_LIST_DIR}/src/cryptvfs_kdf.c
    ${CMAKE_CURRENT_LIST_DIR}/src/cryptvfs_memfile.c
    ${CMAKE_CURRENT_LIST_DIR}/src/cryptvfs_page.c
    ${CMAKE_CURRENT_LIST_DIR}/src/cryptvfs_rekey.c)
# Consumers (liboutpost, its tests and benchmarks) include "cryptvfs.h" from here.
target_include_directories(outpost_cryptvfs PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
# cryptvfs.h exposes SQLite types only; mbedTLS and Argon2 stay behind it.
target_link_libraries(outpost_cryptvfs
    PUBLIC PkgConfig::SQLITE3
    PRIVATE outpost_mbedtls PkgConfig::ARGON2 outpost_warnings)

# Proof under fire (issue 6): the invariants of docs/design.md as tests. Named zz_ so that it is
# included after every other fragment and all the targets it uses exist.
if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    # The convergence oracle: 10 rich seeds in both builds (OUTPOST_SEEDS / OUTPOST_SEED to
    # choose); its last case needs every generated case to have occurred over them.
    outpost_add_test(test_convergence
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_convergence.c
                     LIBS outpost_internal outpost_testclient outpost_faultproxy
                     LABELS "integration;proof" TIMEOUT 300)
endif()

if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    # Hostile input against a running server while a good device syncs.
    outpost_add_test(test_hostile
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_hostile.c
                     LIBS outpost_internal outpost_testclient outpost_faultproxy outpost_lws
                     LABELS "integration;proof" TIMEOUT 600)
endif()

if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    # Device SIGKILLed mid-push and mid-pull-apply; the server's disk filling up.
    outpost_add_test(test_device_crash
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_device_crash.c
                     LIBS outpost_internal outpost_testclient outpost_faultproxy
                     LABELS "integration;proof;fault" TIMEOUT 600)
    # A full disk without root: preloaded into outpostd, it fails the store's writes on demand.
    # Built without sanitizers, so that it can be preloaded ahead of an ASan runtime.
    add_library(outpost_full_disk_shim MODULE
                ${CMAKE_CURRENT_LIST_DIR}/integration/full_disk_shim.c)
    set_property(TARGET outpost_full_disk_shim PROPERTY COMPILE_OPTIONS "")
    set_property(TARGET outpost_full_disk_shim PROPERTY LINK_OPTIONS "")
    set_property(TARGET outpost_full_disk_shim PROPERTY C_VISIBILITY_PRESET default)
    target_link_libraries(outpost_full_disk_shim PRIVATE ${CMAKE_DL_LIBS})
    target_compile_definitions(test_device_crash PRIVATE
        OUTPOST_FULL_DISK_SHIM="$<TARGET_FILE:outpost_full_disk_shim>")
    add_dependencies(test_device_crash outpost_full_disk_shim)
    if(TARGET test_daemon) # a group commit whose COMMIT finds the disk full
        target_compile_definitions(test_daemon PRIVATE
            OUTPOST_FULL_DISK_SHIM="$<TARGET_FILE:outpost_full_disk_shim>")
        add_dependencies(test_daemon outpost_full_disk_shim)
    endif()
endif()

if(TARGET outpost AND TARGET outpost_testclient AND TARGET outpost_faultproxy)
    # Stalled and trickled links (cuts are test_sync's): sync completes, at most one resend.
    outpost_add_test(test_network
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_network.c
                     LIBS outpost_internal outpost_testclient outpost_faultproxy
                     LABELS "integration;proof;network" TIMEOUT 600)
endif()

if(TARGET outpost_testclient)
    # testssl.sh against a running outpostd (about 90 s; installs testssl.sh when missing).
    outpost_add_test(test_tls_scan
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_tls_scan.c
                     LIBS outpost_testclient
                     LABELS "integration;proof;tls" TIMEOUT 600)
endif()

# Fuzz targets for the server's message handling (store_push / store_pull behind the decoder),
# the device's pull-apply and the device's changeset reader. Each replays its seed corpus in ctest; fuzz_seeds regenerates
# the corpora (fuzz_seeds tests/fuzz/corpus); scripts/fuzz.sh runs the libFuzzer builds.
if(TARGET outpost_store AND TARGET outpost_proto)
    add_executable(fuzz_seeds ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_seeds.c)
    target_link_libraries(fuzz_seeds PRIVATE outpost_proto outpost_warnings)
    outpost_add_test(fuzz_server_replay
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_server.c
                             ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_replay.c
                     LIBS outpost_store outpost_proto
                     LABELS "fuzz;proof")
    target_include_directories(fuzz_server_replay PRIVATE ${PROJECT_SOURCE_DIR}/server/src)
    target_compile_definitions(fuzz_server_replay PRIVATE FUZZ_NAME="fuzz_server"
                                                          FUZZ_CORPUS="server")
endif()
if(TARGET outpost)
    outpost_add_test(fuzz_pull_apply_replay
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_pull_apply.c
                             ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_replay.c
                     LIBS outpost_internal
                     LABELS "fuzz;proof")
    target_compile_definitions(fuzz_pull_apply_replay PRIVATE FUZZ_NAME="fuzz_pull_apply"
                                                              FUZZ_CORPUS="pull_apply")
    # The device's changeset reader (outbox_decode) against SQLite's iterator; outbox_seeds
    # regenerates its corpus from real session changesets (outbox_seeds tests/fuzz/corpus).
    add_executable(outbox_seeds ${CMAKE_CURRENT_LIST_DIR}/fuzz/outbox_seeds.c)
    target_link_libraries(outbox_seeds PRIVATE outpost_internal outpost_warnings)
    outpost_add_test(fuzz_outbox_decode_replay
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_outbox_decode.c
                             ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_replay.c
                     LIBS outpost_internal
                     LABELS "fuzz;proof" TIMEOUT 60)
    target_compile_definitions(fuzz_outbox_decode_replay PRIVATE FUZZ_NAME="fuzz_outbox_decode"
                                                                 FUZZ_CORPUS="outbox")
endif()
if(OUTPOST_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
    # The libraries under test carry the fuzzer's coverage and the sanitizers in this build.
    set(fuzz_flags -fsanitize=fuzzer-no-link,address,undefined -g)
    if(TARGET outpost_store)
        target_compile_options(outpost_store PRIVATE ${fuzz_flags})
        add_executable(fuzz_server ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_server.c)
        target_include_directories(fuzz_server PRIVATE ${PROJECT_SOURCE_DIR}/server/src)
        target_link_libraries(fuzz_server PRIVATE outpost_store outpost_proto outpost_warnings)
    endif()
    if(TARGET outpost)
        target_compile_options(outpost PRIVATE ${fuzz_flags})
        add_executable(fuzz_pull_apply ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_pull_apply.c)
        target_link_libraries(fuzz_pull_apply PRIVATE outpost_internal outpost_warnings)
        add_executable(fuzz_outbox_decode ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_outbox_decode.c)
        target_link_libraries(fuzz_outbox_decode PRIVATE outpost_internal outpost_warnings)
    endif()
    foreach(t fuzz_server fuzz_pull_apply fuzz_outbox_decode)
        if(TARGET ${t})
            target_compile_definitions(${t} PRIVATE OUTPOST_LIBFUZZER)
            target_compile_options(${t} PRIVATE -fsanitize=fuzzer,address,undefined -g)
            target_link_options(${t} PRIVATE -fsanitize=fuzzer,address,undefined)
        endif()
    endforeach()
endif()

# A short real libFuzzer run of every target (5 s each, clang build in the build directory),
# beside the corpus replays above; a crash fails it and lands in tests/fuzz/corpus/. Only in
# the plain build: the fuzzing build carries ASan and UBSan itself.
if(NOT OUTPOST_SANITIZE AND NOT OUTPOST_FUZZ AND NOT CMAKE_CROSSCOMPILING)
    add_test(NAME fuzz_short
             COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/fuzz-short.sh ${PROJECT_SOURCE_DIR}
                        ${PROJECT_BINARY_DIR} 5)
    set_tests_properties(fuzz_short PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "fuzz;proof"
                         ENVIRONMENT "OUTPOST_DEPS_PREFIX=${OUTPOST_DEPS_PREFIX}")
endif()

# Protocol library: unit tests, the decoder fuzz target replaying its seed corpus, and the check
# that the seed corpus and docs/protocol.md's hex dumps match the code.
if(TARGET outpost_proto)
    outpost_add_test(test_proto
        SOURCES unit/test_proto.c unit/proto_examples.c
        LIBS outpost_proto m)

    # Compressed frames: round trips over one stream, the decompression bomb refused at the limit.
    outpost_add_test(test_zframe
        SOURCES unit/test_zframe.c
        LIBS outpost_proto)

    # docs/protocol.md as an oracle: hand-written golden bytes, and every hex example checked
    # with msgpack-c alone against the key tables parsed from the Markdown.
    outpost_add_test(test_spec
        SOURCES unit/test_spec.c
        LIBS outpost_proto PkgConfig::MSGPACK)

    # Replays tests/fuzz/corpus/proto/ (or the directories given) through the fuzz entry point.
    outpost_add_test(fuzz_proto_replay
        SOURCES fuzz/fuzz_proto.c fuzz/fuzz_replay.c
        LIBS outpost_proto)
    target_compile_definitions(fuzz_proto_replay PRIVATE FUZZ_NAME="fuzz_proto" FUZZ_CORPUS="proto")

    # proto_corpus write DIR | markdown: regenerates the seeds and the docs' hex dumps.
    outpost_add_test(proto_corpus
        SOURCES fuzz/proto_corpus.c unit/proto_examples.c
        LIBS outpost_proto)

    # The libFuzzer build: configure with CC=clang -DOUTPOST_FUZZ=ON (scripts/fuzz-proto.sh).
    # The library's sources are compiled again into it so they carry the fuzzer's coverage.
    if(OUTPOST_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
        get_target_property(proto_sources outpost_proto SOURCES)
        get_target_property(proto_dir outpost_proto SOURCE_DIR)
        list(TRANSFORM proto_sources PREPEND "${proto_dir}/")
        add_executable(fuzz_proto fuzz/fuzz_proto.c ${proto_sources})
        target_compile_definitions(fuzz_proto PRIVATE OUTPOST_LIBFUZZER)
        target_include_directories(fuzz_proto PRIVATE ${proto_dir}/include ${proto_dir}/src)
        target_compile_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined -g)
        target_link_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined)
        target_link_libraries(fuzz_proto PRIVATE PkgConfig::MSGPACK outpost_warnings)
    elseif(OUTPOST_FUZZ)
        message(WARNING "OUTPOST_FUZZ needs clang; only the corpus replay is built")
    endif()
endif()

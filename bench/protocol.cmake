# Protocol benchmark: encode/decode rate and size of contact-like row changes, beside the same
# rows as a SQLite session changeset and SQLite's own insert rate (the ceiling).
if(TARGET outpost_proto)
    outpost_add_bench(bench_proto
        SOURCES bench_proto.c bench_time.c
        LIBS outpost_proto PkgConfig::SQLITE3)
endif()

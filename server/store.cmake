# The central store (server/src/store.h over the database seam, server/src/db.h), the merge engine, and the
# outpost-admin command line tool over it.
add_library(outpost_store STATIC
    src/db.c                # the database seam: dispatch, and SQLite behind it
    src/db_postgresql.c     # the seam over libpq: PostgreSQL's SQL spelling, one writer
    src/store_sqlite.c      # open, metadata tables, errors, transactions
    src/store_postgresql.c  # open a store kept in PostgreSQL
    src/store_announce.c    # changed teams announced to other nodes (LISTEN/NOTIFY)
    src/store_arena.c       # bump allocator for one push or pull
    src/store_values.c      # proto_value <-> SQLite, the row-key codec
    src/store_rowcheck.c    # SQLite's affinity, defaults and CHECK for rows kept elsewhere
    src/store_rows.c        # row merge state, current rows, ROWS/REJECT row lists
    src/schema_parse.c      # reading the admin's schema SQL and policy text
    src/sql_token.c         # SQLite's tokens, for what its pragmas do not tell
    src/schema.c            # init, additive upgrade, SCHEMA message, cached tables
    src/store_people.c      # teams and workers
    src/store_devices.c     # enrollment codes, enrollment, authentication, revocation
    src/store_backup.c      # identity and epoch, backup, restore, one daemon per store
    src/merge.c             # the merge rules, one change at a time
    src/merge_log.c         # refusals, conflict log, change log
    src/merge_apply.c       # writes to the synced data tables
    src/push.c              # store_push: exactly-once, transaction, ACK / REJECT
    src/pull.c              # store_pull
    src/store_rescope.c     # rows gained and lost when a worker's teams change
    src/store_users.c       # dashboard accounts: Argon2id hashes, lockout
    src/store_lifecycle.c   # listing, disabling, removing people, changing their teams
    src/store_lockout.c     # lockouts by kind and key, kept across restarts
    src/store_sessions.c    # dashboard sessions shared by every node (token hashes)
    src/store_barred.c      # whether a connected device was revoked or disabled since
    src/store_audit.c       # the append-only, hash-chained audit log
    src/audit_key.c         # the audit key file, its HMAC, signed checkpoints
    src/store_dashboard.c   # the dashboard's queries, limited to a supervisor's teams
    src/store_dash_history.c # a record's history for the dashboard; what devices report
    src/store_dash_decoded.c # the record views where synced values are kept encoded
    src/reverse.c           # keeping or reversing a logged conflict decision
    src/forms.c             # validating a schema package's forms (docs/forms.md)
    src/forms_check.c       # the IN lists of a table's CHECK constraints
    src/store_forms.c       # the forms kept with each schema version
    src/watch.c             # watch rules: reading watch.json, checking, preparing
    src/store_watch.c)      # watch rules kept, sent to devices, evaluated per team
target_include_directories(outpost_store PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_link_libraries(outpost_store
    PUBLIC outpost_proto PkgConfig::SQLITE3 PkgConfig::JANSSON PkgConfig::LIBPQ
    PRIVATE outpost_mbedtls PkgConfig::ARGON2 outpost_warnings)

add_executable(outpost-admin src/admin.c src/admin_forms.c)
target_link_libraries(outpost-admin PRIVATE outpost_store outpost_mbedtls outpost_version PkgConfig::QRENCODE
                                            outpost_warnings)

install(TARGETS outpost-admin RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT server)

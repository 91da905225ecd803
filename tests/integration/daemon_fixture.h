/*
 * A real outpostd for integration tests: a temporary directory with development certificates
 * (certs-example/make-dev-certs.sh), a central store prepared through the store API (schema,
 * teams t1 and t2, workers w1 in t1, w2 in t2, w12 in both), a config, and the daemon itself on
 * a free 127.0.0.1 port (port 0, read back from its log).
 */
#ifndef OUTPOST_DAEMON_FIXTURE_H
#define OUTPOST_DAEMON_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "outpost/proto.h"

typedef struct daemon_fixture {
    char dir[256];
    char ca_path[320];
    char store_path[320];
    char config_path[320];
    char log_path[320];
    char conninfo[400]; /* set: the store is this PostgreSQL database, not store_path */
    pid_t pid;
    uint16_t port;
} daemon_fixture;

/* Column layout of the test table: CREATE TABLE contacts (id TEXT PRIMARY KEY, team_id TEXT
 * NOT NULL, name TEXT, note TEXT), scope team_id. */
#define FIXTURE_TABLE "contacts"
#define FIXTURE_N_COLUMNS 4u

/* Makes the directory, certificates, store and config; extra_limits is appended to the
 * [limits] section ("key = value" lines, may be NULL). Returns 0 or -1. */
int fixture_create(daemon_fixture *fx, const char *extra_limits);

/* The same with the test's own schema SQL and policy text instead of the contacts table
 * above (teams and workers as above). */
int fixture_create_with_schema(daemon_fixture *fx, const char *extra_limits, const char *schema,
                               const char *policy);

/* fixture_create on the PostgreSQL database conninfo names (it must exist and be empty): the
 * store is made there and outpostd's config says engine = postgresql. Returns 0 or -1. */
int fixture_create_postgresql(daemon_fixture *fx, const char *extra_limits, const char *conninfo);

/* The same with the test's own schema SQL and policy text. */
int fixture_create_postgresql_with_schema(daemon_fixture *fx, const char *extra_limits,
                                          const char *conninfo, const char *schema,
                                          const char *policy);

/* Opens the fixture's central store, whichever its engine. STORE_OK or an error code. */
struct store;
int fixture_store_open(const daemon_fixture *fx, struct store **out_store, char *err,
                       size_t err_size);

/* The store's writer lock held from outside (SQLite BEGIN IMMEDIATE, PostgreSQL the writers'
 * advisory lock), on either engine: outpostd's next write waits for fixture_store_unlock (up to
 * its 5 s lock timeout), so that what arrives meanwhile queues up. NULL on failure. */
struct fixture_lock;
struct fixture_lock *fixture_store_lock(const daemon_fixture *fx);
void fixture_store_unlock(struct fixture_lock *lock);

/* The first column of the first row of sql (a count) on fx's store, either engine; -1 when the
 * query fails. */
int64_t fixture_store_count(const daemon_fixture *fx, const char *sql);

/* A second outpostd on fx's store (PostgreSQL: several nodes serve one database): fx's config,
 * certificates and store, its own log and port. It shares fx's directory, which only fx's
 * fixture_destroy removes. Start it with fixture_start. */
void fixture_second_node(const daemon_fixture *fx, daemon_fixture *out_node);

/* Starts outpostd and waits until it listens; fills fx->port. Returns 0 or -1. */
int fixture_start(daemon_fixture *fx);

/* fixture_start with a library preloaded into outpostd (LD_PRELOAD; under ASan its link-order
 * check is turned off for it) and the environment names[i]=values[i] set for it alone. */
int fixture_start_preloaded(daemon_fixture *fx, const char *library, const char *const *names,
                            const char *const *values, int n_vars);

/* Writes the port the daemon listens on now into the config, so that a restart comes back on
 * it (devices keep the URL they enrolled with). Returns 0 or -1. */
int fixture_pin_port(const daemon_fixture *fx);

/* SIGTERM and wait; returns the exit status (-1 when it did not exit normally in time). */
int fixture_stop(daemon_fixture *fx);

/* The end of a test program's daemon, as a check a last test case asserts (a check in a cmocka
 * group teardown does not fail the program): SIGTERM, then outpostd must exit 0 within 20 s
 * (under ASan a shutdown leak makes it exit otherwise), log "outpostd stopped" and no sanitizer
 * report, and leave a central store that passes integrity_check (SQLite). Prints what went wrong on
 * stderr. Returns 0 when all hold, -1 otherwise. */
int fixture_stop_clean(daemon_fixture *fx);

/* SIGKILL and reap. */
void fixture_kill(daemon_fixture *fx);

/* Stops the daemon if running and removes the directory. */
void fixture_destroy(daemon_fixture *fx);

/* A fresh enrollment code for worker_id (24 h). Returns 0 or -1. */
int fixture_enroll_code(const daemon_fixture *fx, const char *worker_id, char out_code[32]);

/* Revokes a device, with or without a wipe order. Returns 0 or -1. */
int fixture_revoke(const daemon_fixture *fx, const char *device_id, bool wipe);

/* Disables a worker through the store, as `outpost-admin worker disable` does. 0 or -1. */
int fixture_disable_worker(const daemon_fixture *fx, const char *worker_id);

/* Adds a worker (add = true) or sets an existing worker's teams, through the store, as
 * `outpost-admin worker add` / `worker teams` do. 0 or -1. */
int fixture_worker_teams(const daemon_fixture *fx, const char *worker_id, bool add,
                         const char *const *team_ids, uint32_t n_teams);

/* Whether the daemon's log contains text; on how many of its lines. */
bool fixture_log_contains(const daemon_fixture *fx, const char *text);
unsigned fixture_log_count(const daemon_fixture *fx, const char *text);

/* Makes development certificates in dir (ca.pem, server.pem, server.key). Returns 0 or -1. */
int fixture_make_certs(const char *dir);

/* The same with a root CA (ca.pem) that signs an intermediate that signs the server
 * certificate; server.pem holds the server certificate then the intermediate. */
int fixture_make_chain_certs(const char *dir);

/* Runs outpostd with config_path and returns its exit status; its stderr goes to out (up to
 * out_size bytes, NUL-terminated). Used for config errors. */
int fixture_run_outpostd(const char *config_path, char *out, size_t out_size);

/* A device as the tests hold it. */
typedef struct test_device {
    char id[40];
    uint8_t secret[32];
} test_device;

struct testclient;

/* Enrolls a new device for worker_id over the wire. Returns 0 or -1. */
int fixture_enroll_device(const daemon_fixture *fx, const char *worker_id, test_device *out_dev);
/* Same with an enrollment code issued elsewhere (-1 also when the server refuses it). */
int fixture_enroll_with_code(const daemon_fixture *fx, const char *code, test_device *out_dev);

/* Connects and authenticates; returns the connected client (WELCOME consumed) or NULL.
 * out_welcome_acked may be NULL. */
struct testclient *fixture_hello(const daemon_fixture *fx, const test_device *dev,
                                 uint64_t *out_welcome_acked);

/* Builds a PUSH of INSERTs of rows (id, team_id, name, note) — n_rows of them — as one chunk.
 * Its clock depends only on seq (the same seq gives the same clock in one process, as a
 * device's resend does). The strings must outlive the message. Free with fixture_push_free. */
proto_msg *fixture_insert_push(uint64_t seq, uint32_t n_rows, const char *const *ids,
                               const char *team_id, const char *name);
void fixture_push_free(proto_msg *msg);

#endif /* OUTPOST_DAEMON_FIXTURE_H */

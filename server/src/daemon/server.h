/*
 * The server: everything one outpostd process shares between its connections. Lives on the
 * service thread; the worker thread only ever sees jobs.
 */
#ifndef OUTPOSTD_SERVER_H
#define OUTPOSTD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "pull_ahead.h"
#include "outpost/proto.h"
#include "store.h"
#include "worker.h"

struct dashboard;
struct lws_context;
struct session;

typedef struct server {
    daemon_config config;
    char *ca_pem;                /* the CA devices pin, read once at start */
    proto_limits proto_limits;   /* decode limits for every received message */
    struct lws_context *context;
    worker *worker;       /* device sync and the dashboard's queries */
    worker *login_worker; /* the login lane: dashboard logins (Argon2id) only */
    pull_ahead *ahead;    /* devices' next pull pages, read by the sync worker (pull_ahead.h) */
    struct dashboard *dash; /* the supervisor dashboard's sessions and live connections */

    /* Sessions holding a connection slot (max_connections of them). A job names its session
     * by (slot, id), so a reply for a connection that closed meanwhile finds nobody. */
    struct session **slots;
    uint32_t *free_slots; /* stack of free slot indexes */
    uint32_t n_free;
    uint64_t next_session_id;

    /* Device jobs that found the worker's queue full, oldest first (linked by job->next): their
     * sessions stop reading until the job is queued (max_waiting_jobs). */
    job *wait_head, *wait_tail;
    uint32_t n_waiting;

    /* Bytes all sessions hold for unfinished messages and transactions (max_held_bytes). */
    size_t held_bytes;

    /* The synced tables' names in the newest schema a HELLO has loaded (PUSH names no other). */
    char **sync_tables;
    uint32_t n_sync_tables;
    uint32_t sync_tables_version;

    /* PostgreSQL: the probe found the store's database replaced under this outpostd (a
     * pg_restore into it): no device job runs any more, until a restart (sweep.c). */
    bool store_replaced;
} server;

/* Runs outpostd with a loaded config until SIGINT or SIGTERM. Returns the process exit code. */
int server_run(const daemon_config *config);

int server_slot_acquire(server *srv, struct session *s, uint32_t *out_slot);
void server_slot_release(server *srv, uint32_t slot);
uint32_t server_sessions(const server *srv);

/* NOTIFY every authenticated session (but origin_id's) whose teams the change touched. */
void server_notify_teams(server *srv, uint64_t origin_id, const store_push_info *info);

/* NOTIFY every authenticated session, whatever its teams: something may have changed for any
 * of them (changes this node could not hear about). */
void server_notify_all(server *srv);

/* Keeps the table names of schema version (taking *names) when it is at least as new as the
 * one known; frees them otherwise. */
void server_learn_tables(server *srv, uint32_t version, char ***names, uint32_t *n_names);

/* Whether name is a synced table of the known schema. */
bool server_table_known(const server *srv, const char *name);

/* Queues j for the worker, or makes it wait for room when the queue is full and fewer than
 * max_waiting_jobs wait (or always when must_wait). Returns 0, or -1 (the caller keeps j). */
int server_submit(server *srv, job *j, bool must_wait);

/* Takes j out of the waiting list (its session closed); true when it was there. */
bool server_unwait(server *srv, job *j);

/* Collects finished jobs from both workers and hands each to its session or the dashboard
 * (service thread). */
void server_dispatch_completions(server *srv);

/* Wall clock in milliseconds since the Unix epoch. */
uint64_t server_now_ms(void);

#endif /* OUTPOSTD_SERVER_H */

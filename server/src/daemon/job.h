/*
 * Store jobs: the slow work a session hands to the worker thread. A job owns everything it
 * reads (the decoded request messages, a copy of the device) so that it stays valid when the
 * connection that asked for it closes while the worker is busy; the service thread then simply
 * frees the finished job.
 *
 * job_run() runs on the worker thread with the worker's store handle; everything else runs on
 * the service thread.
 */
#ifndef OUTPOSTD_JOB_H
#define OUTPOSTD_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dash_api.h"
#include "pull_ahead.h"
#include "outpost/proto.h"
#include "store.h"

typedef enum job_kind { JOB_ENROLL, JOB_AUTH, JOB_PUSH, JOB_PULL, JOB_DASH, JOB_SWEEP } job_kind;

/* What job_run needs besides the job itself; read-only, shared by every job. */
typedef struct job_env {
    const char *ca_pem;       /* sent in ENROLLED */
    size_t max_reply_bytes;   /* cap on an encoded ROWS page */
    uint32_t pull_page_rows;  /* cap on rows per ROWS page */
    proto_session_limits session_limits; /* advertised in WELCOME (`lims`) */
    const char *audit_key_path;       /* loaded by the worker into its store */
    const char *checkpoint_path;      /* NULL: audit checkpoints go to the log only */
    uint32_t checkpoint_interval_s;   /* 0: only at start and stop */
    bool checkpoints;                 /* this worker emits the audit checkpoints (one does) */
    proto_limits proto_limits; /* decode limits for a PUSH's chunks */
    store_lockout_policy device_lockout; /* enrollment codes and device secrets, by address */
    const char *node;          /* this outpostd's name in its announcements (announce.h) */
    pull_ahead *ahead;         /* devices' next pull pages (pull_ahead.h); NULL: none */
} job_env;

/* What the PUSH jobs of one connection share. A connection may have several entries queued
 * (session.c reads PUSHes ahead); once one of them fails (answered ERROR, which ends the
 * session), the worker runs none of the later ones: nothing behind a failed entry is applied,
 * as when the device waited for each answer. Made by the session (one reference), one more per
 * job; the last push_chain_release frees it. Any thread. */
typedef struct push_chain {
    atomic_uint refs;
    atomic_bool broken;
} push_chain;

push_chain *push_chain_new(void); /* NULL without memory */
push_chain *push_chain_hold(push_chain *c);
void push_chain_release(push_chain *c); /* NULL is a no-op */

typedef struct job {
    struct job *next; /* queue link, owned by the worker */
    job_kind kind;
    uint32_t slot;       /* the session that asked, checked again on completion */
    uint64_t session_id;

    /* Request. */
    proto_msg *request;   /* ENROLL, HELLO, PULL: owned */
    uint8_t *raw;         /* PUSH: the chunks as received, each a 4-byte length then the
                             message (session.c); owned */
    size_t raw_len;
    uint32_t n_chunks;
    proto_msg **chunks;   /* PUSH: the chunks decoded on the worker; push points into them */
    proto_push push;      /* PUSH: the chunks joined into one transaction */
    bool push_malformed;  /* PUSH: the chunks contradict each other (errmsg says how) */
    bool push_skipped;    /* PUSH: not run, an earlier entry of its connection failed */
    push_chain *chain;    /* PUSH: its connection's chain (a reference); may be NULL */
    uint32_t group;       /* PUSH: entries in the store transaction that held it (the log) */
    bool other_store;     /* AUTH: HELLO names another store than this one */
    store_device device;  /* PUSH, PULL: the daemon's copy (device_copy); AUTH: the result */
    uint64_t now_ms;
    char peer[64];        /* ENROLL, AUTH: the address it came from (lockouts) */
    dash_call *dash;      /* DASH: the dashboard call, request and result in one; owned */
    char (*sweep_ids)[40]; /* SWEEP: the devices holding a session (sweep.c); owned */
    bool *sweep_barred;    /* SWEEP: per id, revoked or its worker disabled; owned */
    uint32_t n_sweep;

    /* Result. */
    int rc;               /* STORE_OK or a negative STORE_* code */
    proto_buf reply;      /* the encoded reply when rc is STORE_OK, or WIPE for a revoked device */
    store_push_info push_info;
    store_pull_info pull_info;
    bool pull_prepared;   /* PULL: answered with the page read ahead (pull_ahead.h) */
    char enrolled_id[40];
    char **schema_tables; /* AUTH: the synced tables' names in schema_version */
    uint32_t n_schema_tables;
    uint32_t schema_version;
    char errmsg[200];     /* the store's message on failure, for the log */
    bool unreachable;     /* the failure was having no connection to PostgreSQL */
    uint64_t run_us;      /* time job_run took on the worker, for the log */
} job;

job *job_new(job_kind kind, uint32_t slot, uint64_t session_id);

/* Frees the job and everything it owns. NULL is a no-op. */
void job_free(job *j);

/* Appends one chunk's bytes to a raw transaction buffer in the layout job->raw uses: the
 * caller has made room for job_raw_size(n_bytes) more bytes. */
size_t job_raw_size(size_t n_bytes);
void job_raw_append(uint8_t *raw, size_t *raw_len, const uint8_t *msg, size_t n_bytes);

/* Frees an array of names as job->schema_tables holds them. */
void job_free_names(char **names, uint32_t n_names);

/* Runs the job against st: fills rc, reply and the info fields. */
void job_run(job *j, store *st, const job_env *env);

/* Group commit: how many queued PUSH jobs the worker takes together at most, and the rows
 * (changes) and received bytes one group's transaction takes at most (the first entry always
 * goes in, whatever its size). A group holds its first ACK back until the group commits: these
 * keep that wait to tens of ms, and one device's large entries from holding others' back. */
enum { JOB_GROUP_ENTRIES = 16, JOB_GROUP_ROWS = 8192 };
#define JOB_GROUP_BYTES (4u * 1024u * 1024u)

/* Runs n PUSH jobs (in queue order) as few store transactions as the bounds allow, each entry
 * in its own savepoint (store_push_group_begin): each job gets the answer it would get alone.
 * done(j, done_arg) is called for each job, in order, only once the transaction that holds it
 * has committed (or failed): an ACK never leaves before the COMMIT that makes it durable. If a
 * COMMIT fails, every job of that transaction gets its error and nothing of it is applied. */
void job_run_pushes(job **jobs, uint32_t n, store *st, const job_env *env,
                    void (*done)(job *j, void *done_arg), void *done_arg);

/* What the worker does once a job's reply has been handed back, before its next job: the next
 * pull page a PULL planned (pull_ahead_run). */
void job_after(store *st, const job_env *env);

/* Deep copy of a device, owned by the daemon and released with device_release (not with
 * store_device_clear: the teams array is the daemon's allocation). Returns 0 or -1. */
int device_copy(const store_device *src, store_device *dst);
void device_release(store_device *dev);

#endif /* OUTPOSTD_JOB_H */

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

/* What the worker does once a job's reply has been handed back, before its next job: the next
 * pull page a PULL planned (pull_ahead_run). */
void job_after(store *st, const job_env *env);

/* Deep copy of a device, owned by the daemon and released with device_release (not with
 * store_device_clear: the teams array is the daemon's allocation). Returns 0 or -1. */
int device_copy(const store_device *src, store_device *dst);
void device_release(store_device *dev);

#endif /* OUTPOSTD_JOB_H */

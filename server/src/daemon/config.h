/*
 * outpostd's configuration: an INI file read with Debian's libinih.
 *
 *   [server]  listen = 127.0.0.1   port = 8443   cert = FILE   key = FILE   ca = FILE
 *   [store]   path = FILE   audit_key = FILE (default: the store's path + ".audit-key")
 *             engine = sqlite (the default) | postgresql   conninfo = libpq connection string
 *             (engine = postgresql is refused until push, pull and the schema run on it:
 *             docs/operations.md, "PostgreSQL")
 *   [audit]   checkpoint_file = FILE (signed checkpoints appended; default none: log only)
 *             checkpoint_interval_s = 3600 (also one at start and one at stop; 0 = only those)
 *   [limits]  max_message_bytes, max_transaction_bytes, handshake_timeout_s,
 *             message_timeout_s, idle_timeout_s, max_connections, lockout_failures,
 *             lockout_window_s, lockout_duration_s, queue_depth, pull_page_rows,
 *             chunk_timeout_s, max_held_bytes, login_queue_depth, max_waiting_jobs
 *   [log]     level = error|warn|info|debug
 *   [metrics] allow = 127.0.0.1, ::1   (addresses that may read /metrics; the default)
 *   [dashboard] table = contacts   worker_column = worker_id   date_column = contacted_at
 *             (the synced table the dashboard's record views, search and chart show; an
 *             empty column name means the table has none: no worker filter, no date filter
 *             or chart)
 *
 * Relative paths are taken relative to the directory of the config file, so a config and its
 * certificates can move together. Every limit has a safe default (config_defaults).
 */
#ifndef OUTPOSTD_CONFIG_H
#define OUTPOSTD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_METRICS_ALLOW_MAX 16

typedef struct daemon_limits {
    size_t max_message_bytes;     /* one reassembled WebSocket message */
    size_t max_transaction_bytes; /* all PUSH chunks of one device transaction together */
    uint32_t handshake_timeout_s; /* for TLS + WebSocket upgrade, then again until HELLO is done */
    uint32_t message_timeout_s;   /* first to last fragment of one message */
    uint32_t idle_timeout_s;      /* authenticated session without a message; 0 = never */
    uint32_t max_connections;     /* WebSocket sessions held at once */
    uint32_t lockout_failures;    /* failed authentications from one address ... */
    uint32_t lockout_window_s;    /* ... within this window lock it out ... */
    uint32_t lockout_duration_s;  /* ... for this long */
    uint32_t queue_depth;         /* store jobs waiting for the worker */
    uint32_t pull_page_rows;      /* upper bound on rows per ROWS page */
    uint32_t chunk_timeout_s;     /* last chunk of an unfinished PUSH to the next one */
    size_t max_held_bytes;        /* unfinished messages and transactions, all sessions */
    uint32_t login_queue_depth;   /* dashboard logins waiting for the login lane */
    uint32_t max_waiting_jobs;    /* device jobs waiting for room in the queue (backpressure) */
    uint32_t max_unauthenticated_per_address; /* sessions from one address before HELLO */
} daemon_limits;

typedef struct daemon_config {
    char listen_addr[64]; /* interface address; "*" listens on every address */
    uint16_t port;        /* 0 asks the kernel for a free port (the log names it) */
    char cert_path[CONFIG_PATH_MAX];
    char key_path[CONFIG_PATH_MAX];
    char ca_path[CONFIG_PATH_MAX]; /* the CA devices pin; sent in ENROLLED */
    char store_path[CONFIG_PATH_MAX];
    char store_engine[16];                /* "sqlite" or "postgresql" */
    char store_conninfo[CONFIG_PATH_MAX]; /* engine = postgresql: libpq connection string */
    char audit_key_path[CONFIG_PATH_MAX];  /* the audit log's key, outside the store */
    char checkpoint_path[CONFIG_PATH_MAX]; /* "" = checkpoints go to the log only */
    uint32_t checkpoint_interval_s;
    log_level log_level;
    daemon_limits limits;
    char dash_table[64];
    char dash_worker_col[64];
    char dash_date_col[64];
    /* Peer addresses that may read /metrics (IPv4-mapped IPv6 peers compare as IPv4). */
    char metrics_allow[CONFIG_METRICS_ALLOW_MAX][64];
    uint32_t n_metrics_allow;
    char path[CONFIG_PATH_MAX]; /* the file this was loaded from (SIGHUP reloads it) */
} daemon_config;

void config_defaults(daemon_config *out_config);

/* Reads and checks path into out_config (defaults first). On failure returns -1 and writes a
 * message naming the file, line, key or missing file into err. */
int config_load(const char *path, daemon_config *out_config, char *err, size_t err_size);

/* The longest pause allowed between two chunks of one PUSH: the smaller of chunk_timeout_s and
 * message_timeout_s, which is what WELCOME advertises as `mto`. */
static inline uint32_t daemon_chunk_gap_s(const daemon_limits *lim)
{
    return lim->chunk_timeout_s < lim->message_timeout_s ? lim->chunk_timeout_s
                                                         : lim->message_timeout_s;
}

#endif /* OUTPOSTD_CONFIG_H */

/*
 * A private PostgreSQL 15 server for one test program: initdb in a fresh temporary directory,
 * served on a Unix socket in that directory only (no TCP), removed by pg_cluster_stop. The
 * binaries come from OUTPOST_PG_BIN, else /usr/lib/postgresql/15/bin (Debian postgresql-15,
 * which scripts/deps.sh installs). initdb refuses to run as root: as root the cluster's
 * programs run as the postgres user (runuser), which the directory is handed to.
 */
#ifndef OUTPOST_TEST_PG_CLUSTER_H
#define OUTPOST_TEST_PG_CLUSTER_H

#include <stdbool.h>

typedef struct pg_cluster {
    char bin[256];
    char dir[256];      /* the temporary directory: socket, data/, log */
    char conninfo[400]; /* libpq connection string for database "outpost" */
    bool up;
} pg_cluster;

/* True when the PostgreSQL binaries are installed (a test without them skips). */
bool pg_cluster_available(void);

/* Makes and starts the cluster and its database "outpost". 0, or -1 with the reason printed. */
int pg_cluster_start(pg_cluster *c);

/* A streaming standby of primary (pg_basebackup -R), started. 0 or -1. */
int pg_cluster_start_standby(const pg_cluster *primary, pg_cluster *standby);

/* The same, then made the primary's synchronous standby (synchronous_standby_names = '*' in the
 * primary's postgresql.conf, reloaded): returns once pg_stat_replication says "sync", so that
 * every commit the primary answers from then on is on the standby too. 0 or -1. */
int pg_cluster_start_sync_standby(const pg_cluster *primary, pg_cluster *standby);

/* Promotes a standby to primary and waits until it accepts writes. 0 or -1. */
int pg_cluster_promote(pg_cluster *c);

/* Stops the server at once, as a crash would (the directory stays until pg_cluster_stop). */
void pg_cluster_kill(pg_cluster *c);

/* kill -9 of the postmaster, as a machine or process crash: no shutdown at all (its backends
 * notice and exit by themselves). The directory stays until pg_cluster_stop. */
void pg_cluster_crash(pg_cluster *c);

/* Stops the server and removes the directory; a cluster never started is a no-op. */
void pg_cluster_stop(pg_cluster *c);

#endif

/* A private PostgreSQL server made and removed by a test (pg_cluster.h). */
#include "pg_cluster.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Any number: the server listens on no TCP port, only on DIR/.s.PGSQL.<port>. */
#define PG_PORT "5432"

/* snprintf that calls a command too long for its buffer an error rather than cutting it. */
static int fmt(char *out, size_t size, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(out, size, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "pg_cluster: command too long\n");
        out[0] = 0;
        return -1;
    }
    return 0;
}

static const char *bin_dir(void)
{
    const char *env = getenv("OUTPOST_PG_BIN");
    return env != NULL && env[0] != 0 ? env : "/usr/lib/postgresql/15/bin";
}

bool pg_cluster_available(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/initdb", bin_dir());
    return access(path, X_OK) == 0;
}

/* Runs a shell command as the cluster's owner; 0 on success, the output left in DIR/log. */
static int run_as_owner(const pg_cluster *c, const char *command)
{
    char line[4096];
    int rc;
    if (geteuid() == 0)
        rc = fmt(line, sizeof line, "runuser -u postgres -- sh -c '%s' >>%s/log 2>&1", command,
                 c->dir);
    else
        rc = fmt(line, sizeof line, "sh -c '%s' >>%s/log 2>&1", command, c->dir);
    return rc == 0 && system(line) == 0 ? 0 : -1;
}

/* A fresh directory for a cluster, the postgres user's when we are root. */
static int make_dir(pg_cluster *c)
{
    char cmd[512];

    memset(c, 0, sizeof *c);
    snprintf(c->bin, sizeof c->bin, "%s", bin_dir());
    snprintf(c->dir, sizeof c->dir, "/tmp/outpost-pg-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        perror("pg_cluster: mkdtemp");
        return -1;
    }
    if (geteuid() == 0) {
        if (fmt(cmd, sizeof cmd, "chown postgres %s", c->dir) != 0 || system(cmd) != 0) {
            fprintf(stderr, "pg_cluster: cannot give %s to the postgres user\n", c->dir);
            return -1;
        }
    }
    return 0;
}

/* Copies of the clusters started and not yet stopped: a test that fails half way (cmocka jumps
 * out of it, its cluster on the stack gone) leaves none running, their directories removed at
 * exit. */
enum { MAX_LIVE = 8 };
static pg_cluster live[MAX_LIVE];

static pg_cluster *live_slot(const char *dir)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (strcmp(live[i].dir, dir) == 0)
            return &live[i];
    return NULL;
}

static void stop_leftovers(void)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i].dir[0] != 0)
            pg_cluster_stop(&live[i]);
}

static void remember(const pg_cluster *c)
{
    static bool registered;
    pg_cluster *slot = live_slot(c->dir);
    if (!registered && atexit(stop_leftovers) == 0)
        registered = true;
    if (slot == NULL)
        slot = live_slot("");
    if (slot != NULL)
        *slot = *c;
}

/* Starts the server of c's data directory on its own socket. A standby whose primary died
 * retries for WAL every wal_retrieve_retry_interval (5 s by default), and a promotion that
 * comes during that wait took those 5 s in 3 of about 12 failover runs: 100 ms here. */
static int serve(pg_cluster *c)
{
    char cmd[1024];
    if (fmt(cmd, sizeof cmd,
            "%s/pg_ctl -D %s/data -l %s/server.log -w -t 30 -o \"-p " PG_PORT
            " -k %s -c listen_addresses= -c fsync=off -c max_connections=40"
            " -c wal_retrieve_retry_interval=100ms\" start",
            c->bin, c->dir, c->dir, c->dir) != 0 ||
        run_as_owner(c, cmd) != 0) {
        fprintf(stderr, "pg_cluster: pg_ctl start failed (see %s/log)\n", c->dir);
        return -1;
    }
    c->up = true;
    remember(c);
    return 0;
}

int pg_cluster_start(pg_cluster *c)
{
    char cmd[1024];

    if (make_dir(c) != 0)
        return -1;
    /* fsync off and no sync after initdb: a test cluster need not survive a power cut (the
     * failover test's standby has every commit in memory before the primary answers). */
    if (fmt(cmd, sizeof cmd, "%s/initdb -D %s/data -A trust -U outpost -E UTF8 --no-sync >/dev/null",
            c->bin, c->dir) != 0 ||
        run_as_owner(c, cmd) != 0) {
        fprintf(stderr, "pg_cluster: initdb failed (see %s/log)\n", c->dir);
        return -1;
    }
    if (serve(c) != 0)
        return -1;
    fmt(cmd, sizeof cmd, "%s/createdb -h %s -p " PG_PORT " -U outpost outpost", c->bin,
             c->dir);
    if (run_as_owner(c, cmd) != 0) {
        fprintf(stderr, "pg_cluster: createdb failed (see %s/log)\n", c->dir);
        return -1;
    }
    fmt(c->conninfo, sizeof c->conninfo, "host=%s port=" PG_PORT " user=outpost dbname=outpost",
             c->dir);
    return 0;
}

int pg_cluster_start_standby(const pg_cluster *primary, pg_cluster *standby)
{
    char cmd[1024];

    if (make_dir(standby) != 0)
        return -1;
    if (fmt(cmd, sizeof cmd,
            "%s/pg_basebackup -h %s -p " PG_PORT " -U outpost -D %s/data -R -X stream -c fast"
            " --no-sync >/dev/null",
            standby->bin, primary->dir, standby->dir) != 0 ||
        run_as_owner(standby, cmd) != 0) {
        fprintf(stderr, "pg_cluster: pg_basebackup failed (see %s/log)\n", standby->dir);
        return -1;
    }
    if (serve(standby) != 0)
        return -1;
    fmt(standby->conninfo, sizeof standby->conninfo,
        "host=%s port=" PG_PORT " user=outpost dbname=outpost", standby->dir);
    return 0;
}

int pg_cluster_start_sync_standby(const pg_cluster *primary, pg_cluster *standby)
{
    char path[400], cmd[1024];

    if (pg_cluster_start_standby(primary, standby) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/data/postgresql.conf", primary->dir);
    FILE *f = fopen(path, "a");
    if (f == NULL || fprintf(f, "\nsynchronous_standby_names = '*'\n") < 0 || fclose(f) != 0) {
        fprintf(stderr, "pg_cluster: cannot write %s\n", path);
        return -1;
    }
    if (fmt(cmd, sizeof cmd, "%s/pg_ctl -D %s/data reload >/dev/null", primary->bin,
            primary->dir) != 0 ||
        run_as_owner(primary, cmd) != 0)
        return -1;
    /* psql fails (division by zero) until the standby is synchronous. */
    if (fmt(cmd, sizeof cmd,
            "%s/psql -h %s -p " PG_PORT " -U outpost -d postgres -qAt -c \"SELECT 1 / count(*)"
            " FROM pg_stat_replication WHERE sync_state = \\$\\$sync\\$\\$\" >/dev/null",
            primary->bin, primary->dir) != 0)
        return -1;
    for (int i = 0; i < 200; i++) {
        if (run_as_owner(primary, cmd) == 0)
            return 0;
        usleep(50 * 1000);
    }
    fprintf(stderr, "pg_cluster: the standby did not become synchronous (see %s/log)\n",
            primary->dir);
    return -1;
}

int pg_cluster_promote(pg_cluster *c)
{
    char cmd[1024];
    if (fmt(cmd, sizeof cmd, "%s/pg_ctl -D %s/data -w -t 30 promote >/dev/null", c->bin, c->dir) !=
            0 ||
        run_as_owner(c, cmd) != 0) {
        fprintf(stderr, "pg_cluster: promote failed (see %s/log)\n", c->dir);
        return -1;
    }
    return 0;
}

void pg_cluster_kill(pg_cluster *c)
{
    char cmd[1024];
    if (!c->up)
        return;
    if (fmt(cmd, sizeof cmd, "%s/pg_ctl -D %s/data -m immediate -w stop >/dev/null", c->bin,
            c->dir) == 0)
        run_as_owner(c, cmd);
    c->up = false;
    pg_cluster *slot = live_slot(c->dir);
    if (slot != NULL)
        slot->up = false;
}

/* True when /proc says pid has ended (a zombie) or is gone. */
static bool process_dead(pid_t pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    const char *end = strrchr(stat, ')'); /* "pid (comm) S ..." */
    return end == NULL || end[1] == 0 || end[2] == 'Z' || end[2] == 'X';
}

void pg_cluster_crash(pg_cluster *c)
{
    char path[400];
    long pid = 0;

    if (!c->up)
        return;
    snprintf(path, sizeof path, "%s/data/postmaster.pid", c->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        if (f != NULL)
            fclose(f);
        pg_cluster_kill(c); /* no pid to kill: stop it as abruptly as pg_ctl can */
        return;
    }
    fclose(f);
    kill((pid_t)pid, SIGKILL);
    /* Not our child: wait until it is gone or a zombie nobody reaps (which kill(pid, 0) still
     * finds), so that the caller's clock starts at the crash. */
    for (int i = 0; i < 200 && kill((pid_t)pid, 0) == 0 && !process_dead((pid_t)pid); i++)
        usleep(1000);
    c->up = false;
    pg_cluster *slot = live_slot(c->dir);
    if (slot != NULL)
        slot->up = false;
}

void pg_cluster_stop(pg_cluster *c)
{
    char cmd[1024];

    if (c->dir[0] == 0)
        return;
    pg_cluster_kill(c);
    if (fmt(cmd, sizeof cmd, "rm -rf %s", c->dir) != 0 || system(cmd) != 0)
        fprintf(stderr, "pg_cluster: could not remove %s\n", c->dir);
    pg_cluster *slot = live_slot(c->dir);
    if (slot != NULL)
        slot->dir[0] = 0;
    c->dir[0] = 0;
}

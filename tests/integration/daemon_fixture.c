#include "daemon_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "store.h"
#include "test_util.h"
#include "testclient.h"

#ifndef OUTPOSTD_PATH
#error "OUTPOSTD_PATH must name the outpostd binary"
#endif
#ifndef OUTPOST_CERTS_SCRIPT
#error "OUTPOST_CERTS_SCRIPT must name certs-example/make-dev-certs.sh"
#endif

#define WAIT_READY_MS 20000

static const char schema_sql[] =
    "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL, name TEXT,"
    " note TEXT);\n";
static const char policy_text[] = "contacts scope=team_id policy=hlc\n";

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int run_quiet(const char *const argv[])
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int prepare_store(const daemon_fixture *fx, const char *schema, const char *policy)
{
    const char *path = fx->store_path;
    static const char *const t1[] = {"t1"};
    static const char *const t2[] = {"t2"};
    static const char *const both[] = {"t1", "t2"};
    store *st = NULL;
    char err[256], key[400];
    int rc = -1;

    /* The audit key where outpostd and outpost-admin look by default. */
    snprintf(key, sizeof key, "%s%s", path, STORE_AUDIT_KEY_SUFFIX);
    if (store_audit_key_create(key, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if ((fx->conninfo[0] ? store_open_postgresql(fx->conninfo, true, &st, err, sizeof err)
                         : store_open(path, true, &st, err, sizeof err)) != STORE_OK) {
        fprintf(stderr, "store_open %s: %s\n", path, err);
        return -1;
    }
    if (store_init_schema(st, schema, policy) != STORE_OK ||
        store_team_add(st, "t1", "Team one") != STORE_OK ||
        store_team_add(st, "t2", "Team two") != STORE_OK ||
        store_worker_add(st, "w1", t1, 1) != STORE_OK ||
        store_worker_add(st, "w2", t2, 1) != STORE_OK ||
        store_worker_add(st, "w12", both, 2) != STORE_OK) {
        fprintf(stderr, "preparing the store: %s\n", store_errmsg(st));
        goto done;
    }
    rc = 0;
done:
    store_close(st);
    return rc;
}

int fixture_make_certs(const char *dir)
{
    const char *const argv[] = {"/bin/sh", OUTPOST_CERTS_SCRIPT, dir, NULL};

    return run_quiet(argv) == 0 ? 0 : -1;
}

int fixture_make_chain_certs(const char *dir)
{
    const char *const argv[] = {"/bin/sh", OUTPOST_CERTS_SCRIPT, "--intermediate", dir, NULL};

    return run_quiet(argv) == 0 ? 0 : -1;
}

int fixture_create(daemon_fixture *fx, const char *extra_limits)
{
    return fixture_create_with_schema(fx, extra_limits, schema_sql, policy_text);
}

int fixture_store_open(const daemon_fixture *fx, store **out_store, char *err, size_t err_size)
{
    return fx->conninfo[0] ? store_open_postgresql(fx->conninfo, false, out_store, err, err_size)
                           : store_open(fx->store_path, false, out_store, err, err_size);
}

struct fixture_lock {
    sqlite3 *lite;
    db_conn *conn;
};

static void lock_close(struct fixture_lock *l)
{
    db_close(l->conn);
    if (l->lite)
        sqlite3_close(l->lite);
    free(l);
}

static struct fixture_lock *lock_open(const daemon_fixture *fx)
{
    struct fixture_lock *l = calloc(1, sizeof *l);
    char err[256];

    if (!l)
        return NULL;
    if (fx->conninfo[0]) {
        if (db_open_postgresql(fx->conninfo, &l->conn, err, sizeof err) != 0) {
            fprintf(stderr, "fixture: %s\n", err);
            free(l);
            return NULL;
        }
        return l;
    }
    if (sqlite3_open_v2(fx->store_path, &l->lite, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        db_wrap_sqlite(l->lite, &l->conn) != 0) {
        lock_close(l);
        return NULL;
    }
    sqlite3_busy_timeout(l->lite, 5000);
    return l;
}

struct fixture_lock *fixture_store_lock(const daemon_fixture *fx)
{
    struct fixture_lock *l = lock_open(fx);

    if (l && db_begin(l->conn, true) != 0) {
        fprintf(stderr, "fixture: store lock: %s\n", db_errmsg(l->conn));
        lock_close(l);
        return NULL;
    }
    return l;
}

void fixture_store_unlock(struct fixture_lock *lock)
{
    if (!lock)
        return;
    db_rollback(lock->conn);
    lock_close(lock);
}

int64_t fixture_store_count(const daemon_fixture *fx, const char *sql)
{
    struct fixture_lock *l = lock_open(fx);
    db_stmt *s = NULL;
    int64_t n = -1;

    if (!l)
        return -1;
    if (db_prepare(l->conn, sql, &s) == 0 && db_step(s) == DB_ROW)
        n = db_column_int64(s, 0);
    else
        fprintf(stderr, "fixture: %s: %s\n", sql, db_errmsg(l->conn));
    db_finalize(s);
    lock_close(l);
    return n;
}

static int create_fixture(daemon_fixture *fx, const char *extra_limits, const char *schema,
                          const char *policy, const char *conninfo);

int fixture_create_postgresql(daemon_fixture *fx, const char *extra_limits, const char *conninfo)
{
    return create_fixture(fx, extra_limits, schema_sql, policy_text, conninfo);
}

int fixture_create_postgresql_with_schema(daemon_fixture *fx, const char *extra_limits,
                                          const char *conninfo, const char *schema,
                                          const char *policy)
{
    return create_fixture(fx, extra_limits, schema, policy, conninfo);
}

int fixture_create_with_schema(daemon_fixture *fx, const char *extra_limits, const char *schema,
                               const char *policy)
{
    return create_fixture(fx, extra_limits, schema, policy, NULL);
}

static int create_fixture(daemon_fixture *fx, const char *extra_limits, const char *schema,
                          const char *policy, const char *conninfo)
{
    char certs[300], store_lines[600];
    FILE *f;
    const char *tmp = getenv("TMPDIR");

    memset(fx, 0, sizeof *fx);
    if (conninfo)
        snprintf(fx->conninfo, sizeof fx->conninfo, "%s", conninfo);
    snprintf(fx->dir, sizeof fx->dir, "%s/outpostd-test-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(certs, sizeof certs, "%s/certs", fx->dir);
    if (fixture_make_certs(certs) != 0) {
        fprintf(stderr, "make-dev-certs.sh failed\n");
        return -1;
    }
    snprintf(fx->ca_path, sizeof fx->ca_path, "%s/ca.pem", certs);
    snprintf(fx->store_path, sizeof fx->store_path, "%s/central.db", fx->dir);
    snprintf(fx->config_path, sizeof fx->config_path, "%s/outpostd.ini", fx->dir);
    snprintf(fx->log_path, sizeof fx->log_path, "%s/outpostd.log", fx->dir);
    if (prepare_store(fx, schema, policy) != 0)
        return -1;
    if (conninfo)
        snprintf(store_lines, sizeof store_lines,
                 "engine = postgresql\nconninfo = %s\naudit_key = central.db%s\n", conninfo,
                 STORE_AUDIT_KEY_SUFFIX);
    else
        snprintf(store_lines, sizeof store_lines, "path = central.db\n");
    f = fopen(fx->config_path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "[server]\nlisten = 127.0.0.1\nport = 0\ncert = certs/server.pem\n"
            "key = certs/server.key\nca = certs/ca.pem\n\n[store]\n%s\n"
            "[limits]\n%s\n[log]\nlevel = debug\n",
            store_lines, extra_limits ? extra_limits : "");
    fclose(f);
    return 0;
}

void fixture_second_node(const daemon_fixture *fx, daemon_fixture *out_node)
{
    *out_node = *fx;
    out_node->dir[0] = '\0';
    out_node->pid = 0;
    out_node->port = 0;
    snprintf(out_node->log_path, sizeof out_node->log_path, "%s/outpostd-node2.log", fx->dir);
}

/* Reads the port from the last "outpostd listening" line written after offset. */
static int read_port(const daemon_fixture *fx, long offset, uint16_t *out_port)
{
    char line[1024];
    int found = -1;
    FILE *f = fopen(fx->log_path, "r");

    if (!f)
        return -1;
    if (fseek(f, offset, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "outpostd listening ");
        unsigned port;
        if (p && (p = strstr(p, " port=")) && sscanf(p, " port=%u", &port) == 1 && port > 0 &&
            port < 65536) {
            *out_port = (uint16_t)port;
            found = 0;
        }
    }
    fclose(f);
    return found;
}

int fixture_start(daemon_fixture *fx)
{
    struct stat sb;
    long offset = stat(fx->log_path, &sb) == 0 ? (long)sb.st_size : 0;
    uint64_t deadline = wall_ms() + WAIT_READY_MS;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int log_fd = open(fx->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log_fd >= 0) {
            dup2(log_fd, 1);
            dup2(log_fd, 2);
        }
        /* OUTPOSTD runs another build of the daemon (to show a test failing on an older one). */
        const char *daemon = getenv("OUTPOSTD");
        execl(daemon && daemon[0] ? daemon : OUTPOSTD_PATH, "outpostd", "--config",
              fx->config_path, (char *)NULL);
        _exit(127);
    }
    fx->pid = pid;
    while (wall_ms() < deadline) {
        int status;
        if (read_port(fx, offset, &fx->port) == 0)
            return 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "outpostd exited during start; see %s\n", fx->log_path);
            fx->pid = 0;
            return -1;
        }
        test_sleep_ms(10);
    }
    fixture_kill(fx);
    return -1;
}

int fixture_start_preloaded(daemon_fixture *fx, const char *library, const char *const *names,
                            const char *const *values, int n_vars)
{
    /* An ASan-built outpostd would refuse a preloaded library ahead of its runtime. */
    char asan[512];
    const char *was = getenv("ASAN_OPTIONS");
    char *saved_asan = was ? strdup(was) : NULL;
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", was ? was : "", was ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    setenv("LD_PRELOAD", library, 1);
    for (int i = 0; i < n_vars; i++)
        setenv(names[i], values[i], 1);
    int started = fixture_start(fx);
    unsetenv("LD_PRELOAD");
    for (int i = 0; i < n_vars; i++)
        unsetenv(names[i]);
    if (saved_asan) {
        setenv("ASAN_OPTIONS", saved_asan, 1);
        free(saved_asan);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
    return started;
}

int fixture_pin_port(const daemon_fixture *fx)
{
    char text[16384], out[16400];
    FILE *f = fopen(fx->config_path, "rb");
    if (!f)
        return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *at = strstr(text, "\nport = 0\n");
    if (!at)
        return strstr(text, "\nport = ") ? 0 : -1; /* pinned already */
    snprintf(out, sizeof out, "%.*s\nport = %u\n%s", (int)(at - text), text, (unsigned)fx->port,
             at + strlen("\nport = 0\n"));
    f = fopen(fx->config_path, "wb");
    if (!f)
        return -1;
    int rc = fputs(out, f) < 0 ? -1 : 0;
    return fclose(f) != 0 ? -1 : rc;
}

int fixture_stop(daemon_fixture *fx)
{
    uint64_t deadline = wall_ms() + 20000;
    int status;

    if (fx->pid <= 0)
        return -1;
    kill(fx->pid, SIGTERM);
    while (wall_ms() < deadline) {
        pid_t r = waitpid(fx->pid, &status, WNOHANG);
        if (r == fx->pid) {
            fx->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        test_sleep_ms(10);
    }
    fixture_kill(fx);
    return -1;
}

static bool store_is_sound(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = false;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *verdict = (const char *)sqlite3_column_text(st, 0);
        ok = verdict && strcmp(verdict, "ok") == 0;
        if (!ok)
            fprintf(stderr, "central store %s failed integrity_check: %s\n", path,
                    verdict ? verdict : "(null)");
    } else {
        fprintf(stderr, "central store %s cannot be checked: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

int fixture_stop_clean(daemon_fixture *fx)
{
    static const char *const reports[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                          "runtime error:"};
    int status;
    int rc = 0;

    if (fx->pid <= 0) {
        fprintf(stderr, "outpostd is not running (it exited or was never started); log in %s\n",
                fx->log_path);
        return -1;
    }
    status = fixture_stop(fx);
    if (status != 0) {
        fprintf(stderr, "outpostd did not stop cleanly (exit status %d); log in %s\n", status,
                fx->log_path);
        rc = -1;
    }
    if (!fixture_log_contains(fx, "outpostd stopped")) {
        fprintf(stderr, "outpostd did not log its clean stop; log in %s\n", fx->log_path);
        rc = -1;
    }
    for (size_t i = 0; i < sizeof reports / sizeof reports[0]; i++) {
        if (fixture_log_contains(fx, reports[i])) {
            fprintf(stderr, "outpostd's log holds a sanitizer report (%s); log in %s\n",
                    reports[i], fx->log_path);
            rc = -1;
        }
    }
    if (!fx->conninfo[0] && !store_is_sound(fx->store_path))
        rc = -1;
    return rc;
}

void fixture_kill(daemon_fixture *fx)
{
    if (fx->pid <= 0)
        return;
    kill(fx->pid, SIGKILL);
    waitpid(fx->pid, NULL, 0);
    fx->pid = 0;
}

void fixture_destroy(daemon_fixture *fx)
{
    fixture_kill(fx);
    if (fx->dir[0] && !getenv("OUTPOST_KEEP_TEST_DIRS")) {
        const char *const argv[] = {"/bin/rm", "-rf", fx->dir, NULL};
        run_quiet(argv);
    }
}

int fixture_enroll_code(const daemon_fixture *fx, const char *worker_id, char out_code[32])
{
    store *st = NULL;
    char err[256];
    char code[STORE_CODE_SIZE];
    int rc;

    if (fixture_store_open(fx, &st, err, sizeof err) != STORE_OK)
        return -1;
    rc = store_enroll_code_create(st, worker_id, wall_ms(), 24u * 3600u * 1000u, code);
    store_close(st);
    if (rc != STORE_OK)
        return -1;
    snprintf(out_code, 32, "%s", code);
    return 0;
}

int fixture_revoke(const daemon_fixture *fx, const char *device_id, bool wipe)
{
    store *st = NULL;
    char err[256];
    int rc;

    if (fixture_store_open(fx, &st, err, sizeof err) != STORE_OK)
        return -1;
    rc = store_device_revoke(st, device_id, wipe);
    store_close(st);
    return rc == STORE_OK ? 0 : -1;
}

int fixture_disable_worker(const daemon_fixture *fx, const char *worker_id)
{
    store *st = NULL;
    char err[256];
    int rc;

    if (fixture_store_open(fx, &st, err, sizeof err) != STORE_OK)
        return -1;
    rc = store_worker_set_disabled(st, worker_id, true);
    store_close(st);
    return rc == STORE_OK ? 0 : -1;
}

int fixture_worker_teams(const daemon_fixture *fx, const char *worker_id, bool add,
                         const char *const *team_ids, uint32_t n_teams)
{
    store *st = NULL;
    char err[256];
    int rc;

    if (fixture_store_open(fx, &st, err, sizeof err) != STORE_OK)
        return -1;
    rc = add ? store_worker_add(st, worker_id, team_ids, n_teams)
             : store_worker_set_teams(st, worker_id, team_ids, n_teams);
    if (rc != STORE_OK)
        fprintf(stderr, "worker %s: %s\n", worker_id, store_errmsg(st));
    store_close(st);
    return rc == STORE_OK ? 0 : -1;
}

unsigned fixture_log_count(const daemon_fixture *fx, const char *text)
{
    FILE *f = fopen(fx->log_path, "r");
    char line[2048];
    unsigned n = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

bool fixture_log_contains(const daemon_fixture *fx, const char *text)
{
    return fixture_log_count(fx, text) > 0;
}

int fixture_run_outpostd(const char *config_path, char *out, size_t out_size)
{
    int pipe_fd[2];
    int status;
    size_t used = 0;
    pid_t pid;

    if (pipe(pipe_fd) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pipe_fd[1], 2);
        dup2(pipe_fd[1], 1);
        close(pipe_fd[0]);
        execl(OUTPOSTD_PATH, "outpostd", "--config", config_path, (char *)NULL);
        _exit(127);
    }
    close(pipe_fd[1]);
    for (;;) {
        ssize_t n;
        char sink[256];
        if (used + 1 < out_size)
            n = read(pipe_fd[0], out + used, out_size - 1 - used);
        else
            n = read(pipe_fd[0], sink, sizeof sink);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (used + 1 < out_size)
            used += (size_t)n;
    }
    out[used] = '\0';
    close(pipe_fd[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int fixture_enroll_device(const daemon_fixture *fx, const char *worker_id, test_device *out_dev)
{
    char code[32];

    if (fixture_enroll_code(fx, worker_id, code) != 0)
        return -1;
    return fixture_enroll_with_code(fx, code, out_dev);
}

int fixture_enroll_with_code(const daemon_fixture *fx, const char *code, test_device *out_dev)
{
    testclient *tc = NULL;
    proto_msg msg, *reply = NULL;
    int rc = -1;

    if (testclient_connect(fx->port, fx->ca_path, 10000, &tc, NULL, 0) != 0)
        return -1;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_ENROLL;
    msg.u.enroll.version = PROTO_VERSION;
    msg.u.enroll.code = code;
    msg.u.enroll.device_name = "test device";
    if (testclient_send(tc, &msg, 10000) != 0 || testclient_recv(tc, 10000, &reply) != 0 ||
        reply->type != PROTO_MSG_ENROLLED)
        goto done;
    snprintf(out_dev->id, sizeof out_dev->id, "%s", reply->u.enrolled.device_id);
    memcpy(out_dev->secret, reply->u.enrolled.secret, sizeof out_dev->secret);
    rc = 0;
done:
    proto_msg_free(reply);
    testclient_close(tc);
    return rc;
}

struct testclient *fixture_hello(const daemon_fixture *fx, const test_device *dev,
                                 uint64_t *out_welcome_acked)
{
    testclient *tc = NULL;
    proto_msg msg, *reply = NULL;

    if (testclient_connect(fx->port, fx->ca_path, 10000, &tc, NULL, 0) != 0)
        return NULL;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_HELLO;
    msg.u.hello.version = PROTO_VERSION;
    msg.u.hello.device_id = dev->id;
    memcpy(msg.u.hello.secret, dev->secret, sizeof dev->secret);
    msg.u.hello.schema_version = 0;
    if (testclient_send(tc, &msg, 10000) != 0 || testclient_recv(tc, 10000, &reply) != 0 ||
        reply->type != PROTO_MSG_WELCOME) {
        proto_msg_free(reply);
        testclient_close(tc);
        return NULL;
    }
    if (out_welcome_acked)
        *out_welcome_acked = reply->u.welcome.acked_seq;
    proto_msg_free(reply);
    return tc;
}

typedef struct insert_push {
    proto_msg msg;
    proto_table_changes table;
    proto_change *changes;
    proto_col *cols;
} insert_push;

proto_msg *fixture_insert_push(uint64_t seq, uint32_t n_rows, const char *const *ids,
                               const char *team_id, const char *name)
{
    insert_push *ip = calloc(1, sizeof *ip);

    if (!ip)
        return NULL;
    ip->changes = calloc(n_rows ? n_rows : 1, sizeof *ip->changes);
    ip->cols = calloc((size_t)(n_rows ? n_rows : 1) * FIXTURE_N_COLUMNS, sizeof *ip->cols);
    if (!ip->changes || !ip->cols) {
        free(ip->changes);
        free(ip->cols);
        free(ip);
        return NULL;
    }
    for (uint32_t r = 0; r < n_rows; r++) {
        proto_col *c = ip->cols + (size_t)r * FIXTURE_N_COLUMNS;
        const char *values[FIXTURE_N_COLUMNS] = {ids[r], team_id, name, "note"};
        for (uint32_t k = 0; k < FIXTURE_N_COLUMNS; k++) {
            c[k].idx = k;
            c[k].old_val.type = PROTO_UNDEF;
            c[k].new_val = test_text_value(values[k]);
        }
        ip->changes[r].op = PROTO_OP_INSERT;
        ip->changes[r].n_cols = FIXTURE_N_COLUMNS;
        ip->changes[r].cols = c;
    }
    ip->table.table = FIXTURE_TABLE;
    ip->table.n_columns = FIXTURE_N_COLUMNS;
    ip->table.n_changes = n_rows;
    ip->table.changes = ip->changes;
    ip->msg.type = PROTO_MSG_PUSH;
    ip->msg.u.push.seq = seq;
    /* As a real device's: a resent entry carries the clock it was first sent with (the server
     * takes another clock under a used seq for a rewound device counter). */
    static uint64_t base_ms;
    if (base_ms == 0)
        base_ms = wall_ms();
    ip->msg.u.push.hlc = PROTO_HLC_MAKE(base_ms + seq, 0);
    ip->msg.u.push.schema_version = 1;
    ip->msg.u.push.n_tables = 1;
    ip->msg.u.push.tables = &ip->table;
    return &ip->msg;
}

void fixture_push_free(proto_msg *msg)
{
    insert_push *ip = (insert_push *)msg; /* msg is the first member */

    if (!ip)
        return;
    free(ip->changes);
    free(ip->cols);
    free(ip);
}

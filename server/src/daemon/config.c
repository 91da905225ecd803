#include "config.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void config_defaults(daemon_config *out_config)
{
    memset(out_config, 0, sizeof *out_config);
    snprintf(out_config->listen_addr, sizeof out_config->listen_addr, "127.0.0.1");
    out_config->port = 8443;
    out_config->log_level = LOG_INFO;
    out_config->checkpoint_interval_s = 3600;
    snprintf(out_config->store_engine, sizeof out_config->store_engine, "sqlite");
    snprintf(out_config->dash_table, sizeof out_config->dash_table, "contacts");
    snprintf(out_config->dash_worker_col, sizeof out_config->dash_worker_col, "worker_id");
    snprintf(out_config->dash_date_col, sizeof out_config->dash_date_col, "contacted_at");
    out_config->limits = (daemon_limits){
        .max_message_bytes = 1024u * 1024u,
        .max_transaction_bytes = 64u * 1024u * 1024u,
        .handshake_timeout_s = 10,
        .message_timeout_s = 30,
        .idle_timeout_s = 600,
        .max_connections = 1024,
        .lockout_failures = 5,
        .lockout_window_s = 300,
        .lockout_duration_s = 900,
        .queue_depth = 64,
        .pull_page_rows = 4000,
        .chunk_timeout_s = 10,
        .max_held_bytes = 256u * 1024u * 1024u,
        .login_queue_depth = 8,
        .max_waiting_jobs = 1024,
        .max_unauthenticated_per_address = 128,
    };
    snprintf(out_config->metrics_allow[0], sizeof out_config->metrics_allow[0], "127.0.0.1");
    snprintf(out_config->metrics_allow[1], sizeof out_config->metrics_allow[1], "::1");
    out_config->n_metrics_allow = 2;
}

/* "a, b, c" into the allow list (replacing the default); an empty value allows nobody. */
static int set_metrics_allow(daemon_config *c, const char *value)
{
    const char *p = value;

    c->n_metrics_allow = 0;
    while (*p) {
        size_t n;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (n >= sizeof c->metrics_allow[0] || c->n_metrics_allow == CONFIG_METRICS_ALLOW_MAX)
            return -1;
        memcpy(c->metrics_allow[c->n_metrics_allow], p, n);
        c->metrics_allow[c->n_metrics_allow][n] = '\0';
        c->n_metrics_allow++;
        p += n;
    }
    return 0;
}

typedef struct config_parse {
    daemon_config *config;
    char dir[CONFIG_PATH_MAX]; /* directory of the config file, for relative paths */
    char *err;
    size_t err_size;
    int failed;
} config_parse;

static int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (text[0] == '\0' || text[0] == '-')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int set_path(config_parse *p, char *dst, const char *value)
{
    int n;

    if (value[0] == '\0')
        return -1;
    if (value[0] == '/' || p->dir[0] == '\0')
        n = snprintf(dst, CONFIG_PATH_MAX, "%s", value);
    else
        n = snprintf(dst, CONFIG_PATH_MAX, "%s/%s", p->dir, value);
    return (n < 0 || n >= CONFIG_PATH_MAX) ? -1 : 0;
}

typedef struct limit_key {
    const char *name;
    uint64_t min, max;
    size_t offset;
    size_t width; /* sizeof the field: size_t or uint32_t */
} limit_key;

#define LIMIT(field, lo, hi) \
    { #field, lo, hi, offsetof(daemon_limits, field), sizeof(((daemon_limits *)0)->field) }

static const limit_key limit_keys[] = {
    LIMIT(max_message_bytes, 1024, 64u * 1024u * 1024u),
    LIMIT(max_transaction_bytes, 1024, 4096ull * 1024u * 1024u),
    LIMIT(handshake_timeout_s, 1, 3600),
    LIMIT(message_timeout_s, 1, 3600),
    LIMIT(idle_timeout_s, 0, 86400),
    LIMIT(max_connections, 1, 100000),
    LIMIT(lockout_failures, 1, 1000),
    LIMIT(lockout_window_s, 1, 86400),
    LIMIT(lockout_duration_s, 1, 86400 * 7),
    LIMIT(queue_depth, 1, 100000),
    LIMIT(pull_page_rows, 1, 10000),
    LIMIT(chunk_timeout_s, 1, 3600),
    LIMIT(max_held_bytes, 1024u * 1024u, 65536ull * 1024u * 1024u),
    LIMIT(login_queue_depth, 1, 1000),
    LIMIT(max_waiting_jobs, 0, 100000),
    LIMIT(max_unauthenticated_per_address, 1, 100000),
};

static int set_limit(daemon_limits *limits, const char *name, const char *value, int *known)
{
    for (size_t i = 0; i < sizeof limit_keys / sizeof limit_keys[0]; i++) {
        const limit_key *k = &limit_keys[i];
        uint64_t v;

        if (strcmp(k->name, name) != 0)
            continue;
        *known = 1;
        if (parse_u64(value, k->min, k->max, &v) != 0)
            return -1;
        if (k->width == sizeof(uint32_t)) {
            uint32_t v32 = (uint32_t)v;
            memcpy((char *)limits + k->offset, &v32, sizeof v32);
        } else {
            size_t vz = (size_t)v;
            memcpy((char *)limits + k->offset, &vz, sizeof vz);
        }
        return 0;
    }
    *known = 0;
    return -1;
}

static int fail_key(config_parse *p, const char *section, const char *name, const char *why)
{
    snprintf(p->err, p->err_size, "[%s] %s: %s", section, name, why);
    p->failed = 1;
    return 0; /* inih: stop and report this line */
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
    config_parse *p = user;
    daemon_config *c = p->config;

    if (p->failed)
        return 0;
    if (strcmp(section, "dashboard") == 0) {
        char *dst = strcmp(name, "table") == 0           ? c->dash_table
                    : strcmp(name, "worker_column") == 0 ? c->dash_worker_col
                    : strcmp(name, "date_column") == 0   ? c->dash_date_col
                                                         : NULL;
        if (!dst)
            return fail_key(p, section, name, "unknown key");
        /* An empty column name says the table has no such column. */
        if ((dst == c->dash_table && value[0] == '\0') || strlen(value) >= sizeof c->dash_table)
            return fail_key(p, section, name, "expected a name of 1 to 63 characters");
        snprintf(dst, sizeof c->dash_table, "%s", value);
        return 1;
    }
    if (strcmp(section, "server") == 0) {
        if (strcmp(name, "listen") == 0) {
            if (value[0] == '\0' || strlen(value) >= sizeof c->listen_addr)
                return fail_key(p, section, name, "expected an interface address");
            snprintf(c->listen_addr, sizeof c->listen_addr, "%s", value);
            return 1;
        }
        if (strcmp(name, "port") == 0) {
            uint64_t v;
            if (parse_u64(value, 0, 65535, &v) != 0)
                return fail_key(p, section, name, "expected a port number 0..65535");
            c->port = (uint16_t)v;
            return 1;
        }
        if (strcmp(name, "cert") == 0)
            return set_path(p, c->cert_path, value) == 0 ? 1
                                                         : fail_key(p, section, name, "bad path");
        if (strcmp(name, "key") == 0)
            return set_path(p, c->key_path, value) == 0 ? 1
                                                         : fail_key(p, section, name, "bad path");
        if (strcmp(name, "ca") == 0)
            return set_path(p, c->ca_path, value) == 0 ? 1 : fail_key(p, section, name, "bad path");
        return fail_key(p, section, name, "unknown key");
    }
    if (strcmp(section, "store") == 0) {
        if (strcmp(name, "path") == 0)
            return set_path(p, c->store_path, value) == 0 ? 1
                                                         : fail_key(p, section, name, "bad path");
        if (strcmp(name, "audit_key") == 0)
            return set_path(p, c->audit_key_path, value) == 0
                       ? 1
                       : fail_key(p, section, name, "bad path");
        if (strcmp(name, "engine") == 0) {
            if (strcmp(value, "sqlite") != 0 && strcmp(value, "postgresql") != 0)
                return fail_key(p, section, name, "expected sqlite or postgresql");
            snprintf(c->store_engine, sizeof c->store_engine, "%s", value);
            return 1;
        }
        if (strcmp(name, "conninfo") == 0) {
            if ((size_t)snprintf(c->store_conninfo, sizeof c->store_conninfo, "%s", value) >=
                sizeof c->store_conninfo)
                return fail_key(p, section, name, "too long");
            return 1;
        }
        return fail_key(p, section, name, "unknown key");
    }
    if (strcmp(section, "audit") == 0) {
        uint64_t v;
        if (strcmp(name, "checkpoint_file") == 0)
            return set_path(p, c->checkpoint_path, value) == 0
                       ? 1
                       : fail_key(p, section, name, "bad path");
        if (strcmp(name, "checkpoint_interval_s") != 0)
            return fail_key(p, section, name, "unknown key");
        if (parse_u64(value, 0, 7 * 24 * 3600, &v) != 0 || (v > 0 && v < 10))
            return fail_key(p, section, name, "expected 0 or 10..604800 seconds");
        c->checkpoint_interval_s = (uint32_t)v;
        return 1;
    }
    if (strcmp(section, "limits") == 0) {
        int known = 0;
        if (set_limit(&c->limits, name, value, &known) == 0)
            return 1;
        return fail_key(p, section, name, known ? "value out of range" : "unknown key");
    }
    if (strcmp(section, "metrics") == 0) {
        if (strcmp(name, "allow") != 0)
            return fail_key(p, section, name, "unknown key");
        if (set_metrics_allow(c, value) != 0)
            return fail_key(p, section, name, "expected up to 16 addresses, separated by commas");
        return 1;
    }
    if (strcmp(section, "log") == 0) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        if (strcmp(name, "level") != 0)
            return fail_key(p, section, name, "unknown key");
        for (int i = 0; i < 4; i++) {
            if (strcmp(value, names[i]) == 0) {
                c->log_level = (log_level)i;
                return 1;
            }
        }
        return fail_key(p, section, name, "expected error, warn, info or debug");
    }
    return fail_key(p, section, name, "unknown section");
}

static int require_file(const char *path, const char *what, char *err, size_t err_size)
{
    FILE *f;

    if (path[0] == '\0') {
        snprintf(err, err_size, "%s is not set", what);
        return -1;
    }
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* Whether a libpq connection string (keywords or URI) carries a password. libpq's own parser
 * reads it, so quoting and URI forms are understood as the connection will understand them; a
 * string it cannot parse is treated as carrying one (the connection fails anyway, and the
 * file's mode is checked all the same). */
static bool conninfo_has_password(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    bool found = opts == NULL;

    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
            found = true;
    PQconninfoFree(opts);
    return found;
}

/* A config that holds the database password must be its owner's alone, as the audit key must
 * (audit_key.c): whoever reads it can read the whole store. */
static int check_password_file_mode(const char *path, const daemon_config *cfg, char *err,
                                    size_t err_size)
{
    struct stat sb;

    if (!conninfo_has_password(cfg->store_conninfo))
        return 0;
    if (stat(path, &sb) != 0) {
        snprintf(err, err_size, "config %s: %s", path, strerror(errno));
        return -1;
    }
    if ((sb.st_mode & 077) == 0)
        return 0;
    snprintf(err, err_size,
             "config %s holds the database password ([store] conninfo) and is open to others "
             "(mode %04o): make it readable by its owner only (chmod 600), or keep the password "
             "in ~/.pgpass or a passfile",
             path, (unsigned)(sb.st_mode & 07777));
    return -1;
}

int config_load(const char *path, daemon_config *out_config, char *err, size_t err_size)
{
    config_parse p;
    const char *slash;
    char detail[CONFIG_PATH_MAX + 128] = "";
    int rc;

    config_defaults(out_config);
    snprintf(out_config->path, sizeof out_config->path, "%s", path);
    memset(&p, 0, sizeof p);
    p.config = out_config;
    p.err = detail;
    p.err_size = sizeof detail;
    slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < sizeof p.dir)
        memcpy(p.dir, path, (size_t)(slash - path));

    rc = ini_parse(path, on_ini_value, &p);
    if (rc == -1) {
        snprintf(err, err_size, "config %s: %s", path, strerror(errno));
        return -1;
    }
    if (rc == -2) {
        snprintf(err, err_size, "config %s: out of memory", path);
        return -1;
    }
    if (rc > 0) {
        snprintf(err, err_size, "config %s line %d: %s", path, rc,
                 p.failed ? detail : "not a section, key = value or comment");
        return -1;
    }

    if (require_file(out_config->cert_path, "[server] cert", detail, sizeof detail) != 0 ||
        require_file(out_config->key_path, "[server] key", detail, sizeof detail) != 0 ||
        require_file(out_config->ca_path, "[server] ca", detail, sizeof detail) != 0) {
        snprintf(err, err_size, "config %s: %s", path, detail);
        return -1;
    }
    if (strcmp(out_config->store_engine, "postgresql") == 0) {
        /* No store file beside which the audit key could default: it must be named. */
        if (out_config->store_conninfo[0] == '\0' || out_config->audit_key_path[0] == '\0') {
            snprintf(err, err_size, "config %s: [store] engine = postgresql: %s is not set", path,
                     out_config->store_conninfo[0] == '\0'
                         ? "[store] conninfo (a libpq connection string)"
                         : "[store] audit_key (the audit log's key file)");
            return -1;
        }
        if (check_password_file_mode(path, out_config, err, err_size) != 0)
            return -1;
    } else if (out_config->store_path[0] == '\0') {
        snprintf(err, err_size, "config %s: [store] path is not set", path);
        return -1;
    } else if (out_config->audit_key_path[0] == '\0' &&
               (size_t)snprintf(out_config->audit_key_path, sizeof out_config->audit_key_path,
                                "%s.audit-key",
                                out_config->store_path) >= sizeof out_config->audit_key_path) {
        snprintf(err, err_size, "config %s: [store] path is too long for its audit key", path);
        return -1;
    }
    if (out_config->limits.max_transaction_bytes < out_config->limits.max_message_bytes) {
        snprintf(err, err_size,
                 "config %s: [limits] max_transaction_bytes must be at least max_message_bytes",
                 path);
        return -1;
    }
    return 0;
}

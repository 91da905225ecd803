/*
 * The PouchDB-style baseline (couch_baseline.h): a CouchDB-like HTTP/1.1 endpoint and a
 * PouchDB-like one-shot replicator, both on blocking mbedTLS sockets.
 *
 * The requests are those of PouchDB's replicate() against a CouchDB 3 database, batch_size 100
 * (the day's 65 documents are one batch), on one keep-alive connection:
 *   push  GET /db/ (setup), GET /db/_local/<rep> (checkpoint), POST /db/_revs_diff,
 *         POST /db/_bulk_docs (new_edits false, whole documents with _revisions),
 *         GET + PUT /db/_local/<rep> (the checkpoint written back: PouchDB reads it for its _rev)
 *   pull  GET /db/, GET /db/_local/<rep> (404 on a fresh device), GET /db/_changes
 *         (style=all_docs, since=0, limit=100), POST /db/_bulk_get (revs=true),
 *         GET + PUT /db/_local/<rep>
 * Headers on both sides are those PouchDB in a mobile browser and CouchDB 3.3 send (basic
 * authentication on every request, CouchDB's request id and timing headers), bodies are JSON as
 * CouchDB writes them, seqs are as long as CouchDB 3's clustered seqs. Not modelled: a CORS
 * preflight (OPTIONS) a browser app sends before each JSON POST/PUT to another origin unless
 * cached, _session cookie authentication, gzip (CouchDB does not compress JSON responses by
 * default), the second _changes call of a continuous/live replication, conflicts.
 */
#include "couch_baseline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#define DB "/outreach"
#define PUSH_REP "_local/8f1b3c7e2a6d4f0b9c5e1a7d3b2f6c04"
#define PULL_REP "_local/d02e6b1f9a3c7e5b4d8f2a6c0e9b1d37"
#define AUTH "Authorization: Basic dzE6b3V0cmVhY2gtd29ya2VyLXBhc3N3b3Jk\r\n"

/* ---- documents ---------------------------------------------------------------------------- */

static uint64_t rev_state = 0x9e3779b97f4a7c15u;

static void rev_hash(char out[33])
{
    for (int i = 0; i < 2; i++) {
        uint64_t z = (rev_state += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)(z ^ (z >> 31)));
    }
}

static json_t *value_json(const outpost_value *v)
{
    switch (v->type) {
    case OUTPOST_VALUE_INT: return json_integer(v->u.i);
    case OUTPOST_VALUE_REAL: return json_real(v->u.r);
    case OUTPOST_VALUE_TEXT: return json_stringn((const char *)v->u.b.p, v->u.b.n);
    default: return json_null();
    }
}

/* Sets the document's next revision: generation one higher, its hash first in _revisions. */
static void next_rev(json_t *doc)
{
    char hash[33], rev[64];
    json_t *revs = json_object_get(doc, "_revisions");
    if (!revs) {
        revs = json_pack("{s:i, s:[]}", "start", 0, "ids");
        json_object_set_new(doc, "_revisions", revs);
    }
    json_int_t gen = json_integer_value(json_object_get(revs, "start")) + 1;
    rev_hash(hash);
    json_object_set_new(revs, "start", json_integer(gen));
    json_array_insert_new(json_object_get(revs, "ids"), 0, json_string(hash));
    snprintf(rev, sizeof rev, "%lld-%s", (long long)gen, hash);
    json_object_set_new(doc, "_rev", json_string(rev));
}

/* The names between open and close (", "-separated, each up to " " or "="). */
static size_t names_of(const char *from, const char *end, char names[][48], size_t max)
{
    size_t n = 0;
    while (from < end && n < max) {
        while (from < end && (*from == ' ' || *from == ',' || *from == '('))
            from++;
        size_t len = strcspn(from, " ,=)");
        if (len == 0 || from + len > end)
            break;
        snprintf(names[n++], sizeof names[0], "%.*s", (int)len, from);
        from += len;
        if (*from == ' ' && from[1] == '=') /* "col = ?n" */
            from = strchr(from, ',') ? strchr(from, ',') : end;
    }
    return n;
}

void couch_record(json_t *docs, json_t *base, const char *sql, const outpost_value *values,
                  uint32_t n_values)
{
    char table[64], names[32][48];
    json_t *doc = NULL;
    if (sscanf(sql, "INSERT INTO %63s", table) == 1) {
        const char *open = strchr(sql, '('), *close = open ? strchr(open, ')') : NULL;
        size_t n = close ? names_of(open + 1, close, names, 32) : 0;
        doc = json_object();
        json_object_set_new(doc, "type", json_string(table));
        for (size_t i = 0; i < n && i < n_values; i++)
            json_object_set_new(doc, strcmp(names[i], "id") ? names[i] : "_id",
                                value_json(&values[i]));
    } else if (sscanf(sql, "UPDATE %63s", table) == 1 && n_values > 0) {
        const char *set = strstr(sql, " SET "), *where = strstr(sql, " WHERE ");
        char id[64];
        snprintf(id, sizeof id, "%.*s", (int)values[n_values - 1].u.b.n,
                 (const char *)values[n_values - 1].u.b.p);
        json_t *old = json_object_get(docs, id);
        if (!old && base)
            old = json_object_get(base, id);
        if (!old || !set || !where)
            return;
        doc = json_deep_copy(old);
        size_t n = names_of(set + 5, where, names, 32);
        for (size_t i = 0; i < n && i + 1 < n_values; i++)
            json_object_set_new(doc, names[i], value_json(&values[i]));
    } else {
        return;
    }
    next_rev(doc);
    json_object_set_new(docs, json_string_value(json_object_get(doc, "_id")), doc);
}

/* ---- TLS over blocking sockets ------------------------------------------------------------ */

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ready = -1;

static void tls_init_once(void)
{
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (psa_crypto_init() == PSA_SUCCESS &&
        mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                              (const unsigned char *)"couch", 5) == 0)
        tls_ready = 0;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);
    return n < 0 ? (errno == EINTR ? MBEDTLS_ERR_SSL_WANT_WRITE : -1) : (int)n;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    ssize_t n = recv(*(int *)ctx, buf, len, 0);
    return n < 0 ? (errno == EINTR ? MBEDTLS_ERR_SSL_WANT_READ : -1) : (int)n;
}

typedef struct conn {
    int fd;
    mbedtls_ssl_context ssl;
    uint64_t http_up, http_down; /* plaintext bytes written and read */
    char *buf;                   /* bytes read beyond the last message */
    size_t len, cap;
} conn;

static int tls_write(conn *c, const char *data, size_t n)
{
    c->http_up += n;
    while (n > 0) {
        int w = mbedtls_ssl_write(&c->ssl, (const unsigned char *)data, n);
        if (w == MBEDTLS_ERR_SSL_WANT_WRITE || w == MBEDTLS_ERR_SSL_WANT_READ)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more into c->buf; 0, or -1 at the end or on an error. */
static int tls_fill(conn *c)
{
    if (c->cap - c->len < 16384) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        char *grown = realloc(c->buf, cap + 1);
        if (!grown)
            return -1;
        c->buf = grown;
        c->cap = cap;
    }
    for (;;) {
        int r = mbedtls_ssl_read(&c->ssl, (unsigned char *)c->buf + c->len, c->cap - c->len);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE ||
            r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
            continue;
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
        c->http_down += (size_t)r;
        c->buf[c->len] = '\0';
        return 0;
    }
}

/* One HTTP message: *head (NUL-terminated, its own copy) and *body (body_len bytes). */
static int http_read(conn *c, char **head, char **body, size_t *body_len)
{
    char *end;
    while (!c->buf || !(end = strstr(c->buf, "\r\n\r\n")))
        if (tls_fill(c) != 0)
            return -1;
    size_t head_len = (size_t)(end - c->buf) + 4, n = 0;
    for (const char *h = c->buf; h && h < end; h = strstr(h, "\r\n") ? strstr(h, "\r\n") + 2 : NULL)
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            n = strtoul(h + 15, NULL, 10);
    while (c->len < head_len + n)
        if (tls_fill(c) != 0)
            return -1;
    *head = strndup(c->buf, head_len);
    *body = malloc(n + 1);
    if (!*head || !*body)
        return -1;
    memcpy(*body, c->buf + head_len, n);
    (*body)[n] = '\0';
    *body_len = n;
    memmove(c->buf, c->buf + head_len + n, c->len - head_len - n);
    c->len -= head_len + n;
    c->buf[c->len] = '\0';
    return 0;
}

static void conn_close(conn *c, mbedtls_ssl_config *conf)
{
    mbedtls_ssl_close_notify(&c->ssl);
    mbedtls_ssl_free(&c->ssl);
    if (conf)
        mbedtls_ssl_config_free(conf);
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
}

static int handshake(conn *c)
{
    for (;;) {
        int r = mbedtls_ssl_handshake(&c->ssl);
        if (r == 0)
            return 0;
        if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
            fprintf(stderr, "couch baseline: TLS handshake failed (-0x%04x)\n", (unsigned)-r);
            return -1;
        }
    }
}

/* ---- the server --------------------------------------------------------------------------- */

struct couch_server {
    int listen_fd;
    pthread_t thread;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    json_t *docs;  /* id -> the document's current revision */
    json_t *order; /* ids in update order: _changes */
    json_t *local; /* _local documents */
    unsigned requests;
};

/* CouchDB 3's clustered seqs: the count, then an opaque encoding of the shard ranges. */
static void seq_string(char *out, size_t size, size_t n)
{
    snprintf(out, size, "%zu-g1AAAACReJzLYWBgYMpgTmEQTM4vTc5ISXIwNDLXMwBCwxygOFMiQ5L8____"
                        "%09zuRYMBQh2WQBKZ_9kgJXx4JBm5BrJHZxCyWMmkAsj3wdJCg7Q3kkEyTuA2sKm", n,
             n * 7919);
}

static void store_doc(couch_server *sv, json_t *doc)
{
    const char *id = json_string_value(json_object_get(doc, "_id"));
    for (size_t i = 0; i < json_array_size(sv->order); i++)
        if (strcmp(json_string_value(json_array_get(sv->order, i)), id) == 0) {
            json_array_remove(sv->order, i);
            break;
        }
    json_array_append_new(sv->order, json_string(id));
    json_object_set(sv->docs, id, doc);
}

static int respond(couch_server *sv, conn *c, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    char head[600], date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    size_t n = text ? strlen(text) + 1 : 0; /* CouchDB ends its JSON with a newline */
    snprintf(head, sizeof head,
             "HTTP/1.1 %d %s\r\nCache-Control: must-revalidate\r\nContent-Length: %zu\r\n"
             "Content-Type: application/json\r\nDate: %s\r\n"
             "Server: CouchDB/3.3.3 (Erlang OTP/24)\r\nX-Couch-Request-ID: %010x\r\n"
             "X-CouchDB-Body-Time: 0\r\n\r\n",
             status, status == 200 ? "OK" : status == 201 ? "Created" : "Object Not Found", n,
             date, ++sv->requests * 2654435761u);
    int rc = tls_write(c, head, strlen(head));
    if (rc == 0 && text) {
        text[n - 1] = '\n';
        rc = tls_write(c, text, n);
    }
    free(text);
    json_decref(body);
    return rc;
}

static json_t *db_info(couch_server *sv)
{
    char seq[200];
    seq_string(seq, sizeof seq, json_array_size(sv->order));
    return json_pack("{s:s, s:s, s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i}, s:i, s:i, s:i, "
                     "s:s, s:i, s:s}",
                     "instance_start_time", "0", "db_name", "outreach", "sizes", "file", 418000,
                     "external", 61000, "active", 94000, "props", "q", 2, "n", 1, "w", 1, "r", 1,
                     "doc_del_count", 0, "doc_count", (int)json_object_size(sv->docs),
                     "disk_format_version", 8, "update_seq", seq, "compact_running", 0,
                     "purge_seq", "0-g1AAAABXeJzLYWBgYMpgTmHgzcvPy09JdcjLz8gvLskBCScyJNr___8_K4M5kQEAWvQQdQ");
}

static int serve_request(couch_server *sv, conn *c, const char *head, const char *body)
{
    char method[8], path[300];
    if (sscanf(head, "%7s %299s", method, path) != 2)
        return -1;
    json_error_t jerr;
    json_t *in = body[0] ? json_loads(body, 0, &jerr) : NULL;
    json_t *out = NULL;
    int status = 200;
    if (strcmp(path, DB "/") == 0) {
        out = db_info(sv);
    } else if (strncmp(path, DB "/_local/", strlen(DB "/_local/")) == 0) {
        const char *id = path + strlen(DB "/");
        json_t *doc = json_object_get(sv->local, id);
        if (strcmp(method, "PUT") == 0 && in) {
            /* _local revisions are "0-" and a count. */
            const char *old_rev = doc ? json_string_value(json_object_get(doc, "_rev")) : NULL;
            char rev[32];
            snprintf(rev, sizeof rev, "0-%d", old_rev ? atoi(old_rev + 2) + 1 : 1);
            json_object_set_new(in, "_rev", json_string(rev));
            json_object_set(sv->local, id, in);
            out = json_pack("{s:b, s:s, s:s}", "ok", 1, "id", id, "rev", rev);
            status = 201;
        } else if (doc) {
            out = json_incref(doc);
        } else {
            out = json_pack("{s:s, s:s}", "error", "not_found", "reason", "missing");
            status = 404;
        }
    } else if (strcmp(path, DB "/_revs_diff") == 0 && in) {
        out = json_object();
        const char *id;
        json_t *revs;
        json_object_foreach(in, id, revs) {
            json_t *have = json_object_get(sv->docs, id), *missing = json_array();
            for (size_t i = 0; i < json_array_size(revs); i++)
                if (!have || !json_equal(json_object_get(have, "_rev"), json_array_get(revs, i)))
                    json_array_append(missing, json_array_get(revs, i));
            if (json_array_size(missing))
                json_object_set_new(out, id, json_pack("{s:o}", "missing", missing));
            else
                json_decref(missing);
        }
    } else if (strcmp(path, DB "/_bulk_docs") == 0 && in) {
        json_t *docs = json_object_get(in, "docs");
        for (size_t i = 0; i < json_array_size(docs); i++)
            store_doc(sv, json_array_get(docs, i));
        out = json_array(); /* new_edits false: CouchDB answers with no per-document result */
        status = 201;
    } else if (strncmp(path, DB "/_changes?", strlen(DB "/_changes?")) == 0) {
        json_t *results = json_array();
        char seq[200];
        for (size_t i = 0; i < json_array_size(sv->order); i++) {
            const char *id = json_string_value(json_array_get(sv->order, i));
            seq_string(seq, sizeof seq, i + 1);
            json_array_append_new(
                results, json_pack("{s:s, s:s, s:[{s:O}]}", "seq", seq, "id", id, "changes",
                                   "rev", json_object_get(json_object_get(sv->docs, id), "_rev")));
        }
        seq_string(seq, sizeof seq, json_array_size(sv->order));
        out = json_pack("{s:o, s:s, s:i}", "results", results, "last_seq", seq, "pending", 0);
    } else if (strncmp(path, DB "/_bulk_get?", strlen(DB "/_bulk_get?")) == 0 && in) {
        json_t *asked = json_object_get(in, "docs"), *results = json_array();
        for (size_t i = 0; i < json_array_size(asked); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(asked, i), "id"));
            json_t *doc = json_object_get(sv->docs, id);
            json_array_append_new(results, json_pack("{s:s, s:[{s:O}]}", "id", id, "docs", "ok",
                                                     doc ? doc : json_null()));
        }
        out = json_pack("{s:o}", "results", results);
    } else {
        out = json_pack("{s:s, s:s}", "error", "not_found", "reason", "Database does not exist.");
        status = 404;
    }
    json_decref(in);
    return respond(sv, c, status, out);
}

static void *server_main(void *arg)
{
    couch_server *sv = arg;
    for (;;) {
        int fd = accept(sv->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL; /* couch_server_stop() shut the socket down */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn c = {.fd = fd};
        mbedtls_ssl_init(&c.ssl);
        if (mbedtls_ssl_setup(&c.ssl, &sv->conf) == 0) {
            mbedtls_ssl_set_bio(&c.ssl, &c.fd, bio_send, bio_recv, NULL);
            if (handshake(&c) == 0) {
                char *head, *body;
                size_t n;
                while (http_read(&c, &head, &body, &n) == 0) {
                    int rc = serve_request(sv, &c, head, body);
                    free(head);
                    free(body);
                    if (rc != 0)
                        break;
                }
            }
        }
        conn_close(&c, NULL);
    }
}

int couch_server_start(const char *cert_path, const char *key_path, json_t *yesterday,
                       couch_server **out_server, uint16_t *out_port)
{
    pthread_once(&tls_once, tls_init_once);
    couch_server *sv = calloc(1, sizeof *sv);
    if (!sv || tls_ready != 0)
        return free(sv), -1;
    sv->docs = json_object();
    sv->order = json_array();
    sv->local = json_object();
    const char *id;
    json_t *doc;
    json_object_foreach(yesterday, id, doc) {
        json_t *copy = json_deep_copy(doc);
        store_doc(sv, copy);
        json_decref(copy);
    }
    json_object_set_new(sv->local, PUSH_REP,
                        json_pack("{s:s, s:s, s:s, s:i, s:s, s:[]}", "_rev", "0-1", "session_id",
                                  "4c3b8f1e-52a0-4d1b-8f3e-7d9c2a6b1e05", "replicator", "pouchdb",
                                  "version", 1, "last_seq", "10", "history"));
    mbedtls_ssl_config_init(&sv->conf);
    mbedtls_x509_crt_init(&sv->cert);
    mbedtls_pk_init(&sv->key);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    sv->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (mbedtls_x509_crt_parse_file(&sv->cert, cert_path) != 0 ||
        mbedtls_pk_parse_keyfile(&sv->key, key_path, NULL, mbedtls_ctr_drbg_random, &drbg) != 0 ||
        mbedtls_ssl_config_defaults(&sv->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0 ||
        mbedtls_ssl_conf_own_cert(&sv->conf, &sv->cert, &sv->key) != 0 || sv->listen_fd < 0 ||
        bind(sv->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(sv->listen_fd, 4) != 0 ||
        getsockname(sv->listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
        fprintf(stderr, "couch baseline: cannot start the server\n");
        couch_server_stop(sv);
        return -1;
    }
    mbedtls_ssl_conf_rng(&sv->conf, mbedtls_ctr_drbg_random, &drbg);
    if (pthread_create(&sv->thread, NULL, server_main, sv) != 0) {
        couch_server_stop(sv);
        return -1;
    }
    *out_port = ntohs(addr.sin_port);
    *out_server = sv;
    return 0;
}

void couch_server_stop(couch_server *sv)
{
    if (!sv)
        return;
    if (sv->thread) {
        shutdown(sv->listen_fd, SHUT_RDWR);
        pthread_join(sv->thread, NULL);
    }
    if (sv->listen_fd >= 0)
        close(sv->listen_fd);
    mbedtls_ssl_config_free(&sv->conf);
    mbedtls_x509_crt_free(&sv->cert);
    mbedtls_pk_free(&sv->key);
    json_decref(sv->docs);
    json_decref(sv->order);
    json_decref(sv->local);
    free(sv);
}

/* ---- the replicator ----------------------------------------------------------------------- */

typedef struct client {
    conn c;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    uint64_t requests;
} client;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int client_open(client *cl, uint16_t port, const char *ca_pem)
{
    pthread_once(&tls_once, tls_init_once);
    memset(cl, 0, sizeof *cl);
    cl->c.fd = -1;
    mbedtls_ssl_init(&cl->c.ssl);
    mbedtls_ssl_config_init(&cl->conf);
    mbedtls_x509_crt_init(&cl->ca);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    if (tls_ready != 0 ||
        mbedtls_x509_crt_parse(&cl->ca, (const unsigned char *)ca_pem, strlen(ca_pem) + 1) != 0 ||
        mbedtls_ssl_config_defaults(&cl->conf, MBEDTLS_SSL_IS_CLIENT,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        return -1;
    /* The chain is checked (the server sends it either way); the name is not: a bench. */
    mbedtls_ssl_conf_authmode(&cl->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
    mbedtls_ssl_conf_ca_chain(&cl->conf, &cl->ca, NULL);
    mbedtls_ssl_conf_rng(&cl->conf, mbedtls_ctr_drbg_random, &drbg);
    cl->c.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (cl->c.fd < 0 || connect(cl->c.fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        mbedtls_ssl_setup(&cl->c.ssl, &cl->conf) != 0)
        return -1;
    setsockopt(cl->c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (mbedtls_ssl_set_hostname(&cl->c.ssl, "localhost") != 0)
        return -1;
    mbedtls_ssl_set_bio(&cl->c.ssl, &cl->c.fd, bio_send, bio_recv, NULL);
    return handshake(&cl->c);
}

static void client_close(client *cl)
{
    conn_close(&cl->c, &cl->conf);
    mbedtls_x509_crt_free(&cl->ca);
}

/* One request and its answer; *out the answer's JSON (NULL if none). Returns the status. */
static int request(client *cl, const char *method, const char *path, json_t *body, json_t **out)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char head[1200];
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:6984\r\nConnection: keep-alive\r\n"
             "%sAccept: application/json\r\n" AUTH
             "User-Agent: Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like "
             "Gecko) Chrome/120.0.0.0 Mobile Safari/537.36\r\n"
             "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
             "Content-Length: %zu\r\n\r\n",
             method, path, text ? "Content-Type: application/json\r\n" : "",
             text ? strlen(text) : (size_t)0);
    char *rhead = NULL, *rbody = NULL;
    size_t n = 0;
    int status = -1;
    cl->requests++;
    if (tls_write(&cl->c, head, strlen(head)) == 0 &&
        (!text || tls_write(&cl->c, text, strlen(text)) == 0) &&
        http_read(&cl->c, &rhead, &rbody, &n) == 0 && sscanf(rhead, "HTTP/1.1 %d", &status) == 1) {
        json_error_t jerr;
        if (out)
            *out = json_loadb(rbody, n, 0, &jerr);
    }
    free(text);
    free(rhead);
    free(rbody);
    return status;
}

static json_t *checkpoint(const char *last_seq)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:[{s:s, s:s}]}", "session_id",
                     "0f6e2d4c-8b1a-4e3f-9c7d-5a2b1e0d3c48", "replicator", "pouchdb",
                     "version", 1, "last_seq", last_seq, "history", "session_id",
                     "0f6e2d4c-8b1a-4e3f-9c7d-5a2b1e0d3c48", "last_seq", last_seq);
}

/* GET then PUT of the checkpoint, with the _rev the GET found. */
static int write_checkpoint(client *cl, const char *rep, const char *last_seq)
{
    char path[128];
    json_t *old = NULL, *cp = checkpoint(last_seq);
    snprintf(path, sizeof path, DB "/%s", rep);
    request(cl, "GET", path, NULL, &old);
    json_t *rev = old ? json_object_get(old, "_rev") : NULL;
    if (rev)
        json_object_set(cp, "_rev", rev);
    int status = request(cl, "PUT", path, cp, NULL);
    json_decref(old);
    json_decref(cp);
    return status == 201 ? 0 : -1;
}

static void result_of(client *cl, double t0, couch_result *out)
{
    out->seconds = now_s() - t0;
    out->round_trips = cl->requests;
    out->json_up = cl->c.http_up;
    out->json_down = cl->c.http_down;
}

int couch_push(uint16_t port, const char *ca_pem, json_t *docs, couch_mark_cb warm_mark,
               void *mark_ctx, couch_result *out)
{
    client cl;
    double t0 = now_s();
    json_t *info = NULL, *missing = NULL, *diff = json_object(), *bulk = json_array();
    int rc = -1;
    const char *id;
    json_t *doc;
    json_object_foreach(docs, id, doc)
        json_object_set_new(diff, id, json_pack("[O]", json_object_get(doc, "_rev")));
    if (client_open(&cl, port, ca_pem) != 0 || request(&cl, "GET", DB "/", NULL, &info) != 200 ||
        request(&cl, "GET", DB "/" PUSH_REP, NULL, NULL) != 200)
        goto done;
    if (warm_mark) {
        /* A live replication already set up: its next batch starts here. */
        warm_mark(mark_ctx);
        t0 = now_s();
        cl.requests = 0;
        cl.c.http_up = cl.c.http_down = 0;
    }
    if (request(&cl, "POST", DB "/_revs_diff", diff, &missing) != 200 || !missing)
        goto done;
    json_object_foreach(docs, id, doc)
        if (json_object_get(missing, id))
            json_array_append(bulk, doc);
    json_t *body = json_pack("{s:O, s:b}", "docs", bulk, "new_edits", 0);
    int status = request(&cl, "POST", DB "/_bulk_docs", body, NULL);
    json_decref(body);
    if (status != 201 || json_array_size(bulk) != json_object_size(docs) ||
        write_checkpoint(&cl, PUSH_REP, "75") != 0)
        goto done;
    result_of(&cl, t0, out);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "couch baseline: push failed\n");
    client_close(&cl);
    json_decref(info);
    json_decref(missing);
    json_decref(diff);
    json_decref(bulk);
    return rc;
}

int couch_pull(uint16_t port, const char *ca_pem, couch_result *out, size_t *out_n_docs)
{
    client cl;
    double t0 = now_s();
    json_t *info = NULL, *changes = NULL, *got = NULL, *asked = json_array();
    int rc = -1;
    if (client_open(&cl, port, ca_pem) != 0 || request(&cl, "GET", DB "/", NULL, &info) != 200 ||
        request(&cl, "GET", DB "/" PULL_REP, NULL, NULL) != 404 ||
        request(&cl, "GET", DB "/_changes?style=all_docs&since=0&limit=100", NULL, &changes) !=
            200 ||
        !changes)
        goto done;
    json_t *results = json_object_get(changes, "results");
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *ch = json_array_get(results, i);
        json_array_append_new(asked, json_pack("{s:O, s:O}", "id", json_object_get(ch, "id"),
                                               "rev", json_object_get(json_array_get(
                                                   json_object_get(ch, "changes"), 0), "rev")));
    }
    json_t *body = json_pack("{s:O}", "docs", asked);
    int status = request(&cl, "POST", DB "/_bulk_get?revs=true&attachments=false", body, &got);
    json_decref(body);
    if (status != 200 || !got ||
        write_checkpoint(&cl, PULL_REP,
                         json_string_value(json_object_get(changes, "last_seq"))) != 0)
        goto done;
    *out_n_docs = json_array_size(json_object_get(got, "results"));
    result_of(&cl, t0, out);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "couch baseline: pull failed\n");
    client_close(&cl);
    json_decref(info);
    json_decref(changes);
    json_decref(got);
    json_decref(asked);
    return rc;
}

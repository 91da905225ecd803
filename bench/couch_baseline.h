/*
 * A PouchDB-style baseline for bench_field: the same day's work replicated as CouchDB's
 * replication protocol would carry it, JSON documents with _id/_rev over HTTP/1.1 and TLS, to
 * a minimal CouchDB-like endpoint in this process (blocking mbedTLS on a thread). Not a CouchDB:
 * it answers exactly the requests a PouchDB one-shot replication of this day makes, in order,
 * with CouchDB's shapes and headers, so that the bytes and round trips are those of the real
 * exchange. What it leaves out is said in couch_baseline.c.
 */
#ifndef OUTPOST_COUCH_BASELINE_H
#define OUTPOST_COUCH_BASELINE_H

#include <stdint.h>

#include <jansson.h>

#include "outpost.h"

/* Documents, as an app on PouchDB would hold the rows a day's SQL writes: records one INSERT
 * (a new document, rev 1) or UPDATE ... WHERE id = ? (the whole document again, its rev one
 * higher) into docs (an object: id -> document). An UPDATE of a document docs does not hold
 * starts from the one in base (may be NULL). */
void couch_record(json_t *docs, json_t *base, const char *sql, const outpost_value *values,
                  uint32_t n_values);

typedef struct couch_server couch_server;

/* Serves on 127.0.0.1 (a free port, *out_port) with the PEM certificate and key, holding
 * yesterday's documents (copied) and, as yesterday's replication left it, the checkpoint.
 * Returns 0 or -1. */
int couch_server_start(const char *cert_path, const char *key_path, json_t *yesterday,
                       couch_server **out_server, uint16_t *out_port);
void couch_server_stop(couch_server *server);

typedef struct couch_result {
    double seconds;        /* connect, TLS handshake and every request */
    uint64_t round_trips;  /* HTTP requests, each waiting for its answer */
    uint64_t json_up, json_down; /* HTTP bytes (headers and bodies), without TLS */
} couch_result;

typedef void (*couch_mark_cb)(void *ctx);

/* Replicates docs to the server at 127.0.0.1:port (through the proxy) as PouchDB's one-shot
 * push does, on one new keep-alive connection. With warm_mark, as the next batch of a live
 * replication already connected and set up: warm_mark(mark_ctx) is called once the connection,
 * the database check and the checkpoint read are done, and *out counts from there (_revs_diff,
 * _bulk_docs, the checkpoint's GET and PUT). Returns 0 or -1 (message on stderr). */
int couch_push(uint16_t port, const char *ca_pem, json_t *docs, couch_mark_cb warm_mark,
               void *mark_ctx, couch_result *out);

/* A fresh device replicates everything from the server, as PouchDB's one-shot pull does.
 * *out_n_docs: how many documents came. Returns 0 or -1. */
int couch_pull(uint16_t port, const char *ca_pem, couch_result *out, size_t *out_n_docs);

#endif /* OUTPOST_COUCH_BASELINE_H */

/*
 * `outpost field`: the field app, a local web app over the open replica (field.c).
 */
#ifndef OUTPOST_CLI_FIELD_H
#define OUTPOST_CLI_FIELD_H

#include <stdint.h>

#include <outpost.h>

typedef struct field_options {
    uint16_t port;          /* 0: a free port */
    const char *worker;     /* fills the forms' "worker" columns; NULL: the worker types it */
    const char *forms_dir;  /* NULL: the forms the server sent with the schema
                             * (outpost_forms_json) */
} field_options;

/* Serves the app on 127.0.0.1 until SIGINT or SIGTERM, running the sync engine when the
 * replica is enrolled. Returns the CLI's exit code: 0, 2 when it cannot listen, 4 when the
 * office ordered the device wiped (the replica's files are gone; close the handle). */
int field_run(outpost_replica *replica, const field_options *options);

#endif /* OUTPOST_CLI_FIELD_H */

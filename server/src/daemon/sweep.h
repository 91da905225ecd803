/*
 * The revocation sweep: a device revoked or disabled while connected hears it within seconds,
 * whoever made the change (outpost-admin writes the store from its own process and tells
 * outpostd nothing; the dashboard writes it through the store worker).
 */
#ifndef OUTPOSTD_SWEEP_H
#define OUTPOSTD_SWEEP_H

#include "job.h"
#include "server.h"

/* Starts the periodic sweep on srv's service loop (after lws_create_context). */
void sweep_start(server *srv);

/* Cancels it (before lws_context_destroy). */
void sweep_stop(void);

/* A finished SWEEP job: closes the sessions of the devices it found barred; frees j. */
void sweep_done(server *srv, job *j);

#endif /* OUTPOSTD_SWEEP_H */

/*
 * Several outpostd nodes on one PostgreSQL: a push committed on one node announces its teams
 * (the worker, store_announce_teams after the commit), and every other node hears it here and
 * sends its own connected devices of those teams the NOTIFY they get today for a push on the
 * same node, and its dashboards a live "records" event. The service thread keeps one store
 * connection that LISTENs and reads it without waiting, on a short timer. On SQLite (one
 * outpostd per store) none of this runs.
 */
#ifndef OUTPOSTD_ANNOUNCE_H
#define OUTPOSTD_ANNOUNCE_H

#include "server.h"

/* How often the listening connection is read, and how soon a lost one is opened again. */
#define ANNOUNCE_POLL_US (50 * 1000)
#define ANNOUNCE_RETRY_US (2 * 1000 * 1000)

/* This process's name in its announcements: random, made once (so that it ignores its own). */
const char *announce_node_name(void);

/* Starts listening on srv's service loop when the store is PostgreSQL (after
 * lws_create_context); does nothing on SQLite. A connection that cannot be opened is retried. */
void announce_start(server *srv);

/* Stops it and closes the connection (before lws_context_destroy). */
void announce_stop(void);

/* What one heard announcement does on this node: NOTIFY its ready devices of team (not when
 * origin is this node, which told its own devices already) and tell its dashboards. */
void announce_heard(server *srv, const char *origin, const char *team, uint64_t server_seq);

/* What a node does once it listens again after losing the listening connection (a failover, a
 * restart of PostgreSQL): announcements sent meanwhile were never heard (LISTEN hears only what
 * comes after it), so every device connected here is told to pull rather than waiting for its
 * own next sync. (Open dashboards see the change at their next request.) */
void announce_listening_again(server *srv);

#endif /* OUTPOSTD_ANNOUNCE_H */

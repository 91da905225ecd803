/*
 * Internal to the protocol library: the arena decoded messages live in, the wire key names,
 * and the depth cap msgpack-c imposes.
 */
#ifndef OUTPOST_PROTO_INTERNAL_H
#define OUTPOST_PROTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"

#if defined(__GNUC__)
#define PROTO_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define PROTO_PRINTF(fmt_idx, arg_idx)
#endif

/* msgpack-c's unpacker keeps its container stack in a fixed array of this many levels and
 * fails on deeper input, so no limit may allow more. */
#define PROTO_DEPTH_CAP 32u

/* Wire key names, shared by encoder and decoder; docs/protocol.md lists them per message. */
#define KEY_TYPE "t"
#define KEY_VERSION "v"
#define KEY_DEVICE "dev"
#define KEY_SECRET "sec"
#define KEY_SCHEMA_VERSION "sv"
#define KEY_CURSOR "cur"
#define KEY_OUTBOX "ob"
#define KEY_APP "app"
#define KEY_LAST_ERROR "err"
#define KEY_ACKED "ack"
#define KEY_SERVER_SEQ "sseq"
#define KEY_NOW "now"
#define KEY_SCHEMA "schema"
#define KEY_CODE "code"
#define KEY_NAME "name"
#define KEY_CA "ca"
#define KEY_TABLES "tables"
#define KEY_FORMS "forms"
#define KEY_WATCH "watch"
#define KEY_SEQ "seq"
#define KEY_HLC "hlc"
#define KEY_CHUNK "chunk"
#define KEY_MORE "more"
#define KEY_CLAMPED "clamp"
#define KEY_CONFLICTS "conf"
#define KEY_CONFLICTS_MORE "cmore"
#define KEY_LIMIT "lim"
#define KEY_SEEN "seen"
#define KEY_ROWS "rows"
#define KEY_MESSAGE "msg"
#define KEY_RETRY "retry"
#define KEY_REASON "why"
/* schema tables */
#define KEY_SQL "sql"
#define KEY_SCOPE "scope"
#define KEY_POLICY "pol"
#define KEY_COLS "cols"
#define KEY_PK "pk"
/* table groups of PUSH, ROWS and REJECT */
#define KEY_NCOL "ncol"
#define KEY_CHANGES "changes"
#define KEY_NPK "npk"
#define KEY_DELETED "del"
#define KEY_REMOVED "gone"
/* conflicts and reject rows */
#define KEY_TABLE "tbl"
#define KEY_COL "col"
#define KEY_KIND "kind"
#define KEY_MINE "mine"
#define KEY_WINNER "win"
#define KEY_TEAMS "teams"
#define KEY_WORKER "wkr"
#define KEY_STORE "store"
#define KEY_EPOCH "ep"
#define KEY_LIMITS "lims"
#define KEY_LIM_MESSAGE "msg"
#define KEY_LIM_TRANSACTION "tx"
#define KEY_LIM_MESSAGE_TIMEOUT "mto"
#define KEY_LIM_IDLE "idle"
#define KEY_LIM_PAGE "page"
#define KEY_COMPRESS "z"

#define PROTO_SECRET_BYTES 32u

/* Bump allocator: a list of chunks freed together. Everything a decoded message points to,
 * the proto_msg itself and this header included, lives in one arena. */
typedef struct proto_arena proto_arena;

proto_arena *proto_arena_new(void);
void proto_arena_free(proto_arena *arena);
/* Zeroed, aligned for any type. NULL only when out of memory; size 0 gives a valid pointer. */
void *proto_arena_alloc(proto_arena *arena, size_t size);

/* Writes a formatted message into err[0..err_size) when err is not NULL; returns rc. */
int proto_set_err(char *err, size_t err_size, int rc, const char *fmt, ...) PROTO_PRINTF(4, 5);

#endif /* OUTPOST_PROTO_INTERNAL_H */

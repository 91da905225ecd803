/*
 * The example messages. Values are chosen to exercise every value type and encoding width:
 * fixint and 64-bit integers, negative numbers, REAL including -0.0, empty and NUL-holding
 * text and blobs, and every change operation.
 */
#include "proto_examples.h"

#include <stdint.h>

#define TEXT(s) {.type = PROTO_TEXT, .u.b = {(const uint8_t *)(s), (uint32_t)(sizeof(s) - 1)}}
#define BLOB(s) {.type = PROTO_BLOB, .u.b = {(const uint8_t *)(s), (uint32_t)(sizeof(s) - 1)}}
#define INT(v) {.type = PROTO_INT, .u.i = (v)}
#define REAL(v) {.type = PROTO_REAL, .u.r = (v)}
#define NUL {.type = PROTO_NULL}
#define COUNT(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

#define CONTACT_ID "0193a4f2-7c1e-7b3d-9f00-5a1c2e3d4b5f"
#define HLC_EXAMPLE PROTO_HLC_MAKE(1764340000000u, 3u)

static const char *contact_cols[] = {"id", "team_id", "name", "age", "score", "photo"};
static uint32_t contact_pk[] = {0};

static proto_schema_table schema_tables[] = {{
    .name = "contacts",
    .create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, "
                  "age INTEGER, score REAL, photo BLOB)",
    .scope_col = "team_id",
    .policy = PROTO_POLICY_HLC,
    .n_columns = COUNT(contact_cols),
    .columns = contact_cols,
    .n_pk = COUNT(contact_pk),
    .pk = contact_pk,
}};

#define SECRET_BYTES                                                                           \
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, \
     0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, \
     0x1e, 0x1f}

/* ---- PUSH: one insert, one update, one delete ---------------------------------------------- */

static proto_col insert_cols[] = {
    {.idx = 0, .new_val = TEXT(CONTACT_ID)},
    {.idx = 1, .new_val = TEXT("t-1")},
    {.idx = 2, .new_val = TEXT("Ana")},
    {.idx = 3, .new_val = INT(14)},
    {.idx = 4, .new_val = REAL(0.75)},
    {.idx = 5, .new_val = BLOB("\x89PNG\0")},
};
static proto_col update_cols[] = {
    {.idx = 0, .old_val = TEXT(CONTACT_ID)},
    {.idx = 2, .old_val = TEXT("Ana"), .new_val = TEXT("Ana M.")},
    {.idx = 3, .old_val = INT(14), .new_val = INT(15)},
};
static proto_col delete_cols[] = {
    {.idx = 0, .old_val = TEXT("0193a4f2-0000-7000-8000-000000000001")},
    {.idx = 1, .old_val = TEXT("t-1")},
    {.idx = 2, .old_val = NUL},
    {.idx = 3, .old_val = INT(-1)},
    {.idx = 4, .old_val = NUL},
    {.idx = 5, .old_val = NUL},
};
static proto_change push_changes[] = {
    {.op = PROTO_OP_INSERT, .n_cols = COUNT(insert_cols), .cols = insert_cols},
    {.op = PROTO_OP_UPDATE, .n_cols = COUNT(update_cols), .cols = update_cols},
    {.op = PROTO_OP_DELETE, .n_cols = COUNT(delete_cols), .cols = delete_cols},
};
static proto_table_changes push_tables[] = {
    {.table = "contacts", .n_columns = 6, .n_changes = COUNT(push_changes),
     .changes = push_changes},
};

/* ---- PUSH with edge values, in a later chunk ------------------------------------------------ */

static proto_col edge_insert_cols[] = {
    {.idx = 0, .new_val = TEXT("")},
    {.idx = 1, .new_val = INT(INT64_MIN)},
    {.idx = 2, .new_val = INT(INT64_MAX)},
    {.idx = 3, .new_val = REAL(-0.0)},
    {.idx = 4, .new_val = REAL(1e308)},
    {.idx = 5, .new_val = BLOB("")},
    {.idx = 6, .new_val = TEXT("nul\0inside")},
    {.idx = 7, .new_val = INT(-33)},
    {.idx = 8, .new_val = INT(4294967296)},
    {.idx = 9, .new_val = TEXT("caf\xc3\xa9 \xe2\x82\xac 32 bytes of text, str8 form")},
};
static proto_col edge_update_cols[] = {
    {.idx = 0, .old_val = TEXT("k")},
    {.idx = 7, .new_val = NUL}, /* new value only: the wire allows it */
    {.idx = 9, .old_val = INT(1), .new_val = REAL(2.5)},
};
static proto_change edge_changes[] = {
    {.op = PROTO_OP_INSERT, .n_cols = COUNT(edge_insert_cols), .cols = edge_insert_cols},
    {.op = PROTO_OP_UPDATE, .n_cols = COUNT(edge_update_cols), .cols = edge_update_cols},
};
static proto_table_changes edge_tables[] = {
    {.table = "edge", .n_columns = 10, .n_changes = COUNT(edge_changes), .changes = edge_changes},
    {.table = "empty", .n_columns = 1, .n_changes = 0, .changes = NULL},
};

/* ---- ACK ----------------------------------------------------------------------------------- */

static proto_value conflict_pk[] = {TEXT(CONTACT_ID)};
static proto_conflict ack_conflicts[] = {
    {.table = "contacts", .n_pk = 1, .pk = conflict_pk, .col = 2, .kind = PROTO_CONFLICT_DATA,
     .mine = TEXT("Ana M."), .winner = TEXT("Ana Maria")},
    {.table = "contacts", .n_pk = 1, .pk = conflict_pk, .col = -1,
     .kind = PROTO_CONFLICT_NOTFOUND},
};

/* ---- ROWS and REJECT ----------------------------------------------------------------------- */

static proto_value rows_values[] = {
    TEXT(CONTACT_ID), TEXT("t-1"), TEXT("Ana Maria"), INT(15), REAL(0.75), NUL,
};
static proto_value rows_deleted[] = {TEXT("0193a4f2-0000-7000-8000-000000000001")};
static proto_value rows_removed[] = {TEXT("0193a4f2-0000-7000-8000-000000000002")};
static proto_table_rows rows_tables[] = {{
    .table = "contacts",
    .n_columns = 6,
    .n_rows = 1,
    .rows = rows_values,
    .n_pk = 1,
    .n_deleted = 1,
    .deleted = rows_deleted,
    .n_removed = 1,
    .removed = rows_removed,
}};

static proto_value reject_pk[] = {TEXT("0193a4f2-0000-7000-8000-000000000003")};
static proto_reject_row reject_rows[] = {{
    .table = "contacts",
    .n_pk = 1,
    .pk = reject_pk,
    .code = PROTO_ERR_OUT_OF_SCOPE,
    .message = "team t-9 is not one of this device's teams",
}};
static proto_value reject_current[] = {
    TEXT("0193a4f2-0000-7000-8000-000000000003"), TEXT("t-9"), TEXT("Ben"), NUL, NUL, NUL,
};
static proto_table_rows reject_tables[] = {{
    .table = "contacts",
    .n_columns = 6,
    .n_rows = 1,
    .rows = reject_current,
    .n_pk = 1,
}};

/* ---- the list ------------------------------------------------------------------------------ */

typedef struct example {
    const char *name;
    proto_msg msg;
} example;

static const char *example_teams[] = {"team-north", "team-south"};

/* As outpostd issues them: a random (version 4) UUID, and an enrollment code of 20 Crockford
 * base32 characters in groups of five. */
#define EXAMPLE_DEVICE_ID "4f1c9a2e-7b3d-4e8a-9c21-5d6e0f3a8b47"
#define EXAMPLE_ENROLL_CODE "7K2QX-M4RTP-9HC3W-ZB8N1"

static const example examples[] = {
    {"hello", {.type = PROTO_MSG_HELLO, .u.hello = {
        .version = PROTO_VERSION, .device_id = EXAMPLE_DEVICE_ID, .secret = SECRET_BYTES,
        .schema_version = 3, .cursor = 1042, .outbox_count = 2}}},
    {"welcome", {.type = PROTO_MSG_WELCOME, .u.welcome = {
        .version = PROTO_VERSION, .schema_version = 3, .acked_seq = 17, .server_seq = 1050,
        .server_time_ms = 1764340000000u}}},
    {"enroll", {.type = PROTO_MSG_ENROLL, .u.enroll = {
        .version = PROTO_VERSION, .code = EXAMPLE_ENROLL_CODE, .device_name = "field-phone-07"}}},
    {"enrolled", {.type = PROTO_MSG_ENROLLED, .u.enrolled = {
        .device_id = EXAMPLE_DEVICE_ID, .secret = SECRET_BYTES,
        .ca_pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n"
                  "-----END CERTIFICATE-----\n",
        .schema = {.version = 3, .n_tables = COUNT(schema_tables), .tables = schema_tables},
        .has_teams = true, .teams = {.n = COUNT(example_teams), .names = example_teams},
        .has_store = true,
        .store = {.id = "0193a7c2-5e1f-7b3a-9c4d-2f6e8a1b3c5d", .epoch = 1}}}},
    {"schema", {.type = PROTO_MSG_SCHEMA, .u.schema = {
        .version = 3, .n_tables = COUNT(schema_tables), .tables = schema_tables}}},
    {"push", {.type = PROTO_MSG_PUSH, .u.push = {
        .seq = 18, .hlc = HLC_EXAMPLE, .schema_version = 3, .chunk = 0, .more = false,
        .n_tables = COUNT(push_tables), .tables = push_tables}}},
    {"ack", {.type = PROTO_MSG_ACK, .u.ack = {
        .seq = 18, .server_seq = 1051, .hlc_clamped = true,
        .n_conflicts = COUNT(ack_conflicts), .conflicts = ack_conflicts}}},
    {"pull", {.type = PROTO_MSG_PULL, .u.pull = {.cursor = 1042, .limit = 500}}},
    {"rows", {.type = PROTO_MSG_ROWS, .u.rows = {
        .cursor = 1051, .more = false, .n_tables = COUNT(rows_tables), .tables = rows_tables}}},
    {"notify", {.type = PROTO_MSG_NOTIFY, .u.notify = {.server_seq = 1052}}},
    {"reject", {.type = PROTO_MSG_REJECT, .u.reject = {
        .seq = 19, .n_rows = COUNT(reject_rows), .rows = reject_rows,
        .n_tables = COUNT(reject_tables), .tables = reject_tables}}},
    {"error", {.type = PROTO_MSG_ERROR, .u.error = {
        .code = PROTO_ERR_AUTH, .message = "unknown device or wrong secret",
        .retryable = false}}},
    {"wipe", {.type = PROTO_MSG_WIPE, .u.wipe = {.reason = "device revoked by an admin"}}},
    /* variants */
    {"welcome-schema", {.type = PROTO_MSG_WELCOME, .u.welcome = {
        .version = PROTO_VERSION, .schema_version = 2, .acked_seq = 0, .server_seq = 0,
        .server_time_ms = 1764340000000u, .has_schema = true,
        .schema = {.version = 3, .n_tables = COUNT(schema_tables), .tables = schema_tables}}}},
    {"welcome-session", {.type = PROTO_MSG_WELCOME, .u.welcome = {
        .version = PROTO_VERSION, .schema_version = 3, .acked_seq = 17, .server_seq = 1050,
        .server_time_ms = 1764340000000u,
        .has_teams = true, .teams = {.n = COUNT(example_teams), .names = example_teams},
        .has_store = true,
        .store = {.id = "0193a7c2-5e1f-7b3a-9c4d-2f6e8a1b3c5d", .epoch = 2},
        .has_limits = true,
        .limits = {.max_message_bytes = 1048576, .max_transaction_bytes = 67108864,
                   .message_timeout_ms = 30000, .idle_timeout_ms = 300000,
                   .max_page_rows = 1000}}}},
    {"enroll-unnamed", {.type = PROTO_MSG_ENROLL, .u.enroll = {
        .version = PROTO_VERSION, .code = EXAMPLE_ENROLL_CODE, .device_name = NULL}}},
    {"push-edge", {.type = PROTO_MSG_PUSH, .u.push = {
        .seq = UINT64_MAX, .hlc = UINT64_MAX, .schema_version = UINT32_MAX, .chunk = 2,
        .more = true, .n_tables = COUNT(edge_tables), .tables = edge_tables}}},
    {"rows-empty", {.type = PROTO_MSG_ROWS, .u.rows = {.cursor = 0, .more = true}}},
    {"schema-forms", {.type = PROTO_MSG_SCHEMA, .u.schema = {
        .version = 4, .n_tables = COUNT(schema_tables), .tables = schema_tables,
        .forms = "[{\"table\":\"contacts\",\"title\":{\"en\":\"Contact\"},"
                 "\"auto\":{\"id\":\"uuid\",\"team_id\":\"team\"},"
                 "\"sections\":[{\"title\":{\"en\":\"Who\"},\"fields\":[{\"column\":"
                 "\"name\",\"label\":{\"en\":\"Name\"},\"widget\":\"text\"}]}]}]"}}},
};

size_t proto_example_count(void)
{
    return sizeof examples / sizeof examples[0];
}

const proto_msg *proto_example(size_t i)
{
    return &examples[i].msg;
}

const char *proto_example_name(size_t i)
{
    return examples[i].name;
}

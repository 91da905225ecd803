/*
 * Names, limits, value equality and error text: the small pieces shared by encode and decode.
 */
#include "proto_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *proto_strerror(int rc)
{
    switch (rc) {
    case PROTO_OK: return "success";
    case PROTO_ENOMEM: return "out of memory";
    case PROTO_ETRUNCATED: return "message truncated";
    case PROTO_ETRAILING: return "trailing bytes after the message";
    case PROTO_ETOOBIG: return "message, string, blob or array over a limit";
    case PROTO_EDEPTH: return "nesting deeper than the limit";
    case PROTO_ETYPE: return "field has the wrong type";
    case PROTO_EMISSING: return "required field missing";
    case PROTO_ERANGE: return "value out of range";
    case PROTO_EUNKNOWN_TYPE: return "unknown message type";
    case PROTO_EMALFORMED: return "malformed MessagePack";
    case PROTO_EINVAL: return "invalid message for encoding";
    default: return "unknown error";
    }
}

void proto_limits_default(proto_limits *out_limits)
{
    out_limits->max_message_bytes = 1024u * 1024u;
    out_limits->max_depth = 8;
    out_limits->max_items = 65536;
    out_limits->max_bytes_value = 1024u * 1024u;
}

bool proto_value_equal(const proto_value *a, const proto_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case PROTO_UNDEF:
    case PROTO_NULL:
        return true;
    case PROTO_INT:
        return a->u.i == b->u.i;
    case PROTO_REAL:
        /* Bitwise, so NaN equals itself and 0.0 differs from -0.0, as stored bytes do. */
        return memcmp(&a->u.r, &b->u.r, sizeof a->u.r) == 0;
    case PROTO_TEXT:
    case PROTO_BLOB:
        return a->u.b.n == b->u.b.n &&
               (a->u.b.n == 0 || memcmp(a->u.b.p, b->u.b.p, a->u.b.n) == 0);
    }
    return false;
}

const char *proto_error_code_name(uint32_t code)
{
    switch (code) {
    case PROTO_ERR_BAD_MESSAGE: return "bad message";
    case PROTO_ERR_VERSION: return "protocol version not supported";
    case PROTO_ERR_AUTH: return "authentication failed";
    case PROTO_ERR_REVOKED: return "device revoked";
    case PROTO_ERR_LOCKED_OUT: return "locked out";
    case PROTO_ERR_SCHEMA_TOO_OLD: return "schema too old";
    case PROTO_ERR_TOO_LARGE: return "too large";
    case PROTO_ERR_BUSY: return "server busy";
    case PROTO_ERR_INTERNAL: return "internal server error";
    case PROTO_ERR_ENROLL_CODE: return "enrollment code invalid";
    case PROTO_ERR_STORE_FULL: return "server storage full";
    case PROTO_ERR_TIMEOUT: return "timeout";
    case PROTO_ERR_SEQ_REWOUND: return "sequence rewound";
    case PROTO_ERR_CURSOR_AHEAD: return "cursor ahead";
    case PROTO_ERR_OUT_OF_SCOPE: return "out of scope";
    case PROTO_ERR_UNKNOWN_TABLE: return "unknown table";
    case PROTO_ERR_UNKNOWN_COLUMN: return "unknown column";
    case PROTO_ERR_CONSTRAINT: return "constraint";
    case PROTO_ERR_INVALID_CHANGE: return "invalid change";
    case PROTO_ERR_ROW_TOO_LARGE: return "row too large";
    default: return "unknown";
    }
}

const char *proto_msg_type_name(uint32_t type)
{
    static const char *const names[] = {
        NULL,   "HELLO", "WELCOME", "ENROLL", "ENROLLED", "SCHEMA", "PUSH",
        "ACK",  "PULL",  "ROWS",    "NOTIFY", "REJECT",   "ERROR",  "WIPE",
    };
    if (type == 0 || type >= sizeof names / sizeof names[0])
        return "unknown";
    return names[type];
}

void proto_buf_free(proto_buf *buf)
{
    if (buf == NULL)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

int proto_set_err(char *err, size_t err_size, int rc, const char *fmt, ...)
{
    if (err == NULL || err_size == 0)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return rc;
}

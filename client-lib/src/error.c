/* Error codes, their texts, and the per-handle message of the last failure. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *outpost_strerror(int code)
{
    switch (code) {
    case OUTPOST_OK: return "success";
    case OUTPOST_ENOMEM: return "out of memory";
    case OUTPOST_EINVAL: return "invalid argument";
    case OUTPOST_EMISUSE: return "call out of order";
    case OUTPOST_EIO: return "storage I/O error";
    case OUTPOST_EBUSY: return "database is locked by another connection";
    case OUTPOST_ESCHEMA: return "schema refused or not matching";
    case OUTPOST_ESQL: return "SQL statement failed";
    case OUTPOST_EDENIED: return "write refused: synced tables are written through outpost_exec";
    case OUTPOST_EPROTO: return "protocol message does not fit this replica";
    case OUTPOST_ECORRUPT: return "database is damaged (integrity check failed) or not an Outpost replica";
    case OUTPOST_EFULL: return "disk is full";
    case OUTPOST_EOFFLINE: return "server cannot be reached";
    case OUTPOST_ETIMEOUT: return "server did not answer in time";
    case OUTPOST_ESERVER: return "server failed or is overloaded";
    case OUTPOST_ECERT: return "server certificate is not the pinned one";
    case OUTPOST_EAUTH: return "server does not know this device";
    case OUTPOST_EREVOKED: return "device was revoked";
    case OUTPOST_EENROLL: return "enrollment code unknown, used or expired";
    case OUTPOST_EEXISTS: return "replica is already enrolled";
    case OUTPOST_ENOTENROLLED: return "replica is not enrolled";
    case OUTPOST_EWIPED: return "replica was wiped";
    case OUTPOST_ETOOBIG: return "transaction too big to send";
    case OUTPOST_EKEY: return "wrong key or passphrase";
    case OUTPOST_ENOTENCRYPTED: return "replica is not encrypted";
    case OUTPOST_ESEQ: return "device sequence went back; the server refuses entries it never saw";
    case OUTPOST_ESCOPE: return "write outside the worker's teams or with a wrong key type";
    default: return "unknown error";
    }
}

int outpost_error_is_transient(int code)
{
    return code == OUTPOST_ENOMEM || code == OUTPOST_EBUSY || code == OUTPOST_EFULL ||
           code == OUTPOST_EOFFLINE || code == OUTPOST_ETIMEOUT || code == OUTPOST_ESERVER;
}

const char *outpost_errmsg(const outpost_replica *replica)
{
    if (replica == NULL)
        return "no replica handle";
    return replica->errmsg;
}

int sqlite_to_outpost(int sqlite_rc)
{
    if (sqlite_rc == SQLITE_IOERR_NOMEM)
        return OUTPOST_ENOMEM;
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK: return OUTPOST_OK;
    case SQLITE_NOMEM: return OUTPOST_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return OUTPOST_EBUSY;
    case SQLITE_FULL: return OUTPOST_EFULL;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: return OUTPOST_EIO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return OUTPOST_ECORRUPT;
    case SQLITE_AUTH: return OUTPOST_EDENIED;
    case SQLITE_MISUSE: return OUTPOST_EMISUSE;
    case SQLITE_RANGE: return OUTPOST_EINVAL;
    default: return OUTPOST_ESQL;
    }
}

int replica_fail(outpost_replica *r, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* The OUTPOST_* code for a CRYPTVFS_* code, with "<what>: <meaning>[ (<detail>)]" in msg. detail
 * is the encrypting VFS's own message (may be NULL or empty). */
int crypt_error_describe(int crypt_rc, const char *detail, const char *what, char *msg,
                         size_t msg_size)
{
    const char *meaning;
    int code;

    switch (crypt_rc) {
    case CRYPTVFS_EWRONGKEY:
        code = OUTPOST_EKEY;
        meaning = "wrong key or passphrase";
        break;
    case CRYPTVFS_ENOTENCRYPTED:
        code = OUTPOST_ENOTENCRYPTED;
        meaning = "the replica is a plain, unencrypted SQLite file (refused with a key)";
        break;
    case CRYPTVFS_ECORRUPT:
        code = OUTPOST_ECORRUPT;
        meaning = "integrity failure: the encrypted file was changed or damaged on disk";
        break;
    case CRYPTVFS_EFORMAT:
        code = OUTPOST_ECORRUPT;
        meaning = "not an encrypted Outpost replica";
        break;
    case CRYPTVFS_ENOMEM:
        code = OUTPOST_ENOMEM;
        meaning = "out of memory";
        break;
    case CRYPTVFS_EINVAL:
        code = OUTPOST_EINVAL;
        meaning = "refused by the encrypting VFS";
        break;
    case CRYPTVFS_ECRYPTO:
        code = OUTPOST_EIO;
        meaning = "encryption failed";
        break;
    default:
        code = OUTPOST_EIO;
        meaning = cryptvfs_strerror(crypt_rc);
        break;
    }
    if (detail && detail[0])
        snprintf(msg, msg_size, "%s: %s (%s)", what, meaning, detail);
    else
        snprintf(msg, msg_size, "%s: %s", what, meaning);
    return code;
}

int replica_fail_crypt(outpost_replica *r, int crypt_rc, const char *what)
{
    char detail[CRYPTVFS_ERRMSG_SIZE] = "";
    cryptvfs *vfs = r->shared ? r->shared->vfs : NULL;

    cryptvfs_last_error(vfs, detail, sizeof detail);
    cryptvfs_clear_error(vfs);
    if (crypt_rc == CRYPTVFS_ESQLITE && r->db) {
        int sqlite_rc = sqlite3_extended_errcode(r->db);

        return replica_fail(r, sqlite_to_outpost(sqlite_rc), "%s: %s", what,
                            detail[0] ? detail : sqlite3_errmsg(r->db));
    }
    return crypt_error_describe(crypt_rc, detail, what, r->errmsg, sizeof r->errmsg);
}

/* Whether a SQLite failure may come from the encrypting VFS refusing a page. */
static bool sqlite_rc_may_be_crypt(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN: return true;
    default: return false;
    }
}

/* Records "<what>: <sqlite message>" and maps the SQLite code. The SQLite message is taken
 * before anything else runs on the connection, which would overwrite it. When the encrypting
 * VFS recorded why a page could not be read or written (integrity failure, wrong key), that
 * reason and its code win: SQLite alone would only say "disk I/O error". */
int replica_fail_sqlite(outpost_replica *r, int sqlite_rc, const char *what)
{
    const char *msg = r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(sqlite_rc);
    cryptvfs *vfs = r->shared ? r->shared->vfs : NULL;

    if (vfs && sqlite_rc_may_be_crypt(sqlite_rc)) {
        int crypt_rc = cryptvfs_last_error(vfs, NULL, 0);

        if (crypt_rc != CRYPTVFS_OK && crypt_rc != CRYPTVFS_ESQLITE)
            return replica_fail_crypt(r, crypt_rc, what);
    }
    if ((sqlite_rc & 0xff) == SQLITE_NOMEM || sqlite_rc == SQLITE_IOERR_NOMEM)
        msg = sqlite3_errstr(sqlite_rc);
    return replica_fail(r, sqlite_to_outpost(sqlite_rc), "%s: %s", what, msg);
}

void replica_clear_error(outpost_replica *r)
{
    r->errmsg[0] = '\0';
}

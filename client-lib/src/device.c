/* The device's credentials (id, secret, server URL, pinned CA), kept in the replica itself so
 * they are protected exactly as the records are (the encrypting VFS) and vanish with a wipe. */
#include <string.h>

#include <mbedtls/platform_util.h>

#include "device.h"
#include "internal.h"

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS " OUTPOST_RESERVED_PREFIX "device ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " device_id TEXT NOT NULL, secret BLOB NOT NULL, url TEXT NOT NULL, ca_pem TEXT NOT NULL,"
    " enrolled_ms INTEGER NOT NULL)";

void device_credentials_clear(device_credentials *c)
{
    if (!c)
        return;
    sqlite3_free(c->url);
    sqlite3_free(c->ca_pem);
    mbedtls_platform_zeroize(c, sizeof *c);
}

int device_credentials_save(outpost_replica *r, const device_credentials *c)
{
    sqlite3_stmt *st = NULL;
    int rc = replica_begin(r);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_exec(r, create_sql);
    if (rc != OUTPOST_OK)
        goto fail;
    rc = replica_prepare(r,
                         "INSERT INTO " OUTPOST_RESERVED_PREFIX "device"
                         " (one, device_id, secret, url, ca_pem, enrolled_ms)"
                         " VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                         &st);
    if (rc != OUTPOST_OK)
        goto fail;
    sqlite3_bind_text(st, 1, c->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, c->secret, sizeof c->secret, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->ca_pem, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, replica_now_ms(r));
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT) {
        rc = replica_fail(r, OUTPOST_EEXISTS, "this replica is already enrolled");
        goto fail;
    }
    if (step != SQLITE_DONE) {
        rc = replica_fail_sqlite(r, step, "saving the device credentials");
        goto fail;
    }
    sqlite3_finalize(st);
    return replica_commit(r);
fail:
    sqlite3_finalize(st);
    replica_rollback(r);
    return rc;
}

static char *dup_column(sqlite3_stmt *st, int col)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    return text ? sqlite3_mprintf("%s", text) : NULL;
}

int device_credentials_load(outpost_replica *r, device_credentials *out)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = replica_exec(r, create_sql);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_prepare(r,
                         "SELECT device_id, secret, url, ca_pem FROM " OUTPOST_RESERVED_PREFIX
                         "device WHERE one = 1",
                         &st);
    if (rc != OUTPOST_OK)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = replica_fail(r, OUTPOST_ENOTENROLLED, "this replica is not enrolled yet");
        goto done;
    }
    if (step != SQLITE_ROW) {
        rc = replica_fail_sqlite(r, step, "reading the device credentials");
        goto done;
    }
    const unsigned char *id = sqlite3_column_text(st, 0);
    const void *secret = sqlite3_column_blob(st, 1);
    if (!id || strlen((const char *)id) >= sizeof out->device_id || !secret ||
        sqlite3_column_bytes(st, 1) != (int)sizeof out->secret) {
        rc = replica_fail(r, OUTPOST_ECORRUPT, "the stored device credentials are damaged");
        goto done;
    }
    memcpy(out->device_id, id, strlen((const char *)id) + 1);
    memcpy(out->secret, secret, sizeof out->secret);
    out->url = dup_column(st, 2);
    out->ca_pem = dup_column(st, 3);
    if (!out->url || !out->ca_pem) {
        device_credentials_clear(out);
        rc = replica_fail(r, OUTPOST_ENOMEM, "out of memory reading the device credentials");
    }
done:
    sqlite3_finalize(st);
    return rc;
}

int outpost_device_id(outpost_replica *replica, char out_device_id[40])
{
    device_credentials c;
    if (!replica)
        return OUTPOST_EINVAL;
    int rc = device_credentials_load(replica, &c);
    if (rc == OUTPOST_OK && out_device_id)
        memcpy(out_device_id, c.device_id, sizeof c.device_id);
    device_credentials_clear(&c);
    return rc;
}

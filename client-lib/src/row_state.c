/* Whether a row waits in the outbox: the per-record "pending" an app shows beside a record. */
#include "internal.h"

#define ROW_PK_MAX 64

int outpost_row_pending(outpost_replica *replica, const char *table, const outpost_value *pk,
                        uint32_t n_pk, int *out_pending)
{
    proto_value key[ROW_PK_MAX];
    const synced_table *t;
    bool pending = false;
    int rc;

    if (replica == NULL || out_pending == NULL)
        return replica ? replica_fail(replica, OUTPOST_EINVAL, "out_pending is required")
                       : OUTPOST_EINVAL;
    *out_pending = 0;
    if (table == NULL || (pk == NULL && n_pk > 0))
        return replica_fail(replica, OUTPOST_EINVAL, "a table and its primary key are required");
    if (replica->in_tx)
        return replica_fail(replica, OUTPOST_EMISUSE, "a transaction is open");
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    t = replica_table(replica, table);
    if (t == NULL)
        return replica_fail(replica, OUTPOST_EINVAL, "%s is not a synced table", table);
    if (n_pk != t->n_pk || n_pk > ROW_PK_MAX)
        return replica_fail(replica, OUTPOST_EINVAL, "table %s has %u primary key columns, not %u",
                            table, (unsigned)t->n_pk, (unsigned)n_pk);
    for (uint32_t i = 0; i < n_pk; i++)
        value_from_public(&pk[i], &key[i]);
    /* One read transaction: the sync engine's connection may acknowledge entries meanwhile. */
    rc = replica_exec(replica, "BEGIN");
    if (rc != OUTPOST_OK)
        return rc;
    rc = outbox_pending_refresh(replica);
    if (rc == OUTPOST_OK)
        rc = outbox_row_pending(replica, t->name, key, n_pk, 0, &pending);
    if (rc == OUTPOST_OK)
        rc = replica_commit(replica);
    else
        replica_rollback(replica);
    if (rc == OUTPOST_OK)
        *out_pending = pending ? 1 : 0;
    return rc;
}

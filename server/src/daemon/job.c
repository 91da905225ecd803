#include "job.h"
#include "display_text.h"
#include "log.h"
#include "ops.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is kept of the free text a device supplies for the dashboard (display_text.h). */
enum { DEVICE_NAME_BYTES = 128, DEVICE_APP_BYTES = 96, DEVICE_ERROR_BYTES = 512 };

job *job_new(job_kind kind, uint32_t slot, uint64_t session_id)
{
    job *j = calloc(1, sizeof *j);

    if (!j)
        return NULL;
    j->kind = kind;
    j->slot = slot;
    j->session_id = session_id;
    return j;
}

push_chain *push_chain_new(void)
{
    push_chain *c = malloc(sizeof *c);

    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    atomic_init(&c->broken, false);
    return c;
}

push_chain *push_chain_hold(push_chain *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void push_chain_release(push_chain *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        free(c);
}

static void free_joined_push(proto_push *push)
{
    for (uint32_t t = 0; t < push->n_tables; t++)
        free(push->tables[t].changes);
    free(push->tables);
    memset(push, 0, sizeof *push);
}

void job_free(job *j)
{
    if (!j)
        return;
    proto_msg_free(j->request);
    dash_call_free(j->dash);
    free_joined_push(&j->push);
    if (j->chunks)
        for (uint32_t i = 0; i < j->n_chunks; i++)
            proto_msg_free(j->chunks[i]);
    free(j->chunks);
    free(j->raw);
    free(j->sweep_ids);
    free(j->sweep_barred);
    job_free_names(j->schema_tables, j->n_schema_tables);
    /* AUTH's device came from the store; the others are the daemon's copies. */
    if (j->kind == JOB_AUTH)
        store_device_clear(&j->device);
    else
        device_release(&j->device);
    free(j->push_info.teams_touched);
    push_chain_release(j->chain);
    proto_buf_free(&j->reply);
    free(j);
}

int device_copy(const store_device *src, store_device *dst)
{
    *dst = *src;
    dst->teams = NULL;
    if (src->n_teams > 0) {
        dst->teams = malloc((size_t)src->n_teams * sizeof *dst->teams);
        if (!dst->teams) {
            dst->n_teams = 0;
            return -1;
        }
        memcpy(dst->teams, src->teams, (size_t)src->n_teams * sizeof *dst->teams);
    }
    return 0;
}

void device_release(store_device *dev)
{
    free(dev->teams);
    dev->teams = NULL;
    dev->n_teams = 0;
}

void job_free_names(char **names, uint32_t n_names)
{
    if (!names)
        return;
    for (uint32_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
}

size_t job_raw_size(size_t n_bytes)
{
    return 4 + n_bytes;
}

void job_raw_append(uint8_t *raw, size_t *raw_len, const uint8_t *msg, size_t n_bytes)
{
    uint8_t *p = raw + *raw_len;

    p[0] = (uint8_t)(n_bytes >> 24);
    p[1] = (uint8_t)(n_bytes >> 16);
    p[2] = (uint8_t)(n_bytes >> 8);
    p[3] = (uint8_t)n_bytes;
    memcpy(p + 4, msg, n_bytes);
    *raw_len += 4 + n_bytes;
}

/* Decodes the raw chunks the session kept, once. The session decoded each on arrival and
 * checked it, so a failure here is out of memory. */
static int decode_chunks(job *j, const job_env *env)
{
    size_t off = 0;

    j->chunks = calloc(j->n_chunks ? j->n_chunks : 1, sizeof *j->chunks);
    if (!j->chunks)
        return STORE_ENOMEM;
    for (uint32_t c = 0; c < j->n_chunks; c++) {
        size_t n;
        int rc;
        if (j->raw_len - off < 4)
            return STORE_EIO;
        n = (size_t)j->raw[off] << 24 | (size_t)j->raw[off + 1] << 16 |
            (size_t)j->raw[off + 2] << 8 | (size_t)j->raw[off + 3];
        off += 4;
        if (n > j->raw_len - off)
            return STORE_EIO;
        rc = proto_decode(j->raw + off, n, &env->proto_limits, &j->chunks[c], NULL, 0);
        if (rc != PROTO_OK)
            return rc == PROTO_ENOMEM ? STORE_ENOMEM : STORE_EIO;
        if (j->chunks[c]->type != PROTO_MSG_PUSH)
            return STORE_EIO;
        off += n;
    }
    /* Nothing else reads the bytes: give them back before the merge. */
    free(j->raw);
    j->raw = NULL;
    j->raw_len = 0;
    return STORE_OK;
}

/* Finds the joined entry for table among the first n, or NULL. The session lets a chunk name
 * each synced table at most once, so n stays at most the schema's table count. */
static uint32_t find_table(const proto_push *joined, const char *table)
{
    for (uint32_t t = 0; t < joined->n_tables; t++)
        if (strcmp(joined->tables[t].table, table) == 0)
            return t;
    return UINT32_MAX;
}

/* Joins the decoded chunks into j->push: the tables of every chunk in order, changes to the same
 * table merged into one entry. One pass to count, one to copy: linear in the entries. */
static int join_chunks(job *j)
{
    proto_push *joined = &j->push;
    const proto_push *first = &j->chunks[0]->u.push;
    size_t max_tables = 0, k = 0;
    uint32_t *slot = NULL;
    int rc = STORE_ENOMEM;

    memset(joined, 0, sizeof *joined);
    joined->seq = first->seq;
    joined->hlc = first->hlc;
    joined->schema_version = first->schema_version;
    for (uint32_t c = 0; c < j->n_chunks; c++)
        max_tables += j->chunks[c]->u.push.n_tables;
    if (max_tables == 0)
        return STORE_OK;
    joined->tables = calloc(max_tables, sizeof *joined->tables);
    slot = malloc(max_tables * sizeof *slot);
    if (!joined->tables || !slot)
        goto fail;

    /* Pass 1: one entry per table name, counting its changes across chunks. */
    for (uint32_t c = 0; c < j->n_chunks; c++) {
        const proto_push *p = &j->chunks[c]->u.push;
        for (uint32_t t = 0; t < p->n_tables; t++, k++) {
            uint32_t i = find_table(joined, p->tables[t].table);
            proto_table_changes *e;
            if (i == UINT32_MAX) {
                i = joined->n_tables++;
                e = &joined->tables[i];
                e->table = p->tables[t].table;
                e->n_columns = p->tables[t].n_columns;
            } else {
                e = &joined->tables[i];
                if (e->n_columns != p->tables[t].n_columns) {
                    j->push_malformed = true;
                    snprintf(j->errmsg, sizeof j->errmsg,
                             "PUSH seq %" PRIu64 " gives table %.64s two column counts",
                             joined->seq, e->table);
                    rc = STORE_EINVAL;
                    goto fail;
                }
            }
            e->n_changes += p->tables[t].n_changes;
            slot[k] = i;
        }
    }
    for (uint32_t t = 0; t < joined->n_tables; t++) {
        proto_table_changes *e = &joined->tables[t];
        if (e->n_changes == 0)
            continue;
        e->changes = malloc((size_t)e->n_changes * sizeof *e->changes);
        if (!e->changes)
            goto fail;
        e->n_changes = 0; /* counts again as pass 2 fills */
    }
    /* Pass 2: copy the change structs in chunk order (they still point into the chunks). */
    k = 0;
    for (uint32_t c = 0; c < j->n_chunks; c++) {
        const proto_push *p = &j->chunks[c]->u.push;
        for (uint32_t t = 0; t < p->n_tables; t++, k++) {
            proto_table_changes *e = &joined->tables[slot[k]];
            if (p->tables[t].n_changes == 0)
                continue;
            memcpy(e->changes + e->n_changes, p->tables[t].changes,
                   (size_t)p->tables[t].n_changes * sizeof *e->changes);
            e->n_changes += p->tables[t].n_changes;
        }
    }
    free(slot);
    return STORE_OK;

fail:
    free(slot);
    free_joined_push(joined);
    return rc;
}

static void note_store_error(job *j, store *st)
{
    snprintf(j->errmsg, sizeof j->errmsg, "%s", store_errmsg(st));
    j->unreachable = store_unreachable(st);
}

/* The current schema as a decoded message (the caller frees it); on failure j->errmsg says
 * why. */
static int load_schema(job *j, store *st, proto_msg **out_schema, uint32_t *out_version)
{
    proto_buf buf = {0};
    proto_limits limits;
    int rc = store_schema_encode(st, &buf, out_version);

    *out_schema = NULL;
    if (rc != STORE_OK) {
        note_store_error(j, st);
        return rc;
    }
    proto_limits_default(&limits);
    limits.max_message_bytes = buf.len; /* the store's own output: trust its size */
    if (limits.max_bytes_value < buf.len)
        limits.max_bytes_value = buf.len;
    rc = proto_decode(buf.data, buf.len, &limits, out_schema, NULL, 0);
    proto_buf_free(&buf);
    if (rc != PROTO_OK || (*out_schema)->type != PROTO_MSG_SCHEMA) {
        snprintf(j->errmsg, sizeof j->errmsg, "the store's SCHEMA message does not decode: %s",
                 proto_strerror(rc));
        proto_msg_free(*out_schema);
        *out_schema = NULL;
        return STORE_EIO;
    }
    return STORE_OK;
}

static int encode_reply(job *j, const proto_msg *msg)
{
    int rc = proto_encode(msg, &j->reply);

    if (rc == PROTO_OK)
        return STORE_OK;
    snprintf(j->errmsg, sizeof j->errmsg, "encoding %s: %s", proto_msg_type_name(msg->type),
             proto_strerror(rc));
    return rc == PROTO_ENOMEM ? STORE_ENOMEM : STORE_EIO;
}

/* The worker's teams as WELCOME and ENROLLED carry them, so a device can refuse at commit what
 * the server would refuse (the names point into dev; free *out_names). */
static int teams_view(const store_device *dev, proto_teams *out, const char ***out_names)
{
    *out_names = calloc(dev->n_teams ? dev->n_teams : 1, sizeof **out_names);
    if (*out_names == NULL)
        return STORE_ENOMEM;
    for (uint32_t i = 0; i < dev->n_teams; i++)
        (*out_names)[i] = dev->teams[i];
    out->n = dev->n_teams;
    out->names = *out_names;
    return STORE_OK;
}

static void run_enroll(job *j, store *st, const job_env *env)
{
    const proto_enroll *req = &j->request->u.enroll;
    proto_msg reply;
    proto_msg *schema = NULL;
    uint32_t version = 0;
    uint8_t secret[32];

    bool locked = false;

    /* Guessed codes lock enrollment from that address, and nothing else. */
    j->rc = store_lockout_check(st, STORE_LOCKOUT_ENROLL, j->peer, j->now_ms, &locked);
    if (j->rc == STORE_OK && locked)
        j->rc = STORE_ELOCKED;
    char device_name[DEVICE_NAME_BYTES];
    display_text_clean(device_name, sizeof device_name, req->device_name);
    if (j->rc == STORE_OK)
        j->rc = store_device_enroll(st, req->code, device_name, j->enrolled_id, secret);
    if ((j->rc == STORE_ECODE || j->rc == STORE_ENOTFOUND) &&
        store_lockout_fail(st, STORE_LOCKOUT_ENROLL, j->peer, &env->device_lockout, j->now_ms,
                           &locked) == STORE_OK &&
        locked)
        ops_lockout();
    if (j->rc != STORE_OK) {
        note_store_error(j, st);
        return;
    }
    j->rc = load_schema(j, st, &schema, &version);
    if (j->rc != STORE_OK)
        goto done;
    memset(&reply, 0, sizeof reply);
    reply.type = PROTO_MSG_ENROLLED;
    reply.u.enrolled.device_id = j->enrolled_id;
    memcpy(reply.u.enrolled.secret, secret, sizeof secret);
    reply.u.enrolled.ca_pem = env->ca_pem;
    reply.u.enrolled.schema = schema->u.schema;
    store_device dev;
    const char **names = NULL;
    memset(&dev, 0, sizeof dev);
    j->rc = store_device_auth(st, j->enrolled_id, secret, &dev);
    if (j->rc == STORE_OK)
        j->rc = teams_view(&dev, &reply.u.enrolled.teams, &names);
    reply.u.enrolled.has_teams = j->rc == STORE_OK;
    reply.u.enrolled.worker_id = dev.worker_id[0] ? dev.worker_id : NULL;
    store_identity identity;
    if (j->rc == STORE_OK && store_identity_get(st, &identity) == STORE_OK) {
        reply.u.enrolled.has_store = true;
        reply.u.enrolled.store.id = identity.id;
        reply.u.enrolled.store.epoch = identity.epoch;
    }
    if (j->rc == STORE_OK)
        j->rc = encode_reply(j, &reply);
    else
        note_store_error(j, st);
    memset(&reply.u.enrolled.secret, 0, sizeof reply.u.enrolled.secret);
    free(names);
    store_device_clear(&dev);

done:
    memset(secret, 0, sizeof secret);
    proto_msg_free(schema);
}

/* The synced tables' names, for the service thread to refuse unknown ones as chunks arrive. A
 * failure leaves them out: the server keeps the names it knew. */
static void copy_table_names(job *j, const proto_schema *schema, uint32_t version)
{
    char **names = calloc(schema->n_tables ? schema->n_tables : 1, sizeof *names);

    if (!names)
        return;
    for (uint32_t i = 0; i < schema->n_tables; i++) {
        names[i] = strdup(schema->tables[i].name);
        if (!names[i]) {
            job_free_names(names, i);
            return;
        }
    }
    j->schema_tables = names;
    j->n_schema_tables = schema->n_tables;
    j->schema_version = version;
}

static void run_auth(job *j, store *st, const job_env *env)
{
    const proto_hello *hello = &j->request->u.hello;
    proto_msg reply;
    proto_msg *schema = NULL;
    uint32_t version = 0;
    uint64_t server_seq = 0;

    j->rc = store_device_auth(st, hello->device_id, hello->secret, &j->device);
    /* A device with the right secret is never refused for others' failures; wrong secrets are
     * counted by address, and once it is locked they are answered LOCKED_OUT. */
    if (j->rc == STORE_EAUTH || j->rc == STORE_ENOTFOUND) {
        bool locked = false;
        if (store_lockout_check(st, STORE_LOCKOUT_SECRET, j->peer, j->now_ms, &locked) ==
                STORE_OK &&
            locked) {
            j->rc = STORE_ELOCKED;
            return;
        }
        if (store_lockout_fail(st, STORE_LOCKOUT_SECRET, j->peer, &env->device_lockout,
                               j->now_ms, &locked) == STORE_OK &&
            locked)
            ops_lockout();
    }
    if (j->rc == STORE_EREVOKED && j->device.wipe) {
        memset(&reply, 0, sizeof reply);
        reply.type = PROTO_MSG_WIPE;
        reply.u.wipe.reason = "this device was revoked by an administrator";
        if (encode_reply(j, &reply) != STORE_OK)
            proto_buf_free(&j->reply); /* the session then sends ERROR REVOKED instead */
        return;
    }
    if (j->rc != STORE_OK) {
        note_store_error(j, st);
        return;
    }
    j->rc = load_schema(j, st, &schema, &version);
    if (j->rc != STORE_OK)
        return;
    /* Schema versions only grow: a device ahead of the server holds columns the server cannot
     * take (the store was restored from before an upgrade, or this is another server). */
    if (hello->schema_version > version) {
        j->rc = STORE_ESCHEMA;
        snprintf(j->errmsg, sizeof j->errmsg,
                 "device schema version %" PRIu32 " is newer than the server's %" PRIu32,
                 hello->schema_version, version);
        proto_msg_free(schema);
        return;
    }
    copy_table_names(j, &schema->u.schema, version);
    store_identity identity;
    j->rc = store_server_seq(st, &server_seq);
    if (j->rc == STORE_OK)
        j->rc = store_identity_get(st, &identity);
    if (j->rc != STORE_OK) {
        note_store_error(j, st);
        proto_msg_free(schema);
        return;
    }
    j->other_store = hello->store_id && strcmp(hello->store_id, identity.id) != 0;
    /* After restored --moved, a cursor past the copy proves it lost writes: the operator hears. */
    if (store_moved_check(st, hello->device_id, hello->cursor) == STORE_EAHEAD)
        log_msg(LOG_ERROR, "store: %s", store_errmsg(st));
    j->device.repulls = j->device.synced_before && hello->cursor == 0;
    /* Informational ("last sync" for admins): a failure here must not refuse the device. */
    (void)store_device_seen(st, hello->device_id, hello->cursor);
    char app[DEVICE_APP_BYTES], last_error[DEVICE_ERROR_BYTES];
    display_text_clean(app, sizeof app, hello->app);
    display_text_clean(last_error, sizeof last_error, hello->last_error);
    (void)store_device_report(st, hello->device_id, hello->outbox_count,
                              hello->app ? app : NULL, hello->last_error ? last_error : NULL,
                              j->now_ms);

    memset(&reply, 0, sizeof reply);
    reply.type = PROTO_MSG_WELCOME;
    reply.u.welcome.version = PROTO_VERSION;
    reply.u.welcome.schema_version = version;
    reply.u.welcome.acked_seq = j->device.acked_seq;
    reply.u.welcome.server_seq = server_seq;
    reply.u.welcome.server_time_ms = j->now_ms;
    reply.u.welcome.has_store = true;
    reply.u.welcome.store.id = identity.id;
    reply.u.welcome.store.epoch = identity.epoch;
    if (hello->schema_version < version) {
        reply.u.welcome.has_schema = true;
        reply.u.welcome.schema = schema->u.schema;
    }
    reply.u.welcome.has_limits = true;
    reply.u.welcome.limits = env->session_limits;
    if (hello->compress == PROTO_COMPRESS_DEFLATE)
        reply.u.welcome.compress = PROTO_COMPRESS_DEFLATE;
    const char **names = NULL;
    j->rc = teams_view(&j->device, &reply.u.welcome.teams, &names);
    reply.u.welcome.has_teams = j->rc == STORE_OK;
    reply.u.welcome.worker_id = j->device.worker_id[0] ? j->device.worker_id : NULL;
    if (j->rc == STORE_OK)
        j->rc = encode_reply(j, &reply);
    free(names);
    proto_msg_free(schema);
}

/* Decodes and joins the chunks (before any transaction). STORE_OK, or j->rc and errmsg set. */
static int prepare_push(job *j, const job_env *env)
{
    j->rc = decode_chunks(j, env);
    if (j->rc == STORE_OK)
        j->rc = join_chunks(j);
    if (j->rc != STORE_OK && !j->push_malformed)
        snprintf(j->errmsg, sizeof j->errmsg, "decoding the PUSH chunks: %s",
                 j->rc == STORE_ENOMEM ? "out of memory" : "bytes changed in memory");
    return j->rc;
}

/* The decoded transaction is not needed once merged (the reply is encoded): a group keeps
 * one at a time. The seq stays for the log. */
static void release_decoded(job *j)
{
    uint64_t seq = j->push.seq;

    free_joined_push(&j->push);
    j->push.seq = seq;
    if (j->chunks)
        for (uint32_t i = 0; i < j->n_chunks; i++)
            proto_msg_free(j->chunks[i]);
    free(j->chunks);
    j->chunks = NULL;
}

static uint64_t push_rows(const job *j)
{
    uint64_t n = 0;

    for (uint32_t t = 0; t < j->push.n_tables; t++)
        n += j->push.tables[t].n_changes;
    return n;
}

static bool chain_broken(const job *j)
{
    return j->chain && atomic_load(&j->chain->broken);
}

/* A failed entry is answered ERROR, which ends its session: none of its later ones may be
 * applied. */
static void chain_check(job *j)
{
    if (j->rc != STORE_OK && j->chain)
        atomic_store(&j->chain->broken, true);
}

static void skip_push(job *j)
{
    j->push_skipped = true;
    j->rc = STORE_EIO;
    snprintf(j->errmsg, sizeof j->errmsg, "not run: an earlier entry of this connection failed");
}

static void run_push(job *j, store *st, const job_env *env)
{
    if (chain_broken(j)) {
        skip_push(j);
        return;
    }
    if (j->chunks == NULL)
        (void)prepare_push(j, env);
    if (j->rc != STORE_OK) {
        chain_check(j);
        release_decoded(j);
        return;
    }
    j->rc = store_push(st, &j->device, &j->push, j->now_ms, &j->reply, &j->push_info);
    if (j->rc != STORE_OK)
        note_store_error(j, st);
    chain_check(j);
    release_decoded(j);
}

static void run_pull(job *j, store *st, const job_env *env)
{
    const proto_pull *req = &j->request->u.pull;
    uint32_t limit = env->pull_page_rows;

    if (req->limit > 0 && req->limit < limit)
        limit = req->limit;
    j->device.has_pull_seen = req->has_seen;
    j->device.pull_seen = req->seen;
    j->rc = pull_ahead_pull(env->ahead, st, j->slot, j->session_id, &j->device, req->cursor,
                            limit, env->max_reply_bytes, &j->reply, &j->pull_info,
                            &j->pull_prepared);
    if (j->rc != STORE_OK) {
        note_store_error(j, st);
        return;
    }
    /* Informational ("last sync" for admins): a failure here must not fail the pull. */
    (void)store_device_seen(st, j->device.device_id, req->cursor);
}

/* Which of the connected devices may no longer sync (sweep.c closes their sessions). */
static void run_sweep(job *j, store *st)
{
    j->rc = store_ping(st); /* the health probe, and whether the store is still there */
    for (uint32_t i = 0; i < j->n_sweep && j->rc == STORE_OK; i++)
        j->rc = store_device_barred(st, j->sweep_ids[i], &j->sweep_barred[i]);
    if (j->rc != STORE_OK)
        note_store_error(j, st);
}

/* Other nodes on the same PostgreSQL hear which teams a committed change touched, and NOTIFY
 * their own devices (announce.c); on SQLite this does nothing. The change is committed either
 * way: a failed announcement only leaves other nodes' devices to their own pull timer. */
static void announce(store *st, const job_env *env, const store_push_info *info)
{
    if (!env->node || info->duplicate || info->rejected || info->n_teams_touched == 0)
        return;
    (void)store_announce_teams(st, env->node, (const char(*)[64])info->teams_touched,
                               info->n_teams_touched, info->server_seq);
}

/* A job whose entry was merged in a group that then did not commit: the group's error, and
 * nothing of its answer. */
static void fail_in_group(job *j, int rc, const char *why)
{
    if (j->rc != STORE_OK || j->push_skipped)
        return; /* keeps its own error */
    j->rc = rc;
    snprintf(j->errmsg, sizeof j->errmsg, "%s", why);
    proto_buf_free(&j->reply);
    free(j->push_info.teams_touched);
    memset(&j->push_info, 0, sizeof j->push_info);
    chain_check(j);
}

void job_run_pushes(job **jobs, uint32_t n, store *st, const job_env *env,
                    void (*done)(job *j, void *done_arg), void *done_arg)
{
    uint32_t i = 0;

    while (i < n) {
        if (i + 1 == n) { /* alone: its own transaction, as it always was */
            jobs[i]->group = 1;
            job_run(jobs[i], st, env);
            done(jobs[i++], done_arg);
            continue;
        }
        uint32_t first = i;
        int rc = store_push_group_begin(st);
        if (rc != STORE_OK) {
            char why[200];
            snprintf(why, sizeof why, "%s", store_errmsg(st));
            for (; i < n; i++) {
                fail_in_group(jobs[i], rc, why);
                done(jobs[i], done_arg);
            }
            return;
        }
        /* Entries join while the group stays within its bounds (the first always does). Each
         * is decoded only when its turn comes and released after its merge: one decoded
         * transaction at a time, as without groups. */
        uint64_t rows = 0;
        size_t bytes = 0;
        bool dead = false;
        while (i < n && !dead) {
            job *j = jobs[i];
            if (i > first && bytes + j->raw_len > JOB_GROUP_BYTES)
                break;
            bytes += j->raw_len;
            if (!chain_broken(j) && j->chunks == NULL)
                (void)prepare_push(j, env);
            uint64_t r = j->rc == STORE_OK ? push_rows(j) : 0;
            if (i > first && rows + r > JOB_GROUP_ROWS)
                break; /* decoded already: it opens the next group */
            rows += r;
            run_push(j, st, env);
            dead = !store_push_group_ok(st);
            i++;
        }
        for (uint32_t k = first; k < i; k++)
            jobs[k]->group = i - first;
        if (dead) {
            /* The engine ended the transaction under jobs[i - 1]: its error is everyone's. */
            job *culprit = jobs[i - 1];
            char why[200];
            snprintf(why, sizeof why, "%.150s (ended the transaction of a group of %" PRIu32
                     " entries)", culprit->errmsg, i - first);
            int why_rc = culprit->rc != STORE_OK ? culprit->rc : STORE_EIO;
            store_push_group_rollback(st);
            for (uint32_t k = first; k < i; k++)
                fail_in_group(jobs[k], why_rc, why);
        } else if ((rc = store_push_group_commit(st)) != STORE_OK) {
            char why[200];
            snprintf(why, sizeof why, "%.150s (the COMMIT of a group of %" PRIu32 " entries)",
                     store_errmsg(st), i - first);
            for (uint32_t k = first; k < i; k++)
                fail_in_group(jobs[k], rc, why);
        } else {
            for (uint32_t k = first; k < i; k++)
                if (jobs[k]->rc == STORE_OK)
                    announce(st, env, &jobs[k]->push_info);
        }
        for (uint32_t k = first; k < i; k++)
            done(jobs[k], done_arg);
    }
}

void job_after(store *st, const job_env *env)
{
    if (env->ahead)
        pull_ahead_run(env->ahead, st);
}

void job_run(job *j, store *st, const job_env *env)
{
    switch (j->kind) {
    case JOB_ENROLL: run_enroll(j, st, env); break;
    case JOB_AUTH: run_auth(j, st, env); break;
    case JOB_PUSH:
        run_push(j, st, env);
        if (j->rc == STORE_OK)
            announce(st, env, &j->push_info);
        break;
    case JOB_PULL: run_pull(j, st, env); break;
    case JOB_DASH:
        dash_run(j->dash, st);
        if (j->dash->op == DASH_DECIDE && j->dash->http_status == 200)
            announce(st, env, &j->dash->push_info);
        break;
    case JOB_SWEEP: run_sweep(j, st); break;
    }
}

#include "pull_ahead.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct ahead_page {
    uint64_t session_id; /* 0: none */
    uint64_t cursor;
    uint32_t limit;
    size_t max_bytes;
    bool has_seen; /* the PULL's seen it was read for */
    uint64_t seen;
    proto_buf page;
    store_pull_info info;
    store_pull_stamp stamp;
    size_t bytes; /* what it counts in held */
} ahead_page;

struct pull_ahead {
    pthread_mutex_t lock;
    uint32_t n_slots;
    ahead_page *pages; /* by session slot */
    size_t max_bytes, held;
    uint32_t n_held;

    /* The page to read next (one at a time: the worker reads it right after planning). */
    bool planned;
    bool plan_dropped; /* its session closed while it was being read */
    uint32_t plan_slot;
    uint64_t plan_session;
    store_device plan_dev; /* teams are this module's allocation */
    uint64_t plan_cursor;
    uint32_t plan_limit;
    size_t plan_max_bytes;
};

pull_ahead *pull_ahead_new(uint32_t n_slots, size_t max_bytes)
{
    pull_ahead *pa = calloc(1, sizeof *pa);

    if (!pa)
        return NULL;
    pa->pages = calloc(n_slots ? n_slots : 1, sizeof *pa->pages);
    if (!pa->pages) {
        free(pa);
        return NULL;
    }
    pa->n_slots = n_slots;
    pa->max_bytes = max_bytes;
    pthread_mutex_init(&pa->lock, NULL);
    return pa;
}

/* Empties one slot; the lock is held. */
static void page_clear(pull_ahead *pa, ahead_page *p)
{
    if (p->session_id == 0)
        return;
    pa->held -= p->bytes;
    pa->n_held--;
    proto_buf_free(&p->page);
    store_pull_stamp_clear(&p->stamp);
    memset(p, 0, sizeof *p);
}

static void plan_clear(pull_ahead *pa)
{
    free(pa->plan_dev.teams);
    memset(&pa->plan_dev, 0, sizeof pa->plan_dev);
    pa->planned = pa->plan_dropped = false;
}

void pull_ahead_free(pull_ahead *pa)
{
    if (!pa)
        return;
    for (uint32_t i = 0; i < pa->n_slots; i++)
        page_clear(pa, &pa->pages[i]);
    plan_clear(pa);
    pthread_mutex_destroy(&pa->lock);
    free(pa->pages);
    free(pa);
}

/* The session's page when it answers this PULL and is still fresh: true, *reply taken over. */
static bool serve(pull_ahead *pa, store *st, uint32_t slot, uint64_t session_id,
                  const store_device *dev, uint64_t cursor, uint32_t limit, size_t max_bytes,
                  proto_buf *reply, store_pull_info *out_info)
{
    ahead_page p;
    bool fresh = false;

    if (slot >= pa->n_slots)
        return false;
    memset(&p, 0, sizeof p);
    pthread_mutex_lock(&pa->lock);
    if (pa->pages[slot].session_id == session_id) {
        p = pa->pages[slot];
        pa->held -= p.bytes;
        pa->n_held--;
        memset(&pa->pages[slot], 0, sizeof pa->pages[slot]);
    }
    pthread_mutex_unlock(&pa->lock);
    if (p.session_id == 0)
        return false;
    if (p.cursor == cursor && p.limit == limit && p.max_bytes == max_bytes &&
        p.has_seen == dev->has_pull_seen && p.seen == dev->pull_seen &&
        store_pull_recheck(st, dev, &p.stamp, &fresh) == STORE_OK && fresh) {
        proto_buf_free(reply);
        *reply = p.page;
        *out_info = p.info;
        memset(&p.page, 0, sizeof p.page);
    }
    proto_buf_free(&p.page);
    store_pull_stamp_clear(&p.stamp);
    return fresh;
}

/* Notes the session's next page for pull_ahead_run, unless a page of about expect_bytes would
 * not fit. dev is copied. */
static void plan(pull_ahead *pa, uint32_t slot, uint64_t session_id, const store_device *dev,
                 uint64_t cursor, uint32_t limit, size_t max_bytes, size_t expect_bytes)
{
    char(*teams)[64] = NULL;

    if (slot >= pa->n_slots || session_id == 0)
        return;
    if (dev->n_teams > 0) {
        teams = malloc((size_t)dev->n_teams * sizeof *teams);
        if (!teams)
            return; /* no page ahead: the PULL reads it */
        memcpy(teams, dev->teams, (size_t)dev->n_teams * sizeof *teams);
    }
    pthread_mutex_lock(&pa->lock);
    plan_clear(pa);
    /* The session's older page (if still kept) is replaced by this one: count it as gone. */
    size_t held = pa->held - pa->pages[slot].bytes;
    if (expect_bytes <= pa->max_bytes && held <= pa->max_bytes - expect_bytes) {
        pa->planned = true;
        pa->plan_slot = slot;
        pa->plan_session = session_id;
        pa->plan_dev = *dev;
        pa->plan_dev.teams = teams;
        pa->plan_cursor = cursor;
        pa->plan_limit = limit;
        pa->plan_max_bytes = max_bytes;
        teams = NULL;
    }
    pthread_mutex_unlock(&pa->lock);
    free(teams);
}

int pull_ahead_pull(pull_ahead *pa, store *st, uint32_t slot, uint64_t session_id,
                    const store_device *dev, uint64_t cursor, uint32_t limit, size_t max_bytes,
                    proto_buf *reply, store_pull_info *out_info, bool *out_prepared)
{
    *out_prepared = pa && serve(pa, st, slot, session_id, dev, cursor, limit, max_bytes, reply,
                                out_info);
    if (!*out_prepared) {
        int rc = store_pull(st, dev, cursor, limit, max_bytes, reply, out_info);
        if (rc != STORE_OK)
            return rc;
    }
    /* The device asks for the next page as soon as this one arrives: read it meanwhile. */
    if (pa && out_info->more)
        plan(pa, slot, session_id, dev, out_info->next_cursor, limit, max_bytes, reply->cap);
    return STORE_OK;
}

void pull_ahead_run(pull_ahead *pa, store *st)
{
    ahead_page p;

    pthread_mutex_lock(&pa->lock);
    if (!pa->planned) {
        pthread_mutex_unlock(&pa->lock);
        return;
    }
    memset(&p, 0, sizeof p);
    p.session_id = pa->plan_session;
    p.cursor = pa->plan_cursor;
    p.limit = pa->plan_limit;
    p.max_bytes = pa->plan_max_bytes;
    p.has_seen = pa->plan_dev.has_pull_seen;
    p.seen = pa->plan_dev.pull_seen;
    pthread_mutex_unlock(&pa->lock);

    /* plan_dev stays the worker's while planned: only pull_ahead_plan (this thread) replaces
     * it, and pull_ahead_drop only marks the plan dropped. */
    int rc = store_pull_stamped(st, &pa->plan_dev, p.cursor, p.limit, p.max_bytes, &p.page,
                                &p.info, &p.stamp);

    pthread_mutex_lock(&pa->lock);
    uint32_t slot = pa->plan_slot;
    bool keep = rc == STORE_OK && !pa->plan_dropped;
    plan_clear(pa);
    if (keep) {
        ahead_page *old = &pa->pages[slot];
        page_clear(pa, old);
        p.bytes = sizeof p + p.page.cap + (size_t)p.stamp.n_teams * sizeof *p.stamp.teams;
        keep = p.bytes <= pa->max_bytes && pa->held <= pa->max_bytes - p.bytes;
    }
    if (keep) {
        pa->pages[slot] = p;
        pa->held += p.bytes;
        pa->n_held++;
    }
    pthread_mutex_unlock(&pa->lock);
    if (!keep) {
        proto_buf_free(&p.page);
        store_pull_stamp_clear(&p.stamp);
    }
}

void pull_ahead_drop(pull_ahead *pa, uint32_t slot, uint64_t session_id)
{
    if (!pa || slot >= pa->n_slots)
        return;
    pthread_mutex_lock(&pa->lock);
    if (pa->pages[slot].session_id == session_id)
        page_clear(pa, &pa->pages[slot]);
    if (pa->planned && pa->plan_session == session_id)
        pa->plan_dropped = true;
    pthread_mutex_unlock(&pa->lock);
}

size_t pull_ahead_held(pull_ahead *pa, uint32_t *out_pages)
{
    pthread_mutex_lock(&pa->lock);
    size_t held = pa->held;
    if (out_pages)
        *out_pages = pa->n_held;
    pthread_mutex_unlock(&pa->lock);
    return held;
}

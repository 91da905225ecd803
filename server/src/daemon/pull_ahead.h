/*
 * Pull ahead: a device's next ROWS page, read by the store worker while the page before it
 * travels. A page that says `more` ends at a cursor the device asks for next (it does so as soon
 * as the page's first bytes arrive, docs/protocol.md 8.6); so right after handing a page back,
 * the worker reads the page that starts there, and the PULL that asks for exactly that cursor
 * is answered with it instead of a new read: the read overlaps compressing, sending and the
 * device's round trip instead of following them.
 *
 * A prepared page is served only to the session it was read for, only for a PULL asking its
 * cursor with the same page limits, and only when store_pull_recheck says that nothing it
 * depends on changed since its read (the device revoked, the worker's teams, the schema, a
 * delete, a row leaving a scope, the device's own push): otherwise it is dropped and the page
 * read again. Rows committed after its read have higher sequences and come in a later page.
 *
 * Memory: at most one page per session, all together at most max_bytes (a page that would pass
 * it is not kept); a session's page goes when it closes.
 *
 * The worker thread plans, builds and serves; the service thread only drops (pull_ahead_drop).
 * Everything shared is under one lock, never held during a store read.
 */
#ifndef OUTPOSTD_PULL_AHEAD_H
#define OUTPOSTD_PULL_AHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"
#include "store.h"

typedef struct pull_ahead pull_ahead;

/* Room for sessions in slots 0..n_slots-1 (the server's connection slots). NULL without
 * memory. */
pull_ahead *pull_ahead_new(uint32_t n_slots, size_t max_bytes);
void pull_ahead_free(pull_ahead *pa); /* NULL is a no-op; no thread may use it any more */

/* Worker thread: one PULL of the session in slot (store_pull's arguments and results). It is
 * answered with the page read ahead for this session when that page starts at cursor, was read
 * with the same limit and max_bytes and is still fresh (*out_prepared true), else read now; the
 * session's earlier page goes either way. A page with `more` plans the next one, which
 * pull_ahead_run reads. pa NULL: store_pull. */
int pull_ahead_pull(pull_ahead *pa, store *st, uint32_t slot, uint64_t session_id,
                    const store_device *dev, uint64_t cursor, uint32_t limit, size_t max_bytes,
                    proto_buf *reply, store_pull_info *out_info, bool *out_prepared);

/* Worker thread, once the PULL's reply has been handed back: reads the planned page, if any,
 * and keeps it when it fits. */
void pull_ahead_run(pull_ahead *pa, store *st);

/* Service thread: the session in slot closed; its page, planned or kept, goes. */
void pull_ahead_drop(pull_ahead *pa, uint32_t slot, uint64_t session_id);

/* Bytes the kept pages hold now, and how many pages that is. Any thread. */
size_t pull_ahead_held(pull_ahead *pa, uint32_t *out_pages);

#endif /* OUTPOSTD_PULL_AHEAD_H */

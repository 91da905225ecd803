/* The lws protocol handler for "outpost.1" at wss://HOST:PORT/sync. */
#ifndef OUTPOSTD_SYNC_HANDLER_H
#define OUTPOSTD_SYNC_HANDLER_H

#include <stddef.h>

#include <libwebsockets.h>

#define SYNC_PROTOCOL_NAME "outpost.1"
#define SYNC_PATH "/sync"

int sync_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

#endif /* OUTPOSTD_SYNC_HANDLER_H */

#include "sync_handler.h"

#include <string.h>

#include "server.h"
#include "session.h"

int sync_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    session *s = user;
    server *srv = lws_context_user(lws_get_context(wsi));
    char uri[64];

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* Only /sync upgrades to outpost.1; anything else is refused before ESTABLISHED. */
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
            strcmp(uri, SYNC_PATH) != 0)
            return 1;
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        return session_open(s, srv, wsi);

    case LWS_CALLBACK_RECEIVE:
        return session_receive(s, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return session_writeable(s);

    case LWS_CALLBACK_CLOSED:
        session_close(s);
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* The worker finished something (lws_cancel_service). */
        if (srv && srv->worker)
            server_dispatch_completions(srv);
        return 0;

    default:
        return 0;
    }
}

/*
 * Several outpostd on one PostgreSQL: a node that changed rows of some teams announces them
 * (NOTIFY on one channel, one team per notification), and every node listening hears it and
 * can NOTIFY its own connected devices of those teams. On SQLite (one outpostd per store)
 * there is no other node: announcing does nothing and nothing is heard.
 */
#include "store_internal.h"

#define ANNOUNCE_CHANNEL "outpost_teams"

int store_announce_teams(store *st, const char (*teams)[64], uint32_t n_teams)
{
    for (uint32_t i = 0; i < n_teams; i++) {
        int rc = db_notify(st->conn, ANNOUNCE_CHANNEL, teams[i]);
        if (rc != STORE_OK)
            return store_fail_db(st, rc, "announce changed teams");
    }
    return STORE_OK;
}

int store_announce_listen(store *st)
{
    int rc = db_listen(st->conn, ANNOUNCE_CHANNEL);
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, "listen for changed teams");
}

typedef struct heard {
    store_announce_cb cb;
    void *user_data;
} heard;

static void on_notification(const char *channel, const char *payload, void *user_data)
{
    heard *h = user_data;
    (void)channel;
    h->cb(payload, h->user_data);
}

int store_announcements(store *st, int timeout_ms, store_announce_cb cb, void *user_data)
{
    heard h = {cb, user_data};
    int rc = db_notifications(st->conn, timeout_ms, on_notification, &h);
    return rc >= 0 ? rc : store_fail_db(st, rc, "read announcements");
}

int store_announce_fd(const store *st)
{
    return db_socket(st->conn);
}

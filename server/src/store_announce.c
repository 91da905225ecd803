/*
 * Several outpostd on one PostgreSQL: a node that changed rows of some teams announces them
 * (NOTIFY on one channel, one team per notification), and every node listening hears it and
 * can NOTIFY its own connected devices of those teams. On SQLite (one outpostd per store)
 * there is no other node: announcing does nothing and nothing is heard.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define ANNOUNCE_CHANNEL "outpost_teams"

/* One notification per team, its payload "SEQ ORIGIN TEAM" (team ids hold no spaces). */
int store_announce_teams(store *st, const char *origin, const char (*teams)[64], uint32_t n_teams,
                         uint64_t server_seq)
{
    char payload[256];

    if (!origin[0] || strlen(origin) > 64 || strchr(origin, ' '))
        return store_fail(st, STORE_EINVAL, "an announcement's origin is 1 to 64 characters, "
                                            "no spaces");
    for (uint32_t i = 0; i < n_teams; i++) {
        snprintf(payload, sizeof payload, "%" PRIu64 " %s %.64s", server_seq, origin, teams[i]);
        int rc = db_notify(st->conn, ANNOUNCE_CHANNEL, payload);
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
    char origin[65];
    char *end = NULL;
    uint64_t seq = strtoull(payload, &end, 10);
    const char *team = end && *end == ' ' ? strchr(end + 1, ' ') : NULL;
    size_t origin_len = team ? (size_t)(team - end - 1) : 0;

    (void)channel;
    /* Anything else on the channel is not ours: not delivered. */
    if (!team || origin_len == 0 || origin_len >= sizeof origin || !team[1] ||
        strlen(team + 1) > 63)
        return;
    memcpy(origin, end + 1, origin_len);
    origin[origin_len] = 0;
    h->cb(origin, team + 1, seq, h->user_data);
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

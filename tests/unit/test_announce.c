/*
 * outpostd's side of NOTIFY between nodes (server/src/daemon/announce.c): what one announcement
 * heard from another node does on this one (its devices of that team told, its dashboards told)
 * and that a node's own announcements are ignored; then the same through two handles on a
 * private PostgreSQL (one node announcing after a commit, the other's listening connection).
 * server_notify_teams and dashboard_event are recorded here instead of reaching connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "announce.h"
#include "common/test_skip.h"
#include "dashboard.h"
#include "unit/pg_cluster.h"

typedef struct seen {
    char text[512];
} seen;

static seen told;

void server_notify_teams(server *srv, uint64_t origin_id, const store_push_info *info)
{
    size_t at = strlen(told.text);
    (void)srv;
    for (uint32_t i = 0; i < info->n_teams_touched; i++)
        at += (size_t)snprintf(told.text + at, sizeof told.text - at, "devices %s@%llu from %llu;",
                               info->teams_touched[i], (unsigned long long)info->server_seq,
                               (unsigned long long)origin_id);
}

void server_notify_all(server *srv)
{
    (void)srv;
    snprintf(told.text + strlen(told.text), sizeof told.text - strlen(told.text), "all devices;");
}

void dashboard_event(dashboard *dash, unsigned events, const char (*teams)[64], uint32_t n_teams)
{
    size_t at = strlen(told.text);
    (void)dash;
    for (uint32_t i = 0; i < n_teams; i++)
        at += (size_t)snprintf(told.text + at, sizeof told.text - at, "dash %s %s%s;", teams[i],
                               events & DASH_EVENT_RECORDS ? "records" : "",
                               events & DASH_EVENT_SYNC ? "+sync" : "");
}

static void test_heard_from_another_node(void **state)
{
    server srv;
    (void)state;

    memset(&srv, 0, sizeof srv);
    told.text[0] = 0;
    assert_int_equal(strncmp(announce_node_name(), "node-", 5), 0);
    assert_string_equal(announce_node_name(), announce_node_name());
    /* this node's own push: its devices were told when it committed */
    announce_heard(&srv, announce_node_name(), "north", 5);
    assert_string_equal(told.text, "");
    announce_heard(&srv, "node-0123456789abcdef", "north", 7);
    assert_string_equal(told.text, "devices north@7 from 0;dash north records+sync;");
}

/* Back after a lost listening connection: what was announced meanwhile went unheard, so every
 * device here pulls. */
static void test_listening_again_tells_every_device(void **state)
{
    server srv;
    (void)state;

    memset(&srv, 0, sizeof srv);
    told.text[0] = 0;
    announce_listening_again(&srv);
    assert_string_equal(told.text, "all devices;");
}

static void hear(const char *origin, const char *team, uint64_t server_seq, void *user_data)
{
    announce_heard(user_data, origin, team, server_seq);
}

static void test_two_nodes_on_postgresql(void **state)
{
    pg_cluster pg;
    store *node1 = NULL, *node2 = NULL;
    server srv;
    char err[256] = "";
    const char teams[2][64] = {"north", "south"};
    (void)state;

    if (!pg_cluster_available())
        TEST_SKIP("PostgreSQL 15 binaries not installed (scripts/deps.sh installs them)");
    memset(&pg, 0, sizeof pg);
    memset(&srv, 0, sizeof srv);
    told.text[0] = 0;
    assert_int_equal(pg_cluster_start(&pg), 0);
    assert_int_equal(store_open_postgresql(pg.conninfo, true, &node1, err, sizeof err), 0);
    assert_int_equal(store_open_postgresql(pg.conninfo, false, &node2, err, sizeof err), 0);
    assert_int_equal(store_announce_listen(node2), 0);
    /* node 2 announcing itself (it hears its own NOTIFY too), then node 1 after a push */
    assert_int_equal(store_announce_teams(node2, announce_node_name(), teams, 1, 3), 0);
    assert_int_equal(store_announce_teams(node1, "node-a", teams, 2, 4), 0);
    int n = 0;
    for (int i = 0; i < 10 && n < 3; i++)
        n += store_announcements(node2, 1000, hear, &srv);
    assert_int_equal(n, 3);
    assert_string_equal(told.text, "devices north@4 from 0;dash north records+sync;"
                                   "devices south@4 from 0;dash south records+sync;");
    store_close(node2);
    store_close(node1);
    pg_cluster_stop(&pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heard_from_another_node),
        cmocka_unit_test(test_listening_again_tells_every_device),
        cmocka_unit_test(test_two_nodes_on_postgresql),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}

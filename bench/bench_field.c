/*
 * bench_field: a field worker's day over a slow mobile link (never a timed test). Prints
 * name=value lines, each figure beside its ceiling.
 *
 * The outreach example schema (examples/outreach) on a real outpostd (the integration fixture),
 * reached through the fault proxy's link shaper (tests/integration/faultproxy.h: "2G" is
 * 50 kbit/s each way and a 600 ms round trip, "3G" 250/750 kbit/s and 200 ms). Before the day,
 * the device holds 10 open missing episodes, already synced. The day's work, written offline,
 * one transaction each: 50 contacts with their screening (risk indicators, risk level, needs,
 * provided, notes), 10 missing-episode updates (the young person came back), 5 referrals.
 *
 *   cold   the engine starts with the connection closed: TCP (one round trip, which the shaper
 *          adds), TLS, WebSocket upgrade, HELLO, push, pull; from outpost_sync_start() to the
 *          completed sync.
 *   warm   the engine is already connected and idle (stay_connected); from outpost_sync_now()
 *          after the day's writes to the completed sync: no handshake at all.
 *   resumed the engine synced before and closed its connection (stay_connected 0); from
 *          outpost_sync_now() to the completed sync on a new connection: TCP, a resumed TLS
 *          1.3 session (no certificate flight), upgrade, HELLO, push, pull. The TLS handshakes
 *          of each run are printed, full and resumed.
 *
 * For each: wall time, round trips (outpost_sync_status), and the bytes that crossed the link
 * each way (TLS records included, TCP/IP headers not), with compression and, for 2G cold,
 * without it. Beside them the targets: 2G cold under 10 s, warm and resumed under 5 s. And how
 * often an idle engine's thread wakes, per hour, connected and offline, by reason
 * (idle_wakes_per_hour()).
 *
 * Beside them, in the same run and through the same shaped link, a PouchDB-style baseline
 * (couch_baseline.c): the same day as CouchDB replication carries it, JSON documents with
 * _id/_rev over HTTP/1.1 and TLS (_revs_diff, _bulk_docs, checkpoints in _local documents; a
 * fresh device's pull by _changes and _bulk_get), to a minimal CouchDB-like endpoint.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_time.h"
#include "couch_baseline.h"
#include "daemon_fixture.h"
#include "faultproxy.h"
#include "test_util.h"
#include "outpost.h"
#include "outpost_engine.h"

#define WAIT_MS 300000u
#define COLD_2G_TARGET_S 10.0
#define WARM_2G_TARGET_S 5.0

enum { CONTACTS = 50, EPISODES = 10, REFERRALS = 5 };

#define DIE(...)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "bench_field: " __VA_ARGS__);                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const char *pick(const char *const *list, size_t n) { return list[rnd((uint32_t)n)]; }
#define PICK(list) pick(list, sizeof list / sizeof list[0])

static const char *const aliases[] = {"Jay", "Mari", "Kiki", "Dre", "Lulu", "Tomas", "Bree",
                                      "Nico", "Sasha", "Rae", "Mo", "Ana", "Dani", "Tee", "Ivy",
                                      "Rico", "Zee", "Lena", "Cam", "Pip"};
static const char *const places[] = {
    "bus station, east exit", "24h laundromat on 5th", "Riverside park benches",
    "McDonald's on Main and 3rd", "youth drop-in centre", "motel strip by the highway",
    "under the rail bridge", "library steps"};
static const char *const indicators[] = {
    "controlled_movement", "no_id_documents", "older_partner", "exchange_sex_for_needs",
    "scripted_answers", "branding_tattoo", "multiple_phones", "unexplained_money",
    "fear_of_authorities", "signs_of_abuse"};
static const char *const needs[] = {"shelter", "food", "clothes", "toiletries", "medical",
                                    "vital_records", "phone", "transport", "legal",
                                    "counselling"};
static const char *const levels[] = {"none", "low", "medium", "high"};
static const char *const genders[] = {"f", "m", "nb", "unknown"};
static const char *const words[] = {
    "said", "staying", "with", "a", "friend", "older", "man", "drove", "her", "here", "again",
    "tonight", "hungry", "took", "food", "bag", "no", "phone", "asked", "about", "shelter",
    "beds", "will", "come", "back", "Thursday", "mentioned", "cousin", "in", "the", "city",
    "seemed", "scared", "when", "car", "passed", "gave", "hotline", "card", "wants", "to",
    "call", "mum", "left", "placement", "three", "days", "ago", "sleeping", "at", "station"};
static const char *const whereabouts[] = {"with a boyfriend across town", "at a friend's flat",
                                          "sleeping rough by the river", "with family in the north",
                                          "unknown, would not say"};
static const char *const services[] = {"shelter", "health", "legal", "education",
                                       "anti_trafficking_hotline"};

/* A comma-separated subset of codes, at most max of them. */
static void subset(char *out, size_t size, const char *const *codes, size_t n, uint32_t max)
{
    uint32_t k = rnd(max + 1);
    out[0] = '\0';
    for (uint32_t i = 0; i < k; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i ? "," : "", codes[rnd((uint32_t)n)]);
    }
}

static void sentence(char *out, size_t size, uint32_t n_words)
{
    out[0] = '\0';
    for (uint32_t i = 0; i < n_words; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i ? " " : "", PICK(words));
    }
}

static outpost_value t(const char *s)
{
    outpost_value v = {.type = OUTPOST_VALUE_TEXT};
    v.u.b.p = (const uint8_t *)s;
    v.u.b.n = (uint32_t)strlen(s);
    return v;
}

static outpost_value i64(int64_t i)
{
    outpost_value v = {.type = OUTPOST_VALUE_INT};
    v.u.i = i;
    return v;
}

/* Set while the day is written for the baseline: each write becomes a document there. */
static json_t *couch_docs, *couch_base;

/* Runs one write on r, or with r NULL records it as the baseline's document. */
static void exec1(outpost_replica *r, const char *sql, const outpost_value *v, uint32_t n)
{
    if (couch_docs)
        couch_record(couch_docs, couch_base, sql, v, n);
    if (r && outpost_exec(r, sql, v, n) != OUTPOST_OK)
        DIE("%s: %s", sql, outpost_errmsg(r));
}

static char episode_ids[EPISODES][OUTPOST_UUID_TEXT_SIZE];

static void write_episodes(outpost_replica *r)
{
    for (int e = 0; e < EPISODES; e++) {
        char at[40];
        if (outpost_uuid_make(episode_ids[e]) != OUTPOST_OK)
            DIE("uuid");
        snprintf(at, sizeof at, "2026-12-0%dT%02d:30:00-05:00", 1 + e % 4, 8 + e);
        outpost_value v[6] = {t(episode_ids[e]), t("t1"), t("w1"), t(PICK(aliases)),
                              t(e % 2 ? "group_home" : "foster_home"), t(at)};
        exec1(r, "INSERT INTO missing_episodes (id, team_id, worker_id, alias, placement_type,"
                 " went_missing_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", v, 6);
    }
}

/* The day: 5 referrals, 50 contacts (the first 5 name a referral), 10 episodes closed. */
static void write_day(outpost_replica *r)
{
    char ref_ids[REFERRALS][OUTPOST_UUID_TEXT_SIZE];
    for (int i = 0; i < REFERRALS; i++) {
        char at[40];
        if (outpost_uuid_make(ref_ids[i]) != OUTPOST_OK)
            DIE("uuid");
        snprintf(at, sizeof at, "2026-12-05T%02d:%02d:00-05:00", 18 + i, rnd(60));
        outpost_value v[7] = {t(ref_ids[i]), t("t1"), t("w1"), t(PICK(aliases)),
                              t(PICK(services)), t("Casa Esperanza"), t(at)};
        exec1(r, "INSERT INTO referrals (id, team_id, worker_id, alias, service, organisation,"
                 " referred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", v, 7);
    }
    for (int c = 0; c < CONTACTS; c++) {
        char id[OUTPOST_UUID_TEXT_SIZE], at[40], risk[200], need[160], given[160], notes[400];
        if (outpost_uuid_make(id) != OUTPOST_OK)
            DIE("uuid");
        snprintf(at, sizeof at, "2026-12-05T%02d:%02d:00-05:00", 17 + c / 10, rnd(60));
        subset(risk, sizeof risk, indicators, 10, 3);
        subset(need, sizeof need, needs, 10, 3);
        subset(given, sizeof given, needs, 10, 2);
        sentence(notes, sizeof notes, 8 + rnd(12));
        outpost_value v[14] = {t(id), t("t1"), t("w1"), t(at), t(PICK(places)),
                               t(PICK(aliases)), i64(12 + rnd(8)), t(PICK(genders)), t(risk),
                               t(PICK(levels)), t(need), t(given),
                               c < REFERRALS ? t(ref_ids[c]) : (outpost_value){0}, t(notes)};
        v[12].type = c < REFERRALS ? OUTPOST_VALUE_TEXT : OUTPOST_VALUE_NULL;
        exec1(r, "INSERT INTO contacts (id, team_id, worker_id, contacted_at, location, alias,"
                 " age_estimate, gender, risk_indicators, risk_level, needs, provided,"
                 " referral_id, notes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                 " ?12, ?13, ?14)", v, 14);
    }
    for (int e = 0; e < EPISODES; e++) {
        char back[40], screening[200], notes[300];
        snprintf(back, sizeof back, "2026-12-05T%02d:%02d:00-05:00", 9 + e, rnd(60));
        subset(screening, sizeof screening,
               (const char *const[]){"sexual_exploitation", "labour_exploitation",
                                     "criminal_exploitation", "violence", "substance_use",
                                     "rough_sleeping", "no_concerns"}, 7, 2);
        sentence(notes, sizeof notes, 6 + rnd(10));
        outpost_value v[5] = {t(back), t(PICK(whereabouts)), t(screening), t(notes),
                              t(episode_ids[e])};
        exec1(r, "UPDATE missing_episodes SET returned_at = ?1, whereabouts = ?2,"
                 " absence_screening = ?3, notes = ?4 WHERE id = ?5", v, 5);
    }
}

static char *source_file(const char *rel)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", OUTPOST_SOURCE_DIR, rel);
    char *text = test_read_file(path, NULL);
    if (text == NULL)
        DIE("read %s", path);
    return text;
}

static const uint8_t bench_key[OUTPOST_KEY_BYTES] = {
    0x66, 0x69, 0x65, 0x6c, 0x64, 0x2d, 0x62, 0x65, 0x6e, 0x63, 0x68, 0x2d, 0x6b, 0x65, 0x79, 0x21,
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

typedef struct result {
    double seconds;
    uint64_t round_trips, up, down;
    uint64_t ws_up, ws_down; /* WebSocket payload (outpost_sync_status) */
    uint32_t tls_full, tls_resumed; /* the day's TLS handshakes (outpost_sync_handshakes) */
} result;

static int sync_and_wait(outpost_sync *s, uint64_t after)
{
    return outpost_sync_wait(s, after, WAIT_MS);
}

/* A device of worker w1 that syncs to 127.0.0.1:port. */
static outpost_replica *device_enroll(const daemon_fixture *fx, const char *name, uint16_t port)
{
    char path[400], err[256], code[32], url[64];
    outpost_replica *r = NULL;
    char *ca = test_read_file(fx->ca_path, NULL);

    snprintf(path, sizeof path, "%s/%s.db", fx->dir, name);
    outpost_config cfg = {.path = path, .secret.key = bench_key};
    if (ca == NULL || outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK)
        DIE("open: %s", err);
    if (fixture_enroll_code(fx, "w1", code) != 0)
        DIE("enroll code");
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)port);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = ca};
    if (outpost_enroll(r, &eo) != OUTPOST_OK)
        DIE("enroll: %s", outpost_errmsg(r));
    free(ca);
    return r;
}

/* A second device of the same worker pulls the day from nothing, through the same link. */
static void pull_fresh(const daemon_fixture *fx, faultproxy *proxy, uint16_t port,
                       const faultproxy_link *link, bool compress, result *out)
{
    faultproxy_pass(proxy);
    outpost_replica *r = device_enroll(fx, "fresh", port);
    faultproxy_shape(proxy, link);
    outpost_sync_config sc = {.debounce_ms = 3600000, .no_compression = !compress};
    outpost_sync *s = NULL;
    outpost_sync_status st;
    uint64_t up0, down0, up1, down1;
    faultproxy_bytes(proxy, &up0, &down0);
    double t0 = bench_now_s();
    if (outpost_sync_start(r, &sc, &s) != OUTPOST_OK || sync_and_wait(s, 0) != OUTPOST_OK)
        DIE("fresh pull");
    out->seconds = bench_now_s() - t0;
    outpost_sync_get_status(s, &st);
    faultproxy_bytes(proxy, &up1, &down1);
    out->round_trips = st.round_trips;
    out->up = up1 - up0;
    out->down = down1 - down0;
    out->ws_up = st.bytes_sent;
    out->ws_down = st.bytes_received;
    outpost_sync_handshakes(s, &out->tls_full, &out->tls_resumed);
    outpost_sync_stop(s);
    outpost_replica_close(r);
}

/* One day's sync through link. warm: the engine is connected first. resumed: the engine
 * synced yesterday's work and closed its connection (stay_connected 0), and connects again
 * for the day, resuming yesterday's TLS session. With pulled, a second device then pulls
 * everything through the same link. */
static void run(const faultproxy_link *link, bool warm, bool resumed, bool compress, result *out,
                result *pulled)
{
    daemon_fixture fx;
    faultproxy *proxy = NULL;
    uint16_t port;
    char *schema = source_file("examples/outreach/schema.sql");
    char *policy = source_file("examples/outreach/policy");

    if (fixture_create_with_schema(&fx, NULL, schema, policy) != 0 || fixture_start(&fx) != 0)
        DIE("outpostd fixture");
    free(schema);
    free(policy);
    if (faultproxy_start(fx.port, &proxy, &port) != 0)
        DIE("fault proxy");
    outpost_replica *r = device_enroll(&fx, "field", port);

    /* Yesterday: the open episodes reach the office over a fast link. */
    outpost_sync_config sc = {.debounce_ms = 3600000, .no_compression = !compress,
                              .stay_connected = warm};
    outpost_sync *s = NULL;
    write_episodes(r);
    if (outpost_sync_start(r, &sc, &s) != OUTPOST_OK || sync_and_wait(s, 0) != OUTPOST_OK)
        DIE("first sync");
    if (!warm && !resumed) {
        outpost_sync_stop(s);
        s = NULL;
    }
    faultproxy_shape(proxy, link);
    if (warm) {
        /* Reconnect through the shaped link, then idle. */
        faultproxy_cut_all(proxy);
        outpost_sync_network_changed(s);
        outpost_sync_status st;
        outpost_sync_get_status(s, &st);
        if (sync_and_wait(s, st.syncs_completed) != OUTPOST_OK)
            DIE("warm reconnect");
    }
    write_day(r);

    outpost_sync_status before = {0}, after;
    uint64_t up0, down0, up1, down1;
    uint32_t full0 = 0, resumed0 = 0, full1, resumed1;
    if (s)
        outpost_sync_handshakes(s, &full0, &resumed0);
    faultproxy_bytes(proxy, &up0, &down0);
    double t0 = bench_now_s();
    if (warm || resumed) {
        outpost_sync_get_status(s, &before);
        outpost_sync_now(s);
    } else if (outpost_sync_start(r, &sc, &s) != OUTPOST_OK) {
        DIE("sync start");
    }
    int rc = sync_and_wait(s, before.syncs_completed);
    out->seconds = bench_now_s() - t0;
    if (rc != OUTPOST_OK)
        DIE("day sync: %s", outpost_strerror(rc));
    outpost_sync_get_status(s, &after);
    faultproxy_bytes(proxy, &up1, &down1);
    outpost_sync_handshakes(s, &full1, &resumed1);
    out->tls_full = full1 - full0;
    out->tls_resumed = resumed1 - resumed0;
    out->round_trips = after.round_trips - before.round_trips;
    out->up = up1 - up0;
    out->down = down1 - down0;
    out->ws_up = after.bytes_sent - before.bytes_sent;
    out->ws_down = after.bytes_received - before.bytes_received;
    if (after.pending != 0)
        DIE("%llu entries left", (unsigned long long)after.pending);
    outpost_sync_stop(s);
    outpost_replica_close(r);
    if (pulled)
        pull_fresh(&fx, proxy, port, link, compress, pulled);
    faultproxy_stop(proxy);
    fixture_destroy(&fx);
}

/* The sync thread's wakes per hour while idle for a window (30 s, or BENCH_IDLE_WINDOW_S):
 * connected (stay_connected, nothing to do), then offline (outpostd stopped, the engine on its
 * retry schedule). The engine's timers are minutes apart and the first 30 s hold the first
 * ping and the backoff's first steps, so a short window overstates: these are the wakes seen,
 * scaled up. */
static int idle_window_s(void)
{
    const char *env = getenv("BENCH_IDLE_WINDOW_S");
    int n = env ? atoi(env) : 0;
    return n > 0 ? n : 30;
}

/* Prints the window's wakes by reason (outpost_sync_wakes_for()) and returns them all. */
static double wakes_per_hour(outpost_sync *s, const char *name)
{
    static const char *const reasons[OUTPOST_WAKE_REASONS] = {"app", "timer", "network",
                                                              "other"};
    uint64_t w0 = outpost_sync_wakes(s), r0[OUTPOST_WAKE_REASONS];
    for (int i = 0; i < OUTPOST_WAKE_REASONS; i++)
        r0[i] = outpost_sync_wakes_for(s, (outpost_sync_wake_reason)i);
    test_sleep_ms((long)idle_window_s() * 1000);
    for (int i = 0; i < OUTPOST_WAKE_REASONS; i++)
        printf("field_idle_%s_wakes_%s=%llu\n", name, reasons[i],
               (unsigned long long)(outpost_sync_wakes_for(s, (outpost_sync_wake_reason)i) -
                                    r0[i]));
    return (double)(outpost_sync_wakes(s) - w0) * 3600.0 / idle_window_s();
}

static void idle_wakes_per_hour(double *connected, double *offline)
{
    daemon_fixture fx;
    char *schema = source_file("examples/outreach/schema.sql");
    char *policy = source_file("examples/outreach/policy");
    if (fixture_create_with_schema(&fx, NULL, schema, policy) != 0 || fixture_start(&fx) != 0)
        DIE("outpostd fixture");
    free(schema);
    free(policy);
    outpost_replica *r = device_enroll(&fx, "idle", fx.port);
    outpost_sync_config sc = {.stay_connected = 1};
    outpost_sync *s = NULL;
    if (outpost_sync_start(r, &sc, &s) != OUTPOST_OK || sync_and_wait(s, 0) != OUTPOST_OK)
        DIE("idle sync");
    test_sleep_ms(1000);
    *connected = wakes_per_hour(s, "connected");
    if (fixture_stop(&fx) != 0)
        DIE("stopping outpostd");
    test_sleep_ms(1000);
    *offline = wakes_per_hour(s, "offline");
    outpost_sync_stop(s);
    outpost_replica_close(r);
    fixture_destroy(&fx);
}

/* Where the proxy's byte counts stood when the warm baseline began (couch_push's warm_mark). */
typedef struct proxy_mark {
    faultproxy *proxy;
    uint64_t up, down;
} proxy_mark;

static void mark_bytes(void *ctx)
{
    proxy_mark *m = ctx;
    faultproxy_bytes(m->proxy, &m->up, &m->down);
}

static void couch_start(const daemon_fixture *fx, json_t *yesterday,
                        const faultproxy_link *link, couch_server **server, faultproxy **proxy,
                        uint16_t *port)
{
    char cert[400], key[400];
    uint16_t server_port;
    snprintf(cert, sizeof cert, "%s/certs/server.pem", fx->dir);
    snprintf(key, sizeof key, "%s/certs/server.key", fx->dir);
    if (couch_server_start(cert, key, yesterday, server, &server_port) != 0 ||
        faultproxy_start(server_port, proxy, port) != 0)
        DIE("baseline server");
    faultproxy_shape(*proxy, link);
}

static void couch_stop(couch_server *server, faultproxy *proxy)
{
    faultproxy_stop(proxy);
    couch_server_stop(server);
}

static result couch_figures(const couch_result *cr, uint64_t up0, uint64_t down0, uint64_t up1,
                            uint64_t down1)
{
    return (result){.seconds = cr->seconds, .round_trips = cr->round_trips, .up = up1 - up0,
                    .down = down1 - down0, .ws_up = cr->json_up, .ws_down = cr->json_down};
}

/* The baseline over link: a day like the others (yesterday's open episodes already on the
 * server, with yesterday's checkpoint). cold: pushed on a new connection through the proxy (TCP
 * and a full TLS handshake, as Outpost's cold), then a fresh device pulls everything the same
 * way. warm: the same day to a second such server as the next batch of a live replication that
 * is already connected and set up (stands beside Outpost's warm). */
static void couch_run(const faultproxy_link *link, result *cold, result *warm, result *pull)
{
    daemon_fixture fx;
    couch_server *server = NULL;
    faultproxy *proxy = NULL;
    uint16_t port;
    json_t *yesterday = json_object(), *today = json_object();
    if (fixture_create(&fx, NULL) != 0)
        DIE("certificates for the baseline");
    char *ca = test_read_file(fx.ca_path, NULL);
    couch_docs = yesterday;
    write_episodes(NULL);
    couch_docs = today;
    couch_base = yesterday;
    write_day(NULL);
    couch_docs = couch_base = NULL;
    if (!ca || json_object_size(today) != CONTACTS + EPISODES + REFERRALS)
        DIE("baseline documents");

    couch_result cr;
    uint64_t up0, down0, up1, down1;
    size_t n_docs = 0;
    couch_start(&fx, yesterday, link, &server, &proxy, &port);
    faultproxy_bytes(proxy, &up0, &down0);
    if (couch_push(port, ca, today, NULL, NULL, &cr) != 0)
        DIE("baseline push");
    faultproxy_bytes(proxy, &up1, &down1);
    *cold = couch_figures(&cr, up0, down0, up1, down1);
    if (couch_pull(port, ca, &cr, &n_docs) != 0 ||
        n_docs != json_object_size(yesterday) + CONTACTS + REFERRALS)
        DIE("baseline pull (%zu documents)", n_docs);
    faultproxy_bytes(proxy, &up0, &down0);
    *pull = couch_figures(&cr, up1, down1, up0, down0);
    couch_stop(server, proxy);

    couch_start(&fx, yesterday, link, &server, &proxy, &port);
    proxy_mark mark = {.proxy = proxy};
    if (couch_push(port, ca, today, mark_bytes, &mark, &cr) != 0)
        DIE("baseline warm push");
    faultproxy_bytes(proxy, &up1, &down1);
    *warm = couch_figures(&cr, mark.up, mark.down, up1, down1);
    couch_stop(server, proxy);
    json_decref(yesterday);
    json_decref(today);
    free(ca);
    fixture_destroy(&fx);
}

static void report(const char *name, const result *r, double target_s)
{
    printf("field_%s_seconds=%.2f\n", name, r->seconds);
    printf("field_%s_round_trips=%llu\n", name, (unsigned long long)r->round_trips);
    printf("field_%s_bytes_up=%llu\n", name, (unsigned long long)r->up);
    printf("field_%s_bytes_down=%llu\n", name, (unsigned long long)r->down);
    printf("field_%s_tls_handshakes_full=%u\n", name, r->tls_full);
    printf("field_%s_tls_handshakes_resumed=%u\n", name, r->tls_resumed);
    /* Protocol messages alone, per row change of the day (65), without TLS and handshakes. */
    printf("field_%s_message_bytes_up_per_row=%.1f\n", name,
           (double)r->ws_up / (CONTACTS + EPISODES + REFERRALS));
    printf("field_%s_message_bytes_down=%llu\n", name, (unsigned long long)r->ws_down);
    if (target_s > 0) {
        char key[96];
        snprintf(key, sizeof key, "field_%s_seconds", name);
        printf("%s_target=%.1f\n", key, target_s);
        bench_print_target(key, r->seconds < target_s);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    /* With an argument, only the runs whose name contains it ("2g", "3g", "idle", ...). */
    const char *only = argc > 1 ? argv[1] : NULL;
    const struct {
        const char *name;
        const faultproxy_link *link;
        bool warm, resumed, compress;
        double target_s;
        bool pull;
    } runs[] = {
        {"2g_cold", &faultproxy_2g, false, false, true, COLD_2G_TARGET_S, true},
        {"2g_warm", &faultproxy_2g, true, false, true, WARM_2G_TARGET_S, false},
        {"2g_resumed", &faultproxy_2g, false, true, true, WARM_2G_TARGET_S, false},
        {"2g_cold_uncompressed", &faultproxy_2g, false, false, false, COLD_2G_TARGET_S, true},
        {"3g_cold", &faultproxy_3g, false, false, true, 0, false},
        {"3g_warm", &faultproxy_3g, true, false, true, 0, false},
        {"3g_resumed", &faultproxy_3g, false, true, true, 0, false},
    };
    printf("field_day=contacts:%d,episode_updates:%d,referrals:%d\n", CONTACTS, EPISODES,
           REFERRALS);
    printf("field_statistic=one_run\n");
    printf("field_json_http_baseline=couchdb_replication_model\n");
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        if (only && !strstr(runs[i].name, only))
            continue;
        result res, pulled;
        run(runs[i].link, runs[i].warm, runs[i].resumed, runs[i].compress, &res,
            runs[i].pull ? &pulled : NULL);
        report(runs[i].name, &res, runs[i].target_s);
        if (runs[i].pull) {
            char name[64];
            snprintf(name, sizeof name, "%s_fresh_device_pull", runs[i].name);
            report(name, &pulled, 0);
            printf("field_%s_message_bytes_down_per_row=%.1f\n", name,
                   (double)pulled.ws_down / (CONTACTS + EPISODES + REFERRALS));
        }
    }
    /* The baseline's "message bytes" are its HTTP bytes, headers and JSON bodies. */
    const struct {
        const char *name;
        const faultproxy_link *link;
    } couch_runs[] = {{"couch_2g", &faultproxy_2g}, {"couch_3g", &faultproxy_3g}};
    for (size_t i = 0; i < sizeof couch_runs / sizeof couch_runs[0]; i++) {
        if (only && !strstr(couch_runs[i].name, only))
            continue;
        result push, warm, pull;
        char name[64];
        couch_run(couch_runs[i].link, &push, &warm, &pull);
        snprintf(name, sizeof name, "%s_cold", couch_runs[i].name);
        report(name, &push, 0);
        snprintf(name, sizeof name, "%s_warm", couch_runs[i].name);
        report(name, &warm, 0);
        snprintf(name, sizeof name, "%s_fresh_device_pull", couch_runs[i].name);
        report(name, &pull, 0);
    }
    if (!only || strstr("idle", only)) {
        double connected, offline;
        idle_wakes_per_hour(&connected, &offline);
        printf("field_idle_window_seconds=%d\n", idle_window_s());
        printf("field_idle_engine_wakes_per_hour=%.0f\n", connected);
        printf("field_idle_offline_engine_wakes_per_hour=%.0f\n", offline);
    }
    return 0;
}

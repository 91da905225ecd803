/* The fault proxy is itself test equipment: these cases show it forwards, cuts at the byte it
 * was told to, and trickles, against a plain echo server on loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "integration/faultproxy.h"

typedef struct echo_server {
    int fd;
    uint16_t port;
    pthread_t thread;
} echo_server;

static void *echo_main(void *arg)
{
    echo_server *e = arg;
    for (;;) {
        int c = accept(e->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[4096];
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0)
            if (write(c, buf, (size_t)n) != n)
                break;
        close(c);
    }
}

static int echo_setup(void **state)
{
    static echo_server e;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    e.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(e.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(e.fd, 16), 0);
    assert_int_equal(getsockname(e.fd, (struct sockaddr *)&sa, &len), 0);
    e.port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&e.thread, NULL, echo_main, &e), 0);
    *state = &e;
    return 0;
}

static int echo_teardown(void **state)
{
    echo_server *e = *state;
    shutdown(e->fd, SHUT_RDWR);
    close(e->fd);
    pthread_join(e->thread, NULL);
    return 0;
}

static int dial(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Sends n bytes and reads back until the echo is complete or the connection ends. */
static size_t round_trip(int fd, size_t n)
{
    uint8_t out[8192], in[8192];
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)i;
    if (write(fd, out, n) != (ssize_t)n)
        return 0;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, in + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    assert_memory_equal(in, out, got);
    return got;
}

static void test_proxy_passes_bytes_through(void **state)
{
    echo_server *e = *state;
    faultproxy *p;
    uint16_t port;
    assert_int_equal(faultproxy_start(e->port, &p, &port), 0);
    int fd = dial(port);
    assert_int_equal(round_trip(fd, 5000), 5000);
    close(fd);
    assert_int_equal(faultproxy_cuts(p), 0);
    faultproxy_stop(p);
}

static void test_proxy_cuts_at_the_given_byte(void **state)
{
    echo_server *e = *state;
    faultproxy *p;
    uint16_t port;
    assert_int_equal(faultproxy_start(e->port, &p, &port), 0);
    /* 100 bytes out and their echo cross the proxy: a cut after 150 lets 50 bytes of echo back */
    faultproxy_cut_after(p, 150);
    int fd = dial(port);
    assert_int_equal(round_trip(fd, 100), 50);
    close(fd);
    assert_int_equal(faultproxy_cuts(p), 1);
    faultproxy_pass(p);
    fd = dial(port);
    assert_int_equal(round_trip(fd, 100), 100);
    close(fd);
    faultproxy_stop(p);
}

static void test_proxy_trickles_but_delivers_everything(void **state)
{
    echo_server *e = *state;
    faultproxy *p;
    uint16_t port;
    assert_int_equal(faultproxy_start(e->port, &p, &port), 0);
    faultproxy_trickle(p, 64, 2);
    int fd = dial(port);
    assert_int_equal(round_trip(fd, 1000), 1000);
    close(fd);
    faultproxy_stop(p);
}

static void test_proxy_cut_all_closes_open_connections(void **state)
{
    echo_server *e = *state;
    faultproxy *p;
    uint16_t port;
    assert_int_equal(faultproxy_start(e->port, &p, &port), 0);
    int fd = dial(port);
    assert_int_equal(round_trip(fd, 10), 10);
    faultproxy_cut_all(p);
    char c;
    assert_true(read(fd, &c, 1) <= 0);
    close(fd);
    assert_int_equal(faultproxy_accepted(p), 1);
    assert_int_equal(faultproxy_cuts(p), 1);
    faultproxy_stop(p);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Milliseconds one echo of n bytes takes through a proxy shaped like link. */
static double shaped_echo_ms(const echo_server *e, const faultproxy_link *link, size_t n,
                             uint64_t *out_up, uint64_t *out_down)
{
    faultproxy *p;
    uint16_t port;
    assert_int_equal(faultproxy_start(e->port, &p, &port), 0);
    faultproxy_shape(p, link);
    int fd = dial(port);
    double t0 = now_ms();
    assert_int_equal(round_trip(fd, n), n);
    double ms = now_ms() - t0;
    close(fd);
    faultproxy_bytes(p, out_up, out_down);
    faultproxy_stop(p);
    return ms;
}

/* The 2G profile as arithmetic predicts it: a new connection's first byte waits for TCP's
 * handshake (one round trip) and then its own (600 ms each); 5000 bytes take their
 * serialisation at 50 kbit/s (800 ms each way, overlapping as the echo streams back behind the
 * uplink) plus the two round trips: about 2.23 s. */
static void test_shaped_2g_link_has_its_latency_and_bandwidth(void **state)
{
    echo_server *e = *state;
    uint64_t up, down;
    double one = shaped_echo_ms(e, &faultproxy_2g, 1, &up, &down);
    if (one < 1200 || one > 1400)
        fail_msg("2G echo of one byte took %.0f ms, expected 1200-1400", one);
    assert_int_equal(up, 1);
    assert_int_equal(down, 1);
    double bulk = shaped_echo_ms(e, &faultproxy_2g, 5000, &up, &down);
    if (bulk < 2150 || bulk > 2900)
        fail_msg("2G echo of 5000 bytes took %.0f ms, expected about 2230", bulk);
    assert_int_equal(up, 5000);
    assert_int_equal(down, 5000);
    /* 3G: 200 ms round trip and faster links. */
    double g3 = shaped_echo_ms(e, &faultproxy_3g, 5000, &up, &down);
    if (g3 < 400 || g3 > 800)
        fail_msg("3G echo of 5000 bytes took %.0f ms, expected about 580", g3);
}

/* Every segment lost once: after TCP's handshake (100 ms) a byte goes out and comes back, and
 * each direction pays a retransmission (round trip + 200 ms): 100 + 100 + 2 * 300 = 800 ms. */
static void test_shaped_loss_delays_like_a_retransmission(void **state)
{
    echo_server *e = *state;
    uint64_t up, down;
    const faultproxy_link lossy = {"lossy", 1000000, 1000000, 100, 1000};
    double ms = shaped_echo_ms(e, &lossy, 1, &up, &down);
    if (ms < 800 || ms > 1000)
        fail_msg("echo over a link losing every segment took %.0f ms, expected 800-1000", ms);
    assert_int_equal(down, 1); /* late, never lost: TCP delivers it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_passes_bytes_through),
        cmocka_unit_test(test_proxy_cuts_at_the_given_byte),
        cmocka_unit_test(test_proxy_trickles_but_delivers_everything),
        cmocka_unit_test(test_proxy_cut_all_closes_open_connections),
        cmocka_unit_test(test_shaped_2g_link_has_its_latency_and_bandwidth),
        cmocka_unit_test(test_shaped_loss_delays_like_a_retransmission),
    };
    return cmocka_run_group_tests(tests, echo_setup, echo_teardown);
}

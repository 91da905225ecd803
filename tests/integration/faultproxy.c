#define _GNU_SOURCE /* accept4, pipe2 */
#include "faultproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_CONNS = 64, CONN_BUF = 16384, SEGMENT = 1460, QUEUE_SEGMENTS = 45 };

typedef enum mode { MODE_PASS, MODE_CUT, MODE_TRICKLE, MODE_STALL, MODE_SHAPE } mode;

const faultproxy_link faultproxy_2g = {"2G", 50000, 50000, 600, 0};
const faultproxy_link faultproxy_3g = {"3G", 250000, 750000, 200, 0};

/* Shaping: segments in flight on one direction of a link, due at their delivery time. */
typedef struct segment {
    uint64_t due_us;
    uint16_t len, off;
    uint8_t data[SEGMENT];
} segment;

typedef struct link_queue {
    segment seg[QUEUE_SEGMENTS];
    uint32_t head, count;
    uint64_t free_at_us; /* when the link has finished serialising what it holds */
    bool used;           /* a segment has crossed: the connection's handshake is behind it */
} link_queue;

/* One direction of a conn: bytes read from `from` not yet written to `to`. */
typedef struct pipe_dir {
    int from, to;
    uint8_t buf[CONN_BUF];
    size_t off, len;
    uint32_t budget; /* trickle: bytes still allowed this tick */
    link_queue *q;   /* shape */
    uint32_t bits_per_s;
    uint64_t *delivered; /* the proxy's byte counter for this direction */
} pipe_dir;

typedef struct conn {
    bool open;
    mode mode;
    uint64_t cut_after, crossed;
    pipe_dir dir[2]; /* 0: client -> target, 1: target -> client */
} conn;

struct faultproxy {
    pthread_t thread;
    pthread_mutex_t lock;
    int listen_fd, wake[2];
    uint16_t target_port;
    uint32_t source_addr; /* host order; 0: let the kernel choose */
    bool stopping, cut_all;
    mode mode;
    uint64_t cut_after;
    uint32_t trickle_bytes, trickle_ms;
    uint32_t accepted, cuts;
    faultproxy_link link;
    uint64_t rng;
    uint64_t bytes_up, bytes_down;
    conn conns[MAX_CONNS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void set_nonblocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void conn_close(faultproxy *p, conn *c, bool cut)
{
    if (!c->open)
        return;
    close(c->dir[0].from);
    close(c->dir[0].to);
    free(c->dir[0].q);
    free(c->dir[1].q);
    c->dir[0].q = c->dir[1].q = NULL;
    c->open = false;
    if (cut)
        p->cuts++;
}

static int connect_target(uint16_t port, uint32_t source_addr)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (source_addr != 0) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(source_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void accept_conn(faultproxy *p)
{
    int client = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0)
        return;
    p->accepted++;
    conn *c = NULL;
    for (int i = 0; i < MAX_CONNS && !c; i++)
        if (!p->conns[i].open)
            c = &p->conns[i];
    int target = c && !(p->mode == MODE_CUT && p->cut_after == 0)
                     ? connect_target(p->target_port, p->source_addr)
                     : -1;
    if (target < 0) {
        if (p->mode == MODE_CUT)
            p->cuts++;
        close(client);
        return;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblocking(client);
    set_nonblocking(target);
    memset(c, 0, sizeof *c);
    if (p->mode == MODE_SHAPE) {
        c->dir[0].q = calloc(1, sizeof *c->dir[0].q);
        c->dir[1].q = calloc(1, sizeof *c->dir[1].q);
        if (!c->dir[0].q || !c->dir[1].q) {
            free(c->dir[0].q);
            free(c->dir[1].q);
            close(client);
            close(target);
            return;
        }
        c->dir[0].bits_per_s = p->link.up_bits_per_s;
        c->dir[1].bits_per_s = p->link.down_bits_per_s;
    }
    c->dir[0].delivered = &p->bytes_up;
    c->dir[1].delivered = &p->bytes_down;
    c->open = true;
    c->mode = p->mode;
    c->cut_after = p->cut_after;
    c->dir[0].from = client;
    c->dir[0].to = target;
    c->dir[1].from = target;
    c->dir[1].to = client;
}

static uint64_t rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Shape: takes what the queue has room for, stamping each segment with its delivery time, and
 * writes out the segments that are due, in order. Returns false when the conn must close. */
static bool pump_shaped(faultproxy *p, pipe_dir *d, short revents, bool upstream)
{
    link_queue *q = d->q;
    uint64_t now = now_us();

    while (q->count < QUEUE_SEGMENTS && (revents & (POLLIN | POLLHUP | POLLERR))) {
        segment *sg = &q->seg[(q->head + q->count) % QUEUE_SEGMENTS];
        ssize_t n = read(d->from, sg->data, SEGMENT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return false; /* what is still queued is lost, as on a dropped link */
        if (n < 0)
            break;
        uint64_t start = q->free_at_us > now ? q->free_at_us : now;
        /* Loopback connects at once; a real link spends a round trip on TCP's handshake
         * before the client's first byte can leave. */
        if (!q->used && upstream)
            start += (uint64_t)p->link.rtt_ms * 1000u;
        q->used = true;
        uint64_t serialise = d->bits_per_s ? (uint64_t)n * 8u * 1000000u / d->bits_per_s : 0;
        q->free_at_us = start + serialise;
        sg->due_us = q->free_at_us + (uint64_t)p->link.rtt_ms * 500u;
        if (p->link.loss_permille && rng_next(&p->rng) % 1000u < p->link.loss_permille)
            sg->due_us += ((uint64_t)p->link.rtt_ms + 200u) * 1000u;
        if (q->count > 0) {
            const segment *prev = &q->seg[(q->head + q->count - 1) % QUEUE_SEGMENTS];
            if (sg->due_us < prev->due_us)
                sg->due_us = prev->due_us; /* in order, behind a late one */
        }
        sg->len = (uint16_t)n;
        sg->off = 0;
        q->count++;
    }
    while (q->count > 0) {
        segment *sg = &q->seg[q->head];
        if (sg->due_us > now)
            break;
        ssize_t n = write(d->to, sg->data + sg->off, (size_t)(sg->len - sg->off));
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        sg->off = (uint16_t)(sg->off + n);
        *d->delivered += (uint64_t)n;
        if (sg->off < sg->len)
            break;
        q->head = (q->head + 1) % QUEUE_SEGMENTS;
        q->count--;
    }
    return true;
}

/* Microseconds until the earliest queued segment is due (0 when one is), or UINT64_MAX. */
static uint64_t next_due_us(const faultproxy *p, uint64_t now)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < MAX_CONNS; i++)
        for (int d = 0; p->conns[i].open && d < 2; d++) {
            const link_queue *q = p->conns[i].dir[d].q;
            if (q && q->count > 0) {
                uint64_t due = q->seg[q->head].due_us;
                uint64_t wait = due > now ? due - now : 0;
                if (wait < best)
                    best = wait;
            }
        }
    return best;
}

/* Moves what one direction can move now. Returns false when the conn must close. */
static bool pump(faultproxy *p, conn *c, pipe_dir *d, short revents)
{
    if (c->mode == MODE_STALL)
        return !(revents & (POLLHUP | POLLERR));
    if (c->mode == MODE_SHAPE)
        return pump_shaped(p, d, revents, d == &c->dir[0]);
    if (d->len == 0 && (revents & (POLLIN | POLLHUP | POLLERR))) {
        size_t want = sizeof d->buf;
        if (c->mode == MODE_TRICKLE)
            want = d->budget;
        if (c->mode == MODE_CUT && c->cut_after - c->crossed < want)
            want = (size_t)(c->cut_after - c->crossed);
        if (want > 0) {
            ssize_t n = read(d->from, d->buf, want);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return false;
            if (n > 0) {
                d->off = 0;
                d->len = (size_t)n;
                if (c->mode == MODE_TRICKLE)
                    d->budget -= (uint32_t)n;
            }
        }
    }
    while (d->len > 0) {
        ssize_t n = write(d->to, d->buf + d->off, d->len);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        d->off += (size_t)n;
        d->len -= (size_t)n;
        c->crossed += (uint64_t)n;
        *d->delivered += (uint64_t)n;
    }
    if (c->mode == MODE_CUT && c->crossed >= c->cut_after) {
        conn_close(p, c, true);
        return true;
    }
    return true;
}

static void *proxy_main(void *arg)
{
    faultproxy *p = arg;
    uint64_t next_tick = now_ms();
    for (;;) {
        struct pollfd fds[2 + 2 * MAX_CONNS];
        conn *owner[2 + 2 * MAX_CONNS];
        nfds_t n = 0;
        pthread_mutex_lock(&p->lock);
        if (p->stopping) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        if (p->cut_all) {
            for (int i = 0; i < MAX_CONNS; i++)
                conn_close(p, &p->conns[i], true);
            p->cut_all = false;
        }
        uint64_t t = now_ms();
        if (t >= next_tick) {
            for (int i = 0; i < MAX_CONNS; i++)
                p->conns[i].dir[0].budget = p->conns[i].dir[1].budget = p->trickle_bytes;
            next_tick = t + (p->trickle_ms ? p->trickle_ms : 10);
        }
        fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++) {
            conn *c = &p->conns[i];
            for (int d = 0; c->open && d < 2; d++) {
                bool room = c->dir[d].q ? c->dir[d].q->count < QUEUE_SEGMENTS
                                        : c->dir[d].len == 0;
                owner[n] = c;
                fds[n++] = (struct pollfd){.fd = c->dir[d].from,
                                           .events = (short)(room ? POLLIN : 0)};
            }
        }
        uint64_t due = next_due_us(p, now_us());
        pthread_mutex_unlock(&p->lock);

        int timeout = (int)(next_tick > t ? next_tick - t : 0);
        if (due != UINT64_MAX && (due + 999u) / 1000u < (uint64_t)timeout)
            timeout = (int)((due + 999u) / 1000u);
        if (poll(fds, n, timeout) < 0 && errno != EINTR)
            break;

        pthread_mutex_lock(&p->lock);
        if (fds[0].revents & POLLIN) {
            char drain[64];
            while (read(p->wake[0], drain, sizeof drain) > 0) {
            }
        }
        if (fds[1].revents & POLLIN)
            accept_conn(p);
        for (nfds_t i = 2; i < n; i++) {
            conn *c = owner[i];
            if (!c->open)
                continue;
            pipe_dir *d = c->dir[0].from == fds[i].fd ? &c->dir[0] : &c->dir[1];
            if (!pump(p, c, d, fds[i].revents))
                conn_close(p, c, false);
        }
        pthread_mutex_unlock(&p->lock);
    }
    for (int i = 0; i < MAX_CONNS; i++)
        conn_close(p, &p->conns[i], false);
    return NULL;
}

int faultproxy_start(uint16_t target_port, faultproxy **out_proxy, uint16_t *out_port)
{
    faultproxy *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->target_port = target_port;
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(p->listen_fd, 64) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&sa, &len) != 0)
        goto fail;
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail;
    pthread_mutex_init(&p->lock, NULL);
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        pthread_mutex_destroy(&p->lock);
        close(p->wake[0]);
        close(p->wake[1]);
        goto fail;
    }
    *out_proxy = p;
    *out_port = ntohs(sa.sin_port);
    return 0;
fail:
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    free(p);
    return -1;
}

static void wake(faultproxy *p)
{
    ssize_t ignored = write(p->wake[1], "w", 1);
    (void)ignored;
}

static void set_mode(faultproxy *p, mode m, uint64_t cut_after, uint32_t bytes, uint32_t ms)
{
    pthread_mutex_lock(&p->lock);
    p->mode = m;
    p->cut_after = cut_after;
    p->trickle_bytes = bytes;
    p->trickle_ms = ms;
    pthread_mutex_unlock(&p->lock);
    wake(p);
}

void faultproxy_set_source(faultproxy *proxy, uint32_t source_addr)
{
    pthread_mutex_lock(&proxy->lock);
    proxy->source_addr = source_addr;
    pthread_mutex_unlock(&proxy->lock);
}

void faultproxy_pass(faultproxy *proxy) { set_mode(proxy, MODE_PASS, 0, 0, 0); }

void faultproxy_cut_after(faultproxy *proxy, uint64_t n_bytes)
{
    set_mode(proxy, MODE_CUT, n_bytes, 0, 0);
}

void faultproxy_trickle(faultproxy *proxy, uint32_t bytes_per_tick, uint32_t tick_ms)
{
    set_mode(proxy, MODE_TRICKLE, 0, bytes_per_tick ? bytes_per_tick : 1, tick_ms ? tick_ms : 1);
}

void faultproxy_stall(faultproxy *proxy) { set_mode(proxy, MODE_STALL, 0, 0, 0); }

void faultproxy_shape(faultproxy *proxy, const faultproxy_link *link)
{
    pthread_mutex_lock(&proxy->lock);
    proxy->link = *link;
    proxy->rng = 0x9e3779b97f4a7c15u;
    pthread_mutex_unlock(&proxy->lock);
    set_mode(proxy, MODE_SHAPE, 0, 0, 0);
}

void faultproxy_bytes(faultproxy *proxy, uint64_t *out_up, uint64_t *out_down)
{
    pthread_mutex_lock(&proxy->lock);
    *out_up = proxy->bytes_up;
    *out_down = proxy->bytes_down;
    pthread_mutex_unlock(&proxy->lock);
}

void faultproxy_cut_all(faultproxy *proxy)
{
    pthread_mutex_lock(&proxy->lock);
    proxy->cut_all = true;
    pthread_mutex_unlock(&proxy->lock);
    wake(proxy);
}

static uint32_t read_counter(faultproxy *p, const uint32_t *counter)
{
    pthread_mutex_lock(&p->lock);
    uint32_t v = *counter;
    pthread_mutex_unlock(&p->lock);
    return v;
}

uint32_t faultproxy_accepted(faultproxy *proxy) { return read_counter(proxy, &proxy->accepted); }
uint32_t faultproxy_cuts(faultproxy *proxy) { return read_counter(proxy, &proxy->cuts); }

void faultproxy_stop(faultproxy *proxy)
{
    if (!proxy)
        return;
    pthread_mutex_lock(&proxy->lock);
    proxy->stopping = true;
    pthread_mutex_unlock(&proxy->lock);
    wake(proxy);
    pthread_join(proxy->thread, NULL);
    pthread_mutex_destroy(&proxy->lock);
    close(proxy->listen_fd);
    close(proxy->wake[0]);
    close(proxy->wake[1]);
    free(proxy);
}

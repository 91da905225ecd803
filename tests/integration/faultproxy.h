/*
 * A fault-injecting TCP proxy for tests: it listens on 127.0.0.1, forwards each connection to a
 * target port on 127.0.0.1, and can cut, stall or trickle the bytes crossing it. It runs on a
 * thread of its own; every function may be called from any thread.
 *
 * Faults apply to the connections accepted after they are set, and count bytes per connection,
 * in both directions together, so "cut after N bytes" means "the N+1th byte of this connection
 * never arrives, and both sides see the connection close".
 */
#ifndef OUTPOST_FAULTPROXY_H
#define OUTPOST_FAULTPROXY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct faultproxy faultproxy;

/* Starts a proxy to 127.0.0.1:target_port. Returns 0 and the listening port, or -1 (errno). */
int faultproxy_start(uint16_t target_port, faultproxy **out_proxy, uint16_t *out_port);

/* Stops the thread, closes every connection, frees the proxy. NULL is a no-op. */
void faultproxy_stop(faultproxy *proxy);

/* Connections to the target leave from source_addr (an IPv4 address in host byte order, for
 * example 0x7f000002 for 127.0.0.2), so the target sees another peer address than the test's
 * own connections to it; 0 lets the kernel choose (127.0.0.1). Applies to new connections. */
void faultproxy_set_source(faultproxy *proxy, uint32_t source_addr);

/* Forward everything (the default). */
void faultproxy_pass(faultproxy *proxy);

/* Cut each new connection once n_bytes have crossed it; 0 cuts at accept. */
void faultproxy_cut_after(faultproxy *proxy, uint64_t n_bytes);

/* Forward at most bytes_per_tick bytes per direction every tick_ms milliseconds. */
void faultproxy_trickle(faultproxy *proxy, uint32_t bytes_per_tick, uint32_t tick_ms);

/* A slow, far link: each direction serialises bytes at its rate, then delays them by half the
 * round trip; a connection's first byte from the client also waits one round trip (the TCP
 * handshake loopback skips). Bytes are carried in segments of at most 1460 bytes; a lost segment (loss in
 * thousandths, drawn from a fixed seed so runs repeat) arrives one round trip plus 200 ms late,
 * as TCP's retransmission would deliver it, and holds back the segments behind it (TCP is in
 * order). Each direction queues at most 64 KiB (a modem's buffer), then the sender waits. */
typedef struct faultproxy_link {
    const char *name;
    uint32_t up_bits_per_s;   /* client -> target */
    uint32_t down_bits_per_s; /* target -> client */
    uint32_t rtt_ms;
    uint32_t loss_permille;
} faultproxy_link;

/* "2G": 50 kbit/s each way, 600 ms round trip. "3G": 750 kbit/s down, 250 kbit/s up, 200 ms
 * (a regular 3G link as browsers' network throttling models it). No loss in either: add it. */
extern const faultproxy_link faultproxy_2g;
extern const faultproxy_link faultproxy_3g;

/* Shape new connections like link (copied). */
void faultproxy_shape(faultproxy *proxy, const faultproxy_link *link);

/* Bytes delivered so far over every connection: client -> target, target -> client. */
void faultproxy_bytes(faultproxy *proxy, uint64_t *out_up, uint64_t *out_down);

/* Accept and hold connections without forwarding anything (a peer that never answers). */
void faultproxy_stall(faultproxy *proxy);

/* Closes every open connection now (a cable pulled mid-sync). */
void faultproxy_cut_all(faultproxy *proxy);

/* Connections accepted so far, and connections the proxy cut. */
uint32_t faultproxy_accepted(faultproxy *proxy);
uint32_t faultproxy_cuts(faultproxy *proxy);

#endif /* OUTPOST_FAULTPROXY_H */

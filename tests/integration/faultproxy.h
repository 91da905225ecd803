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

/* Accept and hold connections without forwarding anything (a peer that never answers). */
void faultproxy_stall(faultproxy *proxy);

/* Closes every open connection now (a cable pulled mid-sync). */
void faultproxy_cut_all(faultproxy *proxy);

/* Connections accepted so far, and connections the proxy cut. */
uint32_t faultproxy_accepted(faultproxy *proxy);
uint32_t faultproxy_cuts(faultproxy *proxy);

#endif /* OUTPOST_FAULTPROXY_H */

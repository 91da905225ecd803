/*
 * A test client for outpostd: one wss:// connection to 127.0.0.1:PORT/sync with subprotocol
 * outpost.1, verifying the server against a given CA, driven synchronously by the test. Each
 * client has its own lws context and is serviced only inside its own calls, so a test can hold
 * several clients on one thread. Built from the protocol library and lws, not from liboutpost,
 * so that it can also send what a correct device never would (oversize, truncated, malformed).
 */
#ifndef OUTPOST_TESTCLIENT_H
#define OUTPOST_TESTCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"

typedef struct testclient testclient;

/* Connects and waits up to timeout_ms for the WebSocket to be established. Returns 0, or -1
 * (then *out_client is NULL and err, when not NULL, says why). */
int testclient_connect(uint16_t port, const char *ca_path, int timeout_ms,
                       testclient **out_client, char *err, size_t err_size);

/* Queues one message (binary) and services until lws has handed every byte of it to the kernel
 * or timeout_ms passes. Returns 0, or -1 on timeout or when the connection closed. */
int testclient_send(testclient *tc, const proto_msg *msg, int timeout_ms);

/* From now on, messages from the server that are compressed frames are decompressed by recv,
 * and testclient_send() compresses (call it after a WELCOME that accepted "z"). 0 or -1. */
int testclient_compress(testclient *tc);

/* Compresses data[0..n_bytes) as one frame of this client's stream and sends it, whatever the
 * bytes are (after testclient_compress()). 0, or -1 as testclient_send_raw(). */
int testclient_send_framed(testclient *tc, const uint8_t *data, size_t n_bytes, int timeout_ms);

/* Queues raw bytes as one message, cut into WebSocket fragments of fragment_bytes (0 = one
 * frame). With finish false, the last fragment is not marked final: the message never ends. */
int testclient_send_raw(testclient *tc, const uint8_t *data, size_t n_bytes,
                        size_t fragment_bytes, bool finish, bool text, int timeout_ms);

/* Sends a WebSocket ping and waits up to timeout_ms for its pong. Returns 0 once the pong
 * arrived, -1 on timeout or close. Messages that arrive meanwhile stay queued for recv. */
int testclient_ping(testclient *tc, int timeout_ms);

/* Waits up to timeout_ms for the next whole message and decodes it (caller frees with
 * proto_msg_free). Returns 0, or -1 on timeout, close or undecodable bytes. */
int testclient_recv(testclient *tc, int timeout_ms, proto_msg **out_msg);

/* Waits for the next message, skipping NOTIFYs unless type is PROTO_MSG_NOTIFY (they may
 * arrive at any time); the caller checks that the type is the one it expected. */
int testclient_recv_type(testclient *tc, proto_msg_type type, int timeout_ms,
                         proto_msg **out_msg);

/* True once the server closed the connection; waits up to timeout_ms for that. */
bool testclient_wait_closed(testclient *tc, int timeout_ms);

/* Closes and frees. NULL is a no-op. */
void testclient_close(testclient *tc);

#endif /* OUTPOST_TESTCLIENT_H */

/*
 * outpostd's TLS policy: TLS 1.3 preferred, TLS 1.2 the minimum, ECDHE key exchange with AEAD
 * suites only, no renegotiation.
 */
#ifndef OUTPOSTD_TLS_H
#define OUTPOSTD_TLS_H

#include <stddef.h>

#include <libwebsockets.h>

#include "config.h"

/* Loads the certificate chain (the server certificate, then any intermediates) and key with
 * mbedTLS, checks that they belong together and that the chain leads to the configured CA, so a
 * bad file is reported by name; on success every new handshake presents this chain and key
 * (the whole chain, which lws alone would not send). At start and on reload, from the service
 * thread only; psa_crypto_init() must have run. Returns 0, or -1 with a message in err and the
 * identity in use unchanged. */
int tls_load_identity(const daemon_config *config, char *err, size_t err_size);

/* Frees every identity loaded, at exit after the lws context is gone. */
void tls_free_identities(void);

/* Frees the session ticket keys (zeroized), at exit after the lws context is gone. */
void tls_free_tickets(void);

/* Fills the TLS fields of the context creation info (certificate, key, cipher lists, ALPN). */
void tls_fill_creation_info(struct lws_context_creation_info *info, const daemon_config *config);

#endif /* OUTPOSTD_TLS_H */

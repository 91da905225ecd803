/*
 * outpostd's TLS policy: TLS 1.3 preferred, TLS 1.2 the minimum, ECDHE key exchange with AEAD
 * suites only, no renegotiation.
 */
#ifndef OUTPOSTD_TLS_H
#define OUTPOSTD_TLS_H

#include <stddef.h>

#include <libwebsockets.h>

#include "config.h"

/* Loads the certificate and key once with mbedTLS and checks that they belong together, so a
 * bad file is reported by name before lws starts. psa_crypto_init() must have run. Returns 0, or
 * -1 with a message in err. */
int tls_check_files(const daemon_config *config, char *err, size_t err_size);

/* Fills the TLS fields of the context creation info (certificate, key, cipher lists, ALPN). */
void tls_fill_creation_info(struct lws_context_creation_info *info, const daemon_config *config);

#endif /* OUTPOSTD_TLS_H */

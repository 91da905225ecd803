#include "tls.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "log.h"
#include "ops.h"

/*
 * lws 4.3.5's mbedTLS backend ignores ssl_cipher_list and tls1_3_plus_cipher_list (they only
 * reach OpenSSL), and it makes a fresh mbedtls_ssl_config per connection inside its OpenSSL
 * compatibility wrapper with mbedTLS's default suite list, which still offers CBC suites for
 * TLS 1.2. The one place every such config passes through is mbedtls_ssl_config_defaults(), so
 * outpostd links with --wrap=mbedtls_ssl_config_defaults (server/daemon.cmake) and applies its
 * policy right after the defaults: the lws calls that follow only set versions (1.2..1.3),
 * the RNG and certificates, never the suites or groups.
 */
static const int outpost_ciphersuites[] = {
    /* TLS 1.3: every suite is AEAD with (EC)DHE by construction. */
    MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
    MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
    /* TLS 1.2: ECDHE + AEAD only. */
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0,
};

/* Elliptic-curve groups only: no finite-field DHE in TLS 1.3 either. */
static const uint16_t outpost_groups[] = {
    MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};

/*
 * TLS 1.3 session tickets, so that a device that connects again resumes its session instead of
 * a full handshake (no certificate flight, no signature). lws 4.3.5's mbedTLS backend sets no
 * ticket callbacks, so the wrapper below does, with one ticket context per outpostd process: its
 * AES-256-GCM keys come from the PSA RNG when the process starts, are replaced every
 * TICKET_LIFETIME_S and when a new certificate is loaded (SIGHUP), and are never written or
 * logged anywhere, so a restart (or another node) refuses old tickets and the device falls back
 * to a full handshake. Resuming skips only the TLS handshake: HELLO still authenticates the
 * device on every connection (a revoked device is refused).
 */
#define TICKET_LIFETIME_S (24u * 60u * 60u)

static mbedtls_ssl_ticket_context tickets;
static int tickets_state; /* 0 not set up yet, 1 ready, -1 setup failed (full handshakes only) */

static void describe(int mbedtls_rc, char *out, size_t out_size)
{
    mbedtls_strerror(mbedtls_rc, out, out_size);
}

/* Counted for /metrics: a ticket that decrypts is a resumed handshake. */
static int ticket_parse(void *p_ticket, mbedtls_ssl_session *session, unsigned char *buf,
                        size_t len)
{
    int rc = mbedtls_ssl_ticket_parse(p_ticket, session, buf, len);
    if (rc == 0)
        ops_tls_handshake_resumed();
    return rc;
}

static void tickets_setup(void)
{
    if (tickets_state != 0)
        return;
    mbedtls_ssl_ticket_init(&tickets);
    int rc = mbedtls_ssl_ticket_setup(&tickets, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE,
                                      MBEDTLS_CIPHER_AES_256_GCM, TICKET_LIFETIME_S);
    if (rc != 0) {
        char why[128];
        describe(rc, why, sizeof why);
        log_msg(LOG_WARN, "tls: no session tickets, every handshake is a full one (%s)", why);
        mbedtls_ssl_ticket_free(&tickets);
        tickets_state = -1;
        return;
    }
    tickets_state = 1;
}

void tls_free_tickets(void)
{
    if (tickets_state == 1)
        mbedtls_ssl_ticket_free(&tickets); /* zeroizes the keys */
    tickets_state = 0;
}

int __real_mbedtls_ssl_config_defaults(mbedtls_ssl_config *conf, int endpoint, int transport,
                                       int preset);
int __wrap_mbedtls_ssl_config_defaults(mbedtls_ssl_config *conf, int endpoint, int transport,
                                       int preset);

int __wrap_mbedtls_ssl_config_defaults(mbedtls_ssl_config *conf, int endpoint, int transport,
                                       int preset)
{
    int rc = __real_mbedtls_ssl_config_defaults(conf, endpoint, transport, preset);

    if (rc != 0)
        return rc;
    mbedtls_ssl_conf_ciphersuites(conf, outpost_ciphersuites);
    mbedtls_ssl_conf_groups(conf, outpost_groups);
    mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_3);
#if defined(MBEDTLS_SSL_RENEGOTIATION)
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
    if (endpoint == MBEDTLS_SSL_IS_SERVER) {
        tickets_setup();
        if (tickets_state == 1)
            mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write, ticket_parse,
                                                &tickets);
    }
    return 0;
}

/* Every handshake step of every connection passes here (--wrap=mbedtls_ssl_handshake_step):
 * a step that fails for good is a failed handshake, one that ends the handshake a completed
 * one, for /metrics. */
int __real_mbedtls_ssl_handshake_step(mbedtls_ssl_context *ssl);
int __wrap_mbedtls_ssl_handshake_step(mbedtls_ssl_context *ssl);

int __wrap_mbedtls_ssl_handshake_step(mbedtls_ssl_context *ssl)
{
    bool was_over = mbedtls_ssl_is_handshake_over(ssl);
    int rc = __real_mbedtls_ssl_handshake_step(ssl);

    if (rc == 0 && !was_over && mbedtls_ssl_is_handshake_over(ssl))
        ops_tls_handshake_done();

    if (rc != 0 && rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE &&
        rc != MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS && rc != MBEDTLS_ERR_SSL_CRYPTO_IN_PROGRESS &&
        rc != MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET &&
        rc != MBEDTLS_ERR_SSL_RECEIVED_EARLY_DATA)
        ops_tls_handshake_failed();
    return rc;
}

/*
 * What every new TLS handshake presents: the server certificate followed by the intermediates
 * of the cert file, and the key. lws 4.3.5's mbedTLS backend loads only the first certificate of
 * the file, so a device that pins the root CA would get a leaf it cannot chain; it also sets the
 * certificate on each connection's mbedtls_ssl_config through mbedtls_ssl_conf_own_cert, at
 * every handshake step (and through mbedtls_ssl_set_hs_own_cert after SNI). outpostd links with
 * --wrap for both (server/daemon.cmake) and hands mbedTLS this chain and key there instead.
 *
 * tls_load_identity makes a new one (at start, and on SIGHUP); older ones stay allocated until
 * tls_free_identities at exit, because connections still in their handshake point into them.
 * Only the service thread loads identities and runs handshakes, so no lock is needed.
 */
typedef struct tls_identity {
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    struct tls_identity *older;
} tls_identity;

static tls_identity *current_identity;

int __real_mbedtls_ssl_conf_own_cert(mbedtls_ssl_config *conf, mbedtls_x509_crt *own_cert,
                                     mbedtls_pk_context *pk_key);
int __wrap_mbedtls_ssl_conf_own_cert(mbedtls_ssl_config *conf, mbedtls_x509_crt *own_cert,
                                     mbedtls_pk_context *pk_key);

int __wrap_mbedtls_ssl_conf_own_cert(mbedtls_ssl_config *conf, mbedtls_x509_crt *own_cert,
                                     mbedtls_pk_context *pk_key)
{
    if (current_identity && own_cert && pk_key)
        return __real_mbedtls_ssl_conf_own_cert(conf, &current_identity->chain,
                                                &current_identity->key);
    return __real_mbedtls_ssl_conf_own_cert(conf, own_cert, pk_key);
}

/* The SNI path (lws_mbedtls_sni_cb switching a connection to its vhost) sets the certificate
 * per handshake through this one: the same substitution. */
int __real_mbedtls_ssl_set_hs_own_cert(mbedtls_ssl_context *ssl, mbedtls_x509_crt *own_cert,
                                       mbedtls_pk_context *pk_key);
int __wrap_mbedtls_ssl_set_hs_own_cert(mbedtls_ssl_context *ssl, mbedtls_x509_crt *own_cert,
                                       mbedtls_pk_context *pk_key);

int __wrap_mbedtls_ssl_set_hs_own_cert(mbedtls_ssl_context *ssl, mbedtls_x509_crt *own_cert,
                                       mbedtls_pk_context *pk_key)
{
    if (current_identity && own_cert && pk_key)
        return __real_mbedtls_ssl_set_hs_own_cert(ssl, &current_identity->chain,
                                                  &current_identity->key);
    return __real_mbedtls_ssl_set_hs_own_cert(ssl, own_cert, pk_key);
}

static void identity_free(tls_identity *id)
{
    mbedtls_x509_crt_free(&id->chain);
    mbedtls_pk_free(&id->key);
    free(id);
}

/* Checks that chain (leaf first, then intermediates) leads to a certificate of ca_path, the CA
 * devices pin. Expiry is only warned about: refusing to start would not renew anything. */
static int check_chain(const daemon_config *config, mbedtls_x509_crt *chain, char *err,
                       size_t err_size)
{
    mbedtls_x509_crt ca;
    uint32_t flags = 0;
    char why[512];
    int rc = -1;
    int mrc;

    mbedtls_x509_crt_init(&ca);
    mrc = mbedtls_x509_crt_parse_file(&ca, config->ca_path);
    if (mrc != 0) {
        describe(mrc, why, sizeof why);
        snprintf(err, err_size, "CA certificate %s: %s", config->ca_path, why);
        goto done;
    }
    mbedtls_x509_crt_verify(chain, &ca, NULL, NULL, &flags, NULL, NULL);
    if (flags & ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)) {
        mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
        why[strcspn(why, "\n")] = '\0';
        snprintf(err, err_size,
                 "certificate %s does not chain to the CA in %s (%s): devices that pin that "
                 "CA would refuse this server; put any intermediate certificates after the "
                 "server certificate in %s",
                 config->cert_path, config->ca_path, why, config->cert_path);
        goto done;
    }
    if (flags != 0)
        log_msg(LOG_WARN, "certificate %s is %s: devices will refuse it", config->cert_path,
                (flags & MBEDTLS_X509_BADCERT_EXPIRED) ? "expired" : "not valid yet");
    rc = 0;
done:
    mbedtls_x509_crt_free(&ca);
    return rc;
}

int tls_load_identity(const daemon_config *config, char *err, size_t err_size)
{
    tls_identity *id = calloc(1, sizeof *id);
    char why[160];
    int mrc;

    if (!id) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    mbedtls_x509_crt_init(&id->chain);
    mbedtls_pk_init(&id->key);
    mrc = mbedtls_x509_crt_parse_file(&id->chain, config->cert_path);
    if (mrc != 0) {
        describe(mrc, why, sizeof why);
        snprintf(err, err_size, "certificate %s: %s", config->cert_path, why);
        goto fail;
    }
    mrc = mbedtls_pk_parse_keyfile(&id->key, config->key_path, NULL, mbedtls_psa_get_random,
                                   MBEDTLS_PSA_RANDOM_STATE);
    if (mrc != 0) {
        describe(mrc, why, sizeof why);
        snprintf(err, err_size, "private key %s: %s", config->key_path, why);
        goto fail;
    }
    mrc = mbedtls_pk_check_pair(&id->chain.pk, &id->key, mbedtls_psa_get_random,
                                MBEDTLS_PSA_RANDOM_STATE);
    if (mrc != 0) {
        snprintf(err, err_size, "private key %s does not match certificate %s", config->key_path,
                 config->cert_path);
        goto fail;
    }
    if (check_chain(config, &id->chain, err, err_size) != 0)
        goto fail;
    id->older = current_identity;
    current_identity = id;
    if (id->older) {
        /* A new certificate: tickets issued under the old one must not resume, or a device
         * would keep trusting the old certificate's verification for the new one. */
        tls_free_tickets();
        tickets_setup();
    }
    return 0;

fail:
    identity_free(id);
    return -1;
}

void tls_free_identities(void)
{
    while (current_identity) {
        tls_identity *older = current_identity->older;
        identity_free(current_identity);
        current_identity = older;
    }
}

void tls_fill_creation_info(struct lws_context_creation_info *info, const daemon_config *config)
{
    info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info->ssl_cert_filepath = config->cert_path;
    info->ssl_private_key_filepath = config->key_path;
    /* The same policy in the creation info, for an lws backend that honours it (OpenSSL). */
    info->ssl_cipher_list = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
                            "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256";
    info->tls1_3_plus_cipher_list = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                                    "TLS_AES_128_GCM_SHA256";
    /* HTTP/1.1 only: lws ignores rx flow control on HTTP/2 streams, and outpostd's
     * backpressure depends on it. */
    info->alpn = "http/1.1";
}

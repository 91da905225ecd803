#include "tls.h"

#include <stdio.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

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
    return 0;
}

static void describe(int mbedtls_rc, char *out, size_t out_size)
{
    mbedtls_strerror(mbedtls_rc, out, out_size);
}

int tls_check_files(const daemon_config *config, char *err, size_t err_size)
{
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    char why[160];
    int rc = -1;
    int mrc;

    mbedtls_x509_crt_init(&cert);
    mbedtls_pk_init(&key);
    mrc = mbedtls_x509_crt_parse_file(&cert, config->cert_path);
    if (mrc != 0) {
        describe(mrc, why, sizeof why);
        snprintf(err, err_size, "certificate %s: %s", config->cert_path, why);
        goto done;
    }
    mrc = mbedtls_pk_parse_keyfile(&key, config->key_path, NULL, mbedtls_psa_get_random,
                                   MBEDTLS_PSA_RANDOM_STATE);
    if (mrc != 0) {
        describe(mrc, why, sizeof why);
        snprintf(err, err_size, "private key %s: %s", config->key_path, why);
        goto done;
    }
    mrc = mbedtls_pk_check_pair(&cert.pk, &key, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
    if (mrc != 0) {
        snprintf(err, err_size, "private key %s does not match certificate %s", config->key_path,
                 config->cert_path);
        goto done;
    }
    mbedtls_x509_crt_free(&cert);
    mbedtls_x509_crt_init(&cert);
    mrc = mbedtls_x509_crt_parse_file(&cert, config->ca_path);
    if (mrc != 0) {
        describe(mrc, why, sizeof why);
        snprintf(err, err_size, "CA certificate %s: %s", config->ca_path, why);
        goto done;
    }
    rc = 0;

done:
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&cert);
    return rc;
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

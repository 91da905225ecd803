/*
 * Operating outpostd: the health check (/healthz), the Prometheus metrics (/metrics, only for
 * the addresses [metrics] allow names), the counters behind them, and reloading certificates and
 * configuration on SIGHUP. docs/operations.md, "Monitoring" and "Certificate renewal".
 * Everything here runs on the service thread.
 */
#ifndef OUTPOSTD_OPS_H
#define OUTPOSTD_OPS_H

#include <stdbool.h>

#include "http.h"
#include "job.h"
#include "server.h"

/* Counts what a finished store job did (service thread, before the job goes to its session). */
void ops_job_done(const job *j);

/* A TLS handshake failed (tls.c). */
void ops_tls_handshake_failed(void);
/* The revocation sweep's store answer (on PostgreSQL also sent with no device: a probe), for
 * /healthz: an I/O error makes the store unhealthy, an answer healthy again. */
void ops_store_probed(int rc, const char *why);

/* A TLS handshake completed; one resumed a session from a ticket (tls.c). */
void ops_tls_handshake_done(void);
void ops_tls_handshake_resumed(void);

/* An address was locked out after failed authentications. */
void ops_lockout(void);

/* Answers /healthz and /metrics. Returns true when path is one of them (*out_rc then holds the
 * result for the http callback: 0, or -1 to drop the connection), false otherwise. */
bool ops_serve(server *srv, http_request *req, const char *path, int *out_rc);

/* Re-reads the config file: a new certificate and key serve every new TLS handshake (open
 * sessions keep theirs), the log level and the metrics allow list change at once; settings
 * that need a restart are named in the log. A config or certificate that does not load leaves
 * everything as it was. */
void ops_reload(server *srv);

#endif /* OUTPOSTD_OPS_H */

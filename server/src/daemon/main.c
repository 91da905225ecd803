/*
 * outpostd: the Outpost sync server. `outpostd --config FILE`.
 *
 * One TLS port serves wss://HOST:PORT/sync (subprotocol outpost.1) for devices and HTTPS for
 * people. See server/outpostd.example.ini for every setting.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <psa/crypto.h>
#include <sqlite3.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "outpost_build_id.h"
#include "outpost_version.h"
#include "server.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: outpostd --config FILE\n"
                 "       outpostd --version\n"
                 "  Runs the Outpost sync server described by FILE (an INI file; see\n"
                 "  server/outpostd.example.ini). Stops cleanly on SIGINT or SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    daemon_config config;
    char err[4096];

    /* The store, its -wal and -shm, and anything else outpostd makes hold every team's records
     * and the supervisors' password hashes: readable by this user only. */
    umask(077);
    /* SQLite's memory statistics take a global mutex on every allocation; outpostd never reads
     * them (before any other SQLite call). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("outpostd %s (build %s)\n", OUTPOST_VERSION_STRING, OUTPOST_BUILD_ID);
            return 0;
        } else {
            fprintf(stderr, "outpostd: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!config_path) {
        usage(stderr);
        return 2;
    }
    if (config_load(config_path, &config, err, sizeof err) != 0) {
        fprintf(stderr, "outpostd: %s\n", err);
        return 1;
    }
    log_set_level(config.log_level);
    log_route_lws();
    db_set_log(log_store_line);
    db_set_application_name("outpostd");
    /* mbedTLS 3.6 needs PSA crypto initialised for TLS 1.3 and for key checks. */
    if (psa_crypto_init() != PSA_SUCCESS) {
        fprintf(stderr, "outpostd: psa_crypto_init failed\n");
        return 1;
    }
    return server_run(&config);
}

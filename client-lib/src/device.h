/* Device credentials stored in the replica (table _outpost_device). Internal. */
#ifndef OUTPOST_DEVICE_H
#define OUTPOST_DEVICE_H

#include <stdint.h>

#include "outpost.h"

typedef struct device_credentials {
    char device_id[40];
    uint8_t secret[32];
    char *url;    /* sqlite3_malloc'd */
    char *ca_pem; /* sqlite3_malloc'd: the CA every connection is verified against */
} device_credentials;

/* Stores credentials in one transaction; OUTPOST_EEXISTS when the replica is enrolled already. */
int device_credentials_save(outpost_replica *r, const device_credentials *c);

/* Loads them; OUTPOST_ENOTENROLLED when there are none. Clear with device_credentials_clear. */
int device_credentials_load(outpost_replica *r, device_credentials *out);

/* Frees the strings and wipes the secret. NULL is a no-op. */
void device_credentials_clear(device_credentials *c);

#endif /* OUTPOST_DEVICE_H */

/*
 * The field app's files from client-lib/cli/field-web/, embedded at build time
 * (cmake/embed_web.cmake writes field_assets.c into the build tree), at URL paths "/index.html",
 * "/app.js", ... below the run's token.
 */
#ifndef OUTPOST_FIELD_ASSETS_H
#define OUTPOST_FIELD_ASSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct web_asset {
    const char *path; /* "/app.js" */
    const char *content_type;
    const uint8_t *data;
    size_t n_bytes;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif /* OUTPOST_FIELD_ASSETS_H */

/*
 * A table of web files embedded at build time: cmake/embed_web.cmake writes a C file that
 * defines web_assets[] and web_assets_count from a directory of files (outpostd's dashboard
 * from server/web/, the CLI's field app from client-lib/cli/field-web/). Each program links
 * one such table.
 */
#ifndef OUTPOST_WEB_ASSET_H
#define OUTPOST_WEB_ASSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct web_asset {
    const char *path; /* the URL path: "/dashboard/app.js", "/app.js" */
    const char *content_type;
    const uint8_t *data;
    size_t n_bytes;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif /* OUTPOST_WEB_ASSET_H */

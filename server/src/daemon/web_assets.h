/*
 * The dashboard's files from server/web/, embedded at build time (cmake/embed_web.cmake writes
 * web_assets.c into the build tree).
 */
#ifndef OUTPOSTD_WEB_ASSETS_H
#define OUTPOSTD_WEB_ASSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct web_asset {
    const char *path; /* "/dashboard/app.js" */
    const char *content_type;
    const uint8_t *data;
    size_t n_bytes;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif /* OUTPOSTD_WEB_ASSETS_H */

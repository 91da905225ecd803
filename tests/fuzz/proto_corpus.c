/*
 * Writes and checks the artefacts made from the example messages, so they always match the
 * code: the fuzz seed corpus (tests/fuzz/corpus/proto/) and the hex dumps in docs/protocol.md.
 *
 *   proto_corpus write DIR      write the seed files into DIR
 *   proto_corpus markdown       print the hex dump section of docs/protocol.md
 *   proto_corpus                (as a test) check both against $OUTPOST_SOURCE_DIR
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/proto.h"
#include "unit/proto_examples.h"

typedef struct seed {
    char name[64];
    proto_buf bytes;
} seed;

#define SEED(name, literal) {name, literal, sizeof(literal) - 1}

/* Malformed inputs, one per class of error the decoder must survive. */
static const struct {
    const char *name;
    const char *bytes;
    size_t len;
} malformed[] = {
    SEED("bad-bomb-array32", "\xdd\xff\xff\xff\xff"),
    SEED("bad-bomb-array16m", "\xdd\x00\xff\xff\xff"),
    SEED("bad-bomb-str32", "\xdb\xff\xff\xff\xff"),
    SEED("bad-reserved-c1", "\x81\xa1t\xc1"),
    SEED("bad-deep", "\x81\xa1x\x91\x91\x91\x91\x91\x91\x91\x91\x91\xc0"),
    SEED("bad-unknown-type", "\x81\xa1t\x63"),
    SEED("bad-wrong-type", "\x83\xa1t\x08\xa3" "cur\xa1x\xa3lim\x01"),
    SEED("bad-not-a-map", "\x92\x01\x02"),
    SEED("bad-update-order", "\x87\xa1t\x06\xa3seq\x01\xa3hlc\x01\xa2sv\x01\xa5" "chunk\x00\xa4more\xc2"
                         "\xa6tables\x91\x83\xa4name\xa1x\xa4ncol\x04\xa7" "changes\x91\x93\x02"
                         "\x82\x02\x01\x01\x01\x80"),
};

enum { N_MALFORMED = sizeof malformed / sizeof malformed[0] };

/* dir + "/" + name into out; false when it does not fit. */
static bool join_path(char *out, size_t out_size, const char *dir, const char *name)
{
    int n = snprintf(out, out_size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < out_size;
}

static int append(proto_buf *buf, const void *data, size_t len)
{
    if (buf->cap - buf->len < len) {
        size_t cap = buf->len + len + 64;
        uint8_t *grown = realloc(buf->data, cap);
        if (grown == NULL)
            return -1;
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

/* All seeds: each example, a truncated and a trailing-byte copy of PUSH, then the malformed
 * list. Returns the count, or -1. */
static int make_seeds(seed *seeds, int max)
{
    int n = 0;
    for (size_t i = 0; i < proto_example_count() && n < max; i++, n++) {
        snprintf(seeds[n].name, sizeof seeds[n].name, "msg-%s", proto_example_name(i));
        seeds[n].bytes = (proto_buf){0};
        if (proto_encode(proto_example(i), &seeds[n].bytes) != PROTO_OK)
            return -1;
    }
    if (n + 2 + N_MALFORMED > max)
        return -1;
    const seed *push = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(seeds[i].name, "msg-push") == 0)
            push = &seeds[i];
    if (push == NULL)
        return -1;
    seeds[n] = (seed){.name = "bad-truncated-push"};
    if (append(&seeds[n].bytes, push->bytes.data, push->bytes.len / 2) != 0)
        return -1;
    n++;
    seeds[n] = (seed){.name = "bad-trailing-push"};
    if (append(&seeds[n].bytes, push->bytes.data, push->bytes.len) != 0 ||
        append(&seeds[n].bytes, "\xc0", 1) != 0)
        return -1;
    n++;
    for (size_t i = 0; i < N_MALFORMED; i++, n++) {
        seeds[n] = (seed){0};
        snprintf(seeds[n].name, sizeof seeds[n].name, "%s", malformed[i].name);
        if (append(&seeds[n].bytes, malformed[i].bytes, malformed[i].len) != 0)
            return -1;
    }
    return n;
}

static void free_seeds(seed *seeds, int n)
{
    for (int i = 0; i < n; i++)
        proto_buf_free(&seeds[i].bytes);
}

static int write_seeds(const char *dir, const seed *seeds, int n)
{
    for (int i = 0; i < n; i++) {
        char path[4096];
        FILE *f = join_path(path, sizeof path, dir, seeds[i].name) ? fopen(path, "wb") : NULL;
        if (f == NULL || fwrite(seeds[i].bytes.data, 1, seeds[i].bytes.len, f) !=
                             seeds[i].bytes.len) {
            perror(path);
            if (f != NULL)
                fclose(f);
            return 1;
        }
        if (fclose(f) != 0)
            return 1;
    }
    return 0;
}

/* Reads a whole file into buf; 0 on success. */
static int read_file(const char *path, proto_buf *buf)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    char chunk[4096];
    size_t got;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = append(buf, chunk, got);
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

static int check_seeds(const char *dir, const seed *seeds, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        proto_buf have = {0};
        if (!join_path(path, sizeof path, dir, seeds[i].name) || read_file(path, &have) != 0 || have.len != seeds[i].bytes.len ||
            memcmp(have.data, seeds[i].bytes.data, have.len) != 0) {
            fprintf(stderr, "seed %s is missing or stale: run proto_corpus write %s\n", path,
                    dir);
            bad = 1;
        }
        proto_buf_free(&have);
    }
    return bad;
}

/* hexdump -C style lines into out. */
static int hex_dump(const proto_buf *bytes, proto_buf *out)
{
    for (size_t off = 0; off < bytes->len; off += 16) {
        char line[96];
        int pos = snprintf(line, sizeof line, "%08zx ", off);
        for (size_t i = 0; i < 16; i++) {
            if (i == 8)
                pos += snprintf(line + pos, sizeof line - (size_t)pos, " ");
            if (off + i < bytes->len)
                pos += snprintf(line + pos, sizeof line - (size_t)pos, " %02x",
                                bytes->data[off + i]);
            else
                pos += snprintf(line + pos, sizeof line - (size_t)pos, "   ");
        }
        pos += snprintf(line + pos, sizeof line - (size_t)pos, "  |");
        for (size_t i = 0; i < 16 && off + i < bytes->len; i++) {
            uint8_t c = bytes->data[off + i];
            line[pos++] = (char)(c >= 0x20 && c < 0x7f ? c : '.');
        }
        pos += snprintf(line + pos, sizeof line - (size_t)pos, "|\n");
        if (append(out, line, (size_t)pos) != 0)
            return -1;
    }
    return 0;
}

/* The markdown docs/protocol.md embeds: one fenced hex dump per example message. */
static int markdown(const seed *seeds, proto_buf *out)
{
    for (size_t i = 0; i < proto_example_count(); i++) {
        char head[128];
        int n = snprintf(head, sizeof head, "%s#### `%s` (%zu bytes)\n\n```\n",
                         i > 0 ? "\n" : "", proto_example_name(i), seeds[i].bytes.len);
        if (append(out, head, (size_t)n) != 0 || hex_dump(&seeds[i].bytes, out) != 0 ||
            append(out, "```\n", 4) != 0)
            return -1;
    }
    return 0;
}

static int check_docs(const char *path, const seed *seeds)
{
    proto_buf docs = {0}, want = {0};
    int bad = 0;
    if (read_file(path, &docs) != 0 || append(&docs, "", 1) != 0 ||
        markdown(seeds, &want) != 0 || append(&want, "", 1) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        bad = 1;
    } else if (strstr((const char *)docs.data, (const char *)want.data) == NULL) {
        fprintf(stderr, "%s: hex dumps are stale: replace them with `proto_corpus markdown`\n",
                path);
        bad = 1;
    }
    proto_buf_free(&docs);
    proto_buf_free(&want);
    return bad;
}

int main(int argc, char **argv)
{
    seed seeds[64];
    int n = make_seeds(seeds, 64);
    if (n < 0) {
        fprintf(stderr, "proto_corpus: cannot build the seeds\n");
        return 1;
    }
    int rc = 0;
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        rc = write_seeds(argv[2], seeds, n);
    } else if (argc == 2 && strcmp(argv[1], "markdown") == 0) {
        proto_buf out = {0};
        rc = markdown(seeds, &out) != 0 || fwrite(out.data, 1, out.len, stdout) != out.len;
        proto_buf_free(&out);
    } else if (argc == 1) {
        const char *src = getenv("OUTPOST_SOURCE_DIR");
        char dir[4096], docs[4096];
        if (src == NULL)
            src = ".";
        if (!join_path(dir, sizeof dir, src, "tests/fuzz/corpus/proto") ||
            !join_path(docs, sizeof docs, src, "docs/protocol.md")) {
            fprintf(stderr, "proto_corpus: OUTPOST_SOURCE_DIR too long\n");
            free_seeds(seeds, n);
            return 1;
        }
        rc = check_seeds(dir, seeds, n) | check_docs(docs, seeds);
        if (rc == 0)
            printf("proto_corpus: %d seeds and the docs' hex dumps match the code\n", n);
    } else {
        fprintf(stderr, "usage: proto_corpus [write DIR | markdown]\n");
        rc = 2;
    }
    free_seeds(seeds, n);
    return rc;
}

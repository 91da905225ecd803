/*
 * The replay half of a fuzz target: main() feeds every file of the target's seed corpus (or of
 * the directories given) through LLVMFuzzerTestOneInput, which is how ctest runs the targets
 * without a fuzzer. Linked into a target that defines FUZZ_NAME and FUZZ_CORPUS (the corpus
 * directory under tests/fuzz/corpus/). Not part of the libFuzzer build, which has its own main.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the target"
#endif
#ifndef FUZZ_CORPUS
#error "FUZZ_CORPUS must name the corpus directory"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *grown = realloc(data, cap);
            if (grown == NULL) {
                rc = -1;
                break;
            }
            data = grown;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        rc = -1;
    fclose(f);
    if (rc == 0)
        LLVMFuzzerTestOneInput(data, len);
    free(data);
    return rc;
}

static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return -1;
    }
    long n = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char path[4096];
        int w = snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        if (w < 0 || (size_t)w >= sizeof path || replay_file(path) != 0) {
            n = -1;
            break;
        }
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    char default_dir[4096];
    const char *dirs[64];
    int n_dirs = 0;
    for (int i = 1; i < argc && n_dirs < 64; i++)
        dirs[n_dirs++] = argv[i];
    if (n_dirs == 0) {
        const char *src = getenv("OUTPOST_SOURCE_DIR");
        int w = snprintf(default_dir, sizeof default_dir, "%s/tests/fuzz/corpus/%s",
                         src != NULL ? src : ".", FUZZ_CORPUS);
        if (w < 0 || (size_t)w >= sizeof default_dir)
            return 1;
        dirs[n_dirs++] = default_dir;
    }
    long total = 0;
    for (int i = 0; i < n_dirs; i++) {
        long n = replay_dir(dirs[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "%s: no inputs found\n", FUZZ_NAME);
        return 1;
    }
    printf("%s: replayed %ld inputs\n", FUZZ_NAME, total);
    return 0;
}

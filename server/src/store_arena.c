#include "store_arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { ARENA_BLOCK_MIN = 16 * 1024 };

struct store_arena_block {
    store_arena_block *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

void *store_arena_alloc(store_arena *arena, size_t n)
{
    const size_t align = alignof(max_align_t);
    size_t need = (n + align - 1) / align * align;
    if (need < n)
        return NULL;
    store_arena_block *b = arena->head;
    if (b == NULL || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK_MIN ? need : ARENA_BLOCK_MIN;
        if (cap > SIZE_MAX - sizeof(store_arena_block))
            return NULL;
        b = malloc(sizeof(store_arena_block) + cap);
        if (b == NULL)
            return NULL;
        b->next = arena->head;
        b->used = 0;
        b->cap = cap;
        arena->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *store_arena_dup(store_arena *arena, const void *data, size_t n)
{
    void *p = store_arena_alloc(arena, n);
    if (p != NULL && n > 0)
        memcpy(p, data, n);
    return p;
}

char *store_arena_strdup(store_arena *arena, const char *s)
{
    return store_arena_dup(arena, s, strlen(s) + 1);
}

void store_arena_free(store_arena *arena)
{
    if (arena == NULL)
        return;
    store_arena_block *b = arena->head;
    while (b != NULL) {
        store_arena_block *next = b->next;
        free(b);
        b = next;
    }
    arena->head = NULL;
}

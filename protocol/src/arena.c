/*
 * The arena a decoded message lives in: chunks from malloc, bump-allocated, freed together.
 *
 * Chunks grow geometrically from a small first one, so a small message costs one small block
 * and a large one wastes at most about half of its last chunk.
 */
#include "proto_internal.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST_CHUNK 1024u
#define ARENA_MAX_GROWTH (256u * 1024u)
#define ARENA_ALIGN (alignof(max_align_t))

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
} arena_chunk;

struct proto_arena {
    arena_chunk *head; /* chunk being filled; older ones follow */
    size_t next_size;
};

/* The header is rounded up so the first byte after it is aligned for any type. */
static size_t chunk_header_size(void)
{
    return (sizeof(arena_chunk) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

static unsigned char *chunk_data(arena_chunk *chunk)
{
    return (unsigned char *)chunk + chunk_header_size();
}

static arena_chunk *chunk_new(size_t size)
{
    if (size > SIZE_MAX - chunk_header_size())
        return NULL;
    arena_chunk *chunk = malloc(chunk_header_size() + size);
    if (chunk == NULL)
        return NULL;
    chunk->next = NULL;
    chunk->size = size;
    chunk->used = 0;
    return chunk;
}

proto_arena *proto_arena_new(void)
{
    arena_chunk *first = chunk_new(ARENA_FIRST_CHUNK);
    if (first == NULL)
        return NULL;
    /* The arena's own header is the first allocation in its first chunk. */
    proto_arena *arena = (proto_arena *)chunk_data(first);
    first->used = (sizeof(proto_arena) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    arena->head = first;
    arena->next_size = ARENA_FIRST_CHUNK * 2u;
    return arena;
}

void proto_arena_free(proto_arena *arena)
{
    if (arena == NULL)
        return;
    arena_chunk *chunk = arena->head; /* the arena itself dies with the last chunk */
    while (chunk != NULL) {
        arena_chunk *next = chunk->next;
        free(chunk);
        chunk = next;
    }
}

void *proto_arena_alloc(proto_arena *arena, size_t size)
{
    if (size > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (rounded == 0)
        rounded = ARENA_ALIGN;
    arena_chunk *chunk = arena->head;
    if (chunk->size - chunk->used < rounded) {
        size_t want = rounded > arena->next_size ? rounded : arena->next_size;
        arena_chunk *fresh = chunk_new(want);
        if (fresh == NULL)
            return NULL;
        /* The arena header lives in the first chunk, which stays on the list; keep the
         * current chunk first only if it still has more room than the fresh one. */
        if (chunk->size - chunk->used > want - rounded) {
            fresh->next = chunk->next;
            chunk->next = fresh;
        } else {
            fresh->next = chunk;
            arena->head = fresh;
        }
        if (arena->next_size < ARENA_MAX_GROWTH)
            arena->next_size *= 2u;
        chunk = fresh;
    }
    void *p = chunk_data(chunk) + chunk->used;
    chunk->used += rounded;
    memset(p, 0, rounded);
    return p;
}

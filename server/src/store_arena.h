/*
 * A bump allocator for the values one push or pull handles: rows read from SQLite, primary
 * keys, conflict records. Everything is freed at once when the reply has been encoded.
 */
#ifndef OUTPOST_STORE_ARENA_H
#define OUTPOST_STORE_ARENA_H

#include <stddef.h>

typedef struct store_arena_block store_arena_block;

typedef struct store_arena {
    store_arena_block *head; /* newest block first */
} store_arena;

/* Returns n bytes aligned for any scalar type, or NULL when out of memory. n may be 0. */
void *store_arena_alloc(store_arena *arena, size_t n);

/* Copies n bytes (or a NUL-terminated string) into the arena. NULL when out of memory. */
void *store_arena_dup(store_arena *arena, const void *data, size_t n);
char *store_arena_strdup(store_arena *arena, const char *s);

/* Frees every block; the arena is empty and reusable. NULL is a no-op. */
void store_arena_free(store_arena *arena);

#endif /* OUTPOST_STORE_ARENA_H */

/*
 * Where a JSON text goes wrong: the line and column of its first syntax error, so that the
 * field app can point at a broken form file (SQLite's json_valid() says only yes or no).
 */
#ifndef OUTPOST_CLI_JSON_WHERE_H
#define OUTPOST_CLI_JSON_WHERE_H

#include <stdbool.h>

/* Checks text (RFC 8259, one value, NUL-terminated). Returns true when it is valid; otherwise
 * false with the 1-based line and column (in bytes) of the first byte that cannot continue it. */
bool json_where(const char *text, int *out_line, int *out_column);

#endif /* OUTPOST_CLI_JSON_WHERE_H */

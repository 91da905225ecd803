/* What the canary tests search a replica's files for: markers in UTF-8 and UTF-16. */
#ifndef OUTPOST_CANARY_TEXT_H
#define OUTPOST_CANARY_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* UTF-8 (BMP only, as the markers are) to UTF-16 in the given byte order into out (at least
 * twice strlen(utf8) bytes); returns the byte count. */
size_t canary_utf16(const char *utf8, uint8_t *out, bool big_endian);

/* Whether needle occurs in hay. The anchor is the needle's first nonzero byte, so UTF-16BE
 * needles do not stop at every zero byte of a file. */
bool canary_contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t len);

#endif /* OUTPOST_CANARY_TEXT_H */

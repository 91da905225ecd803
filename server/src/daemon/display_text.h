/*
 * Text a device supplies for people to read (its enrollment name, the app version and last
 * error it reports in HELLO) is shown in the supervisors' dashboard and exports. It is kept
 * only after cleaning: valid UTF-8, no control characters and no bidirectional overrides that
 * could make one device's line read like another's, and no longer than its field.
 */
#ifndef OUTPOST_DISPLAY_TEXT_H
#define OUTPOST_DISPLAY_TEXT_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. s is NUL-terminated. */
size_t utf8_seq_len(const unsigned char *s);

/* Copies src into dst (dst_size > 0, always NUL-terminated), whole characters only: an invalid
 * byte becomes U+FFFD, a control character (C0, DEL, C1) a space, and a bidirectional
 * embedding, override or isolate (U+202A..U+202E, U+2066..U+2069) is dropped. NULL src gives "". */
void display_text_clean(char *dst, size_t dst_size, const char *src);

#endif

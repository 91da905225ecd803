#include "display_text.h"

#include <stdbool.h>
#include <string.h>

size_t utf8_seq_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0; /* overlong, or a UTF-16 surrogate */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

static unsigned decode_at(const unsigned char *p, size_t n)
{
    switch (n) {
    case 2: return (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu);
    case 3: return (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
    case 4:
        return (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 | (p[3] & 0x3fu);
    default: return p[0];
    }
}

static bool is_bidi_control(unsigned cp)
{
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void display_text_clean(char *dst, size_t dst_size, const char *src)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t out = 0;

    while (*p) {
        size_t n = utf8_seq_len(p);
        const char *piece = (const char *)p;
        size_t piece_len = n;
        char space = ' ';
        if (n == 0) {
            piece = replacement;
            piece_len = 3;
            n = 1;
        } else {
            unsigned cp = decode_at(p, n);
            if (is_bidi_control(cp)) {
                p += n;
                continue;
            }
            if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
                piece = &space;
                piece_len = 1;
            }
        }
        if (out + piece_len + 1 > dst_size)
            break;
        memcpy(dst + out, piece, piece_len);
        out += piece_len;
        p += n;
    }
    dst[out] = '\0';
}

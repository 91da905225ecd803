#include "canary_text.h"

#include <string.h>

size_t canary_utf16(const char *utf8, uint8_t *out, bool big_endian)
{
    const uint8_t *s = (const uint8_t *)utf8;
    size_t n = 0;
    while (*s) {
        uint32_t cp;
        if (s[0] < 0x80) {
            cp = s[0];
            s += 1;
        } else if ((s[0] & 0xe0) == 0xc0) {
            cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
            s += 2;
        } else {
            cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
            s += 3;
        }
        out[n + (big_endian ? 0 : 1)] = (uint8_t)(cp >> 8);
        out[n + (big_endian ? 1 : 0)] = (uint8_t)cp;
        n += 2;
    }
    return n;
}

bool canary_contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t len)
{
    size_t k = 0;
    while (k < len && needle[k] == 0)
        k++;
    if (len == 0 || k == len || hay_len < len)
        return false;
    const uint8_t *p = hay + k;
    const uint8_t *end = hay + (hay_len - len) + k + 1;
    while (p < end && (p = memchr(p, needle[k], (size_t)(end - p))) != NULL) {
        if (memcmp(p - k, needle, len) == 0)
            return true;
        p++;
    }
    return false;
}

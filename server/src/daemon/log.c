#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

static log_level max_log_level = LOG_INFO;

void log_set_level(log_level max_level)
{
    max_log_level = max_level;
}

static const char *level_name(log_level level)
{
    switch (level) {
    case LOG_ERROR: return "error";
    case LOG_WARN: return "warn";
    case LOG_INFO: return "info";
    case LOG_DEBUG: return "debug";
    }
    return "?";
}

static void log_vline(log_level level, const char *prefix, const char *fmt, va_list ap)
{
    char line[1024];
    char stamp[32];
    struct timespec now;
    struct tm utc;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    vsnprintf(line, sizeof line, fmt, ap);
    /* One fprintf per line: lines from the worker and the service thread never interleave. */
    fprintf(stderr, "%s.%03ldZ %s %s%s\n", stamp, now.tv_nsec / 1000000L, level_name(level),
            prefix, line);
}

void log_msg(log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level > max_log_level)
        return;
    va_start(ap, fmt);
    log_vline(level, "", fmt, ap);
    va_end(ap);
}

/* The texts log_limited saw lately, each with its window. */
#define REPEAT_SLOTS 16
static struct repeat_slot {
    char text[512];
    log_level level;
    time_t window_start;
    unsigned n_same, n_dropped;
} repeats[REPEAT_SLOTS];

static void flush_repeats(struct repeat_slot *r)
{
    if (r->n_dropped > 0)
        log_msg(r->level, "previous line repeated %u more times in %d s: %s", r->n_dropped,
                LOG_REPEAT_WINDOW_S, r->text);
    r->n_dropped = 0;
}

void log_limited(log_level level, const char *fmt, ...)
{
    char text[sizeof repeats[0].text];
    time_t now = time(NULL);
    struct repeat_slot *r = NULL, *oldest = &repeats[0];
    va_list ap;

    if (level > max_log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (int i = 0; i < REPEAT_SLOTS && !r; i++) {
        if (strcmp(repeats[i].text, text) == 0)
            r = &repeats[i];
        else if (repeats[i].window_start < oldest->window_start)
            oldest = &repeats[i];
    }
    if (!r) {
        flush_repeats(oldest);
        r = oldest;
        snprintf(r->text, sizeof r->text, "%s", text);
        r->level = level;
        r->window_start = now;
        r->n_same = 0;
    } else if (now - r->window_start >= LOG_REPEAT_WINDOW_S) {
        flush_repeats(r);
        r->window_start = now;
        r->n_same = 0;
    }
    if (++r->n_same > LOG_REPEAT_MAX) {
        r->n_dropped++;
        return;
    }
    log_msg(level, "%s", text);
}

/* lws formats "[YYYY/MM/DD HH:MM:SS:mmmm] W: text"; this log has its own time and level. */
static void emit_lws_line(int lws_level, const char *line)
{
    char trimmed[512];
    const char *close = line[0] == '[' ? strstr(line, "] ") : NULL;
    size_t n;

    if (close) {
        line = close + 2;
        if (line[0] != '\0' && line[1] == ':' && line[2] == ' ')
            line += 3;
    }
    n = strlen(line);

    if (n >= sizeof trimmed)
        n = sizeof trimmed - 1;
    memcpy(trimmed, line, n);
    while (n > 0 && (trimmed[n - 1] == '\n' || trimmed[n - 1] == '\r'))
        n--;
    trimmed[n] = '\0';
    /* "accept: errno 24" and the like can come a million times a second: rate-limited. */
    log_limited(lws_level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %s", trimmed);
}

void log_route_lws(void)
{
    setvbuf(stderr, NULL, _IONBF, 0);
    lws_set_log_level(LLL_ERR | LLL_WARN, emit_lws_line);
}

void log_store_line(const char *text)
{
    log_msg(LOG_WARN, "store: %s", text);
}

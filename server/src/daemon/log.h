/*
 * outpostd's log: one line per event on stderr, "TIME LEVEL message". Lines name connections,
 * devices and counts; record contents never reach a log (callers pass counts and identifiers
 * only). Thread safe: each line is written with a single fprintf on an unbuffered stream.
 */
#ifndef OUTPOSTD_LOG_H
#define OUTPOSTD_LOG_H

typedef enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;

/* Lines above max_level are dropped. The default is LOG_INFO. */
void log_set_level(log_level max_level);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like log_msg, for lines an attacker can make repeat (refused connections, accept errors):
 * within each LOG_REPEAT_WINDOW_S seconds, the first LOG_REPEAT_MAX lines with the same text
 * are written, later ones only counted, and the count is written once the window ends. Service
 * thread only. */
#define LOG_REPEAT_WINDOW_S 10
#define LOG_REPEAT_MAX 5
void log_limited(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Routes libwebsockets' own errors and warnings into this log, through log_limited. */
void log_route_lws(void);

/* The store seam's lines (db_set_log: a lost or remade PostgreSQL connection), as warnings. */
void log_store_line(const char *text);

#endif /* OUTPOSTD_LOG_H */

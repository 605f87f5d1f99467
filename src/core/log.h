/* Level-filtered logging to stderr, one line per event. */
#ifndef PARLOR_CORE_LOG_H
#define PARLOR_CORE_LOG_H

#include <stdint.h>

enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern int log_level;

/* Parses "debug"/"info"/"warn"/"error"/"off"; returns -1 when unknown. */
int log_level_parse(const char *s);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) (log_level <= LOG_DEBUG ? log_write(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...)  (log_level <= LOG_INFO ? log_write(LOG_INFO, __VA_ARGS__) : (void)0)
#define log_warn(...)  (log_level <= LOG_WARN ? log_write(LOG_WARN, __VA_ARGS__) : (void)0)
#define log_error(...) (log_level <= LOG_ERROR ? log_write(LOG_ERROR, __VA_ARGS__) : (void)0)

/* Throttled logging, for every line a client can trigger at will (refusals, limits): the first
 * occurrence at a call site is written; the next ones within LOG_THROTTLE_INTERVAL_MS are only
 * counted; the first occurrence after the interval is written with " (N more in the last S s)"
 * appended, N being the lines dropped since the previous written one, S the seconds since it.
 * So a flood costs one line per interval per call site, and nothing is silently lost (the
 * count of the last burst appears with the next occurrence, however late).
 *
 *     log_info_throttled("connection from %s refused: too many", peer);
 *
 * Each macro expansion owns one static log_throttle_t: the state is per call site, not
 * per message text. A state is not locked: a call site MUST only run on one thread (in
 * Parlor, the loop thread); give each thread its own call site otherwise. */
#define LOG_THROTTLE_INTERVAL_MS 10000

typedef struct log_throttle {
    int64_t last_ms;     /* monotonic time of the last written line; 0 before the first */
    uint64_t suppressed; /* occurrences dropped since then */
} log_throttle_t;

/* The decision, pure for tests: returns 1 if the occurrence at `now_ms` (monotonic, > 0) is to
 * be written, and then sets *dropped to the occurrences dropped since the previous written one
 * and *since_ms to the time since it (0 and 0 for the first); returns 0 (and counts it) if not. */
int log_throttle_admit(log_throttle_t *t, int64_t now_ms, uint64_t *dropped, int64_t *since_ms);
/* log_write at `level` through `t`; prefer the macros below. */
void log_write_throttled(log_throttle_t *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_THROTTLED_(level, ...)                                                                 \
    do {                                                                                           \
        static log_throttle_t log_throttle_site_;                                                  \
        if (log_level <= (level)) log_write_throttled(&log_throttle_site_, (level), __VA_ARGS__);  \
    } while (0)
#define log_debug_throttled(...) LOG_THROTTLED_(LOG_DEBUG, __VA_ARGS__)
#define log_info_throttled(...)  LOG_THROTTLED_(LOG_INFO, __VA_ARGS__)
#define log_warn_throttled(...)  LOG_THROTTLED_(LOG_WARN, __VA_ARGS__)
#define log_error_throttled(...) LOG_THROTTLED_(LOG_ERROR, __VA_ARGS__)

#endif

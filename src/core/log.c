/* Level-filtered logging: timestamped lines on stderr, written with one call so lines from
 * several threads do not interleave. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

/* Formats one line (timestamp, level, message, optional suffix) and writes it with one call. */
static void log_vwrite(int level, const char *suffix, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level]);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    if (suffix && *suffix) {
        size_t sl = strlen(suffix);
        if (sl > sizeof line - 2 - len) sl = sizeof line - 2 - len;
        memcpy(line + len, suffix, sl);
        len += sl;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, NULL, fmt, ap);
    va_end(ap);
}

int log_throttle_admit(log_throttle_t *t, int64_t now_ms, uint64_t *dropped, int64_t *since_ms)
{
    if (t->last_ms != 0 && now_ms - t->last_ms < LOG_THROTTLE_INTERVAL_MS) {
        t->suppressed++;
        return 0;
    }
    *dropped = t->suppressed;
    *since_ms = t->last_ms != 0 ? now_ms - t->last_ms : 0;
    t->suppressed = 0;
    t->last_ms = now_ms;
    return 1;
}

void log_write_throttled(log_throttle_t *t, int level, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* +1 keeps 0 meaning "never written" even on a clock that starts at 0. */
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
    uint64_t dropped;
    int64_t since_ms;
    if (!log_throttle_admit(t, now_ms, &dropped, &since_ms)) return;
    char suffix[64] = "";
    if (dropped > 0)
        snprintf(suffix, sizeof suffix, " (%llu more in the last %lld s)",
                 (unsigned long long)dropped, (long long)((since_ms + 999) / 1000));
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, suffix, fmt, ap);
    va_end(ap);
}

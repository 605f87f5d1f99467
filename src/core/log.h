/* Level-filtered logging to stderr, one line per event. */
#ifndef PARLOR_CORE_LOG_H
#define PARLOR_CORE_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern int log_level;

/* Parses "debug"/"info"/"warn"/"error"/"off"; returns -1 when unknown. */
int log_level_parse(const char *s);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) (log_level <= LOG_DEBUG ? log_write(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...)  (log_level <= LOG_INFO ? log_write(LOG_INFO, __VA_ARGS__) : (void)0)
#define log_warn(...)  (log_level <= LOG_WARN ? log_write(LOG_WARN, __VA_ARGS__) : (void)0)
#define log_error(...) (log_level <= LOG_ERROR ? log_write(LOG_ERROR, __VA_ARGS__) : (void)0)

#endif

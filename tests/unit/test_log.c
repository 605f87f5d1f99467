/* Unit tests for the throttled log: first occurrence written, the rest of the interval counted,
 * the count reported with the next written line. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "unit.h"

static void test_admit_decisions(void)
{
    log_throttle_t t = {0};
    uint64_t dropped = 99;
    int64_t since = 99;
    CHECK_EQ_INT(log_throttle_admit(&t, 1000, &dropped, &since), 1); /* first: written */
    CHECK_EQ_INT(dropped, 0);
    CHECK_EQ_INT(since, 0);
    for (int i = 0; i < 500; i++) /* within the interval: counted only */
        CHECK_EQ_INT(log_throttle_admit(&t, 1000 + i * 10, &dropped, &since), 0);
    CHECK_EQ_INT(t.suppressed, 500);
    CHECK_EQ_INT(log_throttle_admit(&t, 1000 + LOG_THROTTLE_INTERVAL_MS - 1, &dropped, &since), 0);
    CHECK_EQ_INT(log_throttle_admit(&t, 1000 + LOG_THROTTLE_INTERVAL_MS, &dropped, &since), 1);
    CHECK_EQ_INT(dropped, 501);
    CHECK_EQ_INT(since, LOG_THROTTLE_INTERVAL_MS);
    /* A quiet hour later: written at once, with nothing dropped. */
    CHECK_EQ_INT(log_throttle_admit(&t, 3600000, &dropped, &since), 1);
    CHECK_EQ_INT(dropped, 0);
}

/* Captures stderr into a temporary file while fn runs; returns its contents (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/parlor-test-log-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)size + 1);
    if (pread(fd, out, (size_t)size, 0) < 0) out[0] = 0;
    close(fd);
    unlink(path);
    return out;
}

static void flood_one_site(void)
{
    for (int i = 0; i < 20000; i++) log_info_throttled("refused %d", i);
}

static void flood_two_sites(void)
{
    for (int i = 0; i < 100; i++) {
        log_warn_throttled("site a %d", i);
        log_warn_throttled("site b %d", i);
    }
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_flood_writes_one_line_per_site(void)
{
    log_level = LOG_INFO;
    char *out = capture_stderr(flood_one_site);
    CHECK_EQ_INT(count_lines(out), 1); /* 20,000 occurrences, one line */
    CHECK(strstr(out, "refused 0\n") != NULL);
    free(out);
    out = capture_stderr(flood_two_sites);
    CHECK_EQ_INT(count_lines(out), 2); /* each call site has its own state */
    CHECK(strstr(out, "site a 0") != NULL);
    CHECK(strstr(out, "site b 0") != NULL);
    free(out);
}

static void below_level(void)
{
    log_info_throttled("not shown");
}

static void test_level_filter(void)
{
    log_level = LOG_WARN;
    char *out = capture_stderr(below_level);
    CHECK_EQ_INT(count_lines(out), 0);
    free(out);
    log_level = LOG_INFO;
}

static log_throttle_t suffix_state;
static void suffix_line(void)
{
    /* The state says 7 lines were dropped since one written 12 s ago: this one is written
     * with the count. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    suffix_state.last_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1 - 12000;
    suffix_state.suppressed = 7;
    log_write_throttled(&suffix_state, LOG_INFO, "refused %s", "x");
}

static void test_suffix_reports_count(void)
{
    char *out = capture_stderr(suffix_line);
    CHECK(strstr(out, "refused x (7 more in the last 12 s)\n") != NULL);
    CHECK_EQ_INT(suffix_state.suppressed, 0);
    free(out);
}

int main(void)
{
    RUN(test_admit_decisions);
    RUN(test_flood_writes_one_line_per_site);
    RUN(test_level_filter);
    RUN(test_suffix_reports_count);
    return UNIT_DONE();
}

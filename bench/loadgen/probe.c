/* `loadgen fsync DIR`: this disk's durability floor, for reading the latency of a server that
 * commits each message before it answers. --count times: a 4 KiB pwrite appended to a fresh
 * file in DIR (as a growing WAL is) and fdatasync, each pair timed. DIR should be the server's
 * data directory, so that the file lives on the same filesystem as the server's data. */
#define _GNU_SOURCE
#include "loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_BLOCK 4096

int fsync_probe(const lg_config_t *cfg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.loadgen-fsync-probe.%d", cfg->dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "loadgen: fsync: %s: %s\n", path, strerror(errno));
        return 2;
    }
    static char block[PROBE_BLOCK];
    memset(block, 'p', sizeof block);
    hist_t *h = calloc(1, sizeof *h);
    if (!h) return 1;
    int rc = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < cfg->count; i++) {
        uint64_t a = now_ns();
        if (pwrite(fd, block, sizeof block, (off_t)i * PROBE_BLOCK) != (ssize_t)sizeof block ||
            fdatasync(fd) != 0) {
            fprintf(stderr, "loadgen: fsync: %s: %s\n", path, strerror(errno));
            rc = 1;
            break;
        }
        hist_add(h, now_ns() - a);
    }
    double total_s = (double)(now_ns() - t0) / 1e9;
    close(fd);
    unlink(path);
    double p50 = (double)hist_quantile(h, 0.5) / 1e3, p99 = (double)hist_quantile(h, 0.99) / 1e3;
    double mx = (double)h->max / 1e3;
    printf("loadgen fsync: %" PRIu64 " x (%d-byte pwrite + fdatasync) in %s: p50 %.1f us, p99 "
           "%.1f us, max %.1f us (%.2f s)\n",
           h->count, PROBE_BLOCK, cfg->dir, p50, p99, mx, total_s);
    if (cfg->kv)
        printf("fsync_count=%" PRIu64 "\nfsync_p50_us=%.1f\nfsync_p99_us=%.1f\nfsync_max_us=%.1f\n",
               h->count, p50, p99, mx);
    free(h);
    return rc;
}

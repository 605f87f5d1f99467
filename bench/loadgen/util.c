/* Helpers of the load generator: clocks, latency histogram, base64, HS256 token signing. */
#include "loadgen.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t cpu_self_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

ssize_t read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -1 : (ssize_t)got;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

ssize_t write_full(int fd, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)p + done, n - done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* Values below 128 ns have a bucket each; above, 64 buckets per power of two. */
static size_t hist_index(uint64_t v)
{
    if (v >= (1ull << 41)) v = (1ull << 41) - 1;
    if (v < 128) return (size_t)v;
    int e = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
    return (size_t)(64 * e) + (size_t)(v >> e);
}

static uint64_t hist_value(size_t idx)
{
    if (idx < 128) return idx;
    int e = (int)(idx / 64) - 1;
    uint64_t m = idx - 64 * (uint64_t)e;
    return (m << e) + ((1ull << e) >> 1); /* middle of the bucket */
}

void hist_add(hist_t *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->count++;
    h->sum += ns;
    if (ns > h->max) h->max = ns;
}

void hist_merge(hist_t *into, const hist_t *from)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++) into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max) into->max = from->max;
}

uint64_t hist_quantile(const hist_t *h, double q)
{
    if (!h->count) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

size_t b64_encode(const unsigned char *in, size_t len, char *out, bool url)
{
    const char *std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *urls = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *a = url ? urls : std;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        if (!url) out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

int token_sign(const char *secret, const char *sub, char *out, size_t cap)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char claims[160];
    long now = (long)time(NULL);
    int cl = snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"iat\":%ld,\"exp\":%ld}", sub, now,
                      now + 86400);
    if (cl < 0 || (size_t)cl >= sizeof claims) return -1;
    size_t need = (sizeof header * 4 / 3 + 4) + ((size_t)cl * 4 / 3 + 4) + 48;
    if (cap < need) return -1;
    size_t n = b64_encode((const unsigned char *)header, sizeof header - 1, out, true);
    out[n++] = '.';
    n += b64_encode((const unsigned char *)claims, (size_t)cl, out + n, true);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out, n, mac,
              &maclen))
        return -1;
    out[n++] = '.';
    n += b64_encode(mac, maclen, out + n, true);
    return (int)n;
}

/* ObjectId-style id generation: seconds | per-process random | counter, as hex. */
#include "core/id.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint8_t id_process_random[5];
static _Atomic uint32_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

/* getrandom can only fail on kernels without it (ENOSYS) or before the entropy pool is ready;
 * then uniqueness still needs something that differs between processes and restarts. */
static void id_fill_random(uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    if (got == n) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    for (size_t i = got; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        p[i] = (uint8_t)x;
    }
}

static void id_reseed(void)
{
    uint8_t c[3];
    id_fill_random(id_process_random, sizeof id_process_random);
    id_fill_random(c, sizeof c);
    atomic_store(&id_counter, (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2]);
}

static void id_init(void)
{
    id_reseed();
    /* A forked child would otherwise repeat its parent's random bytes and counter. */
    pthread_atfork(NULL, NULL, id_reseed);
}

void id_generate_at(uint32_t seconds, char out[ID_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[12];

    pthread_once(&id_once, id_init);
    uint32_t count = atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed);
    raw[0] = (uint8_t)(seconds >> 24);
    raw[1] = (uint8_t)(seconds >> 16);
    raw[2] = (uint8_t)(seconds >> 8);
    raw[3] = (uint8_t)seconds;
    memcpy(raw + 4, id_process_random, 5);
    raw[9] = (uint8_t)(count >> 16);
    raw[10] = (uint8_t)(count >> 8);
    raw[11] = (uint8_t)count;
    for (int i = 0; i < 12; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[ID_LEN] = '\0';
}

void id_generate(char out[ID_SIZE])
{
    id_generate_at((uint32_t)time(NULL), out);
}

static int id_hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool id_valid(str_t s)
{
    if (s.len != ID_LEN || !s.ptr) return false;
    for (size_t i = 0; i < ID_LEN; i++)
        if (id_hex_digit(s.ptr[i]) < 0) return false;
    return true;
}

int64_t id_time(str_t s)
{
    if (!id_valid(s)) return -1;
    int64_t t = 0;
    for (size_t i = 0; i < 8; i++) t = t << 4 | id_hex_digit(s.ptr[i]);
    return t;
}

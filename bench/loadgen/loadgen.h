/* Shared types of the load generator: configuration, per-process results, histogram, token. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum lg_mode { LG_IDLE, LG_PAIRS, LG_RATE, LG_GROUPS, LG_FSYNC };

typedef struct {
    enum lg_mode mode;
    char host[64];
    int port;
    int recv_port; /* pairs, rate: receivers connect here (0: port): cross-node delivery */
    const char *secret;
    const char *path; /* Engine.IO path, "/socket.io/" */
    long conns;       /* idle: connections to open */
    long pairs;       /* pairs, rate: sender/receiver pairs */
    int window;       /* pairs: acknowledged sends in flight per sender */
    double rate;      /* rate: messages per second over all pairs; groups: per member */
    long groups;      /* groups: groups of `members` users each */
    int members;
    const char *dir;      /* fsync: directory of the probe's file */
    long count;           /* fsync: pwrite + fdatasync rounds */
    double seconds;       /* measured time */
    double warmup;        /* load before measuring */
    double hold;          /* idle: time connections are held before memory is read */
    double drain_timeout; /* time allowed for the last messages to be acknowledged and delivered */
    double connect_timeout;
    uint64_t spin_ns; /* rate: poll instead of sleeping this close to a scheduled send */
    int size;         /* bytes of message content */
    int concurrency;  /* handshakes in progress per process */
    int procs;        /* 0: one per per_proc connections */
    long per_proc;    /* connections per process when procs is automatic */
    int src_addrs;    /* -1: automatic; 0: do not bind; n: bind to 127.0.0.2 .. 127.0.0.(n+1) */
    pid_t server_pid;
    char prefix[40]; /* user ids are <prefix>s<i>, <prefix>r<i>, <prefix>i<i> */
    bool kv;         /* print key=value lines for scripts */
    int verbose;
} lg_config_t;

/* Log-linear latency histogram in nanoseconds: 64 sub-buckets per power of two (~1.5 %). */
#define HIST_SUB_BITS 6
#define HIST_BUCKETS  (64 * 36)

typedef struct {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint64_t b[HIST_BUCKETS];
} hist_t;

void hist_add(hist_t *h, uint64_t ns);
void hist_merge(hist_t *into, const hist_t *from);
uint64_t hist_quantile(const hist_t *h, double q); /* ns; 0 when empty */

/* What one worker process counted; the coordinator adds them up. */
typedef struct {
    uint64_t connected, failed, disconnected;
    uint64_t hs_first_ns, hs_last_ns; /* first handshake started, last one finished */
    uint64_t sent, acked, received;
    uint64_t received_in_window, acked_in_window;
    uint64_t err_order, err_dup, err_ack, err_seq, err_nack, err_echo, err_proto, err_lost;
    uint64_t pings;
    uint64_t late_sends; /* rate: sends more than 1 ms behind their schedule */
    uint64_t cpu_window_ns, cpu_total_ns;
    uint64_t cpu_connect_ns; /* spent while opening the connections */
    hist_t lat_recv;         /* send (or scheduled send) to delivery at the recipient */
    hist_t lat_ack;          /* send (or scheduled send) to acknowledgement at the sender */
    hist_t send_lag;         /* rate: actual send time behind schedule */
    char first_error[200];
} lg_result_t;

/* Messages between the coordinator and its workers over a socketpair. */
enum { MSG_READY = 1, MSG_GO, MSG_STOP, MSG_RESULT };

typedef struct {
    uint32_t type;
    uint64_t t_go, t_window_start, t_window_end, t_stop; /* CLOCK_MONOTONIC ns */
} lg_ctrl_t;

/* One worker's share: connections, pairs or groups [first, first+count). */
typedef struct {
    int index;
    long first, count;
    double rate;       /* this worker's share of the rate (groups: its members' sends/s) */
    char src_addr[16]; /* "" or the address to bind before connect */
} lg_slice_t;

int worker_run(const lg_config_t *cfg, const lg_slice_t *sl, int ctrl_fd, lg_result_t *res);

/* probe.c: `loadgen fsync DIR`: the disk's pwrite + fdatasync latency; returns the exit status. */
int fsync_probe(const lg_config_t *cfg);

/* HS256 JWT for `sub`, valid for a day. Returns its length, or -1. */
int token_sign(const char *secret, const char *sub, char *out, size_t cap);
size_t b64_encode(const unsigned char *in, size_t len, char *out, bool url);

uint64_t now_ns(void);
uint64_t cpu_self_ns(void);
ssize_t read_full(int fd, void *p, size_t n);
ssize_t write_full(int fd, const void *p, size_t n);

#endif

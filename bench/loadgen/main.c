/* The load generator's entry point: options, worker processes, the server's CPU and memory
 * from /proc, and the report. See docs/performance.md. */
#define _GNU_SOURCE
#include "loadgen.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen [options] idle N\n"
            "       loadgen [options] pairs P [--window W] [--seconds S]\n"
            "       loadgen [options] rate R [--pairs P] [--seconds S]\n"
            "       loadgen [options] groups G [--members M] [--rate R] [--seconds S]\n"
            "       loadgen fsync DIR [--count N] [--kv]\n"
            "\n"
            "  idle N          open N authenticated WebSocket connections, hold them, report\n"
            "                  handshakes/s and the server's memory per connection\n"
            "  pairs P         2P users; each of the P senders keeps W acknowledged send_message\n"
            "                  in flight to its partner; report messages/s, latency, server CPU\n"
            "  rate R          open loop: R messages/s in total over P pairs; latency is measured\n"
            "                  from each message's scheduled send time\n"
            "  groups G        G groups of M members created over REST; open loop: each member\n"
            "                  sends R messages/s to its group, staggered; every other member\n"
            "                  receives each; report messages/s, deliveries/s, server CPU per\n"
            "                  message and per delivery, delivery latency\n"
            "  fsync DIR       N x (4 KiB pwrite appended + fdatasync) on a file in DIR: the\n"
            "                  disk's commit latency, p50/p99 (put DIR on the server's data)\n"
            "\n"
            "options:\n"
            "  --host ADDR            server IPv4 address (127.0.0.1)\n"
            "  --port N               server port (5000)\n"
            "  --recv-port N          pairs, rate: receivers connect to this port (another node\n"
            "                         of a cluster: every message crosses nodes)\n"
            "  --jwt-secret S         HS256 secret to sign tokens (env PARLOR_JWT_SECRET)\n"
            "  --path P               Engine.IO path (/socket.io/)\n"
            "  --server-pid PID       read the server's CPU time and memory from /proc/PID\n"
            "  --window W             pairs: messages in flight per sender (8)\n"
            "  --pairs P              rate: pairs (100)\n"
            "  --members M            groups: members per group (20)\n"
            "  --rate R               groups: messages/s each member sends (1)\n"
            "  --count N              fsync: rounds (500)\n"
            "  --seconds S            measured time (10)\n"
            "  --warmup S             load before measuring (1)\n"
            "  --hold S               idle: time held before memory is read (2)\n"
            "  --drain-timeout S      time allowed for the last messages (10)\n"
            "  --connect-timeout S    time allowed for all handshakes (60)\n"
            "  --size B               bytes of message content (64)\n"
            "  --spin-us U            rate: poll without sleeping when a send is due within U us\n"
            "                         (rate: 1000, groups: 0; 0: always sleep): sends keep to\n"
            "                         their schedule\n"
            "  --concurrency N        handshakes in progress per process (128)\n"
            "  --procs N              worker processes (default: one per 15000 connections)\n"
            "  --per-proc N           connections per process when --procs is not given (15000)\n"
            "  --src-addrs N          bind to 127.0.0.2 .. 127.0.0.(N+1), one per process\n"
            "                         (default: when more than one process; 0: never)\n"
            "  --prefix S             user id prefix (default: unique per run)\n"
            "  --kv                   also print key=value lines for scripts\n"
            "  -v                     more output\n"
            "\n"
            "Exits 1 when any count does not verify (sent = acknowledged = received, or\n"
            "received = sent x (M - 1) in groups; per-sender order, the group's seq order, no\n"
            "duplicates, every connection up), 2 on bad usage.\n");
}

static uint64_t server_cpu_ns(pid_t pid)
{
    clockid_t clk;
    struct timespec ts;
    /* The kernel's CPU clock of the whole process is exact; /proc/PID/stat is in ticks. */
    if (clock_getcpuclockid(pid, &clk) == 0 && clock_gettime(clk, &ts) == 0)
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/* CPU time of the whole machine: busy (user, system, interrupts) and stolen by the hypervisor
 * (the virtual CPU was not running at all), from /proc/stat. */
typedef struct {
    uint64_t busy, steal;
} machine_cpu_t;

static machine_cpu_t machine_cpu(void)
{
    machine_cpu_t m = {0, 0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return m;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8) return m;
    unsigned long long tick = 1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK);
    m.busy = (v[0] + v[1] + v[2] + v[5] + v[6]) * tick;
    m.steal = v[7] * tick;
    return m;
}

static long server_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static double arg_num(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    double d = v ? strtod(v, &end) : NAN;
    if (!v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "loadgen: %s needs a number in [%g, %g]\n", opt, lo, hi);
        exit(2);
    }
    return d;
}

static void parse_args(int argc, char **argv, lg_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 5000;
    c->secret = getenv("PARLOR_JWT_SECRET");
    c->path = "/socket.io/";
    c->window = 8;
    c->pairs = -1;
    c->members = 20;
    c->rate = 1;
    c->count = 500;
    bool spin_set = false;
    c->seconds = 10;
    c->warmup = 1;
    c->hold = 2;
    c->drain_timeout = 10;
    c->connect_timeout = 60;
    c->size = 64;
    c->spin_ns = 1000000;
    c->concurrency = 128;
    c->per_proc = 15000;
    c->src_addrs = -1;
    snprintf(c->prefix, sizeof c->prefix, "lg%x%x_", (unsigned)getpid() & 0xffff,
             (unsigned)time(NULL) & 0xfffff);
    const char *mode = NULL, *num = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(a, name) == 0 && (i++, 1))
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--kv") == 0) {
            c->kv = true;
        } else if (strcmp(a, "-v") == 0) {
            c->verbose++;
        } else if (OPT("--host")) {
            snprintf(c->host, sizeof c->host, "%s", v ? v : "");
        } else if (OPT("--port")) {
            c->port = (int)arg_num(a, v, 1, 65535);
        } else if (OPT("--recv-port")) {
            c->recv_port = (int)arg_num(a, v, 1, 65535);
        } else if (OPT("--jwt-secret")) {
            c->secret = v;
        } else if (OPT("--path")) {
            c->path = v;
        } else if (OPT("--server-pid")) {
            c->server_pid = (pid_t)arg_num(a, v, 1, 1e9);
        } else if (OPT("--window")) {
            c->window = (int)arg_num(a, v, 1, 100000);
        } else if (OPT("--pairs")) {
            c->pairs = (long)arg_num(a, v, 1, 1e7);
        } else if (OPT("--seconds")) {
            c->seconds = arg_num(a, v, 0.1, 86400);
        } else if (OPT("--warmup")) {
            c->warmup = arg_num(a, v, 0, 3600);
        } else if (OPT("--hold")) {
            c->hold = arg_num(a, v, 0, 86400);
        } else if (OPT("--drain-timeout")) {
            c->drain_timeout = arg_num(a, v, 0.1, 3600);
        } else if (OPT("--connect-timeout")) {
            c->connect_timeout = arg_num(a, v, 1, 3600);
        } else if (OPT("--spin-us")) {
            c->spin_ns = (uint64_t)(arg_num(a, v, 0, 1e6) * 1000);
            spin_set = true;
        } else if (OPT("--members")) {
            c->members = (int)arg_num(a, v, 2, 256);
        } else if (OPT("--rate")) {
            c->rate = arg_num(a, v, 0.001, 1e6);
        } else if (OPT("--count")) {
            c->count = (long)arg_num(a, v, 1, 1e7);
        } else if (OPT("--size")) {
            c->size = (int)arg_num(a, v, 1, 8000);
        } else if (OPT("--concurrency")) {
            c->concurrency = (int)arg_num(a, v, 1, 100000);
        } else if (OPT("--procs")) {
            c->procs = (int)arg_num(a, v, 1, 64);
        } else if (OPT("--per-proc")) {
            c->per_proc = (long)arg_num(a, v, 2, 1e6);
        } else if (OPT("--src-addrs")) {
            c->src_addrs = (int)arg_num(a, v, 0, 250);
        } else if (OPT("--prefix")) {
            if (!v || strlen(v) > 24 ||
                strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                          "VWXYZ0123456789_-") != strlen(v)) {
                fprintf(stderr, "loadgen: --prefix: up to 24 of [A-Za-z0-9_-]\n");
                exit(2);
            }
            snprintf(c->prefix, sizeof c->prefix, "%s", v);
        } else if (a[0] == '-') {
            fprintf(stderr, "loadgen: unknown option %s\n", a);
            usage(stderr);
            exit(2);
        } else if (!mode) {
            mode = a;
        } else if (!num) {
            num = a;
        } else {
            fprintf(stderr, "loadgen: unexpected argument %s\n", a);
            exit(2);
        }
#undef OPT
    }
    if (!mode || !num) {
        usage(stderr);
        exit(2);
    }
    if (strcmp(mode, "idle") == 0) {
        c->mode = LG_IDLE;
        c->conns = (long)arg_num("idle N", num, 1, 1e7);
    } else if (strcmp(mode, "pairs") == 0) {
        c->mode = LG_PAIRS;
        c->pairs = (long)arg_num("pairs P", num, 1, 1e7);
        c->conns = 2 * c->pairs;
    } else if (strcmp(mode, "groups") == 0) {
        c->mode = LG_GROUPS;
        c->groups = (long)arg_num("groups G", num, 1, 1e6);
        c->conns = c->groups * c->members;
        if (!spin_set) c->spin_ns = 0; /* thousands of sends/s: sleeping is close enough */
    } else if (strcmp(mode, "fsync") == 0) {
        c->mode = LG_FSYNC;
        c->dir = num;
        return;
    } else if (strcmp(mode, "rate") == 0) {
        c->mode = LG_RATE;
        c->rate = arg_num("rate R", num, 0.01, 1e8);
        if (c->pairs < 0) c->pairs = 100;
        c->conns = 2 * c->pairs;
    } else {
        fprintf(stderr, "loadgen: unknown mode %s\n", mode);
        exit(2);
    }
    if (!c->secret || strlen(c->secret) < 1) {
        fprintf(stderr, "loadgen: --jwt-secret (or PARLOR_JWT_SECRET) is required\n");
        exit(2);
    }
}

static int raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;
    r.rlim_cur = r.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &r);
}

typedef struct {
    pid_t pid;
    int fd;
    lg_slice_t sl;
    lg_result_t res;
    bool ok;
} child_t;

static void send_all(child_t *ch, int n, const lg_ctrl_t *m)
{
    for (int i = 0; i < n; i++)
        if (ch[i].fd >= 0) write_full(ch[i].fd, m, sizeof *m);
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void print_hist(const char *label, const hist_t *h)
{
    if (!h->count) {
        printf("  %-22s (none)\n", label);
        return;
    }
    printf("  %-22s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%" PRIu64 " samples)\n",
           label, us(hist_quantile(h, 0.5)), us(hist_quantile(h, 0.9)), us(hist_quantile(h, 0.99)),
           us(hist_quantile(h, 0.999)), us(h->max), h->count);
}

static void kv_hist(const char *key, const hist_t *h)
{
    printf("%s_p50_us=%.1f\n%s_p90_us=%.1f\n%s_p99_us=%.1f\n%s_p999_us=%.1f\n%s_max_us=%.1f\n", key,
           us(hist_quantile(h, 0.5)), key, us(hist_quantile(h, 0.9)), key,
           us(hist_quantile(h, 0.99)), key, us(hist_quantile(h, 0.999)), key, us(h->max));
}

int main(int argc, char **argv)
{
    lg_config_t cfg;
    parse_args(argc, argv, &cfg);
    if (cfg.mode == LG_FSYNC) return fsync_probe(&cfg);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL); /* rate mode sends on a schedule measured in microseconds */
    raise_nofile();

    int procs = cfg.procs;
    if (!procs) procs = (int)((cfg.conns + cfg.per_proc - 1) / cfg.per_proc);
    long units = cfg.mode == LG_IDLE ? cfg.conns : cfg.mode == LG_GROUPS ? cfg.groups : cfg.pairs;
    if (procs > units) procs = (int)units;
    if (procs < 1) procs = 1;
    int src = cfg.src_addrs < 0 ? (procs > 1 ? procs : 0) : cfg.src_addrs;
    bool loopback = strncmp(cfg.host, "127.", 4) == 0;
    if (src && !loopback) src = 0;

    child_t *ch = calloc((size_t)procs, sizeof *ch);
    if (!ch) return 1;
    long per = units / procs, extra = units % procs, first = 0;
    for (int i = 0; i < procs; i++) {
        ch[i].fd = -1;
        ch[i].sl.index = i;
        ch[i].sl.first = first;
        ch[i].sl.count = per + (i < extra ? 1 : 0);
        first += ch[i].sl.count;
        if (cfg.mode == LG_RATE) ch[i].sl.rate = cfg.rate * (double)ch[i].sl.count / (double)units;
        if (cfg.mode == LG_GROUPS)
            ch[i].sl.rate = cfg.rate * (double)ch[i].sl.count * (double)cfg.members;
        if (src)
            snprintf(ch[i].sl.src_addr, sizeof ch[i].sl.src_addr, "127.0.0.%d",
                     2 + (i % src) % 250);
    }

    const char *mname = cfg.mode == LG_IDLE    ? "idle"
                        : cfg.mode == LG_PAIRS ? "pairs"
                        : cfg.mode == LG_RATE  ? "rate"
                                               : "groups";
    if (cfg.mode == LG_IDLE)
        printf("loadgen idle: %ld connections to %s:%d, %d process%s, %d handshakes in flight "
               "each\n",
               cfg.conns, cfg.host, cfg.port, procs, procs > 1 ? "es" : "", cfg.concurrency);
    else if (cfg.mode == LG_PAIRS)
        printf("loadgen pairs: %ld pairs (%ld connections) to %s:%d, window %d, %d-byte content, "
               "%.1f s measured after %.1f s warm-up, %d process%s\n",
               cfg.pairs, cfg.conns, cfg.host, cfg.port, cfg.window, cfg.size, cfg.seconds,
               cfg.warmup, procs, procs > 1 ? "es" : "");
    else if (cfg.mode == LG_RATE)
        printf("loadgen rate: %.0f msgs/s over %ld pairs to %s:%d, %d-byte content, %.1f s "
               "measured after %.1f s warm-up, %d process%s\n",
               cfg.rate, cfg.pairs, cfg.host, cfg.port, cfg.size, cfg.seconds, cfg.warmup, procs,
               procs > 1 ? "es" : "");
    else
        printf("loadgen groups: %ld groups of %d (%ld connections) to %s:%d, %g msgs/s per member "
               "(%.0f msgs/s, %.0f deliveries/s), %d-byte content, %.1f s measured after %.1f s "
               "warm-up, %d process%s\n",
               cfg.groups, cfg.members, cfg.conns, cfg.host, cfg.port, cfg.rate,
               cfg.rate * (double)cfg.conns, cfg.rate * (double)cfg.conns * (cfg.members - 1),
               cfg.size, cfg.seconds, cfg.warmup, procs, procs > 1 ? "es" : "");
    fflush(stdout);

    long rss0 = cfg.server_pid ? server_rss_kib(cfg.server_pid) : -1;
    uint64_t hs_cpu0 = cfg.server_pid ? server_cpu_ns(cfg.server_pid) : 0, hs_cpu1 = 0;
    machine_cpu_t busy_hs0 = machine_cpu(), busy_hs1 = {0, 0}, busy0 = {0, 0}, busy1 = {0, 0};
    uint64_t t_hs0 = now_ns(), t_hs1 = 0;
    if (cfg.server_pid && rss0 < 0) {
        fprintf(stderr, "loadgen: cannot read /proc/%d/status\n", (int)cfg.server_pid);
        return 2;
    }
    for (int i = 0; i < procs; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            perror("socketpair");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            for (int j = 0; j < i; j++) close(ch[j].fd);
            close(sv[0]);
            lg_result_t *res = calloc(1, sizeof *res);
            if (!res) _exit(1);
            worker_run(&cfg, &ch[i].sl, sv[1], res);
            lg_ctrl_t m = {.type = MSG_RESULT};
            write_full(sv[1], &m, sizeof m);
            write_full(sv[1], res, sizeof *res);
            _exit(0);
        }
        close(sv[1]);
        ch[i].pid = pid;
        ch[i].fd = sv[0];
    }

    /* Every worker reports READY once each of its connections is up or has failed. */
    int rc = 0;
    for (int i = 0; i < procs; i++) {
        lg_ctrl_t m;
        if (read_full(ch[i].fd, &m, sizeof m) != (ssize_t)sizeof m || m.type != MSG_READY) {
            fprintf(stderr, "loadgen: worker %d failed before it was ready\n", i);
            rc = 1;
            if (m.type == MSG_RESULT &&
                read_full(ch[i].fd, &ch[i].res, sizeof ch[i].res) == (ssize_t)sizeof ch[i].res)
                ch[i].ok = true;
            close(ch[i].fd);
            ch[i].fd = -1;
        }
    }
    if (cfg.server_pid) hs_cpu1 = server_cpu_ns(cfg.server_pid);
    busy_hs1 = machine_cpu();
    t_hs1 = now_ns();
    long rss1 = -1;
    uint64_t scpu0 = 0, scpu1 = 0, window_ns = 0;
    if (cfg.mode == LG_IDLE) {
        sleep_until(now_ns() + (uint64_t)(cfg.hold * 1e9));
        if (cfg.server_pid) rss1 = server_rss_kib(cfg.server_pid);
        lg_ctrl_t m = {.type = MSG_STOP};
        send_all(ch, procs, &m);
    } else {
        uint64_t t = now_ns() + 20000000;
        lg_ctrl_t m = {.type = MSG_GO, .t_go = t};
        m.t_window_start = t + (uint64_t)(cfg.warmup * 1e9);
        m.t_window_end = m.t_window_start + (uint64_t)(cfg.seconds * 1e9);
        m.t_stop = m.t_window_end;
        window_ns = m.t_window_end - m.t_window_start;
        send_all(ch, procs, &m);
        sleep_until(m.t_window_start);
        if (cfg.server_pid) scpu0 = server_cpu_ns(cfg.server_pid);
        busy0 = machine_cpu();
        sleep_until(m.t_window_end);
        busy1 = machine_cpu();
        if (cfg.server_pid) {
            scpu1 = server_cpu_ns(cfg.server_pid);
            rss1 = server_rss_kib(cfg.server_pid);
        }
    }
    for (int i = 0; i < procs; i++) {
        if (ch[i].fd < 0) continue;
        lg_ctrl_t m;
        if (read_full(ch[i].fd, &m, sizeof m) == (ssize_t)sizeof m && m.type == MSG_RESULT &&
            read_full(ch[i].fd, &ch[i].res, sizeof ch[i].res) == (ssize_t)sizeof ch[i].res) {
            ch[i].ok = true;
        } else {
            fprintf(stderr, "loadgen: worker %d did not report\n", i);
            rc = 1;
        }
        close(ch[i].fd);
    }
    for (int i = 0; i < procs; i++) {
        int st;
        waitpid(ch[i].pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "loadgen: worker %d exited abnormally\n", i);
            rc = 1;
        }
    }

    /* Sum up. */
    lg_result_t *t = calloc(1, sizeof *t);
    if (!t) return 1;
    uint64_t hs_first = UINT64_MAX, hs_last = 0;
    const char *first_error = NULL;
    for (int i = 0; i < procs; i++) {
        const lg_result_t *r = &ch[i].res;
        if (!ch[i].ok) continue;
#define ADD(f) t->f += r->f
        ADD(connected), ADD(failed), ADD(disconnected), ADD(sent), ADD(acked), ADD(received);
        ADD(received_in_window), ADD(acked_in_window), ADD(err_order), ADD(err_dup);
        ADD(err_ack), ADD(err_seq), ADD(err_nack), ADD(err_echo), ADD(err_proto), ADD(err_lost);
        ADD(pings), ADD(late_sends), ADD(cpu_window_ns), ADD(cpu_total_ns), ADD(cpu_connect_ns);
#undef ADD
        hist_merge(&t->lat_recv, &r->lat_recv);
        hist_merge(&t->lat_ack, &r->lat_ack);
        hist_merge(&t->send_lag, &r->send_lag);
        if (r->hs_first_ns && r->hs_first_ns < hs_first) hs_first = r->hs_first_ns;
        if (r->hs_last_ns > hs_last) hs_last = r->hs_last_ns;
        if (!first_error && r->first_error[0]) first_error = r->first_error;
    }
    double hs_s = hs_last > hs_first ? (double)(hs_last - hs_first) / 1e9 : 0;
    double hs_rate = hs_s > 0 ? (double)t->connected / hs_s : 0;
    uint64_t errors = t->failed + t->disconnected + t->err_order + t->err_dup + t->err_ack +
                      t->err_seq + t->err_nack + t->err_echo + t->err_proto + t->err_lost;
    uint64_t want_received =
        cfg.mode == LG_GROUPS ? t->sent * (uint64_t)(cfg.members - 1) : t->sent;
    bool counts_ok = t->sent == t->acked && t->received == want_received;
    if (t->connected != (uint64_t)cfg.conns) errors += 0; /* counted as failed already */
    bool verified = rc == 0 && errors == 0 && counts_ok && t->connected == (uint64_t)cfg.conns;
    if (cfg.mode != LG_IDLE && t->sent == 0) verified = false;

    double hs_cpu_us =
        t->connected ? (double)(hs_cpu1 - hs_cpu0) / 1000.0 / (double)t->connected : 0;
    printf("  connections            %" PRIu64 " up, %" PRIu64 " failed, %" PRIu64
           " dropped; %.0f handshakes/s",
           t->connected, t->failed, t->disconnected, hs_rate);
    if (cfg.server_pid) printf(", server CPU %.1f us per handshake", hs_cpu_us);
    printf("\n");
    double win_s = (double)window_ns / 1e9;
    double msgs = 0, acks = 0, cpu_per_msg = 0, server_pct = 0, deliveries = 0, cpu_per_dlv = 0;
    bool grp = cfg.mode == LG_GROUPS;
    if (cfg.mode == LG_IDLE) {
        if (rss1 >= 0)
            printf("  server memory          %ld KiB before, %ld KiB after: %.2f KiB per "
                   "connection\n",
                   rss0, rss1, t->connected ? (double)(rss1 - rss0) / (double)t->connected : 0);
        printf("  pings answered         %" PRIu64 "\n", t->pings);
    } else {
        /* groups: a message is what a sender sent (acknowledged), a delivery what one member
         * received; pairs and rate: one of each per message. */
        uint64_t nmsgs = grp ? t->acked_in_window : t->received_in_window;
        msgs = (double)nmsgs / win_s;
        acks = (double)t->acked_in_window / win_s;
        deliveries = (double)t->received_in_window / win_s;
        if (grp)
            printf("  messages               %.0f/s acknowledged, %.0f deliveries/s (%.0f/s "
                   "expected)\n",
                   msgs, deliveries, msgs * (cfg.members - 1));
        else
            printf("  delivered              %.0f msgs/s (acknowledged %.0f/s)\n", msgs, acks);
        print_hist("send->receive (us)", &t->lat_recv);
        print_hist("send->ack (us)", &t->lat_ack);
        if (cfg.mode == LG_RATE || grp) {
            print_hist("send lag (us)", &t->send_lag);
            printf("  late sends (>1 ms)     %" PRIu64 "\n", t->late_sends);
        }
        if (cfg.server_pid) {
            double cpu_us = (double)(scpu1 - scpu0) / 1000.0;
            cpu_per_msg = nmsgs ? cpu_us / (double)nmsgs : 0;
            cpu_per_dlv = t->received_in_window ? cpu_us / (double)t->received_in_window : 0;
            server_pct = 100.0 * (double)(scpu1 - scpu0) / (double)window_ns;
            printf("  server                 %.1f%% of a core, %.2f us CPU per message", server_pct,
                   cpu_per_msg);
            if (grp) printf(", %.2f per delivery", cpu_per_dlv);
            printf(", RSS %ld KiB\n", rss1);
        }
    }
    double lg_pct = cfg.mode == LG_IDLE || !window_ns
                        ? 0
                        : 100.0 * (double)t->cpu_window_ns / (double)window_ns;
    double hs_lg_pct = hs_s > 0 ? 100.0 * (double)t->cpu_connect_ns / 1e9 / hs_s : 0;
    printf("  loadgen                %.1f%% of a core during the handshakes", hs_lg_pct);
    if (cfg.mode == LG_IDLE)
        printf(", %.2f s CPU in total (%d process%s)%s\n", (double)t->cpu_total_ns / 1e9, procs,
               procs > 1 ? "es" : "",
               hs_lg_pct > 90.0 ? "  << the load generator is saturated" : "");
    else if ((cfg.mode == LG_RATE || grp) && cfg.spin_ns)
        printf("; %.1f%% while measuring (%d process%s; polls between sends, see send lag)\n",
               lg_pct, procs, procs > 1 ? "es" : "");
    else
        printf("; %.1f%% while measuring (%d process%s)%s\n", lg_pct, procs, procs > 1 ? "es" : "",
               lg_pct > 90.0 ? "  << the load generator is saturated" : "");
    /* What else ran on the machine: the figures are only as good as the machine was quiet. */
    double others_pct = -1, steal_pct = 0;
    if (cfg.server_pid) {
        double busy, steal, mine, span;
        if (cfg.mode == LG_IDLE) {
            busy = (double)(busy_hs1.busy - busy_hs0.busy);
            steal = (double)(busy_hs1.steal - busy_hs0.steal);
            mine = (double)(hs_cpu1 - hs_cpu0) + (double)t->cpu_connect_ns;
            span = (double)(t_hs1 - t_hs0);
        } else {
            busy = (double)(busy1.busy - busy0.busy);
            steal = (double)(busy1.steal - busy0.steal);
            mine = (double)(scpu1 - scpu0) + (double)t->cpu_window_ns;
            span = (double)window_ns;
        }
        if (span > 0) {
            others_pct = (busy - mine) > 0 ? 100.0 * (busy - mine) / span : 0;
            steal_pct = 100.0 * steal / span;
        }
        printf("  other processes        %.1f%% of a core (machine busy minus server and "
               "loadgen), hypervisor steal %.1f%%%s\n",
               others_pct, steal_pct,
               others_pct > 10 || steal_pct > 5 ? "  << the machine was not quiet" : "");
    }
    if (cfg.mode != LG_IDLE)
        printf("  verify                 sent %" PRIu64 ", acknowledged %" PRIu64
               ", received %" PRIu64 "; out of order %" PRIu64 ", duplicates %" PRIu64
               ", bad acks %" PRIu64 ", bad seq %" PRIu64 ", refused %" PRIu64 ", echoed %" PRIu64
               ", protocol %" PRIu64 ", lost %" PRIu64 "\n",
               t->sent, t->acked, t->received, t->err_order, t->err_dup, t->err_ack, t->err_seq,
               t->err_nack, t->err_echo, t->err_proto, t->err_lost);
    if (first_error) printf("  first error            %s\n", first_error);
    printf("  result                 %s\n", verified ? "OK" : "FAILED");
    if (cfg.kv) {
        printf(
            "mode=%s\nconnections=%ld\nconnected=%" PRIu64 "\nfailed=%" PRIu64
            "\nhandshakes_per_s=%.0f\nserver_cpu_us_per_handshake=%.1f\nloadgen_hs_cpu_pct=%.1f\n",
            mname, cfg.conns, t->connected, t->failed, hs_rate, hs_cpu_us, hs_lg_pct);
        if (cfg.mode == LG_IDLE && rss1 >= 0)
            printf("rss_before_kib=%ld\nrss_after_kib=%ld\nkib_per_conn=%.2f\n", rss0, rss1,
                   t->connected ? (double)(rss1 - rss0) / (double)t->connected : 0);
        if (cfg.mode != LG_IDLE) {
            printf("msgs_per_s=%.0f\nacks_per_s=%.0f\n", msgs, acks);
            kv_hist("lat", &t->lat_recv);
            kv_hist("ack", &t->lat_ack);
            if (cfg.mode == LG_RATE || grp) kv_hist("lag", &t->send_lag);
            if (grp)
                printf("groups=%ld\nmembers=%d\ndeliveries_per_s=%.0f\nexpected_deliveries_per_s=%."
                       "0f\n"
                       "server_cpu_us_per_delivery=%.3f\n",
                       cfg.groups, cfg.members, deliveries, msgs * (cfg.members - 1), cpu_per_dlv);
            printf("server_cpu_us_per_msg=%.2f\nserver_cpu_pct=%.1f\nserver_rss_kib=%ld\n",
                   cpu_per_msg, server_pct, rss1);
            printf("loadgen_cpu_pct=%.1f\nsent=%" PRIu64 "\nacked=%" PRIu64 "\nreceived=%" PRIu64
                   "\nlate_sends=%" PRIu64 "\n",
                   lg_pct, t->sent, t->acked, t->received, t->late_sends);
        }
        if (others_pct >= 0)
            printf("others_cpu_pct=%.1f\nsteal_cpu_pct=%.1f\n", others_pct, steal_pct);
        printf("errors=%" PRIu64 "\nverified=%s\n", errors, verified ? "ok" : "FAILED");
    }
    free(t);
    free(ch);
    return verified ? 0 : 1;
}

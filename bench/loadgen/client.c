/* The load generator's Socket.IO client: many non-blocking sockets on one epoll loop, frames
 * parsed in place from a shared read buffer, writes of one loop turn coalesced per socket. */
#define _GNU_SOURCE
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SCRATCH_SIZE  (256 * 1024)
#define MAX_FRAME     (16u << 20)
#define MAX_WBUF      (64u << 20)
#define MAX_HTTP_HEAD 8192

static uint64_t rng_next(lg_client_t *cl)
{
    /* xorshift64*: masks and WebSocket keys need to vary, not to be secret. */
    uint64_t x = cl->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    cl->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int client_init(lg_client_t *cl, const lg_config_t *cfg, const char *src_addr,
                const lg_client_ops_t *ops, void *ud)
{
    memset(cl, 0, sizeof *cl);
    cl->cfg = cfg;
    cl->ops = *ops;
    cl->ud = ud;
    cl->rng = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
    cl->dst.sin_family = AF_INET;
    cl->dst.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &cl->dst.sin_addr) != 1) {
        fprintf(stderr, "loadgen: --host must be an IPv4 address: %s\n", cfg->host);
        return -1;
    }
    cl->src.sin_family = AF_INET;
    if (src_addr && *src_addr && inet_pton(AF_INET, src_addr, &cl->src.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad source address %s\n", src_addr);
        return -1;
    }
    snprintf(cl->host_header, sizeof cl->host_header, "%s:%d", cfg->host, cfg->port);
    cl->scratch_cap = SCRATCH_SIZE;
    cl->scratch = malloc(cl->scratch_cap);
    cl->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cl->scratch || cl->ep < 0) return -1;
    return 0;
}

void client_free(lg_client_t *cl)
{
    if (cl->ep >= 0) close(cl->ep);
    free(cl->scratch);
    cl->scratch = NULL;
}

static void conn_release(lg_conn_t *c)
{
    free(c->rbuf);
    free(c->wbuf);
    free(c->frag);
    c->rbuf = c->wbuf = c->frag = NULL;
    c->rlen = c->rcap = c->woff = c->wlen = c->wcap = c->flen = c->fcap = 0;
}

void client_close(lg_client_t *cl, lg_conn_t *c)
{
    if (c->state == CONN_CLOSED || c->state == CONN_IDLE) return;
    if (c->fd >= 0) {
        epoll_ctl(cl->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = CONN_CLOSED;
    conn_release(c);
}

static void conn_fail(lg_client_t *cl, lg_conn_t *c, const char *why)
{
    client_close(cl, c);
    cl->ops.on_closed(cl, c, why);
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 512;
    while (n < need) n *= 2;
    char *p = realloc(*buf, n);
    if (!p) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static void mark_dirty(lg_client_t *cl, lg_conn_t *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->next_dirty = cl->dirty;
    cl->dirty = c;
}

static void queue_raw(lg_client_t *cl, lg_conn_t *c, const char *p, size_t n)
{
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->wlen + n > MAX_WBUF || grow(&c->wbuf, &c->wcap, c->wlen + n) != 0) {
        conn_fail(cl, c, "send buffer overflow (the server stopped reading)");
        return;
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
    mark_dirty(cl, c);
}

static void queue_frame(lg_client_t *cl, lg_conn_t *c, int opcode, const char *p, size_t n)
{
    if (c->state == CONN_CLOSED) return;
    size_t hdr = 2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + 4;
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->wlen + hdr + n > MAX_WBUF || grow(&c->wbuf, &c->wcap, c->wlen + hdr + n) != 0) {
        conn_fail(cl, c, "send buffer overflow (the server stopped reading)");
        return;
    }
    unsigned char *h = (unsigned char *)c->wbuf + c->wlen;
    size_t i = 0;
    h[i++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[i++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        h[i++] = 0x80 | 126;
        h[i++] = (unsigned char)(n >> 8);
        h[i++] = (unsigned char)n;
    } else {
        h[i++] = 0x80 | 127;
        for (int s = 56; s >= 0; s -= 8) h[i++] = (unsigned char)((uint64_t)n >> s);
    }
    uint32_t mask = (uint32_t)rng_next(cl);
    unsigned char mk[4];
    memcpy(mk, &mask, 4);
    memcpy(h + i, mk, 4);
    i += 4;
    unsigned char *d = h + i;
    for (size_t k = 0; k < n; k++) d[k] = (unsigned char)p[k] ^ mk[k & 3];
    c->wlen += hdr + n;
    mark_dirty(cl, c);
}

void client_send(lg_client_t *cl, lg_conn_t *c, const char *p, size_t n)
{
    queue_frame(cl, c, 0x1, p, n);
}

static void set_out(lg_client_t *cl, lg_conn_t *c, bool on)
{
    if (c->out_armed == on) return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->out_armed = on;
}

static void conn_flush(lg_client_t *cl, lg_conn_t *c)
{
    while (c->woff < c->wlen) {
        ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                set_out(cl, c, true);
                return;
            }
            conn_fail(cl, c, strerror(errno));
            return;
        }
        c->woff += (size_t)w;
    }
    c->woff = c->wlen = 0;
    set_out(cl, c, false);
}

void client_flush(lg_client_t *cl)
{
    while (cl->dirty) {
        lg_conn_t *c = cl->dirty;
        cl->dirty = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        if (c->state != CONN_CLOSED && c->state != CONN_TCP && !c->out_armed) conn_flush(cl, c);
    }
}

int client_start(lg_client_t *cl, lg_conn_t *c, const char *user)
{
    int role = c->role;
    void *ud = c->ud;
    memset(c, 0, sizeof *c);
    c->role = role;
    c->ud = ud;
    c->fd = -1;
    c->user = user;
    c->t_start = now_ns();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cl->src.sin_addr.s_addr) {
        /* Leave the port to connect(): ports are then unique per (source, destination) pair. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&cl->src, sizeof cl->src) != 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    struct sockaddr_in dst = cl->dst;
    if (cl->cfg->recv_port && role == 2 /* ROLE_RECEIVER (worker.c) */)
        dst.sin_port = htons((uint16_t)cl->cfg->recv_port);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    c->fd = fd;
    c->state = CONN_TCP;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        close(fd);
        c->fd = -1;
        c->state = CONN_IDLE;
        return -e;
    }
    c->out_armed = true;
    return 0;
}

static void send_upgrade(lg_client_t *cl, lg_conn_t *c)
{
    unsigned char key[16];
    uint64_t a = rng_next(cl), b = rng_next(cl);
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
    b64_encode(key, 16, c->ws_key, false);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s?EIO=4&transport=websocket HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     cl->cfg->path, cl->host_header, c->ws_key);
    c->state = CONN_UPGRADE;
    queue_raw(cl, c, req, (size_t)n);
}

/* Finds header `name` (with its colon) in an HTTP head; returns the trimmed value. */
static const char *header_value(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 2 + nl <= len; i++) {
        if (head[i] != '\n' || strncasecmp(head + i + 1, name, nl) != 0) continue;
        const char *v = head + i + 1 + nl;
        const char *end = head + len;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        const char *e = v;
        while (e < end && *e != '\r' && *e != '\n') e++;
        *vlen = (size_t)(e - v);
        return v;
    }
    return NULL;
}

/* Returns bytes consumed, 0 while the head is incomplete, -1 when c failed. */
static long parse_upgrade(lg_client_t *cl, lg_conn_t *c, const char *p, size_t len)
{
    const char *end = memmem(p, len, "\r\n\r\n", 4);
    if (!end) {
        if (len > MAX_HTTP_HEAD) conn_fail(cl, c, "HTTP answer to the upgrade too long");
        return len > MAX_HTTP_HEAD ? -1 : 0;
    }
    size_t hl = (size_t)(end - p) + 4;
    if (hl < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
        char why[160];
        size_t l = 0;
        while (l < hl && l < 100 && p[l] != '\r') l++;
        snprintf(why, sizeof why, "upgrade refused: %.*s", (int)l, p);
        conn_fail(cl, c, why);
        return -1;
    }
    char src[64];
    int sl = snprintf(src, sizeof src, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->ws_key);
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned int shalen = 0;
    char want[64];
    EVP_Digest(src, (size_t)sl, sha, &shalen, EVP_sha1(), NULL);
    size_t wl = b64_encode(sha, shalen, want, false);
    size_t vl = 0;
    const char *v = header_value(p, hl, "sec-websocket-accept:", &vl);
    if (!v || vl != wl || memcmp(v, want, wl) != 0) {
        conn_fail(cl, c, "bad Sec-WebSocket-Accept");
        return -1;
    }
    c->state = CONN_EIO_OPEN;
    return (long)hl;
}

static void on_eio_packet(lg_client_t *cl, lg_conn_t *c, const char *p, size_t n)
{
    if (n == 0) {
        conn_fail(cl, c, "empty Engine.IO packet");
        return;
    }
    switch (p[0]) {
    case '0':
        if (c->state == CONN_EIO_OPEN) {
            char buf[600];
            memcpy(buf, "40{\"token\":\"", 12);
            int tl = token_sign(cl->cfg->secret, c->user, buf + 12, sizeof buf - 16);
            if (tl < 0) {
                conn_fail(cl, c, "could not sign a token");
                return;
            }
            memcpy(buf + 12 + tl, "\"}", 2);
            c->state = CONN_SIO_JOIN;
            client_send(cl, c, buf, 12 + (size_t)tl + 2);
        }
        return;
    case '2':
        cl->pings++;
        client_send(cl, c, "3", 1);
        return;
    case '3':
    case '6':
        return;
    case '1':
        conn_fail(cl, c, "Engine.IO close from the server");
        return;
    case '4':
        break;
    default:
        conn_fail(cl, c, "unknown Engine.IO packet");
        return;
    }
    p++;
    n--;
    if (c->state == CONN_SIO_JOIN) {
        if (n >= 1 && p[0] == '0') {
            c->state = CONN_READY;
            c->joined = true;
            cl->ops.on_ready(cl, c);
        } else {
            char why[200];
            snprintf(why, sizeof why, "namespace refused: %.*s", (int)(n > 150 ? 150 : n), p);
            conn_fail(cl, c, why);
        }
        return;
    }
    if (c->state == CONN_READY) cl->ops.on_packet(cl, c, p, n);
}

/* Parses frames from p; returns bytes consumed, or -1 when c failed or was closed. */
static long parse_frames(lg_client_t *cl, lg_conn_t *c, const char *p, size_t len)
{
    size_t off = 0;
    while (len - off >= 2) {
        const unsigned char *h = (const unsigned char *)p + off;
        size_t avail = len - off;
        int fin = h[0] & 0x80, op = h[0] & 0x0f;
        if (h[1] & 0x80) {
            conn_fail(cl, c, "masked frame from the server");
            return -1;
        }
        uint64_t plen = h[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (avail < 4) break;
            plen = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10) break;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = plen << 8 | h[2 + i];
            hl = 10;
        }
        if (plen > MAX_FRAME) {
            conn_fail(cl, c, "frame too large");
            return -1;
        }
        if (avail < hl + plen) break;
        const char *d = p + off + hl;
        off += hl + (size_t)plen;
        switch (op) {
        case 0x1:
        case 0x2:
            if (fin) {
                on_eio_packet(cl, c, d, (size_t)plen);
            } else {
                c->flen = 0;
                if (grow(&c->frag, &c->fcap, (size_t)plen) != 0) return -1;
                memcpy(c->frag, d, (size_t)plen);
                c->flen = (size_t)plen;
            }
            break;
        case 0x0:
            if (c->flen + plen > MAX_FRAME || grow(&c->frag, &c->fcap, c->flen + plen) != 0) {
                conn_fail(cl, c, "fragmented message too large");
                return -1;
            }
            memcpy(c->frag + c->flen, d, (size_t)plen);
            c->flen += (size_t)plen;
            if (fin) {
                /* The packet handler may queue writes but never touches frag. */
                on_eio_packet(cl, c, c->frag, c->flen);
                if (c->state != CONN_CLOSED) c->flen = 0;
            }
            break;
        case 0x8: {
            char why[64];
            int code = plen >= 2 ? ((unsigned char)d[0] << 8 | (unsigned char)d[1]) : 1005;
            snprintf(why, sizeof why, "WebSocket close from the server (code %d)", code);
            conn_fail(cl, c, why);
            return -1;
        }
        case 0x9:
            queue_frame(cl, c, 0xA, d, (size_t)plen);
            break;
        case 0xA:
            break;
        default:
            conn_fail(cl, c, "unknown WebSocket opcode");
            return -1;
        }
        if (c->state == CONN_CLOSED) return -1;
    }
    return (long)off;
}

static long parse_input(lg_client_t *cl, lg_conn_t *c, const char *p, size_t len)
{
    long off = 0;
    if (c->state == CONN_UPGRADE) {
        off = parse_upgrade(cl, c, p, len);
        if (off <= 0) return off;
    }
    long r = parse_frames(cl, c, p + off, len - (size_t)off);
    return r < 0 ? -1 : off + r;
}

static void conn_read(lg_client_t *cl, lg_conn_t *c)
{
    const char *data;
    size_t len;
    if (c->rlen == 0) {
        ssize_t r = read(c->fd, cl->scratch, cl->scratch_cap);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (r <= 0) {
            conn_fail(cl, c, r == 0 ? "server closed the connection" : strerror(errno));
            return;
        }
        data = cl->scratch;
        len = (size_t)r;
    } else {
        if (grow(&c->rbuf, &c->rcap, c->rlen + 65536) != 0) {
            conn_fail(cl, c, "out of memory");
            return;
        }
        ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (r <= 0) {
            conn_fail(cl, c, r == 0 ? "server closed the connection" : strerror(errno));
            return;
        }
        c->rlen += (size_t)r;
        data = c->rbuf;
        len = c->rlen;
    }
    long used = parse_input(cl, c, data, len);
    if (used < 0) return;
    size_t rest = len - (size_t)used;
    if (data == cl->scratch) {
        if (rest) {
            if (grow(&c->rbuf, &c->rcap, rest) != 0) {
                conn_fail(cl, c, "out of memory");
                return;
            }
            memcpy(c->rbuf, data + used, rest);
        }
        c->rlen = rest;
    } else {
        if (rest && used) memmove(c->rbuf, c->rbuf + used, rest);
        c->rlen = rest;
        if (!rest && c->rcap > 65536 * 4) {
            /* Idle sockets keep no big buffer around. */
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
    }
}

void client_event(lg_client_t *cl, lg_conn_t *c, uint32_t events)
{
    if (c->state == CONN_TCP) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t sl = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err || (events & EPOLLERR)) {
            char why[120];
            snprintf(why, sizeof why, "connect: %s", strerror(err ? err : ECONNREFUSED));
            conn_fail(cl, c, why);
            return;
        }
        send_upgrade(cl, c);
        conn_flush(cl, c);
        return;
    }
    if (events & EPOLLOUT) {
        conn_flush(cl, c);
        if (c->state == CONN_CLOSED) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn_read(cl, c);
}

/* The group scenario of the load generator: G groups of M members, each group created over
 * REST (POST /api/chat/conversations, as bench/groups.mjs does), every member sends R
 * messages/s to its group (open loop, the sends of all members staggered evenly), and every
 * delivery is verified: each member but the sender receives each message once, each sender's
 * messages in order, the group's seqs increasing, with the seq its sender's ack carried. */
#define _GNU_SOURCE
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct lg_member {
    lg_conn_t c;
    char user[64];
    lg_group_t *g;
    uint32_t idx; /* in its group */
    uint64_t sent, acked;
    uint64_t last_seq; /* highest seq of the group delivered to this member */
    /* rings of w->ring entries, indexed by clientMsgId */
    uint8_t *ackbits;
    uint64_t *tsend; /* scheduled send time */
    uint64_t *seq;   /* the seq the server gave message n, from its ack or a delivery (0: none) */
};

struct lg_group {
    char id[32]; /* conversation id */
    size_t idlen;
    char stem[48]; /* "<prefix>g<number>m": its members' user ids without the index */
    size_t stemlen;
    lg_member_t *m;   /* its cfg->members members */
    uint64_t *expect; /* [receiver * M + sender]: next clientMsgId the receiver should get */
};

/* One blocking HTTP/1.1 request for the set-up: POST body to path with a Bearer token.
 * Returns the status and the body (malloc'd, NUL-terminated) in *out, or -1. */
static int http_post(const lg_config_t *cfg, const char *token, const char *path, const char *body,
                     char **out)
{
    *out = NULL;
    size_t bl = strlen(body);
    size_t rq_cap = bl + strlen(token) + 512;
    char *rq = malloc(rq_cap);
    if (!rq) return -1;
    int rl = snprintf(rq, rq_cap,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%s",
                      path, cfg->host, cfg->port, token, bl, body);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    inet_pton(AF_INET, cfg->host, &dst.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 10};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 ||
        write_full(fd, rq, (size_t)rl) != rl) {
        free(rq);
        if (fd >= 0) close(fd);
        return -1;
    }
    free(rq);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    long want = -1; /* header + body length, once the header is in */
    while (buf && len < cap && (want < 0 || (long)len < want)) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = want < 0 ? strstr(buf, "\r\n\r\n") : NULL;
        if (end) {
            char *cl = strcasestr(buf, "\r\ncontent-length:");
            want = (long)(end + 4 - buf) + (cl && cl < end ? strtol(cl + 17, NULL, 10) : 0);
            if (!cl || cl > end) want = (long)cap; /* no length: read to the close */
        }
    }
    close(fd);
    if (!buf) return -1;
    buf[len] = '\0';
    int status = -1;
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        free(buf);
        return -1;
    }
    memmove(buf, end + 4, len - (size_t)(end + 4 - buf) + 1);
    *out = buf;
    return status;
}

static int create_group(worker_t *w, lg_group_t *g)
{
    const lg_config_t *cfg = w->cfg;
    int M = cfg->members;
    char token[600];
    if (token_sign(cfg->secret, g->m[0].user, token, sizeof token) < 0) return -1;
    size_t cap = 64 + (size_t)M * (sizeof g->m[0].user + 3);
    char *body = malloc(cap);
    if (!body) return -1;
    size_t n = (size_t)snprintf(body, cap, "{\"participantIds\":[");
    for (int j = 1; j < M; j++)
        n += (size_t)snprintf(body + n, cap - n, "%s\"%s\"", j > 1 ? "," : "", g->m[j].user);
    snprintf(body + n, cap - n, "]}");
    char *answer = NULL;
    int status = http_post(cfg, token, "/api/chat/conversations", body, &answer);
    free(body);
    const char *id = answer ? strstr(answer, "\"_id\":\"") : NULL;
    const char *q = id ? strchr(id + 7, '"') : NULL;
    if (status != 201 || !q || (size_t)(q - id - 7) >= sizeof g->id || q == id + 7) {
        note_error(w, "POST /api/chat/conversations for %.*s: %d %.120s", (int)g->stemlen, g->stem,
                   status, answer ? answer : "(no answer)");
        free(answer);
        return -1;
    }
    g->idlen = (size_t)(q - id - 7);
    memcpy(g->id, id + 7, g->idlen);
    g->id[g->idlen] = '\0';
    free(answer);
    return 0;
}

int group_setup(worker_t *w)
{
    const lg_config_t *cfg = w->cfg;
    size_t G = (size_t)w->sl->count, M = (size_t)cfg->members, N = G * M;
    /* Unacknowledged sends a member may have: 8 s of its rate, at least 64. */
    uint64_t ring = 64;
    while ((double)ring < cfg->rate * 8) ring *= 2;
    w->ring = ring;
    w->ngroups = G;
    w->nmembers = w->nconns = N;
    w->groups = calloc(G, sizeof *w->groups);
    w->members = calloc(N, sizeof *w->members);
    w->conns = calloc(N, sizeof *w->conns);
    uint64_t *expect = malloc(G * M * M * sizeof *expect);
    uint8_t *ackbits = calloc(N, ring / 8);
    uint64_t *tsend = calloc(N * ring, sizeof *tsend);
    uint64_t *seq = calloc(N * ring, sizeof *seq);
    if (!w->groups || !w->members || !w->conns || !expect || !ackbits || !tsend || !seq) {
        free(expect), free(ackbits), free(tsend), free(seq);
        return -1;
    }
    for (size_t i = 0; i < G * M * M; i++) expect[i] = 1;
    for (size_t gi = 0; gi < G; gi++) {
        lg_group_t *g = &w->groups[gi];
        g->stemlen = (size_t)snprintf(g->stem, sizeof g->stem, "%sg%ldm", cfg->prefix,
                                      w->sl->first + (long)gi);
        g->m = &w->members[gi * M];
        g->expect = &expect[gi * M * M];
        for (size_t j = 0; j < M; j++) {
            lg_member_t *m = &g->m[j];
            size_t k = gi * M + j;
            snprintf(m->user, sizeof m->user, "%s%u", g->stem, (unsigned)j);
            m->g = g;
            m->idx = (uint32_t)j;
            m->ackbits = ackbits + k * (ring / 8);
            m->tsend = tsend + k * ring;
            m->seq = seq + k * ring;
            m->c.role = ROLE_MEMBER;
            m->c.ud = m;
            m->c.user = m->user;
            m->c.fd = -1;
            w->conns[k] = &m->c;
        }
    }
    for (size_t gi = 0; gi < G; gi++)
        if (create_group(w, &w->groups[gi]) != 0) return -1;
    return 0;
}

void group_free(worker_t *w)
{
    if (w->groups && w->members) {
        free(w->groups[0].expect);
        free(w->members[0].ackbits);
        free(w->members[0].tsend);
        free(w->members[0].seq);
    }
    free(w->groups);
    free(w->members);
    w->groups = NULL;
    w->members = NULL;
}

static void send_member(worker_t *w, lg_member_t *m, uint64_t t_sched)
{
    uint64_t n = ++m->sent;
    w->sent++;
    w->res->sent++;
    w->expect_recv += (uint64_t)w->cfg->members - 1;
    uint64_t slot = n & (w->ring - 1);
    m->ackbits[slot >> 3] &= (uint8_t) ~(1u << (slot & 7));
    m->tsend[slot] = t_sched;
    m->seq[slot] = 0;
    char buf[8192 + 256];
    int len =
        snprintf(buf, sizeof buf,
                 "42%" PRIu64 "[\"send_message\",{\"conversationId\":\"%s\",\"content\":\"t%" PRIu64
                 "%s\",\"clientMsgId\":\"%" PRIu64 "\"}]",
                 n, m->g->id, t_sched, w->pad, n);
    client_send(&w->cl, &m->c, buf, (size_t)len);
}

void group_sends(worker_t *w)
{
    /* Send k goes to member k/G % M of group k % G: each member every 1/R s, and the groups'
     * messages spread evenly over the period. */
    double interval = 1e9 / w->sl->rate;
    size_t G = w->ngroups, M = (size_t)w->cfg->members;
    while (w->next_due <= w->now && w->next_due < w->t_stop) {
        lg_member_t *m = &w->groups[w->rate_k % G].m[(w->rate_k / G) % M];
        if (m->c.state == CONN_READY) {
            if (rate_may_send(w, m->sent, m->acked, m->user)) send_member(w, m, w->next_due);
        }
        w->rate_k++;
        w->next_due = w->t_go + (uint64_t)((double)w->rate_k * interval);
    }
}

/* Records that message n of m has `seq`; false when it was seen with another. */
static bool check_seq(worker_t *w, lg_member_t *m, uint64_t n, uint64_t seq)
{
    if (m->sent - n >= w->ring) return true; /* its slot was reused: too old to check */
    uint64_t *s = &m->seq[n & (w->ring - 1)];
    if (!*s) *s = seq;
    return *s == seq;
}

static void on_group_ack(worker_t *w, lg_member_t *m, const char *pk, size_t n)
{
    ack_t a;
    if (!ack_take(w, pk, n, m->user, m->sent, m->ackbits, &m->acked, m->tsend, &a)) return;
    if (a.ok && (!a.ids || a.seq == 0 || a.cmid != a.id || !check_seq(w, m, a.id, a.seq))) {
        w->res->err_seq++;
        note_error(w,
                   "ack %" PRIu64 " of %s carries seq %" PRIu64 " clientMsgId %" PRIu64
                   " (its deliveries said seq %" PRIu64 ")",
                   a.id, m->user, a.seq, a.cmid, m->seq[a.id & (w->ring - 1)]);
    }
}

/* The member index j in `"sender":"<stem>j"`, or -1 when the sender is not of group g. */
static long sender_index(const lg_group_t *g, const char *pk, size_t n)
{
    const char *s = memmem(pk, n, "\"sender\":\"", 10);
    if (!s) return -1;
    s += 10;
    const char *end = pk + n;
    if ((size_t)(end - s) < g->stemlen + 2 || memcmp(s, g->stem, g->stemlen) != 0) return -1;
    s += g->stemlen;
    long j = 0;
    const char *d = s;
    while (d < end && *d >= '0' && *d <= '9' && d - s < 6) j = j * 10 + (*d++ - '0');
    return d > s && d < end && *d == '"' ? j : -1;
}

static void on_group_receive(worker_t *w, lg_member_t *r, const char *pk, size_t n)
{
    lg_group_t *g = r->g;
    long M = w->cfg->members;
    uint64_t cmid, seq, t;
    if (!receive_fields(w, pk, n, &cmid, &seq, &t)) return;
    long j = sender_index(g, pk, n);
    const char *cv = memmem(pk, n, "\"conversationId\":\"", 18);
    if (j < 0 || j >= M || !cv || (size_t)(pk + n - cv) < 18 + g->idlen + 1 ||
        memcmp(cv + 18, g->id, g->idlen) != 0 || cv[18 + g->idlen] != '"') {
        w->res->err_proto++;
        note_error(w, "%s received a message not of its group %s: %.*s", r->user, g->id,
                   (int)(n > 160 ? 160 : n), pk);
        return;
    }
    if ((uint32_t)j == r->idx) {
        w->res->err_echo++;
        note_error(w, "receive_message reached the sending socket of %s", r->user);
        return;
    }
    lg_member_t *s = &g->m[j];
    if (cmid == 0 || cmid > s->sent) {
        w->res->err_proto++;
        note_error(w, "%s received message %" PRIu64 " of %s, which sent %" PRIu64, r->user, cmid,
                   s->user, s->sent);
        return;
    }
    w->received++;
    w->res->received++;
    uint64_t *e = &g->expect[(size_t)r->idx * (size_t)M + (size_t)j];
    if (cmid == *e) {
        (*e)++;
        if (seq <= r->last_seq) {
            w->res->err_order++;
            note_error(w, "%s received seq %" PRIu64 " of %s after seq %" PRIu64, r->user, seq,
                       g->id, r->last_seq);
        }
        r->last_seq = seq;
    } else if (cmid < *e) {
        w->res->err_dup++;
        note_error(w, "%s received message %" PRIu64 " of %s again (expected %" PRIu64 ")", r->user,
                   cmid, s->user, *e);
    } else {
        w->res->err_order++;
        note_error(w, "%s received message %" PRIu64 " of %s while expecting %" PRIu64, r->user,
                   cmid, s->user, *e);
        *e = cmid + 1;
    }
    if (!check_seq(w, s, cmid, seq)) {
        w->res->err_seq++;
        note_error(
            w, "message %" PRIu64 " of %s delivered to %s with seq %" PRIu64 ", elsewhere %" PRIu64,
            cmid, s->user, r->user, seq, s->seq[cmid & (w->ring - 1)]);
    }
    if (in_window(w, w->now)) w->res->received_in_window++;
    if (in_window(w, t) && w->now >= t) hist_add(&w->res->lat_recv, w->now - t);
}

void group_packet(worker_t *w, lg_conn_t *c, const char *pk, size_t n)
{
    lg_member_t *m = c->ud;
    if (pk[0] == '3')
        on_group_ack(w, m, pk, n);
    else
        on_group_receive(w, m, pk + 20, n - 20);
}

void group_finish(worker_t *w)
{
    size_t M = (size_t)w->cfg->members;
    for (size_t gi = 0; gi < w->ngroups; gi++) {
        lg_group_t *g = &w->groups[gi];
        for (size_t j = 0; j < M; j++) {
            lg_member_t *s = &g->m[j];
            if (s->acked < s->sent) {
                w->res->err_lost += s->sent - s->acked;
                note_error(w,
                           "%s: sent %" PRIu64 ", acknowledged %" PRIu64 " within the drain time",
                           s->user, s->sent, s->acked);
            }
            for (size_t r = 0; r < M; r++) {
                uint64_t got = g->expect[r * M + j] - 1;
                if (r == j || got >= s->sent) continue;
                w->res->err_lost += s->sent - got;
                note_error(w, "%s received %" PRIu64 " of the %" PRIu64 " messages %s sent",
                           g->m[r].user, got, s->sent, s->user);
            }
        }
    }
}

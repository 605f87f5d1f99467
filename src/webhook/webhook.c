/* Webhook delivery (webhook.h, docs/webhooks.md): claim on the loop, render on the loop, POST
 * on sender threads, ack on the loop. Memory is bounded by max_in_flight jobs (each one
 * rendered body) and one claim arena. */
#include "webhook/webhook.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uv.h>

#include "chat/chat_json.h"
#include "core/log.h"
#include "webhook/webhook_sign.h"

#define CLAIM_ARENA    (4u << 20) /* one claim's rows and documents */
#define CLAIM_MAX      64         /* rows per claim */
#define COUNT_EVERY_MS 1000       /* how often pending/failed are counted */
#define RUN_MAX        64         /* rows of one conversation claimed and sent in one go */
/* Rendered bodies held at once: no new claim past it (one claim adds at most its arena). */
#define WEBHOOK_IN_FLIGHT_BYTES (16u << 20)

const int64_t webhook_latency_le[9] = {10, 50, 100, 250, 500, 1000, 5000, 30000, 0};

static const char *const event_names[] = {"message.created", "message.read", "conversation.created",
                                          "message.unread"};

/* One outbox row to send. body NULL: it could not be rendered (retried later). */
typedef struct {
    int64_t id, created_at, attempts;
    uint32_t done_mask;
    const char *event;
    char *body;
    size_t len;
    /* results, set by the sender */
    store_outbox_outcome_t outcome;
    int64_t due_at, delivered_at;
} item_t;

/* A run: rows of one conversation in order (or one unordered row), sent one after the other
 * by one sender; the first that is to be retried ends it and the rest goes back (REQUEUE). */
typedef struct job {
    struct job *next;
    int64_t claimed_at; /* the lease's start: the run stops before half of it has passed */
    unsigned posts, errors;
    size_t bytes;
    size_t n;
    item_t items[];
} job_t;

typedef struct {
    store_req_t req;
    webhook_t *w;
    size_t n;
    store_outbox_result_t res[];
} ack_t;

struct webhook {
    uv_loop_t *loop;
    store_t *store;
    chat_t *chat;
    webhook_options_t o;
    char **urls;
    char *secret;
    size_t secret_len;
    uint32_t all_mask;
    uv_timer_t timer;
    uv_async_t async;
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *queue, *queue_tail; /* to send (mu) */
    job_t *done;               /* sent, to ack (mu) */
    bool stop;                 /* (mu) */
    atomic_int abort_sends;    /* read by curl's progress callback */
    /* loop only */
    bool stopping, claiming;
    size_t in_flight, max_in_flight, acking, bytes_in_flight;
    int64_t lease_ms, last_count_ms;
    store_req_t claim;
    char *arena;
    /* message.unread recipients of the claim asked about (cluster presence) and their rows */
    str_t ask[CLAIM_MAX];
    size_t ask_row[CLAIM_MAX], nask;
    webhook_stats_t st;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- rendering (loop) ---- */

static json_t *conversation_json(const store_conversation_t *c)
{
    if (!c) return json_null();
    json_t *j = chat_conversation_json(c);
    if (j) json_object_del(j, "unreadCount"); /* per reader; nobody reads here */
    return j ? j : json_null();
}

static json_t *message_json(const store_message_t *m)
{
    json_t *j = m ? chat_message_json(m) : NULL;
    return j ? j : json_null();
}

/* The body of a row: {id, type, createdAt, data}. NULL when out of memory. */
static char *render(const store_outbox_row_t *r, size_t *len)
{
    char t[64], idtext[24];
    json_t *data = NULL;
    switch (r->type) {
    case STORE_OUTBOX_MESSAGE_CREATED:
        data = json_pack("{s:o, s:o}", "message", message_json(r->message), "conversation",
                         conversation_json(r->conversation));
        break;
    case STORE_OUTBOX_MESSAGE_READ:
        chat_iso_time(r->created_at, t);
        data = json_pack("{s:s, s:o, s:s, s:I, s:s, s:o}", "conversationId", r->conversation_id,
                         "userId", chat_str_or_null(r->user), "messageId", r->message_id, "seq",
                         (json_int_t)r->seq, "readAt", t, "conversation",
                         conversation_json(r->conversation));
        break;
    case STORE_OUTBOX_CONVERSATION_CREATED:
        data = json_pack("{s:o}", "conversation", conversation_json(r->conversation));
        break;
    case STORE_OUTBOX_MESSAGE_UNREAD:
        data = json_pack("{s:{s:o}, s:o, s:o}", "recipient", "id", chat_str_or_null(r->user),
                         "message", message_json(r->message), "conversation",
                         conversation_json(r->conversation));
        break;
    }
    if (!data) return NULL;
    snprintf(idtext, sizeof idtext, "%lld", (long long)r->id);
    chat_iso_time(r->created_at, t);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o}", "id", idtext, "type", event_names[r->type],
                            "createdAt", t, "data", data);
    if (!doc) return NULL;
    char *s = chat_dumps(doc, len);
    json_decref(doc);
    return s;
}

/* ---- sending (threads) ---- */

typedef struct {
    size_t got;
} sink_t;

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    sink_t *s = ud;
    s->got += size * n;
    /* A receiver's answer is not read beyond this: a huge response ends the transfer. */
    return s->got > WEBHOOK_RESPONSE_MAX ? 0 : size * n;
}

static int progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    webhook_t *w = ud;
    return atomic_load(&w->abort_sends) ? 1 : 0;
}

/* One POST: true when the receiver answered 2xx. */
static bool post(webhook_t *w, CURL *h, const char *url, const item_t *j, const char *sig)
{
    char hdr[4][160];
    struct curl_slist *list = NULL;
    snprintf(hdr[0], sizeof hdr[0], "X-Parlor-Event: %s", j->event);
    snprintf(hdr[1], sizeof hdr[1], "X-Parlor-Delivery: %lld", (long long)j->id);
    snprintf(hdr[2], sizeof hdr[2], "X-Parlor-Signature: sha256=%s", sig);
    snprintf(hdr[3], sizeof hdr[3], "X-Parlor-Attempt: %lld", (long long)j->attempts);
    list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "User-Agent: Parlor-Webhooks/1");
    list = curl_slist_append(list, "Expect:");
    for (int i = 0; i < 4; i++) list = curl_slist_append(list, hdr[i]);
    sink_t sink = {0};
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)w->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is not followed: not 2xx */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(list);
    bool cut = rc == CURLE_WRITE_ERROR && sink.got > WEBHOOK_RESPONSE_MAX;
    return (rc == CURLE_OK || cut) && code >= 200 && code <= 299;
}

static void send_job(webhook_t *w, CURL *h, job_t *j, unsigned *seed)
{
    char sig[WEBHOOK_SIG_HEX + 1];
    bool stop = false;
    for (size_t k = 0; k < j->n; k++) {
        item_t *it = &j->items[k];
        int64_t now = now_ms();
        if (stop) {
            it->outcome = STORE_OUTBOX_REQUEUE;
            continue;
        }
        /* stopping, or the lease half gone (a slow receiver): give the rest back unsent */
        if (atomic_load(&w->abort_sends) || now - j->claimed_at > w->lease_ms / 2 || !it->body) {
            it->outcome = STORE_OUTBOX_RETRY;
            it->due_at = it->body ? now : now + w->o.retry_base_ms;
            stop = true;
            continue;
        }
        webhook_sign(w->secret, w->secret_len, it->body, it->len, sig);
        for (size_t i = 0; i < w->o.nurls && !atomic_load(&w->abort_sends); i++) {
            if (it->done_mask & (1u << i)) continue;
            j->posts++;
            if (post(w, h, w->urls[i], it, sig))
                it->done_mask |= 1u << i;
            else
                j->errors++;
        }
        now = now_ms();
        if ((it->done_mask & w->all_mask) == w->all_mask) {
            it->outcome = STORE_OUTBOX_DELIVERED;
            it->delivered_at = now;
        } else if (atomic_load(&w->abort_sends)) {
            it->outcome = STORE_OUTBOX_RETRY; /* stopping: due again at once after a restart */
            it->due_at = now;
            stop = true;
        } else {
            double r = (double)rand_r(seed) / ((double)RAND_MAX + 1.0);
            int64_t due =
                now + webhook_backoff_ms(it->attempts, w->o.retry_base_ms, w->o.retry_max_ms, r);
            it->due_at = due;
            if (due > it->created_at + w->o.retry_window_ms) {
                it->outcome = STORE_OUTBOX_FAILED; /* given up: the queue goes on */
            } else {
                it->outcome = STORE_OUTBOX_RETRY;
                stop = true;
            }
        }
    }
}

static void *sender(void *arg)
{
    webhook_t *w = arg;
    CURL *h = curl_easy_init();
    unsigned seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (unsigned)now_ms();
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->stop && !w->queue) pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        job_t *j = w->queue;
        w->queue = j->next;
        if (!w->queue) w->queue_tail = NULL;
        pthread_mutex_unlock(&w->mu);
        if (h) {
            send_job(w, h, j, &seed);
        } else { /* no handle: try again later */
            for (size_t k = 0; k < j->n; k++) {
                j->items[k].outcome = k ? STORE_OUTBOX_REQUEUE : STORE_OUTBOX_RETRY;
                j->items[k].due_at = now_ms() + w->o.retry_base_ms;
            }
        }
        pthread_mutex_lock(&w->mu);
        j->next = w->done;
        w->done = j;
        pthread_mutex_unlock(&w->mu);
        uv_async_send(&w->async);
    }
    if (h) curl_easy_cleanup(h);
    return NULL;
}

/* ---- claims and acks (loop) ---- */

static void maybe_claim(webhook_t *w);

static void ack_done(store_req_t *req)
{
    ack_t *a = (ack_t *)req;
    webhook_t *w = a->w;
    if (req->status != STORE_OK)
        log_warn("webhooks: recording %zu outcome(s) failed (%s); they are sent again after "
                 "their lease",
                 a->n, store_strerror(req->status));
    w->acking--;
    free(a);
    maybe_claim(w); /* the next event of those conversations may be due now */
}

static void submit_ack(webhook_t *w, ack_t *a)
{
    a->w = w;
    a->req.op = STORE_OP_OUTBOX_ACK;
    a->req.done = ack_done;
    a->req.u.outbox_ack.results = a->res;
    a->req.u.outbox_ack.count = a->n;
    w->acking++;
    if (store_submit(w->store, &a->req) != 0) {
        w->acking--;
        free(a);
    }
}

static void record_latency(webhook_t *w, int64_t ms)
{
    if (ms < 0) ms = 0;
    for (int i = 0; i < 9; i++)
        if (webhook_latency_le[i] == 0 || ms <= webhook_latency_le[i]) w->st.latency_buckets[i]++;
    w->st.latency_count++;
    w->st.latency_sum_ms += (double)ms;
}

/* Takes the senders' results and acks them in one request (in row order within each run). */
static void collect(webhook_t *w)
{
    pthread_mutex_lock(&w->mu);
    job_t *list = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->mu);
    size_t n = 0;
    for (job_t *j = list; j; j = j->next) n += j->n;
    if (!n) return;
    ack_t *a = calloc(1, sizeof *a + n * sizeof a->res[0]);
    while (list) {
        job_t *j = list;
        list = j->next;
        w->st.attempts += j->posts;
        w->st.attempt_errors += j->errors;
        for (size_t k = 0; k < j->n; k++) {
            item_t *it = &j->items[k];
            if (it->outcome == STORE_OUTBOX_DELIVERED) {
                w->st.delivered++;
                record_latency(w, it->delivered_at - it->created_at);
            } else if (it->outcome == STORE_OUTBOX_FAILED) {
                w->st.failed++;
                log_warn("webhooks: delivery %lld (%s) failed for good after %lld attempts",
                         (long long)it->id, it->event, (long long)it->attempts);
            }
            if (a)
                a->res[a->n++] = (store_outbox_result_t){.id = it->id,
                                                         .outcome = it->outcome,
                                                         .due_at = it->due_at,
                                                         .done_mask = it->done_mask};
            free(it->body);
        }
        w->in_flight -= j->n;
        w->bytes_in_flight -= j->bytes;
        free(j);
    }
    if (a) submit_ack(w, a);
}

static void on_async(uv_async_t *h)
{
    collect(h->data);
}

static bool unread_first_try(const store_outbox_row_t *r)
{
    return r->type == STORE_OUTBOX_MESSAGE_UNREAD && r->attempts == 1;
}

static void claim_process(webhook_t *w, const bool *online);
static void online_done(void *arg, const int8_t *state, const int64_t *since);

static void claim_done(store_req_t *req)
{
    webhook_t *w = req->data;
    w->claiming = false;
    const store_outbox_claim_t *c = &req->u.outbox_claim;
    /* Stopping (the store runs this from store_close, the senders are gone): the rows stay
       leased and are sent again once the lease ends. */
    if (w->stopping) return;
    if (req->status != STORE_OK) {
        log_warn("webhooks: claiming deliveries failed: %s", store_strerror(req->status));
        return;
    }
    if (c->counts) {
        w->st.pending = c->pending;
        w->st.failed_rows = c->failed;
    }
    /* message.unread rows whose recipient has no socket here: in a cluster, ask whether they
       are online on another node before deciding (one Redis round trip per claim). */
    if (c->count && c->count <= CLAIM_MAX) {
        w->nask = 0;
        for (size_t i = 0; i < c->count; i++)
            if (unread_first_try(&c->rows[i]) && !chat_user_connected(w->chat, c->rows[i].user)) {
                w->ask_row[w->nask] = i;
                w->ask[w->nask++] = c->rows[i].user;
            }
        if (w->nask && chat_users_online_query(w->chat, w->ask, w->nask, online_done, w) == 0) {
            w->claiming = true; /* the claim's rows stay in w->claim until online_done */
            return;
        }
    }
    claim_process(w, NULL);
}

/* The cluster's answer for the rows claim_done asked about (state NULL: no answer, so only
 * this node's sockets count). Runs before the loop ends, also when the bus closes. */
static void online_done(void *arg, const int8_t *state, const int64_t *since)
{
    (void)since;
    webhook_t *w = arg;
    w->claiming = false;
    if (w->stopping) return; /* the rows stay leased and come back after the lease */
    bool online[CLAIM_MAX] = {false};
    for (size_t k = 0; state && k < w->nask; k++)
        if (state[k] == 1) online[w->ask_row[k]] = true;
    claim_process(w, online);
}

/* Sends the claimed rows (w->claim), skipping the message.unread ones whose recipient is
 * connected: here, or (online non-NULL) on another node of the cluster. */
static void claim_process(webhook_t *w, const bool *online)
{
    const store_outbox_claim_t *c = &w->claim.u.outbox_claim;
    ack_t *skip = c->count ? calloc(1, sizeof *skip + c->count * sizeof skip->res[0]) : NULL;
    job_t *head = NULL, *tail = NULL;
    int64_t now = now_ms();
    for (size_t i = 0; i < c->count;) {
        const store_outbox_row_t *r = &c->rows[i];
        /* message.unread: only to a recipient with no connected socket at its due time (the
           first attempt; retries keep the decision) */
        if (unread_first_try(r) &&
            ((online && i < CLAIM_MAX && online[i]) || chat_user_connected(w->chat, r->user))) {
            w->st.skipped++;
            if (skip)
                skip->res[skip->n++] =
                    (store_outbox_result_t){.id = r->id, .outcome = STORE_OUTBOX_SKIPPED};
            i++;
            continue;
        }
        size_t n = 1;
        while (i + n < c->count && c->rows[i + n].follows) n++;
        job_t *j = calloc(1, sizeof *j + n * sizeof j->items[0]);
        if (!j) { /* out of memory: the lease brings them back */
            i += n;
            continue;
        }
        j->n = n;
        j->claimed_at = now;
        for (size_t k = 0; k < n; k++) {
            const store_outbox_row_t *row = &c->rows[i + k];
            item_t *it = &j->items[k];
            it->body = render(row, &it->len);
            it->id = row->id;
            it->created_at = row->created_at;
            it->attempts = row->attempts;
            it->done_mask = row->done_mask;
            it->event = event_names[row->type];
            j->bytes += it->len;
        }
        i += n;
        w->in_flight += n;
        w->bytes_in_flight += j->bytes;
        if (tail)
            tail->next = j;
        else
            head = j;
        tail = j;
    }
    if (head) {
        pthread_mutex_lock(&w->mu);
        if (w->queue_tail)
            w->queue_tail->next = head;
        else
            w->queue = head;
        w->queue_tail = tail;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    if (skip && skip->n)
        submit_ack(w, skip);
    else
        free(skip);
    if (c->count > 0) maybe_claim(w); /* more may be due */
}

static void maybe_claim(webhook_t *w)
{
    if (w->stopping || w->claiming) return;
    int64_t now = now_ms();
    bool full = w->in_flight >= w->max_in_flight || w->bytes_in_flight >= WEBHOOK_IN_FLIGHT_BYTES;
    bool count = now - w->last_count_ms >= COUNT_EVERY_MS;
    if (full && !count) return;
    size_t room = full ? 0 : w->max_in_flight - w->in_flight; /* 0: only the counts */
    memset(&w->claim, 0, sizeof w->claim);
    w->claim.op = STORE_OP_OUTBOX_CLAIM;
    w->claim.done = claim_done;
    w->claim.data = w;
    w->claim.arena.ptr = w->arena;
    w->claim.arena.cap = CLAIM_ARENA;
    w->claim.u.outbox_claim.limit = room < CLAIM_MAX ? room : CLAIM_MAX;
    w->claim.u.outbox_claim.lease_ms = w->lease_ms;
    w->claim.u.outbox_claim.run_max = RUN_MAX;
    if (count) {
        w->claim.u.outbox_claim.counts = true;
        w->last_count_ms = now;
    }
    w->claiming = store_submit(w->store, &w->claim) == 0;
}

static void on_timer(uv_timer_t *t)
{
    maybe_claim(t->data);
}

/* ---- life ---- */

webhook_t *webhook_new(uv_loop_t *loop, store_t *store, chat_t *chat, const webhook_options_t *o,
                       char *err, size_t errcap)
{
    if (o->nurls < 1 || o->nurls > WEBHOOK_URLS_MAX) {
        snprintf(err, errcap, "between 1 and %d webhook URLs", WEBHOOK_URLS_MAX);
        return NULL;
    }
    for (size_t i = 0; i < o->nurls; i++)
        if (strncmp(o->urls[i], "http://", 7) != 0 && strncmp(o->urls[i], "https://", 8) != 0) {
            snprintf(err, errcap, "webhook URL '%.200s' is not http:// or https://", o->urls[i]);
            return NULL;
        }
    if (!o->secret || !*o->secret) {
        snprintf(err, errcap, "--webhook-url needs --webhook-secret (receivers check signatures)");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errcap, "libcurl failed to initialize");
        return NULL;
    }
    webhook_t *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->loop = loop;
    w->store = store;
    w->chat = chat;
    w->o = *o;
    if (w->o.concurrency < 1) w->o.concurrency = 1;
    w->urls = calloc(o->nurls, sizeof *w->urls);
    w->secret = strdup(o->secret);
    w->arena = malloc(CLAIM_ARENA);
    if (!w->urls || !w->secret || !w->arena) goto oom;
    for (size_t i = 0; i < o->nurls; i++)
        if (!(w->urls[i] = strdup(o->urls[i]))) goto oom;
    w->secret_len = strlen(w->secret);
    w->all_mask = (uint32_t)((1u << o->nurls) - 1);
    w->max_in_flight = (size_t)w->o.concurrency * RUN_MAX;
    /* A claimed row is not handed out again before this. A sender starts no POST once half of
       it has passed since the claim (the rest of the run goes back), and one POST to each URL
       takes at most timeout_ms, so a row's sends never outlive its lease. */
    w->lease_ms = 4 * o->timeout_ms * (int64_t)o->nurls;
    if (w->lease_ms < 10000) w->lease_ms = 10000;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    uv_async_init(loop, &w->async, on_async);
    w->async.data = w;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->threads = calloc(w->o.concurrency, sizeof *w->threads);
    if (!w->threads) goto oom;
    for (unsigned i = 0; i < w->o.concurrency; i++) {
        if (pthread_create(&w->threads[i], NULL, sender, w) != 0) break;
        w->nthreads++;
    }
    if (!w->nthreads) {
        snprintf(err, errcap, "cannot start webhook threads");
        webhook_stop(w);
        return NULL; /* the handles close with the loop; w leaks once, at a failed start */
    }
    uv_timer_start(&w->timer, on_timer, 0, (uint64_t)o->poll_ms);
    log_info("webhooks: %zu URL(s), %u sender(s), lease %lld ms", o->nurls, w->nthreads,
             (long long)w->lease_ms);
    return w;
oom:
    snprintf(err, errcap, "out of memory");
    if (w) {
        if (w->urls)
            for (size_t i = 0; i < o->nurls; i++) free(w->urls[i]);
        free(w->urls);
        free(w->secret);
        free(w->arena);
        free(w->threads);
        free(w);
    }
    return NULL;
}

void webhook_stop(webhook_t *w)
{
    if (!w || w->stopping) return;
    w->stopping = true;
    uv_timer_stop(&w->timer);
    atomic_store(&w->abort_sends, 1);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
    w->nthreads = 0;
    /* Jobs never started go back at once; finished ones are acked before the store closes. */
    pthread_mutex_lock(&w->mu);
    for (job_t *j = w->queue, *next; j; j = next) {
        next = j->next;
        for (size_t k = 0; k < j->n; k++) {
            j->items[k].outcome = k ? STORE_OUTBOX_REQUEUE : STORE_OUTBOX_RETRY;
            j->items[k].due_at = now_ms();
        }
        j->next = w->done;
        w->done = j;
    }
    w->queue = w->queue_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    collect(w);
    uv_close((uv_handle_t *)&w->timer, NULL);
    uv_close((uv_handle_t *)&w->async, NULL);
}

void webhook_free(webhook_t *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->o.nurls; i++) free(w->urls[i]);
    free(w->urls);
    free(w->secret);
    free(w->arena);
    free(w->threads);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    curl_global_cleanup();
}

void webhook_stats(const webhook_t *w, webhook_stats_t *out)
{
    *out = w->st;
    out->in_flight = w->in_flight;
}

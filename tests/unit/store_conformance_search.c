/* Conformance: full-text search (issue 16). The same corpus and the same expected hits on
 * every engine: words, prefix of the last word, AND, ASCII case, non-ASCII words, only the
 * user's conversations, one conversation, paging, snippets, and content no parser likes. */
#include "store_conformance.h"

#include <stdlib.h>

/* The hits of q for user (conv optional) as "content|content|...", newest first, into out. */
static const char *hits(sc_t *t, const char *user, const char *conv, const char *q, size_t limit,
                        int64_t before, int64_t *next, char *out, size_t cap)
{
    store_arena_t ar = sc_arena();
    store_search_t s = {.user = str_cstr(user),
                        .query = str_cstr(q),
                        .conversation_id = conv ? str_cstr(conv) : STR_NULL,
                        .limit = limit,
                        .before_pos = before};
    int rc = sc_search_(t, &s, &ar, 0);
    size_t n = 0;
    out[0] = '\0';
    if (rc != STORE_OK) {
        snprintf(out, cap, "error %d", rc);
        return out;
    }
    for (size_t i = 0; i < s.count; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", i ? "|" : "",
                              (int)s.hits[i].msg.content.len, s.hits[i].msg.content.ptr);
    if (next) *next = s.next_pos;
    return out;
}

#define EXPECT_HITS(t, user, conv, q, want)                                                        \
    do {                                                                                           \
        char buf_[2048];                                                                           \
        const char *got_ = hits(t, user, conv, q, 0, 0, NULL, buf_, sizeof buf_);                  \
        if (strcmp(got_, want) != 0) {                                                             \
            fprintf(stderr, "  search %s for %s: got \"%s\", want \"%s\"\n", q, user, got_, want); \
        }                                                                                          \
        CHECK(strcmp(got_, want) == 0);                                                            \
    } while (0)

static void test_search(sc_t *t)
{
    char d1[ID_SIZE], d2[ID_SIZE], g[ID_SIZE];
    sc_direct(t, "amy", "bob", d1);
    sc_direct(t, "cat", "bob", d2);
    str_t parts[] = {STR_LIT("bob"), STR_LIT("cat")};
    store_arena_t ar = sc_arena();
    store_group_create_t gc = {.creator = STR_LIT("amy"), .participants = parts, .count = 2};
    CHECK_EQ_INT(sc_group_create(t, &gc, &ar, 1), STORE_OK);
    memcpy(g, gc.conv.id, ID_SIZE);
    sc_send(t, d1, "amy", "The door code is 4711");
    sc_send(t, d1, "bob", "thanks, door opened");
    sc_send(t, d2, "cat", "secret door code for cat is 1234");
    sc_send(t, g, "amy", "Doorman arrives at noon; café at 1.5pm");
    sc_send(t, g, "bob", "DOOR-CODE changed? <b>no</b> & \"yes\"");
    /* Content no parser likes: a NUL byte, invalid UTF-8, a very long word. */
    store_message_insert_t m;
    memset(&m, 0, sizeof m);
    m.sender = STR_LIT("amy");
    m.conversation_id = str_cstr(d1);
    m.content = str_make("nul\0door here", 13);
    ar = sc_arena();
    CHECK_EQ_INT(sc_message_insert(t, &m, &ar, 2000), STORE_OK);
    m.content = STR_LIT("bad \xff\xfe bytes door");
    ar = sc_arena();
    CHECK_EQ_INT(sc_message_insert(t, &m, &ar, 2000), STORE_OK);

    EXPECT_HITS(t, "amy", NULL, "door code",
                "DOOR-CODE changed? <b>no</b> & \"yes\"|The door code is 4711");
    /* cat's direct conversation with bob is not amy's. */
    EXPECT_HITS(t, "cat", NULL, "door code",
                "DOOR-CODE changed? <b>no</b> & \"yes\"|secret door code for cat is 1234");
    EXPECT_HITS(t, "bob", NULL, "code door",
                "DOOR-CODE changed? <b>no</b> & \"yes\"|secret door code for cat is 1234|The door "
                "code is 4711");
    /* The last word is a prefix; the others are whole words. */
    EXPECT_HITS(
        t, "amy", NULL, "doo",
        "bad \xff\xfe bytes door|nul|DOOR-CODE changed? <b>no</b> & \"yes\"|Doorman arrives "
        "at noon; café at 1.5pm|thanks, door opened|The door code is 4711");
    EXPECT_HITS(t, "amy", NULL, "doo code", "");
    /* A last word under three characters is a whole word (test_search_short_prefix). */
    EXPECT_HITS(t, "amy", NULL, "door c", "");
    EXPECT_HITS(t, "amy", NULL, "door cod",
                "DOOR-CODE changed? <b>no</b> & \"yes\"|The door code is 4711");
    EXPECT_HITS(t, "amy", NULL, "CAFÉ", "");
    EXPECT_HITS(t, "amy", NULL, "café", "Doorman arrives at noon; café at 1.5pm");
    EXPECT_HITS(t, "amy", NULL, "caf", "Doorman arrives at noon; café at 1.5pm");
    EXPECT_HITS(t, "amy", NULL, "5pm", "Doorman arrives at noon; café at 1.5pm");
    EXPECT_HITS(t, "amy", NULL, "1 5pm", "Doorman arrives at noon; café at 1.5pm");
    EXPECT_HITS(t, "amy", NULL, "bytes", "bad \xff\xfe bytes door");
    EXPECT_HITS(t, "amy", NULL, "here", "nul");
    EXPECT_HITS(t, "amy", NULL, "b", "DOOR-CODE changed? <b>no</b> & \"yes\"");
    EXPECT_HITS(t, "amy", g, "door",
                "DOOR-CODE changed? <b>no</b> & \"yes\"|Doorman arrives at noon; café at 1.5pm");
    EXPECT_HITS(t, "amy", g, "door changed", "DOOR-CODE changed? <b>no</b> & \"yes\"");
    EXPECT_HITS(t, "amy", d2, "door", "error -3");
    EXPECT_HITS(t, "amy", "0123456789abcdef01234567", "door", "error -2");
    EXPECT_HITS(t, "dan", NULL, "door", "");
    /* Operators and garbage are not queries. */
    const char *bad[] = {"",    "   ",   "door OR code",      "door*", "\"door\"", "-door",
                         "a:b", "door(", "a b c d e f g h i", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (strcmp(bad[i], "door OR code") == 0) continue; /* three words, all plain: allowed */
        char buf[64];
        const char *got = hits(t, "amy", NULL, bad[i], 0, 0, NULL, buf, sizeof buf);
        CHECK(strcmp(got, "error -1") == 0);
    }
    /* Paging: one hit a page, newest first, then nothing. */
    char buf[512], all[2048] = "";
    int64_t next = 0;
    int pages = 0;
    do {
        hits(t, "amy", NULL, "door", 1, next, &next, buf, sizeof buf);
        if (buf[0]) {
            if (all[0]) strcat(all, "|");
            strcat(all, buf);
        }
        pages++;
    } while (next && pages < 20);
    CHECK_EQ_INT(pages >= 5, 1);
    CHECK(strcmp(all,
                 "bad \xff\xfe bytes door|nul|DOOR-CODE changed? <b>no</b> & \"yes\"|Doorman "
                 "arrives at noon; café at 1.5pm|thanks, door opened|The door code is 4711") == 0);
    /* Snippets: HTML-escaped, hits marked. */
    store_search_t s = {.user = STR_LIT("bob"), .query = STR_LIT("door cod"), .limit = 1};
    ar = sc_arena();
    CHECK_EQ_INT(sc_search_(t, &s, &ar, 0), STORE_OK);
    CHECK_EQ_INT(s.count, 1);
    if (s.count == 1)
        CHECK_MEM(s.hits[0].snippet.ptr, s.hits[0].snippet.len,
                  "<mark>DOOR</mark>-<mark>CODE</mark> changed? &lt;b&gt;no&lt;/b&gt; &amp; "
                  "&quot;yes&quot;");
}

/* The last query word matches as a prefix only from three characters (code points) on; a
 * shorter one matches whole words only (a one- or two-letter prefix makes nearly every message
 * a candidate). Earlier words are whole words whatever their length. */
static void test_search_short_prefix(sc_t *t)
{
    char d[ID_SIZE];
    sc_direct(t, "amy", "bob", d);
    sc_send(t, d, "amy", "ok see you");
    sc_send(t, d, "bob", "okay then");
    sc_send(t, d, "amy", "Hi there, hint: OK");
    sc_send(t, d, "bob", "日本語 text");
    sc_send(t, d, "amy", "日本 x");
    EXPECT_HITS(t, "amy", NULL, "ok", "Hi there, hint: OK|ok see you");
    EXPECT_HITS(t, "amy", NULL, "o", "");
    EXPECT_HITS(t, "amy", NULL, "oka", "okay then");
    EXPECT_HITS(t, "amy", NULL, "hi", "Hi there, hint: OK");
    EXPECT_HITS(t, "amy", NULL, "hin", "Hi there, hint: OK");
    EXPECT_HITS(t, "amy", NULL, "ok hin", "Hi there, hint: OK");
    EXPECT_HITS(t, "amy", NULL, "there ok", "Hi there, hint: OK");
    EXPECT_HITS(t, "amy", NULL, "there o", "");
    /* Characters, not bytes: two code points (six bytes) are a whole word, three a prefix. */
    EXPECT_HITS(t, "amy", NULL, "日本", "日本 x");
    EXPECT_HITS(t, "amy", NULL, "日本語", "日本語 text");
    EXPECT_HITS(t, "amy", NULL, "日", "");
    /* The snippet marks the whole-word hit only. */
    store_arena_t ar = sc_arena();
    store_search_t s = {.user = STR_LIT("amy"), .query = STR_LIT("hi"), .limit = 5};
    CHECK_EQ_INT(sc_search_(t, &s, &ar, 0), STORE_OK);
    CHECK_EQ_INT(s.count, 1);
    if (s.count == 1)
        CHECK_MEM(s.hits[0].snippet.ptr, s.hits[0].snippet.len, "<mark>Hi</mark> there, hint: OK");
}

/* Sends n messages "<prefix> <i> lemon" (i from first) from amy and bob in turn to conv, in
 * one batch of the writer. */
static void send_batch(sc_t *t, const char *conv, int first, int n)
{
    typedef struct {
        store_req_t req;
        char text[32];
        char arena[512];
    } one_t;
    one_t *r = calloc((size_t)n, sizeof *r);
    store_req_t **rp = calloc((size_t)n, sizeof *rp);
    if (!r || !rp) {
        CHECK(!"out of memory");
        free(r);
        free(rp);
        return;
    }
    for (int i = 0; i < n; i++) {
        snprintf(r[i].text, sizeof r[i].text, "bulk%04d lemon", first + i);
        r[i].req.op = STORE_OP_MESSAGE_INSERT;
        r[i].req.arena = (store_arena_t){r[i].arena, sizeof r[i].arena, 0, 0};
        r[i].req.u.message_insert = (store_message_insert_t){
            .sender = str_cstr(i % 2 ? "bob" : "amy"),
            .conversation_id = str_cstr(conv),
            .content = str_cstr(r[i].text),
        };
        rp[i] = &r[i].req;
    }
    sc_run_batch(t, t->s, rp, (size_t)n);
    for (int i = 0; i < n; i++) CHECK_EQ_INT(r[i].req.status, STORE_OK);
    free(r);
    free(rp);
}

/* Search sees every acknowledged write at once (issue 17: SQLite indexes in chunks behind a
 * watermark and reads the rows above it directly): a send, an edit (old words gone, new ones
 * found, the message once), a delete; and a long list paged across whatever the engine has
 * indexed, newest first, each message exactly once. */
static void test_search_fresh(sc_t *t)
{
    char d[ID_SIZE];
    sc_direct(t, "amy", "bob", d);
    store_message_insert_t m;
    CHECK_EQ_INT(sc_send_at(t, d, "amy", "alpha kiwi", 2000, &m), STORE_OK);
    char id[ID_SIZE];
    memcpy(id, m.msg.id, ID_SIZE);
    EXPECT_HITS(t, "bob", NULL, "kiwi", "alpha kiwi");
    store_arena_t ar = sc_arena();
    store_message_update_t u = {
        .user = STR_LIT("amy"), .message_id = str_cstr(id), .content = STR_LIT("alpha mango")};
    CHECK_EQ_INT(sc_message_update(t, &u, &ar, 2001), STORE_OK);
    EXPECT_HITS(t, "bob", NULL, "kiwi", "");
    EXPECT_HITS(t, "bob", NULL, "mango", "alpha mango");
    EXPECT_HITS(t, "bob", NULL, "alpha", "alpha mango");
    ar = sc_arena();
    u = (store_message_update_t){
        .user = STR_LIT("amy"), .message_id = str_cstr(id), .remove = true};
    CHECK_EQ_INT(sc_message_update(t, &u, &ar, 2002), STORE_OK);
    EXPECT_HITS(t, "bob", NULL, "mango", "");
    EXPECT_HITS(t, "bob", NULL, "alpha", "");

    /* 700 in one batch (past SQLite's chunk of 512), then 100 more (left above the watermark). */
    enum { N1 = 700, N2 = 100, TOTAL = N1 + N2 };
    send_batch(t, d, 0, N1);
    send_batch(t, d, N1, N2);
    int next_want = TOTAL - 1, pages = 0;
    int64_t next = 0;
    for (int by_conv = 0; by_conv < 2; by_conv++) {
        next_want = TOTAL - 1;
        next = 0;
        pages = 0;
        do {
            ar = sc_arena();
            store_search_t s = {.user = STR_LIT("bob"),
                                .query = STR_LIT("lemon"),
                                .conversation_id = by_conv ? str_cstr(d) : STR_NULL,
                                .limit = 50,
                                .before_pos = next};
            CHECK_EQ_INT(sc_search_(t, &s, &ar, 0), STORE_OK);
            for (size_t i = 0; i < s.count; i++, next_want--) {
                char want[32];
                snprintf(want, sizeof want, "bulk%04d lemon", next_want);
                CHECK_MEM(s.hits[i].msg.content.ptr, s.hits[i].msg.content.len, want);
            }
            next = s.next_pos;
        } while (next && ++pages < 100);
        CHECK_EQ_INT(next_want, -1);
    }
    EXPECT_HITS(t, "amy", NULL, "bulk0003", "bulk0003 lemon");
    EXPECT_HITS(t, "amy", NULL, "bulk0799", "bulk0799 lemon");
}

const sc_case_t sc_cases_search[] = {
    {"search", test_search},
    {"search_short_prefix", test_search_short_prefix},
    {"search_fresh", test_search_fresh},
    {NULL, NULL},
};

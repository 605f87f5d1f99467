/* The store's one interface: documents, operations as caller-owned requests, and the
 * asynchronous front (store_open/store_submit/store_close) that runs them off the loop.
 * Engines (store_engine.h) sit behind it; chat and api see only this file.
 *
 * ---- Guarantees: what every engine keeps -------------------------------------------------
 *
 * Words: "committed" means made durable by the engine's commit (SQLite: COMMIT with
 * synchronous=FULL, the WAL fsynced) and visible to every later reader. "Submission order" is
 * the order of store_submit calls on one store_t (they all happen on its loop thread). A
 * "position" is a message's pos, or a MESSAGES_SINCE last_pos.
 *
 * 1. Visibility after commit. A write's done() runs only after its transaction committed, so
 *    nothing is acknowledged, delivered or answered before it is durable; and a read
 *    submitted after that done() ran sees the write. A write that did not commit left nothing
 *    behind: a refused request is undone alone (the rest of its batch commits); a failed
 *    commit fails every request of the batch with a STORE_E_* and none of it is visible.
 *    Outputs are meaningful only when status is STORE_OK. Each read sees one consistent
 *    snapshot (a conversation's members, last message and unread count agree).
 *
 * 2. Order of writes. On one store_t, writes take effect in submission order (a lazy write
 *    too, see `lazy` below) and their done() run in that order. Plain reads may overtake
 *    writes and each other; an `ordered` read may not (see below).
 *
 * 3. seq, and the order of a user's deliveries. The store assigns seq: within a conversation
 *    the committed messages have seq 1, 2, 3, ... with no gap and no repeat, and seq order is
 *    the order in which they committed (whoever wrote them, however many writers). On one
 *    store_t, inserts into one conversation get increasing seq in submission order, and with
 *    (2) their done() come back in seq order: the chat layer delivers each conversation's
 *    messages to a user in seq order by delivering in done() order, and a client can close
 *    any gap it sees with MESSAGES_AFTER(seq). No promise spans conversations except the
 *    positions below.
 *
 * 4. Recovery positions (pos). pos is > 0 and unique per message; positions may have gaps
 *    and their differences are not message counts (callers may use a difference only as an
 *    upper bound). The promise is prefix stability: once the store has handed out position
 *    P (in a done(): a message's pos, or last_pos), every message with pos <= P has already
 *    committed and is visible, and no message commits later with a position <= P. Hence
 *    MESSAGES_SINCE(after_pos = P), which returns the user's messages with pos > P in
 *    ascending pos, never skips a committed message: whatever committed after P was seen
 *    has a position above P, and whatever is at or below P was already there to be read when
 *    P was seen (delivered live, or returned by an earlier replay). last_pos is such a P for
 *    the whole store at the read's snapshot. Single writer (SQLite): pos is
 *    taken at insert time in commit order (the rowid), so the newest committed pos is P.
 *    Several writers must not hand out a value taken at insert time as P (a later commit may
 *    carry a smaller one); they must cap what they hand out below the oldest transaction
 *    still in progress, or use a position assigned in commit order.
 *
 * 5. Idempotency. (sender, client_msg_id) is unique in the whole store, across every writer
 *    and process. A MESSAGE_INSERT that repeats a committed pair writes nothing and answers
 *    with the first stored message and duplicate = true, whatever else it says (a retry of a
 *    send whose ack was lost); two inserts of one new pair racing each other store one
 *    message, and the other answers duplicate. An insert whose transaction failed stored
 *    nothing, so its retry is a first insert.
 *
 * 6. `ordered` and `lazy` (store_req_t) are about what a request observes, not about threads:
 *    an `ordered` read observes exactly the writes submitted before it on this store_t and
 *    none submitted after, as if it ran between them in submission order; its done() runs
 *    only after those writes committed (and it fails with them if their commit fails). A
 *    `lazy` write may be held up to STORE_LAZY_MS before it runs, to share a commit, but it
 *    still takes effect before any write or ordered read submitted after it; only its commit
 *    and its done() may come later. Use it for writes nobody waits for (user records,
 *    lastSeen).
 *
 * 7. Shutdown. store_close carries out every accepted request and runs its done(); nothing
 *    accepted is cancelled.
 *
 * ---- What is SQLite's, not the contract's -------------------------------------------------
 *
 * - One writer (STORE_ENGINE_SINGLE_WRITER): the writer connection is the only writer of the
 *   file, so commit order is its execution order: pos is the rowid of the insert, and the
 *   writer may cache each conversation's last seq across a batch (the send shortcut).
 * - The thread model of store_thread.c: one writer thread with group commit of up to
 *   batch_max writes per transaction, `readers` reader threads with read-only connections,
 *   ordered reads run on the writer thread in its queue (store_options_t, store_stats_t).
 * - STORE_E_BUSY: a SQLite lock held (by another process) beyond busy_timeout (PostgreSQL
 *   uses it too, for its lock_timeout and for deadlocks retried too often).
 * - Durability by synchronous=FULL in WAL mode (docs/store.md). */
#ifndef PARLOR_STORE_STORE_H
#define PARLOR_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/id.h"
#include "core/str.h"

/* Errors are negative; each maps onto one code of docs/api.md. */
enum {
    STORE_OK = 0,
    STORE_E_INVALID = -1,      /* malformed input: BAD_REQUEST */
    STORE_E_NOT_FOUND = -2,    /* NOT_FOUND */
    STORE_E_FORBIDDEN = -3,    /* not a member / not the owner: FORBIDDEN */
    STORE_E_CONFLICT = -4,     /* duplicate username: CONFLICT */
    STORE_E_NOSPACE = -5,      /* the request's arena cannot hold even one result: INTERNAL */
    STORE_E_BUSY = -6,         /* SQLite: locked beyond busy_timeout: INTERNAL (retryable) */
    STORE_E_IO = -7,           /* any other database failure: INTERNAL */
    STORE_E_CANCELLED = -8,    /* the store is closing */
    STORE_E_QUOTA = -9,        /* the owner's files would pass the quota: PAYLOAD_TOO_LARGE */
    STORE_E_UNAVAILABLE = -10, /* the database cannot be reached (connection lost, server
                                  down); nothing of the request took effect and the engine
                                  reconnects by itself: STORE_UNAVAILABLE, retryable */
    STORE_E_BLOCKED = -11,     /* a direct message between two users one of whom blocked the
                                  other: FORBIDDEN with reason BLOCKED */
    STORE_E_LIMIT = -12,       /* a per-user cap (STORE_BLOCKS_MAX): LIMIT_EXCEEDED */
};

const char *store_strerror(int code);

/* Bounds the store enforces itself (the chat layer usually enforces tighter ones). Content:
 * --max-message-length allows 60,000 code points of up to 4 bytes each. */
#define STORE_USER_ID_MAX       64 /* docs/api.md: 1-64 of [A-Za-z0-9_-] */
#define STORE_USERNAME_MAX      64
#define STORE_NAME_MAX          256 /* user names, titles, file names */
#define STORE_ROLE_MAX          32
#define STORE_SECRET_MAX        512 /* password hashes */
#define STORE_CLIENT_MSG_ID_MAX 128
#define STORE_CONTENT_MAX       240000
#define STORE_GROUP_MAX         256 /* members of a group, creator included */
#define STORE_PAGE_DEFAULT      50  /* limit 0 means this */
#define STORE_PAGE_MAX          200 /* larger limits are clamped */
#define STORE_IDS_MAX           200 /* users looked up at once */
#define STORE_CONTACTS_MAX      5000
#define STORE_CURSOR_LEN        40 /* conversation list cursor: 16 hex (ms) + 24 hex (id) */

#define STORE_SEARCH_QUERY_MAX 200 /* bytes of a search query */
#define STORE_SEARCH_WORDS_MAX 8
#define STORE_SEARCH_WORD_MAX  64 /* bytes of a word (longer runs are not words) */
#define STORE_SEARCH_PAGE_MAX  50
#define STORE_SEARCH_SCAN_MAX  2000  /* candidates one search examines at most */
#define STORE_BLOCKS_MAX       10000 /* users one user may block */

/* A conversation's context (issue 15): what it is about, e.g. {listing, L-1042, "Flat 3B"}.
 * type and id: 1-64 of [A-Za-z0-9_.:-]; title: at most 800 bytes (the chat layer allows 200
 * code points). */
#define STORE_CONTEXT_PART_MAX  64
#define STORE_CONTEXT_TITLE_MAX 800
/* The sender of system notices (POST /api/server/messages): no user may have this id. */
#define STORE_SYSTEM_SENDER "system"

#define STORE_SCHEMA_VERSION 10

/* ---- Output memory --------------------------------------------------------------------- */

/* Caller-provided memory for a request's outputs: arrays grow from the front, strings and
 * nested records from the back, so one buffer serves any op without a malloc. The caller sets
 * ptr/cap; the store resets front/back when it runs the request. Every output string or
 * pointer lives in here (or inline in the request) and is NUL-terminated; it stays valid until
 * the caller reuses or frees the buffer. A list that does not fit is cut short and reported
 * as having more; a single record that does not fit fails with STORE_E_NOSPACE. */
typedef struct {
    char *ptr;
    size_t cap;
    size_t front, back; /* set by the store */
} store_arena_t;

/* ---- Documents ------------------------------------------------------------------------- */

typedef enum { STORE_CONV_DIRECT = 0, STORE_CONV_GROUP = 1 } store_conv_type_t;
typedef enum { STORE_MSG_TEXT = 0, STORE_MSG_IMAGE = 1, STORE_MSG_FILE = 2 } store_msg_type_t;

/* Optional strings are {NULL, 0} when absent (SQL NULL). Times are ms since the epoch and 0
 * when absent. */
typedef struct {
    str_t id;
    str_t name;
    str_t role;
    str_t username;      /* accounts only */
    str_t password_hash; /* filled by STORE_OP_ACCOUNT_GET only */
    int64_t last_seen;
    int64_t created_at;
} store_user_t;

typedef struct {
    char id[ID_SIZE];
    str_t owner;
    str_t name;
    str_t mime;
    str_t path; /* where the files module keeps the bytes; never shown to clients */
    str_t sha256;
    int64_t size;
    int64_t created_at;
} store_file_t;

typedef struct {
    char id[ID_SIZE];
    char conversation_id[ID_SIZE];
    int64_t seq; /* 1, 2, 3, ... within the conversation, in commit order (guarantee 3) */
    int64_t pos; /* its recovery position (guarantee 4); not a count */
    str_t sender;
    str_t recipient; /* the other member of a direct conversation; absent in a group */
    str_t content;
    store_msg_type_t type;
    str_t client_msg_id;      /* absent when the client gave none */
    const store_file_t *file; /* NULL when none */
    int64_t read_at;          /* first read by a member other than the sender; 0 = unread */
    int64_t created_at;
    int64_t updated_at;
    int64_t edited_at; /* last edit of its content; 0 = never edited */
    bool deleted;      /* a tombstone: content "", no file, same id and seq */
} store_message_t;

typedef struct {
    str_t user_id;
    int64_t read_seq; /* watermark: every message with seq <= read_seq is read by this user */
    int64_t read_at;  /* when read_seq last moved; 0 = never */
    int64_t joined_at;
} store_member_t;

/* A conversation's context: all absent, or type and id present (title optional). */
typedef struct {
    str_t type, id, title;
} store_context_t;

typedef struct {
    char id[ID_SIZE];
    store_conv_type_t type;
    str_t title;             /* absent for direct conversations and untitled groups */
    store_context_t context; /* absent parts when the conversation has none */
    int64_t last_seq;
    int64_t created_at;
    int64_t updated_at;            /* moves with every message */
    const store_member_t *members; /* ordered by joined_at, then user id */
    size_t member_count;
    const store_message_t *last_message; /* NULL in an empty conversation */
    /* For the requesting user (0 when no requester was given or it is not a member). */
    int64_t read_seq;
    int64_t unread_count; /* messages with seq > read_seq sent by someone else */
} store_conversation_t;

/* ---- Operations: one struct each, inputs first, then outputs ---------------------------- */

/* All input strings are borrowed from the caller and must stay valid until `done`. */

typedef struct { /* write: from a verified token; absent name/role keep the stored ones */
    str_t id, name, role;
} store_user_upsert_t;

typedef struct { /* write */
    str_t id;
    int64_t last_seen;
} store_user_seen_t;

typedef struct { /* write: STORE_E_CONFLICT when the username (case-insensitive) is taken */
    str_t username, password_hash, name, role;
    char id[ID_SIZE]; /* out: the new user's id */
} store_account_create_t;

typedef struct { /* read */
    str_t username;
    store_user_t user; /* out, with password_hash */
} store_account_get_t;

typedef struct { /* read: unknown ids are left out; found users keep the input order */
    const str_t *ids;
    size_t count;              /* at most STORE_IDS_MAX */
    const store_user_t *users; /* out */
    size_t found;              /* out */
} store_users_get_t;

typedef struct { /* read: accounts whose username starts with prefix, case-insensitively */
    str_t prefix;
    size_t limit;
    const store_user_t *users; /* out, by username */
    size_t count;              /* out */
} store_users_search_t;

typedef struct { /* write: find or create the one-to-one conversation of user and other about
                    context (absent: their plain thread); one per pair and context. A title
                    given is stored when the conversation is created (kept otherwise). */
    str_t user, other;
    store_context_t context;
    store_conversation_t conv; /* out, with unread_count for user */
    bool created;              /* out */
} store_direct_open_t;

typedef struct { /* write: members are creator + participants, deduplicated, >= 2 in all */
    str_t creator;
    const str_t *participants;
    size_t count;
    str_t title;               /* optional */
    store_context_t context;   /* optional */
    store_conversation_t conv; /* out */
} store_group_create_t;

typedef struct { /* read */
    str_t id;
    str_t requester; /* optional; when given it must be a member (else STORE_E_FORBIDDEN) */
    store_conversation_t conv; /* out */
} store_conversation_get_t;

typedef struct { /* read: newest activity first */
    str_t user;
    str_t cursor; /* absent for the first page, else a next_cursor from before */
    size_t limit;
    str_t context_type, context_id;         /* optional filter: both, or neither */
    const store_conversation_t *convs;      /* out */
    size_t count;                           /* out */
    char next_cursor[STORE_CURSOR_LEN + 1]; /* out: "" when this is the last page */
} store_conversations_list_t;

typedef struct { /* write: blocker blocks (on) or unblocks (!on) blocked. Blocking yourself
                    is STORE_E_INVALID; an unknown id may be blocked (users are created on
                    reference); past STORE_BLOCKS_MAX blocks, STORE_E_LIMIT. Idempotent. */
    str_t blocker, blocked;
    bool on;
    bool changed;       /* out: a block was added or removed */
    int64_t created_at; /* out: when on, when the block was made (the first time) */
} store_block_set_t;

typedef struct {
    str_t user_id;      /* the blocked user */
    int64_t created_at; /* when blocked */
} store_block_t;

typedef struct { /* read: the users blocker blocks, by blocked id (bytewise), after `after` */
    str_t blocker;
    str_t after; /* optional: a blocked id from the previous page */
    size_t limit;
    const store_block_t *blocks; /* out */
    size_t count;                /* out */
    bool has_more;               /* out */
} store_blocks_list_t;

typedef struct { /* read: the user's unread messages over all its conversations (each as
                    unread_count: seq > read_seq, sent by someone else) */
    str_t user;
    str_t conversation_id; /* optional (STR_NULL / ""): also that conversation's count */
    int64_t total;         /* out */
    int64_t conversations; /* out: conversations with unread_count > 0 */
    int64_t conv_unread;   /* out: conversation_id's unread_count (0: none, or not a member) */
    int64_t last_pos;      /* out: a position for the whole store at this read, in the same
                              snapshot (guarantee 4): every message with pos <= last_pos is in
                              the counts; chat_unread.c counts live deliveries above it */
} store_unread_total_t;

typedef struct {
    store_message_t msg;
    str_t snippet; /* HTML-escaped, hits in <mark></mark> (store_search.h) */
} store_search_hit_t;

typedef struct { /* read: full-text search over the user's conversations (store_search.h
                    defines words and matching), newest first (by pos). STORE_E_INVALID for a
                    query that is not one. */
    str_t user;
    str_t query;
    str_t conversation_id;          /* optional: only this conversation (the user must be a member:
                                       else STORE_E_FORBIDDEN / STORE_E_NOT_FOUND) */
    int64_t before_pos;             /* 0: from the newest; else a next_pos from before */
    size_t limit;                   /* 0: 20; at most STORE_SEARCH_PAGE_MAX */
    const store_search_hit_t *hits; /* out */
    size_t count;                   /* out */
    int64_t next_pos; /* out: 0 when nothing older can match; else pass as before_pos. A page
                         may hold fewer than limit hits when STORE_SEARCH_SCAN_MAX candidates
                         were examined */
} store_search_t;

typedef struct { /* read: is there a block between a and b, either way */
    str_t a, b;
    bool a_blocks_b, b_blocks_a; /* out */
} store_block_check_t;

typedef struct { /* write: the store assigns seq = last_seq + 1 in the same transaction;
                    idempotent by (sender, client_msg_id) (guarantees 3, 5) */
    str_t sender;
    str_t conversation_id; /* either this ... */
    str_t recipient;       /* ... or this: the direct conversation, created if need be */
    str_t content;
    store_msg_type_t type;
    str_t file_id;             /* optional; must be a file the sender owns */
    str_t client_msg_id;       /* optional; (sender, client_msg_id) is unique */
    store_message_t msg;       /* out: the stored message */
    bool duplicate;            /* out: client_msg_id was seen before; msg is the earlier message */
    bool conversation_created; /* out */
    /* out, the chain (docs/cluster.md "The offset rule"): for a new message in a direct
       conversation, the position of the sender's and the recipient's previous message (the
       newest in any of their conversations below msg.pos); 0: unknown (a group, a duplicate,
       a user with none recorded, or an engine that does not keep it: SQLite). */
    int64_t prev_sender, prev_recipient;
    /* A direct conversation whose other member blocked the sender, or whom the sender
       blocked, refuses a new message with STORE_E_BLOCKED, decided in the insert's own
       transaction (after idempotency: a repeated client_msg_id still answers duplicate). */
} store_message_insert_t;

typedef struct { /* read: the page of up to limit messages before before_seq, ascending */
    str_t conversation_id;
    str_t requester;    /* optional; when given it must be a member */
    int64_t before_seq; /* 0: the newest page */
    size_t limit;
    const store_message_t *msgs; /* out, ascending seq */
    size_t count;                /* out */
    bool has_more;               /* out: older messages exist */
} store_messages_page_t;

typedef struct { /* read: messages with seq > after_seq, ascending (reconnect recovery) */
    str_t conversation_id;
    str_t requester;
    int64_t after_seq;
    size_t limit;
    const store_message_t *msgs;
    size_t count;
    bool has_more; /* out: newer messages exist */
} store_messages_after_t;

typedef struct { /* read: messages of all the user's conversations with pos > after_pos; it
                    never skips a committed message (guarantee 4) */
    str_t user;
    int64_t after_pos;
    size_t limit;
    const store_message_t *msgs; /* out, ascending pos */
    size_t count;
    bool has_more;
    int64_t last_pos; /* out: a position for the whole store at this read (guarantee 4): every
                         message at or below it was committed and visible here */
} store_messages_since_t;

typedef struct { /* write: moves the user's watermark forward to the message, never back */
    str_t conversation_id; /* optional: when given, the message must belong to it */
    str_t user, message_id;
    char conv_id[ID_SIZE]; /* out: the message's conversation */
    int64_t message_seq;   /* out: the message's seq */
    int64_t seq;           /* out: the watermark after the call */
    int64_t read_at;       /* out: when the watermark last moved */
    int64_t unread_count;  /* out */
    bool moved;            /* out: false when the watermark was already at or past it */
} store_mark_read_t;

/* write: an edit (remove false: new content) or a delete (remove true: the message becomes a
 * tombstone, content "" and no file, same id and seq) by the message's sender. Either moves
 * the message to a new recovery position, taken as an insert's is (guarantee 4), so that a
 * MESSAGES_SINCE from before it returns the message again in its new state. Refusals:
 * NOT_FOUND (no such message, the user is not a member of its conversation, or an edit of a
 * deleted message), FORBIDDEN (not the sender; or window_passed), INVALID (an edit of a
 * message that is not text, bad content). A delete of a tombstone changes nothing. */
typedef struct {
    str_t user, message_id;
    bool remove;
    bool by_server;      /* a delete by a server credential: user is ignored, any message */
    str_t content;       /* edit: the new content (as MESSAGE_INSERT's) */
    int64_t window_ms;   /* edit: > 0: refused once now - created_at passes it */
    store_message_t msg; /* out: the message as it is now */
    bool changed;        /* out: false when a delete found a tombstone */
    bool window_passed;  /* out: with STORE_E_FORBIDDEN */
    str_t file_path;     /* out: delete: the file that no message refers to any more, whose
                            record is gone with it; the caller removes the bytes. Absent when
                            none */
} store_message_update_t;

/* write: a system notice (sender STORE_SYSTEM_SENDER, type text, no recipient) into an
 * existing conversation, with seq and pos as any insert's; idempotent by client_msg_id
 * (under the system sender). NOT_FOUND when the conversation does not exist. */
typedef struct {
    str_t conversation_id;
    str_t content;
    str_t client_msg_id; /* optional */
    store_message_t msg; /* out */
    bool duplicate;      /* out */
} store_system_insert_t;

/* write: adds (add) or removes a member of a group. INVALID for a direct conversation or a
 * bad id; NOT_FOUND when there is no such conversation; LIMIT past STORE_GROUP_MAX members.
 * Idempotent (changed false). conv is the conversation after the change. */
typedef struct {
    str_t conversation_id, user;
    bool add;
    bool changed;              /* out */
    store_conversation_t conv; /* out (no requester) */
} store_members_change_t;

/* read: everything stored about a user (GET /api/server/users/:id/export), the messages it
 * sent a page at a time by pos. The first page (after_pos 0) also has the user's record, its
 * memberships, files and blocks (each at most STORE_EXPORT_LIST_MAX; *_more when cut). */
#define STORE_EXPORT_LIST_MAX 5000
typedef struct {
    char conversation_id[ID_SIZE];
    int64_t read_seq, joined_at;
} store_membership_t;

typedef struct {
    str_t user;
    int64_t after_pos;
    size_t limit;        /* messages; 0: STORE_PAGE_DEFAULT; at most STORE_PAGE_MAX */
    bool found;          /* out: a users row exists */
    store_user_t record; /* out */
    const store_membership_t *memberships; /* out (first page) */
    size_t nmemberships;
    const store_file_t *files; /* out (first page) */
    size_t nfiles;
    const store_block_t *blocks; /* out (first page): the users it blocks */
    size_t nblocks;
    bool lists_more;             /* out: a list above was cut at STORE_EXPORT_LIST_MAX */
    const store_message_t *msgs; /* out: the messages it sent, ascending pos */
    size_t count;
    int64_t next_pos; /* out: 0 when no more; else the after_pos of the next page */
} store_user_export_t;

/* write: erases a user, irreversibly: every message it sent becomes a tombstone (as a
 * delete: content "", no file, no clientMsgId, a new pos), its files' records go (paths out,
 * for the caller to remove the bytes), its memberships and blocks (either way) go, and its
 * users row goes. The id may be used again later (a new, empty user). */
typedef struct {
    str_t user;
    int64_t messages;        /* out: messages tombstoned */
    int64_t conversations;   /* out: memberships removed */
    const str_t *file_paths; /* out */
    size_t nfiles;
    bool found; /* out: a users row existed */
} store_user_erase_t;

typedef struct {       /* write: file.id may be preset (e.g. named the stored bytes), else made */
    store_file_t file; /* in (id, owner, name, mime, path, sha256, size); out: id, created_at */
    int64_t quota;     /* > 0: STORE_E_QUOTA when the owner's files would pass it in bytes */
} store_file_insert_t;

typedef struct { /* read */
    str_t id;
    str_t requester;   /* optional */
    store_file_t file; /* out */
    bool allowed;      /* out: requester owns it or shares a conversation that carries it */
} store_file_get_t;

/* Which contacts: everyone who shares a conversation with the user; those who may see the
 * user's presence (members of a conversation the user has sent a message in); or those whose
 * presence the user may see (who have sent a message in a conversation of the user). */
typedef enum {
    STORE_CONTACTS_ALL = 0,
    STORE_CONTACTS_AUDIENCE,
    STORE_CONTACTS_VISIBLE
} store_contacts_mode_t;

/* AUDIENCE and VISIBLE leave out anyone in a block with the user, either way. */
typedef struct { /* read: the user's contacts of the given mode (presence fan-out) */
    str_t user;
    store_contacts_mode_t mode;
    size_t limit;          /* 0 = STORE_CONTACTS_MAX; larger limits are clamped */
    const str_t *user_ids; /* out, sorted bytewise */
    size_t count;          /* out */
    bool has_more;         /* out */
} store_contacts_t;

/* ---- The webhook outbox (docs/webhooks.md, src/webhook/) -------------------------------
 *
 * When store_outbox_configure turned it on (before store_open), the writes that cause a
 * webhook event record it in the outbox IN THEIR OWN TRANSACTION, so an event is stored if
 * and only if what caused it committed: MESSAGE_INSERT (not a duplicate) records
 * message.created, and message.unread scheduled unread_delay_ms later; a conversation made by
 * DIRECT_OPEN, GROUP_CREATE or MESSAGE_INSERT records conversation.created (before the
 * message's); MARK_READ that moved the watermark records message.read. Off (the default),
 * nothing is recorded and nothing costs more than a test of a flag.
 *
 * Rows are kept in insertion order (id). The ordered events of a conversation form a queue:
 * OUTBOX_CLAIM hands out a row only when no earlier ordered row of its conversation is still
 * pending (in flight, or waiting for its retry), so deliveries of one conversation are sent
 * one at a time, in order. message.unread is not in that order: its row waits for its due
 * time; at claim time it turns into one row per member (not the sender) whose read
 * watermark is still below the message (a deleted message: none), and those are sent. */
typedef enum {
    STORE_OUTBOX_MESSAGE_CREATED = 0,
    STORE_OUTBOX_MESSAGE_READ = 1,
    STORE_OUTBOX_CONVERSATION_CREATED = 2,
    STORE_OUTBOX_MESSAGE_UNREAD = 3,
} store_outbox_type_t;

typedef struct {
    bool on;
    int64_t unread_delay_ms; /* message.unread's due time after the message (>= 1000) */
} store_outbox_settings_t;

/* Process-wide; call before store_open (engines read it when they open a connection). */
void store_outbox_configure(const store_outbox_settings_t *s);
const store_outbox_settings_t *store_outbox_settings(void);

typedef struct {
    int64_t id; /* the row: unique in the database, increasing in insertion order */
    store_outbox_type_t type;
    char conversation_id[ID_SIZE];
    char message_id[ID_SIZE]; /* "" for conversation.created */
    str_t user;               /* message.read: the reader; message.unread: the recipient */
    int64_t seq;              /* message.read: the new watermark; else the message's seq */
    int64_t created_at;       /* when the event happened (message.unread: its due time) */
    int64_t attempts;         /* including this one */
    uint32_t done_mask;       /* bit i: URL i already accepted this row */
    bool follows; /* the next ordered row of the previous row's conversation (a run: sent after
                     it, in order, and only once it is delivered) */
    const store_message_t *message;           /* NULL when none (or gone) */
    const store_conversation_t *conversation; /* NULL when gone */
} store_outbox_row_t;

typedef struct {    /* write: leases up to limit due rows for lease_ms (claimed rows are not
                       handed out again before the lease ends, by any node), attempts + 1. After
                       an ordered row come up to run_max of the rows queued behind it in its
                       conversation (follows = true), leased too, so a backlog is sent in runs
                       rather than one row per claim */
    size_t limit;   /* 0 (with counts): only count */
    size_t run_max; /* rows queued behind an ordered row that come with it (0: none) */
    int64_t lease_ms;
    bool counts;                    /* also fill pending and failed */
    const store_outbox_row_t *rows; /* out, by id */
    size_t count;                   /* out */
    int64_t pending, failed;        /* out, when counts */
} store_outbox_claim_t;

typedef enum {
    STORE_OUTBOX_DELIVERED = 0, /* the row is removed */
    STORE_OUTBOX_RETRY = 1,     /* pending again from due_at, with done_mask */
    STORE_OUTBOX_FAILED = 2,    /* kept, state failed, out of the queue */
    STORE_OUTBOX_SKIPPED = 3,   /* message.unread that no longer applies: removed */
    STORE_OUTBOX_REQUEUE = 4,   /* a run's row not sent (an earlier one is to be retried):
                                   back in its queue, waiting */
} store_outbox_outcome_t;

typedef struct {
    int64_t id;
    store_outbox_outcome_t outcome;
    int64_t due_at;     /* RETRY */
    uint32_t done_mask; /* RETRY */
} store_outbox_result_t;

typedef struct { /* write: the outcomes of claimed rows; unknown ids are ignored */
    const store_outbox_result_t *results;
    size_t count;
} store_outbox_ack_t;

typedef enum {
    STORE_OP_USER_UPSERT,
    STORE_OP_USER_SEEN,
    STORE_OP_ACCOUNT_CREATE,
    STORE_OP_DIRECT_OPEN,
    STORE_OP_GROUP_CREATE,
    STORE_OP_MESSAGE_INSERT,
    STORE_OP_MARK_READ,
    STORE_OP_FILE_INSERT,
    STORE_OP_BLOCK_SET,
    STORE_OP_MESSAGE_UPDATE,
    STORE_OP_OUTBOX_CLAIM,
    STORE_OP_OUTBOX_ACK,
    STORE_OP_SYSTEM_INSERT,
    STORE_OP_MEMBERS_CHANGE,
    STORE_OP_USER_ERASE,
    STORE_OP_FIRST_READ_, /* ops from here on only read */
    STORE_OP_ACCOUNT_GET = STORE_OP_FIRST_READ_,
    STORE_OP_USERS_GET,
    STORE_OP_USERS_SEARCH,
    STORE_OP_CONVERSATION_GET,
    STORE_OP_CONVERSATIONS_LIST,
    STORE_OP_MESSAGES_PAGE,
    STORE_OP_MESSAGES_AFTER,
    STORE_OP_MESSAGES_SINCE,
    STORE_OP_FILE_GET,
    STORE_OP_CONTACTS,
    STORE_OP_BLOCKS_LIST,
    STORE_OP_BLOCK_CHECK,
    STORE_OP_UNREAD_TOTAL,
    STORE_OP_SEARCH,
    STORE_OP_USER_EXPORT,
    STORE_OP_PING, /* a read with no inputs or outputs that reaches the database: /healthz */
    STORE_OP_COUNT_
} store_op_t;

static inline bool store_op_is_write(store_op_t op)
{
    return op < STORE_OP_FIRST_READ_;
}

/* One request, owned by the caller (typically embedded in a larger struct and recovered with
 * container_of in `done`). The store never allocates per request. */
typedef struct store_req store_req_t;
struct store_req {
    /* Set by the caller. */
    store_op_t op;
    void (*done)(store_req_t *req); /* runs on the loop thread, exactly once per accepted req */
    void *data;                     /* the caller's */
    int64_t now_ms;                 /* 0: the store's clock at execution */
    bool ordered; /* a read in order with the writes submitted around it: it sees every
                     earlier write and none of the later ones, and completes only once those
                     earlier writes committed (guarantee 6; SQLite runs it on the writer) */
    bool lazy;    /* a write that may wait up to STORE_LAZY_MS to share a commit (user records,
                     lastSeen); it still takes effect before any write or ordered read
                     submitted after it, so the order of writes is the submission order either
                     way (guarantee 6) */
    store_arena_t arena; /* outputs; may be empty for ops that return no strings */
    union {
        store_user_upsert_t user_upsert;
        store_user_seen_t user_seen;
        store_account_create_t account_create;
        store_account_get_t account_get;
        store_users_get_t users_get;
        store_users_search_t users_search;
        store_direct_open_t direct_open;
        store_group_create_t group_create;
        store_conversation_get_t conversation_get;
        store_conversations_list_t conversations_list;
        store_message_insert_t message_insert;
        store_messages_page_t messages_page;
        store_messages_after_t messages_after;
        store_messages_since_t messages_since;
        store_mark_read_t mark_read;
        store_file_insert_t file_insert;
        store_message_update_t message_update;
        store_file_get_t file_get;
        store_contacts_t contacts;
        store_block_set_t block_set;
        store_blocks_list_t blocks_list;
        store_block_check_t block_check;
        store_unread_total_t unread_total;
        store_search_t search;
        store_outbox_claim_t outbox_claim;
        store_outbox_ack_t outbox_ack;
        store_system_insert_t system_insert;
        store_members_change_t members_change;
        store_user_export_t user_export;
        store_user_erase_t user_erase;
    } u;
    /* Set by the store. */
    int status;         /* STORE_OK or a STORE_E_* */
    store_req_t *next_; /* private: queue link */
};

/* ---- The asynchronous store (implemented by store_thread.c) ----------------------------- */

typedef struct uv_loop_s uv_loop_t;
typedef struct store store_t;

/* Tuning of store_thread.c's thread model (SQLite's today; not part of the guarantees). */
typedef struct {
    unsigned batch_max;      /* writes per transaction; 0 = STORE_BATCH_DEFAULT (4,096) */
    unsigned readers;        /* reader threads, each with its own connection; 0 = 2; ignored by an
                                engine without reader connections */
    unsigned commit_wait_us; /* while writes come less than this apart, a batch of fewer than
                                8 waits until its oldest write has waited this long, or 8 are
                                queued; 0 = never (store_thread.c, store_gather) */
} store_options_t;

typedef struct {
    uint64_t commits;   /* write transactions committed */
    uint64_t writes;    /* write requests executed */
    uint64_t reads;     /* read requests executed */
    uint64_t max_batch; /* most write requests in one transaction */
    uint64_t failed_commits;
} store_stats_t;

/* Opens (creating and migrating as needed) the store named by target and starts the writer
 * and reader threads. target is a store URL: "sqlite:PATH" or a plain file path (the "sqlite"
 * engine), or "postgres://..." / "postgresql://..." (libpq's URI, the "postgres" engine).
 * Call on the loop thread. On failure returns a STORE_E_* and writes a message into err
 * (never a password). */
int store_open(uv_loop_t *loop, const char *target, store_t **out, char *err, size_t errcap);
int store_open_with(uv_loop_t *loop, const char *target, const store_options_t *opts, store_t **out,
                    char *err, size_t errcap);

/* The engine a store URL names and what is passed to its open (the path for "sqlite:PATH",
 * the whole URL for postgres). Returns the engine's name, or NULL when the scheme is unknown
 * ("mysql://..."); the engine itself may still be missing from this build. */
const char *store_target_engine(const char *target, const char **engine_target);

/* Copies target into out (always NUL-terminated) with any password in a URL's user info
 * replaced by "***", for logs and errors. */
void store_target_redact(const char *target, char *out, size_t cap);

/* Queues req; loop thread only. Returns 0 and later calls req->done on the loop thread, or
 * returns STORE_E_INVALID (bad op, no done) / STORE_E_CANCELLED (closing) and never calls it.
 * Writes complete in submission order; plain reads may overtake writes and each other. A
 * write is done only after its transaction committed: durable before visible (guarantees
 * 1, 2). */
int store_submit(store_t *s, store_req_t *req);

/* Loop thread only. Refuses new requests, lets the threads finish every queued request,
 * joins them, then calls every outstanding done() before returning (queued work is carried
 * out, never cancelled). The memory is released once the loop has run the handle's close
 * callback. NULL is a no-op. */
void store_close(store_t *s);

/* Counters, readable from the loop thread at any time. */
void store_stats(const store_t *s, store_stats_t *out);

#endif

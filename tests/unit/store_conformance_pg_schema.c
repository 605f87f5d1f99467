/* Conformance cases of the PostgreSQL engine's schema upgrades (schema version 8, issue 17).
 *
 * pg_upgrade_v7: a schema built by migrations 1..7 (as a version-7 build left it) with
 * messages sent through version 7's functions is opened by this build, which migrates it to
 * version 8. Then:
 * - the search vector: version 8's parlor_search_vector gives, over hostile contents (every
 *   byte value, pairs, NULs and backslashes, upper case, non-ASCII text, runs of letters,
 *   digits, backslashes and high bytes around the 256-character limit, pseudo-random bytes,
 *   70,000-byte texts, the empty text), exactly the vector version 7's gave (computed and kept
 *   before the upgrade), and the kept copy parlor_search_vector_v7 agrees; the GIN index built
 *   at version 7 still finds the old messages (an index scan), and the new ones;
 * - the chain continues across the upgrade: a direct message's prev is the position of the
 *   pair's last message sent at version 7; a group message moves its members; the row trigger
 *   still keeps the chain for writers other than parlor_send_many (a system notice in the same
 *   transaction as a send: the send's mark does not outlive its call).
 * The conformance suite's other cases (pg_chain, search, blocks, outbox) run on version 8. */
#include "store_conformance.h"

#include <stdlib.h>

#include <libpq-fe.h>

#include "store/store_pg.h"

static bool exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "  %s\n  -> %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* The first column of the first row as a number (-1 on error). */
static int64_t query_i64(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        fprintf(stderr, "  %s\n  -> %s", sql, PQerrorMessage(c));
    PQclear(r);
    return v;
}

/* Hostile contents for the search vector, as rows of hostile(b bytea). */
// clang-format off
static const char hostile_sql[] =
    "CREATE TABLE hostile (n serial, b bytea NOT NULL);\n"
    "INSERT INTO hostile (b) VALUES (''::bytea), ('\\x00'::bytea), ('\\x5c'::bytea),\n"
    " ('\\x5c5c'::bytea), ('\\x5c303030'::bytea), ('\\x61005c62'::bytea), ('\\x41ff42'::bytea);\n"
    "INSERT INTO hostile (b) SELECT convert_to(s, 'UTF8') FROM unnest(ARRAY['Hello, World!',\n"
    " 'ÉCOLE école İstanbul ß ǅ ΣΊΣΥΦΟΣ', '日本語のテキスト、句読点。', 'emoji 😀👍🏽 "
    "mixed‍',\n"
    " 'a-b_c.d/e@f:g;h''i\"j(k)l[m]n{o}p|q~r`s^t', E'Tab\\tNew\\nline\\rCR\\x01\\x1f\\x7f',\n"
    " 'MiXeD CaSe 123abc ABC123 x1y2z3', '   ', '...', 'a', 'A', '0', 'C:\\\\path\\\\to\\\\file',\n"
    " '\\\\000 \\\\303\\\\251 literal escapes', 'café naïve résumé']) s;\n"
    "INSERT INTO hostile (b) SELECT set_byte('\\x00'::bytea, 0, i) FROM generate_series(0, 255) "
    "i;\n"
    "INSERT INTO hostile (b) SELECT decode(lpad(to_hex(i), 2, '0') || '41' ||\n"
    " lpad(to_hex(255 - i), 2, '0') || '5c' || lpad(to_hex((i * 7) % 256), 2, '0'), 'hex')\n"
    " FROM generate_series(0, 255) i;\n"
    "INSERT INTO hostile (b) SELECT convert_to(p || repeat(c, n) || p, 'UTF8')\n"
    " FROM generate_series(250, 260) n, unnest(ARRAY['a', 'Z', '7', '\\\\']) c,\n"
    " unnest(ARRAY['', ' ', 'x.']) p;\n"
    "INSERT INTO hostile (b) SELECT convert_to('go ' || repeat('é', n) || ' on', 'UTF8')\n"
    " FROM generate_series(28, 36) n;\n"
    "INSERT INTO hostile (b) SELECT decode(repeat('c3', n), 'hex') FROM generate_series(60, 68) "
    "n;\n"
    "INSERT INTO hostile (b) SELECT convert_to(repeat('ab1, ', n), 'UTF8')\n"
    " FROM generate_series(48, 56) n;\n"
    "INSERT INTO hostile (b) SELECT decode(string_agg(md5(i || '-' || j), '' ORDER BY j), 'hex')\n"
    " FROM generate_series(1, 300) i, generate_series(0, i % 45) j GROUP BY i;\n"
    "INSERT INTO hostile (b) SELECT convert_to(string_agg(CASE WHEN (i * 31 + j) % 5 = 0\n"
    " THEN ' ' ELSE chr(32 + (i * j * 17 + j) % 95) END, '' ORDER BY j), 'UTF8')\n"
    " FROM generate_series(1, 200) i, generate_series(1, 40 + i * 2) j GROUP BY i;\n"
    "INSERT INTO hostile (b) VALUES (convert_to(repeat('Word, ', 12000), 'UTF8')),\n"
    " (convert_to(repeat('z', 70000), 'UTF8')), (convert_to(repeat('Ab9 ', 17000), 'UTF8'));\n";
// clang-format on

static void test_upgrade_v7(sc_t *t)
{
    if (strcmp(t->engine, "postgres") != 0) {
        fprintf(stderr, "  not applicable: PostgreSQL only\n");
        return;
    }
    const char *sp = strstr(t->target, "search_path%3D");
    CHECK(sp != NULL);
    if (!sp) return;
    char name[96], url[1200], sql[1024];
    snprintf(name, sizeof name, "%s_u7", sp + strlen("search_path%3D"));
    snprintf(url, sizeof url, "%.*s%s", (int)(sp + strlen("search_path%3D") - t->target), t->target,
             name);
    PGconn *c = PQconnectdb(t->target);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
    CHECK(exec_ok(c, sql));
    PQfinish(c);

    /* Version 7, as a version-7 build leaves it, and its data. */
    c = PQconnectdb(url);
    CHECK(PQstatus(c) == CONNECTION_OK);
    CHECK(exec_ok(c, "CREATE TABLE parlor_schema (version integer NOT NULL)"));
    for (int v = 1; v <= 7; v++) CHECK(exec_ok(c, store_pg_migration_sql(v)));
    CHECK(exec_ok(c, "INSERT INTO parlor_schema VALUES (7)"));
    char conv[ID_SIZE], id1[ID_SIZE], id2[ID_SIZE];
    id_generate(conv);
    id_generate(id1);
    id_generate(id2);
    snprintf(sql, sizeof sql,
             "SELECT o_pos FROM parlor_send('alice', NULL, 'bob', 'alice|bob',"
             " convert_to('Hello WÖRLD, from version seven', 'UTF8'), 'text', NULL, 'k1', 1000,"
             " '%s', '%s')",
             id1, conv);
    int64_t p1 = query_i64(c, sql);
    snprintf(sql, sizeof sql,
             "SELECT o_pos FROM parlor_send('bob', '%s', NULL, NULL, '\\x68656c6c6f00ff'::bytea,"
             " 'text', NULL, NULL, 1001, '%s', NULL)",
             conv, id2);
    int64_t p2 = query_i64(c, sql);
    CHECK(p1 > 0 && p2 > p1);
    CHECK(exec_ok(c, hostile_sql));
    CHECK(exec_ok(c, "CREATE TABLE vec_v7 AS SELECT n, parlor_search_vector(b) AS v FROM hostile"));
    PQfinish(c);

    /* This build opens it: version 8. */
    sc_close(t, t->s);
    t->s = NULL;
    char err[256] = "";
    CHECK_EQ_INT(store_open(t->loop, url, &t->s, err, sizeof err), STORE_OK);
    if (!t->s) fprintf(stderr, "  store_open: %s\n", err);
    c = PQconnectdb(url);
    CHECK(query_i64(c, "SELECT max(version) FROM parlor_schema") == STORE_PG_SCHEMA_VERSION);

    /* The same lexemes, over every hostile content; most have some. */
    CHECK(query_i64(c, "SELECT count(*) FROM hostile") > 900);
    CHECK(query_i64(c, "SELECT count(*) FROM hostile h JOIN vec_v7 o USING (n)"
                       " WHERE parlor_search_vector(h.b) IS DISTINCT FROM o.v") == 0);
    CHECK(query_i64(c, "SELECT count(*) FROM hostile h WHERE parlor_search_vector(h.b)"
                       " IS DISTINCT FROM parlor_search_vector_v7(h.b)") == 0);
    CHECK(
        query_i64(c, "SELECT count(*) FROM hostile h WHERE length(parlor_search_vector(h.b)) > 0") >
        800);
    CHECK(query_i64(c, "SELECT count(*) FROM hostile h WHERE octet_length(h.b) >= 64"
                       " AND length(parlor_search_vector(h.b)) > 0") > 300);

    /* The chain goes on from version 7's positions. */
    store_message_insert_t op;
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "hello again, version eight", 3000, &op), STORE_OK);
    CHECK(op.prev_sender == p2 && op.prev_recipient == p2);
    int64_t p3 = op.msg.pos;
    sc_upsert(t, "carol", "Carol");
    str_t parts[] = {STR_LIT("bob"), STR_LIT("carol")};
    store_arena_t ar = sc_arena();
    store_group_create_t g = {.creator = STR_LIT("alice"), .participants = parts, .count = 2};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 3100), STORE_OK);
    char grp[ID_SIZE];
    memcpy(grp, g.conv.id, ID_SIZE);
    CHECK_EQ_INT(sc_send_at(t, grp, "carol", "group hello", 3200, &op), STORE_OK);
    int64_t g1 = op.msg.pos;
    CHECK(op.prev_sender == 0 && op.prev_recipient == 0 && g1 > p3);
    CHECK(query_i64(c, "SELECT count(*) FROM user_positions WHERE pos = (SELECT max(pos) FROM"
                       " messages) AND user_id IN ('alice', 'bob', 'carol')") == 3);
    CHECK_EQ_INT(sc_send_at(t, conv, "bob", "after the group", 3300, &op), STORE_OK);
    CHECK(op.prev_sender == g1 && op.prev_recipient == g1);
    int64_t p4 = op.msg.pos;

    /* A send then a system notice in one transaction: the trigger keeps the notice's chain. */
    char id5[ID_SIZE], id6[ID_SIZE];
    id_generate(id5);
    id_generate(id6);
    CHECK(exec_ok(c, "BEGIN"));
    snprintf(sql, sizeof sql,
             "SELECT o_prev_sender FROM parlor_send('alice', '%s', NULL, NULL, 'x'::bytea,"
             " 'text', NULL, NULL, 3400, '%s', NULL)",
             conv, id5);
    CHECK(query_i64(c, sql) == p4);
    snprintf(sql, sizeof sql,
             "SELECT o_status FROM parlor_send_system('%s', 'notice'::bytea, NULL, 3500, '%s')",
             grp, id6);
    CHECK(query_i64(c, sql) == 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM user_positions up JOIN messages m ON m.id = '%s'"
             " WHERE up.pos = m.pos AND up.user_id IN ('alice', 'bob', 'carol')",
             id6);
    CHECK(query_i64(c, sql) == 3);
    CHECK(exec_ok(c, "COMMIT"));

    /* Search: the GIN index of version 7 finds old and new messages. */
    CHECK(exec_ok(c, "SET enable_seqscan = off"));
    CHECK(query_i64(c, "SELECT count(*) FROM messages"
                       " WHERE parlor_search_vector(content) @@ 'hello'::tsquery") == 4);
    CHECK(query_i64(c, "SELECT count(*) FROM messages"
                       " WHERE parlor_search_vector(content) @@ 'seven'::tsquery") == 1);
    CHECK(query_i64(c,
                    "SELECT count(*) FROM messages"
                    " WHERE parlor_search_vector(content) @@ 'w\\\\303\\\\226rld'::tsquery") == 1);
    PGresult *r = PQexec(c, "EXPLAIN SELECT 1 FROM messages"
                            " WHERE parlor_search_vector(content) @@ 'hello'::tsquery");
    bool indexed = false;
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        if (strstr(PQgetvalue(r, i, 0), "messages_search")) indexed = true;
    PQclear(r);
    CHECK(indexed);
    PQfinish(c);

    sc_close(t, t->s);
    t->s = NULL;
    c = PQconnectdb(t->target); /* the harness drops only the schemas it made */
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", name);
    CHECK(exec_ok(c, sql));
    PQfinish(c);
}

const sc_case_t sc_cases_pg_schema[] = {
    {"pg_upgrade_v7", test_upgrade_v7},
    {NULL, NULL},
};

/* The PostgreSQL engine's schema: versioned migrations, applied by the writer connection at
 * open in one transaction under an advisory lock (several nodes starting together migrate
 * once: the others wait for the lock, then find the version current), and the check that
 * reader connections make.
 *
 * Table names are unqualified: the connection's search_path picks the schema (a URL's
 * options=-csearch_path%3Dname), and the advisory locks are per schema. */
#include "store/store_pg_int.h"

#include "core/log.h"

/* Version 1: SQLite's schema version 4, column for column. Times are bigint ms, ids text.
 * Every text column compares bytewise (COLLATE "C", as SQLite's BINARY): ids, cursors and
 * contact lists sort the same on both engines. username_key is SQLite's COLLATE NOCASE
 * (ASCII letters folded), kept unique and searched by prefix. Message content is bytea: it
 * may hold any bytes, NUL included, as SQLite's text does (PostgreSQL's text may not). messages.pos
 * comes from messages_pos_seq under the insert lock (store_pg.c); CACHE 1 keeps it increasing
 * across sessions. parlor_send and parlor_mark_read are the two hot writes as one statement each,
 * answering a refusal in their row (status = a STORE_E_*) instead of raising, so that they
 * can be pipelined and a refusal never aborts the batch's transaction. */
/* parlor_send's answer to a refusal: v_fstatus and nothing else. */
#define SEND_REFUSED                                                                               \
    "SELECT v_fstatus, false, false, NULL, NULL, 0::bigint, 0::bigint, NULL, NULL, NULL::bytea,"   \
    " NULL, NULL, 0::bigint, 0::bigint, 0::bigint, NULL, NULL, NULL, 0::bigint, NULL, NULL, NULL," \
    " 0::bigint"

static const char pg_migration_1[] =
    "CREATE TABLE users ("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " name text COLLATE \"C\","
    " role text COLLATE \"C\","
    " username text COLLATE \"C\","
    " username_key text COLLATE \"C\" GENERATED ALWAYS AS (translate(username,"
    "  'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) STORED "
    "UNIQUE,"
    " password_hash text COLLATE \"C\","
    " last_seen bigint,"
    " created_at bigint NOT NULL);"
    "CREATE TABLE files ("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " owner text COLLATE \"C\" NOT NULL REFERENCES users(id),"
    " name text COLLATE \"C\" NOT NULL,"
    " size bigint NOT NULL,"
    " mime text COLLATE \"C\" NOT NULL,"
    " path text COLLATE \"C\" NOT NULL,"
    " sha256 text COLLATE \"C\" NOT NULL,"
    " created_at bigint NOT NULL);"
    "CREATE INDEX files_by_owner ON files(owner);"
    "CREATE TABLE conversations ("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " type text COLLATE \"C\" NOT NULL CHECK (type = 'direct' OR type = "
    "'group'),"
    " title text COLLATE \"C\","
    " direct_key text COLLATE \"C\" UNIQUE,"
    " last_seq bigint NOT NULL DEFAULT 0,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL,"
    " CHECK ((type = 'direct') = (direct_key IS NOT NULL)));"
    "CREATE TABLE conversation_members ("
    " conversation_id text COLLATE \"C\" NOT NULL REFERENCES conversations(id) "
    "ON DELETE CASCADE,"
    " user_id text COLLATE \"C\" NOT NULL REFERENCES users(id),"
    " read_seq bigint NOT NULL DEFAULT 0,"
    " read_at bigint,"
    " joined_at bigint NOT NULL,"
    " sent integer NOT NULL DEFAULT 0,"
    " PRIMARY KEY (conversation_id, user_id));"
    "CREATE INDEX conversation_members_by_user ON conversation_members(user_id, "
    "conversation_id);"
    "CREATE SEQUENCE messages_pos_seq CACHE 1;"
    "CREATE TABLE messages ("
    " pos bigint PRIMARY KEY,"
    " id text COLLATE \"C\" NOT NULL UNIQUE,"
    " conversation_id text COLLATE \"C\" NOT NULL,"
    " seq bigint NOT NULL CHECK (seq > 0),"
    " sender text COLLATE \"C\" NOT NULL,"
    " recipient text COLLATE \"C\","
    " content bytea NOT NULL,"
    " type text COLLATE \"C\" NOT NULL CHECK (type = 'text' OR type = 'image' "
    "OR type = 'file'),"
    " file_id text COLLATE \"C\","
    " client_msg_id text COLLATE \"C\","
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL,"
    " read_at bigint,"
    " UNIQUE (conversation_id, seq),"
    " UNIQUE (sender, client_msg_id));"
    "ALTER SEQUENCE messages_pos_seq OWNED BY messages.pos;"
    "CREATE INDEX messages_by_file ON messages(file_id) WHERE file_id IS NOT "
    "NULL;"
    /* The send. Outputs: status, duplicate, conversation created, then the
     * message's columns as PG_MSG_COLS (content NULL for a new message: the
     * caller has it). */
    "CREATE FUNCTION parlor_send(p_sender text, p_conv text, p_recipient text, "
    "p_key text,"
    " p_content bytea, p_type text, p_file text, p_cmid text, p_now bigint, "
    "p_id text,"
    " p_new_conv text)"
    " RETURNS TABLE (o_status integer, o_dup boolean, o_created boolean, o_id "
    "text,"
    " o_conv text, o_seq bigint, o_pos bigint, o_sender text, o_recipient text, "
    "o_content bytea,"
    " o_type text, o_cmid text, o_read_at bigint, o_created_at bigint, "
    "o_updated_at bigint,"
    " o_fid text, o_fowner text, o_fname text, o_fsize bigint, o_fmime text, "
    "o_fpath text,"
    " o_fsha text, o_fcreated bigint)"
    " LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_conv text; v_type text; v_rcpt text; v_sent integer; v_seq bigint; "
    "v_pos bigint;\n"
    " v_created boolean := false; v_fstatus integer := 0; v_fowner text; "
    "v_fmime text;\n"
    "BEGIN\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(
        PG_LOCK_INSERT) ", hashtext(current_schema()));\n"
                        /* a repeated clientMsgId answers what was stored the
                           first time, whatever else it says */
                        " IF p_cmid IS NOT NULL THEN\n"
                        "  RETURN QUERY SELECT 0, true, false, " PG_MSG_COLS PG_MSG_FROM
                        "   WHERE m.sender = p_sender AND "
                        "m.client_msg_id = p_cmid;\n"
                        "  IF FOUND THEN RETURN; END IF;\n"
                        " END IF;\n"
                        " IF p_file IS NOT NULL THEN\n"
                        "  SELECT f.owner, f.mime INTO v_fowner, v_fmime FROM "
                        "files f WHERE f.id = "
                        "p_file;\n"
                        "  IF NOT FOUND OR v_fowner <> p_sender THEN v_fstatus "
                        ":= -3;\n" /* FORBIDDEN
                                    */
                        "  ELSIF p_type = 'image' AND left(v_fmime, 6) <> "
                        "'image/' THEN v_fstatus "
                        ":= -1;\n"
                        "  END IF;\n"
                        " END IF;\n"
                        " IF p_conv IS NOT NULL THEN\n"
                        "  v_conv := p_conv;\n"
                        " ELSE\n"
                        "  SELECT c.id INTO v_conv FROM conversations c WHERE "
                        "c.direct_key = "
                        "p_key;\n"
                        "  IF NOT FOUND THEN\n"
                        /* the sender would be a member: a bad file is the
                           answer, and nothing is created */
                        "   IF v_fstatus <> 0 THEN\n"
                        "    RETURN QUERY " SEND_REFUSED ";\n"
                        "    RETURN;\n"
                        "   END IF;\n"
                        "   INSERT INTO conversations (id, type, title, "
                        "direct_key, last_seq, "
                        "created_at, updated_at)"
                        "    VALUES (p_new_conv, 'direct', NULL, p_key, 0, "
                        "p_now, p_now)"
                        "    ON CONFLICT (direct_key) DO NOTHING;\n"
                        "   IF FOUND THEN\n"
                        "    v_conv := p_new_conv; v_created := true;\n"
                        "    INSERT INTO users (id, created_at) VALUES "
                        "(p_sender, p_now), "
                        "(p_recipient, p_now)"
                        "     ON CONFLICT DO NOTHING;\n"
                        "    INSERT INTO conversation_members (conversation_id, "
                        "user_id, read_seq, "
                        "joined_at)"
                        "     VALUES (v_conv, p_sender, 0, p_now), (v_conv, "
                        "p_recipient, 0, p_now)"
                        "     ON CONFLICT DO NOTHING;\n"
                        "   ELSE\n"
                        "    SELECT c.id INTO v_conv FROM conversations c WHERE "
                        "c.direct_key = "
                        "p_key;\n"
                        "   END IF;\n"
                        "  END IF;\n"
                        " END IF;\n"
                        " SELECT c.type, cm.sent, (SELECT o.user_id FROM "
                        "conversation_members o"
                        "   WHERE o.conversation_id = c.id AND o.user_id <> "
                        "p_sender LIMIT 1)"
                        "  INTO v_type, v_sent, v_rcpt FROM conversations c "
                        "JOIN "
                        "conversation_members cm"
                        "  ON cm.conversation_id = c.id AND cm.user_id = "
                        "p_sender WHERE c.id = "
                        "v_conv;\n"
                        " IF NOT FOUND THEN\n"
                        "  v_fstatus := CASE WHEN EXISTS (SELECT 1 FROM "
                        "conversations c WHERE c.id "
                        "= v_conv)"
                        "   THEN -3 ELSE -2 END;\n"
                        " END IF;\n"
                        " IF v_fstatus <> 0 THEN\n"
                        "  RETURN QUERY " SEND_REFUSED ";\n"
                        "  RETURN;\n"
                        " END IF;\n"
                        " IF v_type <> 'direct' THEN v_rcpt := NULL; END IF;\n"
                        /* the row lock that makes seq gap-free across writers;
                           held until COMMIT */
                        " UPDATE conversations c SET last_seq = c.last_seq + 1,"
                        "  updated_at = greatest(c.updated_at, p_now) WHERE "
                        "c.id = v_conv"
                        "  RETURNING c.last_seq INTO v_seq;\n"
                        " v_pos := nextval('messages_pos_seq');\n"
                        " INSERT INTO messages (pos, id, conversation_id, seq, "
                        "sender, recipient, "
                        "content, type,"
                        "  file_id, client_msg_id, created_at, updated_at)"
                        "  VALUES (v_pos, p_id, v_conv, v_seq, p_sender, "
                        "v_rcpt, p_content, "
                        "p_type, p_file, p_cmid,"
                        "  p_now, p_now) ON CONFLICT (sender, client_msg_id) DO "
                        "NOTHING;\n"
                        " IF NOT FOUND THEN\n"
                        /* a racing send of the same clientMsgId committed first:
                         * give the seq back
                         */
                        "  UPDATE conversations c SET last_seq = c.last_seq - 1,"
                        "   updated_at = greatest(c.created_at, "
                        "coalesce((SELECT max(x.created_at) "
                        "FROM messages x"
                        "   WHERE x.conversation_id = v_conv), 0)) WHERE c.id = "
                        "v_conv;\n"
                        "  RETURN QUERY SELECT 0, true, false, " PG_MSG_COLS PG_MSG_FROM
                        "   WHERE m.sender = p_sender AND "
                        "m.client_msg_id = p_cmid;\n"
                        "  RETURN;\n"
                        " END IF;\n"
                        " IF v_sent = 0 THEN\n"
                        "  UPDATE conversation_members cm SET sent = 1"
                        "   WHERE cm.conversation_id = v_conv AND cm.user_id = "
                        "p_sender;\n"
                        " END IF;\n"
                        " RETURN QUERY SELECT 0, false, v_created, p_id, "
                        "v_conv, v_seq, v_pos, "
                        "p_sender, v_rcpt,"
                        "  NULL::bytea, p_type, p_cmid, NULL::bigint, p_now, "
                        "p_now, f.id, f.owner, "
                        "f.name, f.size,"
                        "  f.mime, f.path, f.sha256, f.created_at FROM (SELECT "
                        "1) one"
                        "  LEFT JOIN files f ON f.id = p_file;\n"
                        "END $f$;"
                        /* The read watermark: moves forward to the message,
                           never back. */
                        "CREATE FUNCTION parlor_mark_read(p_conv text, p_user "
                        "text, p_msg text, "
                        "p_now bigint)"
                        " RETURNS TABLE (o_status integer, o_conv text, "
                        "o_msg_seq bigint, o_seq "
                        "bigint,"
                        " o_read_at bigint, o_unread bigint, o_moved boolean)"
                        " LANGUAGE plpgsql AS $f$\n"
                        "DECLARE\n"
                        " v_conv text; v_mseq bigint; v_rs bigint; v_ra bigint; "
                        "v_moved boolean := "
                        "false;\n"
                        " v_unread bigint;\n"
                        "BEGIN\n"
                        " SELECT x.conversation_id, x.seq INTO v_conv, v_mseq "
                        "FROM messages x "
                        "WHERE x.id = p_msg;\n"
                        " IF NOT FOUND OR (p_conv IS NOT NULL AND v_conv <> "
                        "p_conv) THEN\n"
                        "  RETURN QUERY SELECT -2, NULL::text, 0::bigint, "
                        "0::bigint, 0::bigint, "
                        "0::bigint, false;\n"
                        "  RETURN;\n"
                        " END IF;\n"
                        " SELECT cm.read_seq, cm.read_at INTO v_rs, v_ra FROM "
                        "conversation_members "
                        "cm"
                        "  WHERE cm.conversation_id = v_conv AND cm.user_id = "
                        "p_user FOR UPDATE;\n"
                        " IF NOT FOUND THEN\n"
                        "  RETURN QUERY SELECT -3, NULL::text, 0::bigint, "
                        "0::bigint, 0::bigint, "
                        "0::bigint, false;\n"
                        "  RETURN;\n"
                        " END IF;\n"
                        " IF v_mseq > v_rs THEN\n"
                        "  UPDATE conversation_members cm SET read_seq = "
                        "v_mseq, read_at = p_now"
                        "   WHERE cm.conversation_id = v_conv AND cm.user_id = "
                        "p_user;\n"
                        /* the messages the watermark passed are read now, unless
                           another member read them */
                        "  UPDATE messages x SET read_at = p_now WHERE "
                        "x.conversation_id = v_conv"
                        "   AND x.seq > v_rs AND x.seq <= v_mseq AND x.sender "
                        "<> p_user AND "
                        "x.read_at IS NULL;\n"
                        "  v_rs := v_mseq; v_ra := p_now; v_moved := true;\n"
                        " END IF;\n"
                        " SELECT count(*) INTO v_unread FROM messages x"
                        "  WHERE x.conversation_id = v_conv AND x.seq > v_rs "
                        "AND x.sender <> "
                        "p_user;\n"
                        " RETURN QUERY SELECT 0, v_conv, v_mseq, v_rs, "
                        "coalesce(v_ra, 0), "
                        "v_unread, v_moved;\n"
                        "END $f$;";

static const char *const pg_migrations[STORE_PG_SCHEMA_VERSION + 1] = {NULL, pg_migration_1};

/* The schema's version (0: no parlor_schema row), or a STORE_E_*. */
static int read_version(store_pg_t *db, int *out)
{
    PGresult *r = PQexecParams(db->conn, "SELECT max(version) FROM parlor_schema", 0, NULL, NULL,
                               NULL, NULL, 0);
    int rc = STORE_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pg_result_rc(db, r);
    else
        *out = PQntuples(r) == 1 ? (int)pg_i64(r, 0, 0) : 0;
    PQclear(r);
    return rc;
}

static int need_schema(store_pg_t *db, char *err, size_t errcap)
{
    PGresult *r =
        PQexecParams(db->conn, "SELECT current_schema() IS NOT NULL", 0, NULL, NULL, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && pg_bool(r, 0, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? STORE_E_INVALID : pg_result_rc(db, r);
    PQclear(r);
    if (ok) return STORE_OK;
    snprintf(err, errcap, "%s",
             rc == STORE_E_INVALID ? "no schema of the search_path exists (create it first)"
                                   : db->err);
    return rc;
}

int pg_schema_migrate(store_pg_t *db, char *err, size_t errcap)
{
    int rc, version = 0;
    if ((rc = need_schema(db, err, errcap)) != STORE_OK) return rc;
    if ((rc = pg_exec_simple(db, "BEGIN")) != STORE_OK ||
        (rc = pg_exec_simple(db, "SELECT pg_advisory_xact_lock(" PG_STR(
                                     PG_LOCK_MIGRATE) ", hashtext(current_schema()))")) !=
            STORE_OK ||
        (rc = pg_exec_simple(db, "CREATE TABLE IF NOT EXISTS parlor_schema"
                                 " (version integer NOT NULL)")) != STORE_OK ||
        (rc = read_version(db, &version)) != STORE_OK) {
        snprintf(err, errcap, "reading the schema version: %s", db->err);
        goto fail;
    }
    if (version > STORE_PG_SCHEMA_VERSION) {
        snprintf(err, errcap, "database schema version %d is newer than this build's %d", version,
                 STORE_PG_SCHEMA_VERSION);
        rc = STORE_E_INVALID;
        goto fail;
    }
    for (int to = version + 1; to <= STORE_PG_SCHEMA_VERSION; to++) {
        PGresult *r = PQexec(db->conn, pg_migrations[to]); /* several statements */
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK : pg_result_rc(db, r);
        PQclear(r);
        if (rc != STORE_OK) {
            snprintf(err, errcap, "migration to schema version %d failed: %s", to, db->err);
            goto fail;
        }
    }
    if (version < STORE_PG_SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql,
                 "DELETE FROM parlor_schema; INSERT INTO parlor_schema VALUES (%d)",
                 STORE_PG_SCHEMA_VERSION);
        PGresult *r = PQexec(db->conn, sql);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK : pg_result_rc(db, r);
        PQclear(r);
    }
    if (rc == STORE_OK) rc = pg_exec_simple(db, "COMMIT");
    if (rc != STORE_OK) {
        snprintf(err, errcap, "recording the schema version: %s", db->err);
        goto fail;
    }
    if (version < STORE_PG_SCHEMA_VERSION)
        log_info("store: migrated the PostgreSQL schema from version %d to %d", version,
                 STORE_PG_SCHEMA_VERSION);
    return STORE_OK;
fail:
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        pg_exec_simple(db, "ROLLBACK");
    return rc;
}

int pg_schema_check(store_pg_t *db, char *err, size_t errcap)
{
    int version = 0;
    int rc = read_version(db, &version);
    if (rc != STORE_OK) {
        snprintf(err, errcap, "reading the schema version: %s", db->err);
        return rc;
    }
    if (version != STORE_PG_SCHEMA_VERSION) {
        snprintf(err, errcap, "schema version %d, this build needs %d", version,
                 STORE_PG_SCHEMA_VERSION);
        return STORE_E_INVALID;
    }
    return STORE_OK;
}

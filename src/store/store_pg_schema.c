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
 * contact lists sort the same on both engines. username_key is SQLite's COLLATE NOCASE (ASCII
 * letters folded), kept unique and searched by prefix. Message content is bytea: it may hold
 * any bytes, NUL included, as SQLite's text does (PostgreSQL's text may not). messages.pos
 * comes from messages_pos_seq under the insert lock (store_pg.c); CACHE 1 keeps it increasing
 * across sessions.
 *
 * parlor_send and parlor_mark_read are the two hot writes as one statement each (and
 * parlor_send_many several sends in one, for the write batch: store_pg_batch.c): they answer
 * a refusal in their row (o_status = a STORE_E_*) instead of raising, so that they can be
 * pipelined and a refusal never aborts the batch's transaction; every refusal is decided
 * before the first write. parlor_send's row: status, duplicate, conversation created, then the
 * message as PG_MSG_COLS (content NULL for a new message: the caller has it). */
// clang-format off
static const char pg_migration_1[] =
    "CREATE TABLE users (\n"
    " id text COLLATE \"C\" PRIMARY KEY,\n"
    " name text COLLATE \"C\",\n"
    " role text COLLATE \"C\",\n"
    " username text COLLATE \"C\",\n"
    " username_key text COLLATE \"C\" GENERATED ALWAYS AS\n"
    "  (translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) STORED UNIQUE,\n"
    " password_hash text COLLATE \"C\",\n"
    " last_seen bigint,\n"
    " created_at bigint NOT NULL);\n"
    "CREATE TABLE files (\n"
    " id text COLLATE \"C\" PRIMARY KEY,\n"
    " owner text COLLATE \"C\" NOT NULL REFERENCES users(id),\n"
    " name text COLLATE \"C\" NOT NULL,\n"
    " size bigint NOT NULL,\n"
    " mime text COLLATE \"C\" NOT NULL,\n"
    " path text COLLATE \"C\" NOT NULL,\n"
    " sha256 text COLLATE \"C\" NOT NULL,\n"
    " created_at bigint NOT NULL);\n"
    "CREATE INDEX files_by_owner ON files(owner);\n"
    "CREATE TABLE conversations (\n"
    " id text COLLATE \"C\" PRIMARY KEY,\n"
    " type text COLLATE \"C\" NOT NULL CHECK (type = 'direct' OR type = 'group'),\n"
    " title text COLLATE \"C\",\n"
    " direct_key text COLLATE \"C\" UNIQUE,\n"
    " last_seq bigint NOT NULL DEFAULT 0,\n"
    " created_at bigint NOT NULL,\n"
    " updated_at bigint NOT NULL,\n"
    " CHECK ((type = 'direct') = (direct_key IS NOT NULL)));\n"
    "CREATE TABLE conversation_members (\n"
    " conversation_id text COLLATE \"C\" NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,\n"
    " user_id text COLLATE \"C\" NOT NULL REFERENCES users(id),\n"
    " read_seq bigint NOT NULL DEFAULT 0,\n"
    " read_at bigint,\n"
    " joined_at bigint NOT NULL,\n"
    " sent integer NOT NULL DEFAULT 0,\n"
    " PRIMARY KEY (conversation_id, user_id));\n"
    "CREATE INDEX conversation_members_by_user ON conversation_members(user_id, conversation_id);\n"
    "CREATE SEQUENCE messages_pos_seq CACHE 1;\n"
    "CREATE TABLE messages (\n"
    " pos bigint PRIMARY KEY,\n"
    " id text COLLATE \"C\" NOT NULL UNIQUE,\n"
    " conversation_id text COLLATE \"C\" NOT NULL,\n"
    " seq bigint NOT NULL CHECK (seq > 0),\n"
    " sender text COLLATE \"C\" NOT NULL,\n"
    " recipient text COLLATE \"C\",\n"
    " content bytea NOT NULL,\n"
    " type text COLLATE \"C\" NOT NULL CHECK (type = 'text' OR type = 'image' OR type = 'file'),\n"
    " file_id text COLLATE \"C\",\n"
    " client_msg_id text COLLATE \"C\",\n"
    " created_at bigint NOT NULL,\n"
    " updated_at bigint NOT NULL,\n"
    " read_at bigint,\n"
    " UNIQUE (conversation_id, seq),\n"
    " UNIQUE (sender, client_msg_id));\n"
    "ALTER SEQUENCE messages_pos_seq OWNED BY messages.pos;\n"
    "CREATE INDEX messages_by_file ON messages(file_id) WHERE file_id IS NOT NULL;\n"
    "CREATE FUNCTION parlor_send(p_sender text, p_conv text, p_recipient text, p_key text,\n"
    " p_content bytea, p_type text, p_file text, p_cmid text, p_now bigint, p_id text,\n"
    " p_new_conv text)\n"
    "RETURNS TABLE (o_status integer, o_dup boolean, o_created boolean, o_id text, o_conv text,\n"
    " o_seq bigint, o_pos bigint, o_sender text, o_recipient text, o_content bytea, o_type text,\n"
    " o_cmid text, o_read_at bigint, o_created_at bigint, o_updated_at bigint, o_fid text,\n"
    " o_fowner text, o_fname text, o_fsize bigint, o_fmime text, o_fpath text, o_fsha text,\n"
    " o_fcreated bigint)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_conv text; v_type text; v_sent integer; v_fstatus integer := 0;\n"
    "BEGIN\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(PG_LOCK_INSERT) ", hashtext(current_schema()));\n"
    " o_status := 0; o_dup := false; o_created := false; o_seq := 0; o_pos := 0; o_read_at := 0;\n"
    " o_created_at := 0; o_updated_at := 0; o_fsize := 0; o_fcreated := 0;\n"
    " -- a repeated clientMsgId answers what was stored the first time, whatever else it says\n"
    " IF p_cmid IS NOT NULL THEN\n"
    "  RETURN QUERY SELECT 0, true, false, " PG_MSG_COLS_V1 " FROM messages m LEFT JOIN files f\n"
    "   ON f.id = m.file_id WHERE m.sender = p_sender AND m.client_msg_id = p_cmid;\n"
    "  IF FOUND THEN RETURN; END IF;\n"
    " END IF;\n"
    " IF p_file IS NOT NULL THEN\n"
    "  SELECT f.id, f.owner, f.name, f.size, f.mime, f.path, f.sha256, f.created_at\n"
    "   INTO o_fid, o_fowner, o_fname, o_fsize, o_fmime, o_fpath, o_fsha, o_fcreated\n"
    "   FROM files f WHERE f.id = p_file;\n"
    "  IF NOT FOUND OR o_fowner <> p_sender THEN v_fstatus := -3;  -- FORBIDDEN\n"
    "  ELSIF p_type = 'image' AND left(o_fmime, 6) <> 'image/' THEN v_fstatus := -1;  -- INVALID\n"
    "  END IF;\n"
    " END IF;\n"
    " IF p_conv IS NOT NULL THEN\n"
    "  v_conv := p_conv;\n"
    " ELSE\n"
    "  SELECT c.id INTO v_conv FROM conversations c WHERE c.direct_key = p_key;\n"
    "  IF NOT FOUND THEN\n"
    "   -- the sender would be a member: a bad file is the answer, and nothing is created\n"
    "   IF v_fstatus <> 0 THEN\n"
    "    o_status := v_fstatus; o_fid := NULL; RETURN NEXT; RETURN;\n"
    "   END IF;\n"
    "   INSERT INTO conversations (id, type, title, direct_key, last_seq, created_at, updated_at)\n"
    "    VALUES (p_new_conv, 'direct', NULL, p_key, 0, p_now, p_now)\n"
    "    ON CONFLICT (direct_key) DO NOTHING;\n"
    "   IF FOUND THEN\n"
    "    v_conv := p_new_conv; o_created := true;\n"
    "    INSERT INTO users (id, created_at) VALUES (p_sender, p_now), (p_recipient, p_now)\n"
    "     ON CONFLICT DO NOTHING;\n"
    "    INSERT INTO conversation_members (conversation_id, user_id, read_seq, joined_at)\n"
    "     VALUES (v_conv, p_sender, 0, p_now), (v_conv, p_recipient, 0, p_now)\n"
    "     ON CONFLICT DO NOTHING;\n"
    "   ELSE\n"
    "    SELECT c.id INTO v_conv FROM conversations c WHERE c.direct_key = p_key;\n"
    "   END IF;\n"
    "  END IF;\n"
    " END IF;\n"
    " IF v_fstatus = 0 THEN\n"
    "  -- the next seq, under the conversation's row lock (held until COMMIT), for a member only\n"
    "  UPDATE conversations c SET last_seq = c.last_seq + 1, updated_at = greatest(c.updated_at, p_now)\n"
    "   FROM conversation_members cm\n"
    "   WHERE c.id = v_conv AND cm.conversation_id = c.id AND cm.user_id = p_sender\n"
    "   RETURNING c.last_seq, c.type, cm.sent, CASE WHEN c.type = 'direct' THEN\n"
    "    (SELECT o.user_id FROM conversation_members o WHERE o.conversation_id = c.id\n"
    "     AND o.user_id <> p_sender LIMIT 1) END\n"
    "   INTO o_seq, v_type, v_sent, o_recipient;\n"
    " END IF;\n"
    " IF v_fstatus <> 0 OR NOT FOUND THEN\n"
    "  o_seq := 0; o_recipient := NULL; o_fid := NULL;\n"
    "  IF NOT EXISTS (SELECT 1 FROM conversation_members cm\n"
    "                 WHERE cm.conversation_id = v_conv AND cm.user_id = p_sender) THEN\n"
    "   v_fstatus := CASE WHEN EXISTS (SELECT 1 FROM conversations c WHERE c.id = v_conv)\n"
    "                THEN -3 ELSE -2 END;\n"
    "  END IF;\n"
    "  o_status := v_fstatus; RETURN NEXT; RETURN;\n"
    " END IF;\n"
    " INSERT INTO messages (pos, id, conversation_id, seq, sender, recipient, content, type, file_id,\n"
    "  client_msg_id, created_at, updated_at)\n"
    "  VALUES (nextval('messages_pos_seq'), p_id, v_conv, o_seq, p_sender, o_recipient, p_content,\n"
    "  p_type, p_file, p_cmid, p_now, p_now)\n"
    "  ON CONFLICT (sender, client_msg_id) DO NOTHING RETURNING pos INTO o_pos;\n"
    " IF NOT FOUND THEN\n"
    "  -- a racing send of the same clientMsgId committed first: give the seq back\n"
    "  UPDATE conversations c SET last_seq = c.last_seq - 1,\n"
    "   updated_at = greatest(c.created_at, coalesce((SELECT max(x.created_at) FROM messages x\n"
    "   WHERE x.conversation_id = v_conv), 0)) WHERE c.id = v_conv;\n"
    "  RETURN QUERY SELECT 0, true, false, " PG_MSG_COLS_V1 " FROM messages m LEFT JOIN files f\n"
    "   ON f.id = m.file_id WHERE m.sender = p_sender AND m.client_msg_id = p_cmid;\n"
    "  RETURN;\n"
    " END IF;\n"
    " IF v_sent = 0 THEN\n"
    "  UPDATE conversation_members cm SET sent = 1\n"
    "   WHERE cm.conversation_id = v_conv AND cm.user_id = p_sender;\n"
    " END IF;\n"
    " o_id := p_id; o_conv := v_conv; o_sender := p_sender; o_type := p_type; o_cmid := p_cmid;\n"
    " o_created_at := p_now; o_updated_at := p_now;\n"
    " RETURN NEXT;\n"
    "END $f$;\n"
    "CREATE FUNCTION parlor_send_many(p_sender text[], p_conv text[], p_recipient text[],\n"
    " p_key text[], p_len integer[], p_type text[], p_file text[], p_cmid text[], p_now bigint[],\n"
    " p_id text[], p_new_conv text[], p_blob bytea)\n"
    "RETURNS TABLE (o_i integer, o_status integer, o_dup boolean, o_created boolean, o_id text,\n"
    " o_conv text, o_seq bigint, o_pos bigint, o_sender text, o_recipient text, o_content bytea,\n"
    " o_type text, o_cmid text, o_read_at bigint, o_created_at bigint, o_updated_at bigint,\n"
    " o_fid text, o_fowner text, o_fname text, o_fsize bigint, o_fmime text, o_fpath text,\n"
    " o_fsha text, o_fcreated bigint)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " i integer; v_off integer := 1;\n"
    "BEGIN\n"
    " -- several sends in one statement, in order: p_blob holds their contents end to end\n"
    " FOR i IN 1 .. coalesce(array_length(p_sender, 1), 0) LOOP\n"
    "  RETURN QUERY SELECT i, s.* FROM parlor_send(p_sender[i], p_conv[i], p_recipient[i], p_key[i],\n"
    "   substring(p_blob FROM v_off FOR p_len[i]), p_type[i], p_file[i], p_cmid[i], p_now[i], p_id[i],\n"
    "   p_new_conv[i]) s;\n"
    "  v_off := v_off + p_len[i];\n"
    " END LOOP;\n"
    "END $f$;\n"
    "CREATE FUNCTION parlor_mark_read(p_conv text, p_user text, p_msg text, p_now bigint)\n"
    "RETURNS TABLE (o_status integer, o_conv text, o_msg_seq bigint, o_seq bigint, o_read_at bigint,\n"
    " o_unread bigint, o_moved boolean)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_ra bigint;\n"
    "BEGIN\n"
    " o_status := 0; o_msg_seq := 0; o_seq := 0; o_read_at := 0; o_unread := 0; o_moved := false;\n"
    " SELECT x.conversation_id, x.seq INTO o_conv, o_msg_seq FROM messages x WHERE x.id = p_msg;\n"
    " IF NOT FOUND OR (p_conv IS NOT NULL AND o_conv <> p_conv) THEN\n"
    "  o_status := -2; RETURN NEXT; RETURN;  -- NOT_FOUND\n"
    " END IF;\n"
    " SELECT cm.read_seq, cm.read_at INTO o_seq, v_ra FROM conversation_members cm\n"
    "  WHERE cm.conversation_id = o_conv AND cm.user_id = p_user FOR UPDATE;\n"
    " IF NOT FOUND THEN\n"
    "  o_status := -3; RETURN NEXT; RETURN;  -- FORBIDDEN\n"
    " END IF;\n"
    " IF o_msg_seq > o_seq THEN\n"
    "  UPDATE conversation_members cm SET read_seq = o_msg_seq, read_at = p_now\n"
    "   WHERE cm.conversation_id = o_conv AND cm.user_id = p_user;\n"
    "  -- the messages the watermark passed are read now, unless another member read them first\n"
    "  UPDATE messages x SET read_at = p_now WHERE x.conversation_id = o_conv\n"
    "   AND x.seq > o_seq AND x.seq <= o_msg_seq AND x.sender <> p_user AND x.read_at IS NULL;\n"
    "  o_seq := o_msg_seq; v_ra := p_now; o_moved := true;\n"
    " END IF;\n"
    " o_read_at := coalesce(v_ra, 0);\n"
    " SELECT count(*) INTO o_unread FROM messages x\n"
    "  WHERE x.conversation_id = o_conv AND x.seq > o_seq AND x.sender <> p_user;\n"
    " RETURN NEXT;\n"
    "END $f$;\n";

/* Version 3: edits and deletions (issue 16), as SQLite's version 6. parlor_update is an edit
 * or a delete as one statement: every refusal is decided before the first write, and the new
 * pos is taken under the insert lock like an insert's (store_pg.c), so guarantee 4 covers it.
 * parlor_mark_read no longer counts deleted messages as unread. */
static const char pg_migration_3[] =
    "ALTER TABLE messages ADD COLUMN edited_at bigint;\n"
    "ALTER TABLE messages ADD COLUMN deleted boolean NOT NULL DEFAULT false;\n"
    "CREATE FUNCTION parlor_update(p_user text, p_msg text, p_remove boolean, p_content bytea,\n"
    " p_window bigint, p_now bigint)\n"
    "RETURNS TABLE (o_status integer, o_changed boolean, o_window boolean, o_path text)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_conv text; v_sender text; v_type text; v_created bigint; v_deleted boolean; v_file text;\n"
    "BEGIN\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(PG_LOCK_INSERT) ", hashtext(current_schema()));\n"
    " o_status := 0; o_changed := false; o_window := false;\n"
    " SELECT m.conversation_id, m.sender, m.type, m.created_at, m.deleted, m.file_id\n"
    "  INTO v_conv, v_sender, v_type, v_created, v_deleted, v_file\n"
    "  FROM messages m WHERE m.id = p_msg FOR UPDATE;\n"
    " IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM conversation_members cm\n"
    "   WHERE cm.conversation_id = v_conv AND cm.user_id = p_user) THEN\n"
    "  o_status := -2; RETURN NEXT; RETURN;  -- NOT_FOUND\n"
    " END IF;\n"
    " IF v_sender <> p_user THEN o_status := -3; RETURN NEXT; RETURN; END IF;  -- FORBIDDEN\n"
    " IF p_remove THEN\n"
    "  IF v_deleted THEN RETURN NEXT; RETURN; END IF;\n"
    "  UPDATE messages SET content = ''::bytea, file_id = NULL, deleted = true, updated_at = p_now,\n"
    "   pos = nextval('messages_pos_seq') WHERE id = p_msg;\n"
    "  IF v_file IS NOT NULL THEN\n"
    "   DELETE FROM files f WHERE f.id = v_file AND NOT EXISTS (SELECT 1 FROM messages x\n"
    "    WHERE x.file_id = v_file) RETURNING f.path INTO o_path;\n"
    "  END IF;\n"
    " ELSE\n"
    "  IF v_deleted THEN o_status := -2; RETURN NEXT; RETURN; END IF;\n"
    "  IF v_type <> 'text' THEN o_status := -1; RETURN NEXT; RETURN; END IF;  -- INVALID\n"
    "  IF p_window > 0 AND p_now - v_created > p_window THEN\n"
    "   o_status := -3; o_window := true; RETURN NEXT; RETURN;\n"
    "  END IF;\n"
    "  UPDATE messages SET content = p_content, edited_at = p_now, updated_at = p_now,\n"
    "   pos = nextval('messages_pos_seq') WHERE id = p_msg;\n"
    " END IF;\n"
    " o_changed := true; RETURN NEXT;\n"
    "END $f$;\n"
    "CREATE OR REPLACE FUNCTION parlor_mark_read(p_conv text, p_user text, p_msg text, p_now bigint)\n"
    "RETURNS TABLE (o_status integer, o_conv text, o_msg_seq bigint, o_seq bigint, o_read_at bigint,\n"
    " o_unread bigint, o_moved boolean)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_ra bigint;\n"
    "BEGIN\n"
    " o_status := 0; o_msg_seq := 0; o_seq := 0; o_read_at := 0; o_unread := 0; o_moved := false;\n"
    " SELECT x.conversation_id, x.seq INTO o_conv, o_msg_seq FROM messages x WHERE x.id = p_msg;\n"
    " IF NOT FOUND OR (p_conv IS NOT NULL AND o_conv <> p_conv) THEN\n"
    "  o_status := -2; RETURN NEXT; RETURN;  -- NOT_FOUND\n"
    " END IF;\n"
    " SELECT cm.read_seq, cm.read_at INTO o_seq, v_ra FROM conversation_members cm\n"
    "  WHERE cm.conversation_id = o_conv AND cm.user_id = p_user FOR UPDATE;\n"
    " IF NOT FOUND THEN\n"
    "  o_status := -3; RETURN NEXT; RETURN;  -- FORBIDDEN\n"
    " END IF;\n"
    " IF o_msg_seq > o_seq THEN\n"
    "  UPDATE conversation_members cm SET read_seq = o_msg_seq, read_at = p_now\n"
    "   WHERE cm.conversation_id = o_conv AND cm.user_id = p_user;\n"
    "  UPDATE messages x SET read_at = p_now WHERE x.conversation_id = o_conv\n"
    "   AND x.seq > o_seq AND x.seq <= o_msg_seq AND x.sender <> p_user AND x.read_at IS NULL;\n"
    "  o_seq := o_msg_seq; v_ra := p_now; o_moved := true;\n"
    " END IF;\n"
    " o_read_at := coalesce(v_ra, 0);\n"
    " SELECT count(*) INTO o_unread FROM messages x\n"
    "  WHERE x.conversation_id = o_conv AND x.seq > o_seq AND x.sender <> p_user AND NOT x.deleted;\n"
    " RETURN NEXT;\n"
    "END $f$;\n";
/* Version 4 (SQLite's 7, issue 15): a conversation's context (columns and an index; the
 * direct key of a conversation about a context is "min|max|type|id", so the UNIQUE direct_key
 * keeps one per pair and context); system notices (parlor_send_system: sender 'system', no
 * membership needed, seq and pos as an insert's, idempotent by clientMsgId); and parlor_update
 * taking p_user NULL for a delete by a server credential (any message). */
static const char pg_migration_4[] =
    "ALTER TABLE conversations ADD COLUMN context_type text COLLATE \"C\";\n"
    "ALTER TABLE conversations ADD COLUMN context_id text COLLATE \"C\";\n"
    "ALTER TABLE conversations ADD COLUMN context_title text COLLATE \"C\";\n"
    "CREATE INDEX conversations_by_context ON conversations(context_type, context_id)\n"
    " WHERE context_type IS NOT NULL;\n"
    "CREATE FUNCTION parlor_send_system(p_conv text, p_content bytea, p_cmid text, p_now bigint,\n"
    " p_id text)\n"
    "RETURNS TABLE (o_status integer, o_dup boolean, o_id text)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_seq bigint;\n"
    "BEGIN\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(PG_LOCK_INSERT) ", hashtext(current_schema()));\n"
    " o_status := 0; o_dup := false;\n"
    " IF p_cmid IS NOT NULL THEN\n"
    "  SELECT m.id INTO o_id FROM messages m WHERE m.sender = 'system' AND m.client_msg_id = p_cmid;\n"
    "  IF FOUND THEN o_dup := true; RETURN NEXT; RETURN; END IF;\n"
    " END IF;\n"
    " UPDATE conversations c SET last_seq = c.last_seq + 1, updated_at = greatest(c.updated_at, p_now)\n"
    "  WHERE c.id = p_conv RETURNING c.last_seq INTO v_seq;\n"
    " IF NOT FOUND THEN o_status := -2; RETURN NEXT; RETURN; END IF;  -- NOT_FOUND\n"
    " INSERT INTO messages (pos, id, conversation_id, seq, sender, recipient, content, type, file_id,\n"
    "  client_msg_id, created_at, updated_at)\n"
    "  VALUES (nextval('messages_pos_seq'), p_id, p_conv, v_seq, 'system', NULL, p_content, 'text',\n"
    "  NULL, p_cmid, p_now, p_now);\n"
    " o_id := p_id; RETURN NEXT;\n"
    "END $f$;\n"
    /* Erase (GET/DELETE /api/server/users/:id): tombstones with new positions (under the
     * insert lock, as a delete's), then files (paths out), memberships, blocks, the user. */
    "CREATE FUNCTION parlor_erase_user(p_user text, p_now bigint)\n"
    "RETURNS TABLE (o_kind text, o_n bigint, o_path text)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_n bigint;\n"
    "BEGIN\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(PG_LOCK_INSERT) ", hashtext(current_schema()));\n"
    " UPDATE messages SET content = ''::bytea, file_id = NULL, deleted = true, updated_at = p_now,\n"
    "  pos = nextval('messages_pos_seq') WHERE sender = p_user AND NOT deleted;\n"
    " GET DIAGNOSTICS v_n = ROW_COUNT;\n"
    " o_kind := 'messages'; o_n := v_n; o_path := NULL; RETURN NEXT;\n"
    " UPDATE messages SET client_msg_id = NULL WHERE sender = p_user AND client_msg_id IS NOT NULL;\n"
    " DELETE FROM conversation_members WHERE user_id = p_user;\n"
    " GET DIAGNOSTICS v_n = ROW_COUNT;\n"
    " o_kind := 'conversations'; o_n := v_n; RETURN NEXT;\n"
    " DELETE FROM blocks WHERE blocker = p_user OR blocked = p_user;\n"
    " RETURN QUERY WITH d AS (DELETE FROM files WHERE owner = p_user RETURNING path)\n"
    "  SELECT 'file'::text, 0::bigint, d.path FROM d;\n"
    " DELETE FROM users WHERE id = p_user;\n"
    " GET DIAGNOSTICS v_n = ROW_COUNT;\n"
    " o_kind := 'user'; o_n := v_n; o_path := NULL; RETURN NEXT;\n"
    "END $f$;\n"
"CREATE OR REPLACE FUNCTION parlor_update(p_user text, p_msg text, p_remove boolean, p_content bytea,\n"
    " p_window bigint, p_now bigint)\n"
    "RETURNS TABLE (o_status integer, o_changed boolean, o_window boolean, o_path text)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_conv text; v_sender text; v_type text; v_created bigint; v_deleted boolean; v_file text;\n"
    "BEGIN\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(PG_LOCK_INSERT) ", hashtext(current_schema()));\n"
    " o_status := 0; o_changed := false; o_window := false;\n"
    " SELECT m.conversation_id, m.sender, m.type, m.created_at, m.deleted, m.file_id\n"
    "  INTO v_conv, v_sender, v_type, v_created, v_deleted, v_file\n"
    "  FROM messages m WHERE m.id = p_msg FOR UPDATE;\n"
    " IF NOT FOUND OR (p_user IS NOT NULL AND NOT EXISTS (SELECT 1 FROM conversation_members cm\n"
    "   WHERE cm.conversation_id = v_conv AND cm.user_id = p_user)) THEN\n"
    "  o_status := -2; RETURN NEXT; RETURN;  -- NOT_FOUND\n"
    " END IF;\n"
    " IF p_user IS NOT NULL AND v_sender <> p_user THEN o_status := -3; RETURN NEXT; RETURN; END IF;  -- FORBIDDEN\n"
    " IF p_remove THEN\n"
    "  IF v_deleted THEN RETURN NEXT; RETURN; END IF;\n"
    "  UPDATE messages SET content = ''::bytea, file_id = NULL, deleted = true, updated_at = p_now,\n"
    "   pos = nextval('messages_pos_seq') WHERE id = p_msg;\n"
    "  IF v_file IS NOT NULL THEN\n"
    "   DELETE FROM files f WHERE f.id = v_file AND NOT EXISTS (SELECT 1 FROM messages x\n"
    "    WHERE x.file_id = v_file) RETURNING f.path INTO o_path;\n"
    "  END IF;\n"
    " ELSE\n"
    "  IF v_deleted THEN o_status := -2; RETURN NEXT; RETURN; END IF;\n"
    "  IF v_type <> 'text' THEN o_status := -1; RETURN NEXT; RETURN; END IF;  -- INVALID\n"
    "  IF p_window > 0 AND p_now - v_created > p_window THEN\n"
    "   o_status := -3; o_window := true; RETURN NEXT; RETURN;\n"
    "  END IF;\n"
    "  UPDATE messages SET content = p_content, edited_at = p_now, updated_at = p_now,\n"
    "   pos = nextval('messages_pos_seq') WHERE id = p_msg;\n"
    " END IF;\n"
    " o_changed := true; RETURN NEXT;\n"
    "END $f$;\n"
    ;
/* Version 5 (webhooks, issue 15; SQLite's 8, a step of its own): the outbox (store.h,
 * docs/store.md). Events are recorded by parlor_outbox_add, called inside the transaction of
 * what causes them: parlor_send and parlor_mark_read become wrappers of the previous
 * functions (kept under another name) that add their event when the session's
 * parlor.webhook_unread_ms is set (store_pg.c sets it when the outbox is on; unset: nothing
 * is recorded). The conversation's outbox queue is serialized by an advisory lock on its id,
 * taken by the add and by the ack, so a conversation never has two rows due at once even
 * with several nodes writing. */
static const char pg_migration_5[] =
    "CREATE TABLE webhook_outbox (\n"
    " id bigserial PRIMARY KEY,\n"
    " type integer NOT NULL,\n"
    " conversation_id text COLLATE \"C\" NOT NULL,\n"
    " message_id text COLLATE \"C\",\n"
    " user_id text COLLATE \"C\",\n"
    " seq bigint NOT NULL DEFAULT 0,\n"
    " ordered boolean NOT NULL,\n"
    " state integer NOT NULL DEFAULT 0,\n"
    " created_at bigint NOT NULL,\n"
    " due_at bigint,\n"
    " lease_until bigint NOT NULL DEFAULT 0,\n"
    " attempts integer NOT NULL DEFAULT 0,\n"
    " done_mask bigint NOT NULL DEFAULT 0);\n"
    "CREATE INDEX webhook_outbox_due ON webhook_outbox(due_at, id)\n"
    " WHERE state = 0 AND due_at IS NOT NULL;\n"
    "CREATE INDEX webhook_outbox_conv ON webhook_outbox(conversation_id, id)\n"
    " WHERE state = 0 AND ordered;\n"
    "CREATE FUNCTION parlor_outbox_add(p_type integer, p_conv text, p_msg text, p_user text,\n"
    " p_seq bigint, p_now bigint) RETURNS void\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_delay bigint := nullif(current_setting('parlor.webhook_unread_ms', true), '')::bigint;\n"
    "BEGIN\n"
    " IF v_delay IS NULL THEN RETURN; END IF;\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(PG_LOCK_OUTBOX) ", hashtext(p_conv));\n"
    " INSERT INTO webhook_outbox (type, conversation_id, message_id, user_id, seq, ordered,\n"
    "  created_at, due_at) VALUES (p_type, p_conv, p_msg, p_user, p_seq, true, p_now,\n"
    "  CASE WHEN EXISTS (SELECT 1 FROM webhook_outbox e WHERE e.conversation_id = p_conv\n"
    "   AND e.state = 0 AND e.ordered) THEN NULL ELSE p_now END);\n"
    " IF p_type = 0 THEN\n"
    "  INSERT INTO webhook_outbox (type, conversation_id, message_id, seq, ordered, created_at,\n"
    "   due_at) VALUES (3, p_conv, p_msg, p_seq, false, p_now, p_now + v_delay);\n"
    " END IF;\n"
    "END $f$;\n"
    "CREATE FUNCTION parlor_outbox_ack(p_id bigint, p_outcome integer, p_due bigint,\n"
    " p_mask bigint, p_now bigint) RETURNS void\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_conv text; v_ordered boolean;\n"
    "BEGIN\n"
    " SELECT o.conversation_id INTO v_conv FROM webhook_outbox o WHERE o.id = p_id;\n"
    " IF NOT FOUND THEN RETURN; END IF;\n"
    " PERFORM pg_advisory_xact_lock(" PG_STR(PG_LOCK_OUTBOX) ", hashtext(v_conv));\n"
    " SELECT o.ordered INTO v_ordered FROM webhook_outbox o WHERE o.id = p_id AND o.state = 0;\n"
    " IF NOT FOUND THEN RETURN; END IF;  -- acked already\n"
    " IF p_outcome = 1 THEN\n"
    "  UPDATE webhook_outbox SET due_at = p_due, done_mask = p_mask, lease_until = 0\n"
    "   WHERE id = p_id;\n"
    "  RETURN;\n"
    " ELSIF p_outcome = 4 THEN  -- requeued behind a retry: waiting again\n"
    "  UPDATE webhook_outbox SET due_at = NULL, lease_until = 0 WHERE id = p_id;\n"
    "  RETURN;\n"
    " ELSIF p_outcome = 2 THEN\n"
    "  UPDATE webhook_outbox SET state = 2, due_at = p_now, lease_until = 0 WHERE id = p_id;\n"
    " ELSE\n"
    "  DELETE FROM webhook_outbox WHERE id = p_id;\n"
    " END IF;\n"
    " IF v_ordered THEN\n"
    "  UPDATE webhook_outbox SET due_at = p_now WHERE id = (SELECT min(e.id) FROM webhook_outbox e\n"
    "   WHERE e.conversation_id = v_conv AND e.state = 0 AND e.ordered);\n"
    " END IF;\n"
    "END $f$;\n"
    "ALTER FUNCTION parlor_send(text, text, text, text, bytea, text, text, text, bigint, text, "
    "text)\n"
    " RENAME TO parlor_send_v2;\n"
    "CREATE FUNCTION parlor_send(p_sender text, p_conv text, p_recipient text, p_key text,\n"
    " p_content bytea, p_type text, p_file text, p_cmid text, p_now bigint, p_id text,\n"
    " p_new_conv text)\n"
    "RETURNS TABLE (o_status integer, o_dup boolean, o_created boolean, o_id text, o_conv text,\n"
    " o_seq bigint, o_pos bigint, o_sender text, o_recipient text, o_content bytea, o_type text,\n"
    " o_cmid text, o_read_at bigint, o_created_at bigint, o_updated_at bigint, o_fid text,\n"
    " o_fowner text, o_fname text, o_fsize bigint, o_fmime text, o_fpath text, o_fsha text,\n"
    " o_fcreated bigint)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    " SELECT * INTO o_status, o_dup, o_created, o_id, o_conv, o_seq, o_pos, o_sender,\n"
    "  o_recipient, o_content, o_type, o_cmid, o_read_at, o_created_at, o_updated_at, o_fid,\n"
    "  o_fowner, o_fname, o_fsize, o_fmime, o_fpath, o_fsha, o_fcreated\n"
    "  FROM parlor_send_v2(p_sender, p_conv, p_recipient, p_key, p_content, p_type, p_file,\n"
    "  p_cmid, p_now, p_id, p_new_conv);\n"
    " IF NOT FOUND THEN RETURN; END IF;\n"
    " IF o_status = 0 AND NOT o_dup\n"
    "    AND coalesce(current_setting('parlor.webhook_unread_ms', true), '') <> '' THEN\n"
    "  IF o_created THEN PERFORM parlor_outbox_add(2, o_conv, NULL, NULL, 0, p_now); END IF;\n"
    "  PERFORM parlor_outbox_add(0, o_conv, o_id, NULL, o_seq, p_now);\n"
    " END IF;\n"
    " RETURN NEXT;\n"
    "END $f$;\n"
    "ALTER FUNCTION parlor_send_system(text, bytea, text, bigint, text)\n"
    " RENAME TO parlor_send_system_v4;\n"
    "CREATE FUNCTION parlor_send_system(p_conv text, p_content bytea, p_cmid text, p_now bigint,\n"
    " p_id text)\n"
    "RETURNS TABLE (o_status integer, o_dup boolean, o_id text)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    " SELECT * INTO o_status, o_dup, o_id\n"
    "  FROM parlor_send_system_v4(p_conv, p_content, p_cmid, p_now, p_id);\n"
    " IF NOT FOUND THEN RETURN; END IF;\n"
    " IF o_status = 0 AND NOT o_dup\n"
    "    AND coalesce(current_setting('parlor.webhook_unread_ms', true), '') <> '' THEN\n"
    "  PERFORM parlor_outbox_add(0, p_conv, o_id, NULL,\n"
    "   (SELECT m.seq FROM messages m WHERE m.id = o_id), p_now);\n"
    " END IF;\n"
    " RETURN NEXT;\n"
    "END $f$;\n"
    "ALTER FUNCTION parlor_mark_read(text, text, text, bigint) RENAME TO parlor_mark_read_v3;\n"
    "CREATE FUNCTION parlor_mark_read(p_conv text, p_user text, p_msg text, p_now bigint)\n"
    "RETURNS TABLE (o_status integer, o_conv text, o_msg_seq bigint, o_seq bigint, o_read_at bigint,\n"
    " o_unread bigint, o_moved boolean)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    " SELECT * INTO o_status, o_conv, o_msg_seq, o_seq, o_read_at, o_unread, o_moved\n"
    "  FROM parlor_mark_read_v3(p_conv, p_user, p_msg, p_now);\n"
    " IF NOT FOUND THEN RETURN; END IF;\n"
    " IF o_status = 0 AND o_moved THEN\n"
    "  PERFORM parlor_outbox_add(1, o_conv, p_msg, p_user, o_msg_seq, p_now);\n"
    " END IF;\n"
    " RETURN NEXT;\n"
    "END $f$;\n";
// clang-format on

/* Version 2 (SQLite's 5): blocks, and parlor_send refusing a direct message between two users
 * in a block (either way) with o_status -11 (STORE_E_BLOCKED). The version-1 function is kept
 * under another name and called by a wrapper of the same signature (parlor_send_many calls
 * parlor_send by name, so it gets the check too). The check runs after the idempotency answer
 * (a retry of a send stored before the block still answers duplicate) and before any write.
 * Under READ COMMITTED it sees every block committed before the statement began: a block
 * acknowledged before a send was submitted always refuses it; a send racing a block's commit
 * is ordered before it (both were in flight). In one batch a block and a later send share the
 * transaction, so the send sees it. */
static const char pg_migration_2[] =
    "CREATE TABLE blocks (\n"
    " blocker text COLLATE \"C\" NOT NULL,\n"
    " blocked text COLLATE \"C\" NOT NULL,\n"
    " created_at bigint NOT NULL,\n"
    " PRIMARY KEY (blocker, blocked));\n"
    "CREATE INDEX blocks_by_blocked ON blocks(blocked);\n"
    "ALTER FUNCTION parlor_send(text, text, text, text, bytea, text, text, text, bigint, text, "
    "text)\n"
    " RENAME TO parlor_send_v1;\n"
    "CREATE FUNCTION parlor_send(p_sender text, p_conv text, p_recipient text, p_key text,\n"
    " p_content bytea, p_type text, p_file text, p_cmid text, p_now bigint, p_id text,\n"
    " p_new_conv text)\n"
    "RETURNS TABLE (o_status integer, o_dup boolean, o_created boolean, o_id text, o_conv text,\n"
    " o_seq bigint, o_pos bigint, o_sender text, o_recipient text, o_content bytea, o_type text,\n"
    " o_cmid text, o_read_at bigint, o_created_at bigint, o_updated_at bigint, o_fid text,\n"
    " o_fowner text, o_fname text, o_fsize bigint, o_fmime text, o_fpath text, o_fsha text,\n"
    " o_fcreated bigint)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    " v_other text;\n"
    "BEGIN\n"
    " -- most senders are in no block at all: two index probes, then straight on\n"
    " IF (EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = p_sender)\n"
    "     OR EXISTS (SELECT 1 FROM blocks b WHERE b.blocked = p_sender))\n"
    "  AND (p_cmid IS NULL OR NOT EXISTS (SELECT 1 FROM messages m\n"
    "   WHERE m.sender = p_sender AND m.client_msg_id = p_cmid)) THEN\n"
    "  IF p_conv IS NULL THEN\n"
    "   v_other := p_recipient;\n"
    "  ELSE\n"
    "   SELECT o.user_id INTO v_other FROM conversations c\n"
    "    JOIN conversation_members s ON s.conversation_id = c.id AND s.user_id = p_sender\n"
    "    JOIN conversation_members o ON o.conversation_id = c.id AND o.user_id <> p_sender\n"
    "    WHERE c.id = p_conv AND c.type = 'direct' LIMIT 1;\n"
    "  END IF;\n"
    "  IF v_other IS NOT NULL AND EXISTS (SELECT 1 FROM blocks b\n"
    "    WHERE (b.blocker = p_sender AND b.blocked = v_other)\n"
    "       OR (b.blocker = v_other AND b.blocked = p_sender)) THEN\n"
    "   o_status := -11; o_dup := false; o_created := false; o_seq := 0; o_pos := 0;\n"
    "   o_read_at := 0; o_created_at := 0; o_updated_at := 0; o_fsize := 0; o_fcreated := 0;\n"
    "   RETURN NEXT; RETURN;\n"
    "  END IF;\n"
    " END IF;\n"
    " RETURN QUERY SELECT * FROM parlor_send_v1(p_sender, p_conv, p_recipient, p_key, p_content,\n"
    "  p_type, p_file, p_cmid, p_now, p_id, p_new_conv);\n"
    "END $f$;\n"
    /* Search (store_search.h): the words of a message as lexemes, taken from its bytes as
     * encode(.., 'escape') spells them (ASCII, bytes >= 0x80 as \\ooo, a backslash doubled,
     * a NUL as \\000: the pairs, then the NULs become spaces first), lowercased, runs of more
     * than 256 characters dropped (a lexeme's size is limited; no word is that long), split at
     * every other character (one regexp split: much cheaper per insert than a match per
     * word); the GIN index finds candidates and
     * store_search.c decides, as on SQLite. No text parser, so any bytes index. */
    "CREATE FUNCTION parlor_search_vector(p bytea) RETURNS tsvector\n"
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$\n"
    " SELECT array_to_tsvector(array_remove(regexp_split_to_array(regexp_replace(lower(\n"
    "  replace(replace(encode(p, 'escape'), '\\\\', ' '), '\\000', ' ')),\n"
    "  '[a-z0-9\\\\]{255}[a-z0-9\\\\]+', ' ', 'g'), '[^a-z0-9\\\\]+'), ''))\n"
    "$f$;\n"
    "CREATE INDEX messages_search ON messages USING gin (parlor_search_vector(content));\n";

/* Version 6: the chain (issue 14, docs/cluster.md "The offset rule"). user_positions holds,
 * per user, the position of the newest message row in any of the user's conversations (pos)
 * and the one before it (prev). A trigger keeps it on EVERY write that gives a row a position
 * (parlor_send, parlor_send_system, parlor_update's edits and deletions, parlor_erase_user's
 * tombstones, and anything later), for every member of the row's conversation: those writers
 * all hold the insert lock (store_pg.c), so the rows are updated one transaction at a time,
 * in position order. parlor_send answers, for a new direct message, the sender's and the
 * recipient's prev: the position of their previous message, so a node that has given a
 * socket everything up to prev knows that nothing of the user's lies in between (0 when the
 * user had no row). parlor_send_many is recreated for the wider row. */
static const char pg_migration_6[] =
    "CREATE TABLE user_positions (user_id text COLLATE \"C\" PRIMARY KEY, pos bigint NOT NULL,\n"
    " prev bigint NOT NULL);\n"
    "CREATE FUNCTION parlor_user_positions() RETURNS trigger\n"
    "LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    " INSERT INTO user_positions AS up (user_id, pos, prev)\n"
    "  SELECT cm.user_id, NEW.pos, 0 FROM conversation_members cm\n"
    "  WHERE cm.conversation_id = NEW.conversation_id ORDER BY cm.user_id\n"
    "  ON CONFLICT (user_id) DO UPDATE SET prev = up.pos, pos = EXCLUDED.pos\n"
    "  WHERE up.pos < EXCLUDED.pos;\n"
    " RETURN NULL;\n"
    "END $f$;\n"
    "CREATE TRIGGER messages_user_positions AFTER INSERT OR UPDATE OF pos ON messages\n"
    " FOR EACH ROW EXECUTE PROCEDURE parlor_user_positions();\n"
    "ALTER FUNCTION parlor_send(text, text, text, text, bytea, text, text, text, bigint, text, "
    "text)\n"
    " RENAME TO parlor_send_v5;\n"
    "CREATE FUNCTION parlor_send(p_sender text, p_conv text, p_recipient text, p_key text,\n"
    " p_content bytea, p_type text, p_file text, p_cmid text, p_now bigint, p_id text,\n"
    " p_new_conv text)\n"
    "RETURNS TABLE (o_status integer, o_dup boolean, o_created boolean, o_id text, o_conv text,\n"
    " o_seq bigint, o_pos bigint, o_sender text, o_recipient text, o_content bytea, o_type text,\n"
    " o_cmid text, o_read_at bigint, o_created_at bigint, o_updated_at bigint, o_fid text,\n"
    " o_fowner text, o_fname text, o_fsize bigint, o_fmime text, o_fpath text, o_fsha text,\n"
    " o_fcreated bigint, o_edited_at bigint, o_deleted boolean, o_prev_sender bigint,\n"
    " o_prev_recipient bigint)\n"
    "LANGUAGE plpgsql AS $f$\n"
    "BEGIN\n"
    " SELECT * INTO o_status, o_dup, o_created, o_id, o_conv, o_seq, o_pos, o_sender,\n"
    "  o_recipient, o_content, o_type, o_cmid, o_read_at, o_created_at, o_updated_at, o_fid,\n"
    "  o_fowner, o_fname, o_fsize, o_fmime, o_fpath, o_fsha, o_fcreated\n"
    "  FROM parlor_send_v5(p_sender, p_conv, p_recipient, p_key, p_content, p_type, p_file,\n"
    "  p_cmid, p_now, p_id, p_new_conv);\n"
    " IF NOT FOUND THEN RETURN; END IF;\n"
    " o_edited_at := NULL; o_deleted := false; o_prev_sender := 0; o_prev_recipient := 0;\n"
    " IF o_status = 0 AND NOT o_dup AND o_recipient IS NOT NULL THEN\n"
    "  -- the trigger moved both rows to o_pos in this statement: prev is the one before\n"
    "  o_prev_sender := coalesce((SELECT up.prev FROM user_positions up\n"
    "   WHERE up.user_id = o_sender AND up.pos = o_pos), 0);\n"
    "  o_prev_recipient := coalesce((SELECT up.prev FROM user_positions up\n"
    "   WHERE up.user_id = o_recipient AND up.pos = o_pos), 0);\n"
    " END IF;\n"
    " RETURN NEXT;\n"
    "END $f$;\n"
    // clang-format off
    "DROP FUNCTION parlor_send_many" PG_SEND_MANY_ARGTYPES ";\n"
    PG_SEND_MANY_CREATE
    "DECLARE\n"
    // clang-format on
    " i integer; v_off integer := 1;\n"
    "BEGIN\n"
    " FOR i IN 1 .. coalesce(array_length(p_sender, 1), 0) LOOP\n"
    "  RETURN QUERY SELECT i, s.* FROM parlor_send(p_sender[i], p_conv[i], p_recipient[i], "
    "p_key[i],\n"
    "   substring(p_blob FROM v_off FOR p_len[i]), p_type[i], p_file[i], p_cmid[i], p_now[i], "
    "p_id[i],\n"
    "   p_new_conv[i]) s;\n"
    "  v_off := v_off + p_len[i];\n"
    " END LOOP;\n"
    "END $f$;\n";

static const char *const pg_migrations[STORE_PG_SCHEMA_VERSION + 1] = {
    NULL,           pg_migration_1, pg_migration_2, pg_migration_3, pg_migration_4,
    pg_migration_5, pg_migration_6, pg_migration_7, pg_migration_8};

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

const char *store_pg_migration_sql(int to)
{
    return to >= 1 && to <= STORE_PG_SCHEMA_VERSION ? pg_migrations[to] : NULL;
}

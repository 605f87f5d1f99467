// `parlor migrate --from sqlite:PATH --to postgres://...` (issue 13): a single-node store moved
// into PostgreSQL keeps everything a client can see: conversations and their order, history
// with the same ids, seq and times, unread counts and read receipts, accounts (login works),
// files (with --files-to as the new --files-dir), and it goes on: the next message gets the
// next seq, and a client's recovery offset from before the move still replays what it missed.
// A target with data is refused unless --replace.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
    startServer, connectUser, emitAck, api, tokenFor, newUserId, newSecret, mkDataDir,
    fetchHistory, closeAll, runParlor, freePort, waitFor,
} from '../integration/chat_helpers.mjs';

const PG = 'scripts/pg.sh';
const pgDir = `/tmp/parlor-pgmigrate-${process.pid}`;
let url;
after(() => execFileSync(PG, ['stop', pgDir]));

async function upload(srv, token, bytes, filename) {
    const fd = new FormData();
    fd.append('file', new Blob([bytes], { type: 'text/plain' }), filename);
    const res = await fetch(`${srv.url}/api/chat/files`, {
        method: 'POST', headers: { authorization: `Bearer ${token}` }, body: fd,
        signal: AbortSignal.timeout(20000),
    });
    return { status: res.status, json: await res.json() };
}

// Everything a user sees: the conversation list (in order, with unread counts and last
// messages) and every conversation's whole history.
async function snapshot(server, token) {
    const list = await api(server, 'GET', '/api/chat/conversations?limit=100', { token });
    assert.equal(list.status, 200, list.text);
    const histories = {};
    for (const c of list.json.conversations) histories[c._id] = (await fetchHistory(server, token, c._id, 200)).messages;
    return { conversations: list.json.conversations, histories };
}

test('a SQLite store migrated into PostgreSQL serves the same conversations, history, accounts and files', async () => {
    url = execFileSync(PG, ['start', pgDir, String(await freePort())]).toString().trim();
    const secret = newSecret();
    const dataDir = mkDataDir();
    let server = await startServer({ dataDir, secret, store: `sqlite:${dataDir}/parlor.db` });
    const [a, b, c] = [newUserId(), newUserId(), newUserId()];
    const tok = (s, u) => tokenFor(s, u, { name: `user ${u.slice(0, 4)}` });
    const A = await connectUser(server, tok(server, a));
    const B = await connectUser(server, tok(server, b));
    for (let i = 0; i < 30; i++) {
        const ack = await emitAck(A, 'send_message',
            { recipientId: b, content: `direct ${i}\ttab\\slash\nline`, type: 'text', clientMsgId: `m-${i}` });
        assert.equal(ack.ok, true, JSON.stringify(ack));
    }
    const g = await api(server, 'POST', '/api/chat/conversations',
        { token: tok(server, a), body: { participantIds: [b, c], title: 'Flat 3B' } });
    assert.equal(g.status, 201, g.text);
    const gid = g.json.conversation?._id ?? g.json._id;
    for (let i = 0; i < 5; i++) {
        const ack = await emitAck(B, 'send_message', { conversationId: gid, content: `group ${i} ✓`, type: 'text' });
        assert.equal(ack.ok, true, JSON.stringify(ack));
    }
    const up = await upload(server, tok(server, a), Buffer.from('the lease, signed'), 'lease.txt');
    assert.equal(up.status, 201, JSON.stringify(up.json));
    const fileAck = await emitAck(A, 'send_message', { recipientId: b, content: 'lease', type: 'file', fileId: up.json.file.id });
    assert.equal(fileAck.ok, true, JSON.stringify(fileAck));
    // B reads the direct conversation up to message 10.
    const direct = fileAck.message.conversationId;
    const hist = (await fetchHistory(server, tok(server, b), direct, 200)).messages;
    const read = await emitAck(B, 'mark_read', { conversationId: direct, messageId: hist[9]._id });
    assert.equal(read.ok, true, JSON.stringify(read));
    // An edited message and a tombstone (issue 16) move with the rest.
    const ed = await emitAck(A, 'edit_message', { messageId: hist[2]._id, content: 'direct 2, edited' });
    assert.equal(ed.ok, true, JSON.stringify(ed));
    const del = await emitAck(A, 'delete_message', { messageId: hist[3]._id });
    assert.equal(del.ok, true, JSON.stringify(del));
    // An account.
    const reg = await api(server, 'POST', '/api/auth/register',
        { body: { username: 'Owner1', password: 'correct horse battery', name: 'Owner' } });
    assert.equal(reg.status, 201, reg.text);
    // C's recovery offset before the move: C was offline for everything.
    const before = { a: await snapshot(server, tok(server, a)), b: await snapshot(server, tok(server, b)) };
    await closeAll([A, B]);
    await server.stop();

    // Into a fresh schema of the private PostgreSQL.
    execFileSync('psql', ['-q', url, '-c', 'CREATE SCHEMA mig']);
    const target = `${url}?options=-csearch_path%3Dmig`;
    const filesTo = mkdtempSync(path.join(os.tmpdir(), 'parlor-shared-files-'));
    const from = `sqlite:${dataDir}/parlor.db`;
    const m = await runParlor(['migrate', '--from', from, '--to', target, '--files-to', filesTo], { timeoutMs: 60000 });
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stdout, /messages\s+36 rows/);
    assert.match(m.stdout, /users\s+4 rows/);
    assert.match(m.stdout, /file bytes\s+1 copied/);

    // Again: refused (the target has data), and nothing changes.
    const again = await runParlor(['migrate', '--from', from, '--to', target], { timeoutMs: 60000 });
    assert.equal(again.code, 1, again.stdout + again.stderr);
    assert.match(again.stderr, /not empty.*--replace/);
    const replaced = await runParlor(['migrate', '--from', from, '--to', target, '--replace'], { timeoutMs: 60000 });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.match(replaced.stdout, /messages\s+36 rows/);

    // A node on PostgreSQL sees exactly what the SQLite node showed.
    server = await startServer({ secret, store: target, args: ['--files-dir', filesTo] });
    const after_ = { a: await snapshot(server, tok(server, a)), b: await snapshot(server, tok(server, b)) };
    assert.deepEqual(after_, before);
    const moved = after_.a.histories[direct];
    assert.equal(moved[2].content, 'direct 2, edited');
    assert.equal(typeof moved[2].editedAt, 'string');
    assert.equal(moved[3].deleted, true);
    const login = await api(server, 'POST', '/api/auth/login', { body: { username: 'owner1', password: 'correct horse battery' } });
    assert.equal(login.status, 200, login.text);
    const dl = await fetch(`${server.url}/api/chat/files/${up.json.file.id}`, { headers: { authorization: `Bearer ${tok(server, b)}` } });
    assert.equal(dl.status, 200);
    assert.equal(Buffer.from(await dl.arrayBuffer()).toString(), 'the lease, signed');

    // It goes on: the next message takes the next seq, and C (a group member who never
    // connected) gets the whole group replayed.
    const A2 = await connectUser(server, tok(server, a));
    const next = await emitAck(A2, 'send_message', { recipientId: b, content: 'after the move', type: 'text' });
    assert.equal(next.ok, true, JSON.stringify(next));
    assert.equal(next.message.seq, 32);
    const C = await connectUser(server, tok(server, c));
    const cHist = (await fetchHistory(server, tok(server, c), gid, 200)).messages;
    assert.deepEqual(cHist.map((x) => x.content), [0, 1, 2, 3, 4].map((i) => `group ${i} ✓`));
    await closeAll([A2, C]);
    await server.stop();
});

test('migrate refuses a source that is not SQLite or a target that is not PostgreSQL', async () => {
    const r1 = await runParlor(['migrate', '--from', 'postgres://x@127.0.0.1/x', '--to', 'postgres://y@127.0.0.1/y']);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /--from must be a SQLite store/);
    const r2 = await runParlor(['migrate', '--from', 'sqlite:/nonexistent/x.db', '--to', 'sqlite:/tmp/y.db']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /--to must be a PostgreSQL store/);
    const r3 = await runParlor(['migrate', '--from', 'sqlite:/nonexistent/x.db']);
    assert.equal(r3.code, 2);
    const r4 = await runParlor(['migrate', '--from', 'sqlite:/nonexistent/x.db', '--to', `${url}?options=-csearch_path%3Dmig2`]);
    assert.equal(r4.code, 1);
    assert.match(r4.stderr, /cannot (open|read)/);
    assert.doesNotMatch(r4.stderr + r4.stdout, /password/i);
});

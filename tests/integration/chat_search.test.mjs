// Search (issue 16): GET /api/chat/search over the caller's conversations only, newest first,
// with the message, its conversation and a highlighted snippet; hostile queries refused; and a
// property test: random users, conversations and words, every result is in a conversation of
// the caller, and every message of the caller's conversations with the word is found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
    connectUser, emitAck, api, tokenFor, newUserId, serverPerFile, assertApiError, assertMessage,
    startServer, mkDataDir, sleep, PG_URL,
} from './chat_helpers.mjs';

let server;
const open = serverPerFile({}, (s) => (server = s));

function user() {
    const id = newUserId();
    return { id, token: tokenFor(server, id) };
}

const send = async (u, body) => {
    const r = await api(server, 'POST', '/api/chat/messages', { token: u.token, body: { type: 'text', ...body } });
    assert.equal(r.status, 201, r.text);
    return r.json.message ?? r.json;
};
const search = (u, qs) => api(server, 'GET', `/api/chat/search?${new URLSearchParams(qs)}`, { token: u.token });

test('search: hits newest first with conversation and snippet; one conversation; paging; refusals', async () => {
    const A = user(), B = user(), C = user();
    const m1 = await send(A, { recipientId: B.id, content: 'The door code is 4711' });
    await send(B, { recipientId: A.id, content: 'unrelated' });
    const m3 = await send(B, { recipientId: A.id, content: 'Door <b>code</b> changed to 1234 & more' });
    await send(C, { recipientId: B.id, content: 'door code for C only' });
    const g = await api(server, 'POST', '/api/chat/conversations', { token: A.token, body: { participantIds: [B.id, C.id] } });
    const m5 = await send(C, { conversationId: g.json._id, content: 'doormat delivered' });

    let r = await search(A, { q: 'door cod' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['nextCursor', 'results']);
    assert.deepEqual(r.json.results.map((x) => x.message._id), [m3._id, m1._id]);
    const hit = r.json.results[0];
    assert.deepEqual(Object.keys(hit).sort(), ['conversationId', 'message', 'snippet']);
    assert.equal(hit.conversationId, m3.conversationId);
    assertMessage(hit.message, { content: m3.content, sender: B.id });
    assert.equal(hit.snippet, '<mark>Door</mark> &lt;b&gt;<mark>code</mark>&lt;/b&gt; changed to 1234 &amp; more');
    assert.equal(r.json.nextCursor, null);

    r = await search(A, { q: 'door' }); // the last word is a prefix: doormat too
    assert.deepEqual(r.json.results.map((x) => x.message._id), [m5._id, m3._id, m1._id]);
    r = await search(A, { q: 'door', conversationId: g.json._id });
    assert.deepEqual(r.json.results.map((x) => x.message._id), [m5._id]);
    // Paging with limit 1: the same hits, one a page.
    const seen = [];
    let cursor;
    for (let i = 0; i < 10; i++) {
        r = await search(A, { q: 'door', limit: '1', ...(cursor ? { cursor } : {}) });
        assert.equal(r.status, 200, r.text);
        seen.push(...r.json.results.map((x) => x.message._id));
        cursor = r.json.nextCursor;
        if (!cursor) break;
    }
    assert.deepEqual(seen, [m5._id, m3._id, m1._id]);

    // C's direct conversation with B is never A's; a conversation A is not in is 404.
    const cb = (await search(C, { q: 'only' })).json.results[0].conversationId;
    assert.deepEqual((await search(A, { q: 'only' })).json.results, []);
    assertApiError(await search(A, { q: 'door', conversationId: cb }), 404, 'NOT_FOUND', 'not a member');

    for (const q of ['', '   ', 'door*', '"door"', 'door -code', 'a:b', 'x(y', 'a b c d e f g h i', 'é'.repeat(101), '\u0000a']) {
        assertApiError(await search(A, { q }), 400, 'BAD_REQUEST', `q ${JSON.stringify(q)}`);
    }
    assertApiError(await search(A, { q: 'door', conversationId: 'nope' }), 400, 'BAD_REQUEST');
    assertApiError(await search(A, { q: 'door', cursor: 'x' }), 400, 'BAD_REQUEST');
    assertApiError(await search(A, { q: 'door', cursor: '-5' }), 400, 'BAD_REQUEST');
    assertApiError(await search(A, { q: 'door', limit: '0' }), 400, 'BAD_REQUEST');
    r = await search(A, { q: 'door', limit: '5000' });
    assert.equal(r.status, 200, 'a large limit is clamped');
    assertApiError(await api(server, 'GET', '/api/chat/search?q=door'), 401, 'UNAUTHORIZED');
    assertApiError(await api(server, 'POST', '/api/chat/search?q=door', { token: A.token }), 405, 'METHOD_NOT_ALLOWED');
});

test('search: a last word under three characters matches whole words only, not as a prefix', async () => {
    const A = user(), B = user();
    const ok = await send(A, { recipientId: B.id, content: 'ok see you' });
    const okay = await send(B, { recipientId: A.id, content: 'okay then' });
    const hi = await send(A, { recipientId: B.id, content: 'Hi there, hint: the door code is 12' });
    const ids = async (q) => {
        const r = await search(A, { q });
        assert.equal(r.status, 200, r.text);
        return r.json.results.map((x) => x.message._id);
    };
    assert.deepEqual(await ids('ok'), [ok._id], 'a two-letter word is a whole word: not "okay"');
    assert.deepEqual(await ids('o'), []);
    assert.deepEqual(await ids('oka'), [okay._id], 'three letters are a prefix');
    assert.deepEqual(await ids('hin'), [hi._id]);
    assert.deepEqual(await ids('door co'), [], '"co" is not a word of it');
    assert.deepEqual(await ids('door cod'), [hi._id]);
    assert.deepEqual(await ids('12'), [hi._id], 'a short number is found as a whole word');
    const r = await search(A, { q: 'hi' });
    assert.deepEqual(r.json.results.map((x) => x.snippet), ['<mark>Hi</mark> there, hint: the door code is 12']);
});

test('property: results are only from the caller\'s conversations, and every message with the word is found', async () => {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const vocab = new Set();
    while (vocab.size < 10) vocab.add(Array.from({ length: 5 }, () => letters[randomInt(26)]).join(''));
    const words = [...vocab]; // same length, distinct: none is a prefix of another
    const users = Array.from({ length: 6 }, user);
    const convs = []; // {id, members: Set}
    for (let i = 0; i < 8; i++) {
        const a = users[randomInt(users.length)];
        let b = users[randomInt(users.length)];
        if (b === a) b = users[(users.indexOf(a) + 1) % users.length];
        if (i % 2) {
            const m = await send(a, { recipientId: b.id, content: 'hi' });
            if (!convs.find((c) => c.id === m.conversationId)) convs.push({ id: m.conversationId, members: new Set([a.id, b.id]) });
        } else {
            const others = users.filter((u) => u !== a && randomInt(2));
            if (!others.length) others.push(b);
            const g = await api(server, 'POST', '/api/chat/conversations', { token: a.token, body: { participantIds: others.map((u) => u.id) } });
            assert.equal(g.status, 201, g.text);
            convs.push({ id: g.json._id, members: new Set([a.id, ...others.map((u) => u.id)]) });
        }
    }
    const messages = [];
    for (let i = 0; i < 150; i++) {
        const c = convs[randomInt(convs.length)];
        const members = users.filter((u) => c.members.has(u.id));
        const from = members[randomInt(members.length)];
        const n = 1 + randomInt(4);
        const content = Array.from({ length: n }, () => {
            const w = words[randomInt(words.length)];
            return randomInt(3) ? w : w.toUpperCase() + (randomInt(2) ? ',' : '.');
        }).join(' ');
        const m = await send(from, { conversationId: c.id, content });
        messages.push(m);
    }
    for (const u of users) {
        const mine = new Set(convs.filter((c) => c.members.has(u.id)).map((c) => c.id));
        for (const w of words) {
            const found = [];
            let cursor;
            for (let page = 0; page < 50; page++) {
                const r = await search(u, { q: w, limit: '50', ...(cursor ? { cursor } : {}) });
                assert.equal(r.status, 200, r.text);
                for (const x of r.json.results) {
                    assert.ok(mine.has(x.conversationId), `a result from a conversation ${u.id} is not in`);
                    assert.equal(x.message.conversationId, x.conversationId);
                    found.push(x.message._id);
                }
                cursor = r.json.nextCursor;
                if (!cursor) break;
            }
            const expected = messages
                .filter((m) => mine.has(m.conversationId) && m.content.toLowerCase().split(/[^a-z]+/).includes(w))
                .map((m) => m._id).reverse();
            assert.deepEqual(found, expected, `${u.id} searching ${w}`);
        }
    }
});

// SQLite indexes messages for search in chunks behind a watermark (migration 9, issue 17):
// search reads the rows above it directly, so a message is found as soon as its send is
// acknowledged, an edit or a delete is seen at once whether or not the row was indexed, and
// rows left unindexed by a stopped server are indexed when it starts again.
const ids = async (srv, u, q, extra = {}) => {
    const r = await api(srv, 'GET', `/api/chat/search?${new URLSearchParams({ q, ...extra })}`, { token: u.token });
    assert.equal(r.status, 200, r.text);
    return r.json.results.map((x) => x.message._id);
};
const call = (srv, u, method, url, body) => api(srv, method, url, { token: u.token, body });

// The watermark and the newest position (SQLite only; the sqlite3 command-line shell, which
// scripts/deps.sh installs for the tests). check: FTS5's integrity check against the messages
// table, which holds only when every row is indexed (the shell exits non-zero when it fails).
function ftsState(dataDir, check = false) {
    const db = `${dataDir}/parlor.db`;
    if (PG_URL || !existsSync(db)) return null;
    const sql = (check ? "insert into messages_fts(messages_fts, rank) values ('integrity-check', 1);" : '') +
        'select indexed_pos as watermark, (select max(pos) from messages) as top from fts_state;';
    const [row] = JSON.parse(execFileSync('sqlite3', ['-json', db, sql]).toString());
    return row;
}

test('search sees a message right after its send, an edit and a delete before or after indexing, and a restart\'s unindexed tail', async () => {
    const dataDir = mkDataDir();
    let srv = await startServer({ dataDir });
    const secret = srv.secret;
    const mk = () => { const id = newUserId(); return { id, token: tokenFor(srv, id) }; };
    const A = mk(), B = mk();
    const sendTo = async (u, body) => {
        const r = await call(srv, u, 'POST', '/api/chat/messages', { type: 'text', ...body });
        assert.equal(r.status, 201, r.text);
        return r.json.message ?? r.json;
    };
    try {
        // Right after the send's ack, and edited before the writer indexed it (well within
        // the 50 ms it waits for a chunk).
        const m1 = await sendTo(A, { recipientId: B.id, content: 'alpha kiwi' });
        assert.deepEqual(await ids(srv, B, 'kiwi'), [m1._id], 'found right after the ack');
        let r = await call(srv, A, 'PATCH', `/api/chat/messages/${m1._id}`, { content: 'alpha mango' });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(await ids(srv, B, 'kiwi'), [], 'the old words are gone at once');
        assert.deepEqual(await ids(srv, B, 'mango'), [m1._id]);
        // Indexed first (a send after the wait makes the writer index what waits), then
        // edited: the index entry of the old content is deleted by the trigger.
        const m2 = await sendTo(B, { recipientId: A.id, content: 'bravo papaya' });
        await sleep(300);
        const m3 = await sendTo(A, { recipientId: B.id, content: 'charlie papaya' });
        assert.deepEqual(await ids(srv, A, 'papaya'), [m3._id, m2._id]);
        r = await call(srv, B, 'PATCH', `/api/chat/messages/${m2._id}`, { content: 'bravo guava' });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(await ids(srv, A, 'papaya'), [m3._id]);
        assert.deepEqual(await ids(srv, A, 'guava'), [m2._id]);
        assert.deepEqual(await ids(srv, A, 'alpha'), [m1._id], 'an edited row is found once');
        // Deleted: no longer found, whether it was indexed (m3) or not (m2's new content).
        for (const m of [m3, m2]) {
            r = await call(srv, m === m3 ? A : B, 'DELETE', `/api/chat/messages/${m._id}`);
            assert.equal(r.status, 200, r.text);
        }
        assert.deepEqual(await ids(srv, A, 'papaya'), []);
        assert.deepEqual(await ids(srv, A, 'guava'), []);
        // A tail of new messages, the server stopped before anything indexes it.
        const tail = [];
        for (let i = 0; i < 20; i++) tail.push(await sendTo(i % 2 ? A : B, { recipientId: i % 2 ? B.id : A.id, content: `tail${i} lemon` }));
        const conv = tail[0].conversationId;
        const want = tail.map((m) => m._id).reverse();
        assert.deepEqual(await ids(srv, A, 'lemon'), want);
        // Paging across the watermark gives the same list, one hit a page.
        const paged = [];
        let cursor;
        for (let i = 0; i < 30; i++) {
            const p = await api(srv, 'GET', `/api/chat/search?${new URLSearchParams({ q: 'lemon', limit: '3', conversationId: conv, ...(cursor ? { cursor } : {}) })}`, { token: B.token });
            assert.equal(p.status, 200, p.text);
            paged.push(...p.json.results.map((x) => x.message._id));
            cursor = p.json.nextCursor;
            if (!cursor) break;
        }
        assert.deepEqual(paged, want);
        await srv.stop();
        srv = null;
        // The server indexes at a commit once the oldest waiting row is 50 ms old, so a slow
        // run may have indexed the tail: then stop after a burst of sends (one or two commits)
        // until a stopped server has left rows unindexed.
        const extra = [];
        let state = ftsState(dataDir);
        for (let i = 0; state && state.watermark === state.top && i < 5; i++) {
            srv = await startServer({ dataDir, secret });
            extra.push(...await Promise.all([0, 1, 2].map((k) => sendTo(A, { recipientId: B.id, content: `extra${i}x${k} pear` }))));
            await srv.stop();
            srv = null;
            state = ftsState(dataDir);
        }
        if (state) assert.ok(state.watermark < state.top, `an unindexed tail: ${JSON.stringify(state)}`);

        // Started again: the tail is indexed on open, and the whole index matches the table
        // (the deletes of the edits and deletions above removed exactly what was indexed).
        srv = await startServer({ dataDir, secret });
        await srv.stop();
        const after = ftsState(dataDir, true);
        if (after) assert.equal(after.watermark, after.top, 'indexed when the server started');
        srv = await startServer({ dataDir, secret });
        assert.deepEqual(await ids(srv, A, 'lemon'), want);
        assert.deepEqual(await ids(srv, B, 'mango'), [m1._id]);
        assert.deepEqual((await ids(srv, B, 'pear')).sort(), extra.map((m) => m._id).sort());
        // An indexed tail message edited after the restart.
        r = await call(srv, A, 'PATCH', `/api/chat/messages/${tail[1]._id}`, { content: 'tail1 melon' });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(await ids(srv, A, 'lemon'), want.filter((id) => id !== tail[1]._id));
        assert.deepEqual(await ids(srv, B, 'melon'), [tail[1]._id]);
        await srv.stop();
        srv = null;
        const last = ftsState(dataDir);
        if (last) assert.ok(last.watermark < last.top, 'the edit waits above the watermark');
    } finally {
        if (srv) await srv.stop();
    }
});

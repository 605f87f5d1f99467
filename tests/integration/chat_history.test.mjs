// History and conversation lists over REST: cursor pagination (newest page first, each page
// ascending), limits, bad ids, ordering by activity, lastMessage and unreadCount.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, connectUser, emitAck, api, assertApiError, tokenFor, newUserId, assertMessage,
    assertConversation, fetchHistory, sleep,
    closeAll,
} from './chat_helpers.mjs';

let server;
async function startAll() {
    server = await startServer();
}
after(async () => {
    await closeAll();
    await server.stop();
});
let open = [];
afterEach(() => {
    for (const s of open) s.disconnect();
    open = [];
});
async function user() {
    const id = newUserId();
    const token = tokenFor(server, id);
    const s = await connectUser(server, token);
    open.push(s);
    return { id, token, s };
}

// Send n messages from `from` to `toId`, at most `window` in flight; returns the acked messages.
async function sendMany(from, toId, n, window = 20, prefix = 'h') {
    const out = new Array(n);
    let next = 0;
    async function worker() {
        while (next < n) {
            const i = next++;
            const ack = await from.s.timeout(20000).emitWithAck('send_message',
                { recipientId: toId, content: `${prefix}${i}`, type: 'text' });
            assert.equal(ack.ok, true, JSON.stringify(ack));
            out[i] = ack.message;
        }
    }
    await Promise.all(Array.from({ length: window }, worker));
    return out;
}

let hist; // {A, B, cid, sent}
before(async () => {
    await startAll();
    const A = await user();
    const B = await user();
    const sent = await sendMany(A, B.id, 250);
    hist = { A, B, cid: sent[0].conversationId, sent };
    open = []; // keep these sockets across tests; they are closed when the server stops
});

test('250 messages: limit=50 pages, newest first, each ascending, all exactly once', async () => {
    const { B, cid, sent } = hist;
    const { pages, messages } = await fetchHistory(server, B.token, cid, 50);
    const nonEmpty = pages.filter((p) => p.length);
    assert.ok(pages.length === 5 || (pages.length === 6 && pages[5].length === 0),
              `pages: ${JSON.stringify(pages.map((p) => p.length))}`);
    for (let i = 0; i < 5; i++) {
        const lo = 250 - 50 * (i + 1) + 1;
        assert.deepEqual(nonEmpty[i], Array.from({ length: 50 }, (_, k) => lo + k), `page ${i}`);
    }
    assert.deepEqual(messages.map((m) => m.seq), Array.from({ length: 250 }, (_, k) => k + 1));
    const bySeq = new Map(sent.map((m) => [m.seq, m]));
    for (const m of messages) {
        assertMessage(m, { conversationId: cid, content: bySeq.get(m.seq).content });
        assert.deepEqual(m, bySeq.get(m.seq), 'history differs from the acked message');
    }
});

test('the last page answers nextCursor null (no extra empty page)', async () => {
    const { B, cid } = hist;
    const { pages } = await fetchHistory(server, B.token, cid, 50);
    assert.equal(pages.length, 5, `got ${pages.length} pages: the 5th full page pointed to an empty one`);
    const { pages: p7 } = await fetchHistory(server, B.token, cid, 40); // 250 = 6*40 + 10
    assert.deepEqual(p7.map((p) => p.length), [40, 40, 40, 40, 40, 40, 10]);
});

test('both members see the same history; other page sizes tile it the same way', async () => {
    const { A, B, cid } = hist;
    const a = await fetchHistory(server, A.token, cid, 50);
    const b = await fetchHistory(server, B.token, cid, 50);
    assert.deepEqual(a.messages, b.messages);
    for (const limit of [1, 7, 200]) {
        const h = await fetchHistory(server, A.token, cid, limit);
        assert.deepEqual(h.messages.map((m) => m._id), a.messages.map((m) => m._id), `limit ${limit}`);
    }
});

// docs/api.md: "limit defaults to 50 and is clamped to 200" (250 messages are stored here).
test('without limit: the newest 50', async () => {
    const { B, cid } = hist;
    const r = await api(server, 'GET', `/api/chat/messages/${cid}`, { token: B.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.messages.map((m) => m.seq), Array.from({ length: 50 }, (_, k) => 201 + k));
    assert.equal(r.json.nextCursor, '201');
});

test('limit above the maximum is clamped to 200', async () => {
    const { B, cid } = hist;
    for (const q of ['limit=201', 'limit=100000', 'limit=99999999999999999999']) {
        const r = await api(server, 'GET', `/api/chat/messages/${cid}?${q}`, { token: B.token });
        assert.equal(r.status, 200, `${q}: ${r.text.slice(0, 200)}`);
        assert.deepEqual(r.json.messages.map((m) => m.seq), Array.from({ length: 200 }, (_, k) => 51 + k), q);
        assert.equal(r.json.nextCursor, '51', q);
    }
    // and an older page is clamped the same way
    const o = await api(server, 'GET', `/api/chat/messages/${cid}?limit=1000&before=250`, { token: B.token });
    assert.deepEqual(o.json.messages.map((m) => m.seq), Array.from({ length: 200 }, (_, k) => 50 + k));
});

// docs/api.md: "400 limit and before must be positive integers" - an empty value and 0 are not.
test('bad limit / before values -> 400 BAD_REQUEST', async () => {
    const { B, cid } = hist;
    for (const q of ['limit=abc', 'limit=-1', 'limit=1.5', 'limit=', 'limit=0', 'limit=%00', 'before=not-a-cursor',
                     'before=%00', 'before=', 'before=0', 'before=-1', 'before=1.5',
                     'before=9223372036854775808', 'before=99999999999999999999', `before=${'9'.repeat(40)}`]) {
        const r = await api(server, 'GET', `/api/chat/messages/${cid}?${q}`, { token: B.token });
        assertApiError(r, 400, 'BAD_REQUEST', q);
        assert.equal(r.json.error.message, 'limit and before must be positive integers', q);
    }
});

// Cursor edge values: before=1 is the empty page before the first message; a before past the
// newest (up to the largest int64) is the newest page.
test('cursor edges: before=1, before past the newest, before at int64 max', async () => {
    const { B, cid } = hist;
    const first = await api(server, 'GET', `/api/chat/messages/${cid}?before=1`, { token: B.token });
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.json, { messages: [], nextCursor: null });
    const two = await api(server, 'GET', `/api/chat/messages/${cid}?before=2`, { token: B.token });
    assert.deepEqual(two.json.messages.map((m) => m.seq), [1]);
    assert.equal(two.json.nextCursor, null);
    for (const before of ['251', '100000', '9223372036854775807']) {
        const r = await api(server, 'GET', `/api/chat/messages/${cid}?limit=3&before=${before}`, { token: B.token });
        assert.equal(r.status, 200, `${before}: ${r.text.slice(0, 200)}`);
        assert.deepEqual(r.json.messages.map((m) => m.seq), [248, 249, 250], `before=${before}`);
        assert.equal(r.json.nextCursor, '248');
    }
});

test('invalid conversation ids -> 400 BAD_REQUEST', async () => {
    const { B } = hist;
    for (const id of ['not-an-id', 'ZZZZZZZZZZZZZZZZZZZZZZZZ', '0123456789ABCDEF01234567', '0123', '0123456789abcdef012345678',
                      '%20', "1'%20OR%201=1"]) {
        const r = await api(server, 'GET', `/api/chat/messages/${id}`, { token: B.token });
        assertApiError(r, 400, 'BAD_REQUEST', `id ${id}`);
    }
    const post = await api(server, 'POST', '/api/chat/messages',
                           { token: B.token, body: { conversationId: 'nope', content: 'x', type: 'text' } });
    assertApiError(post, 400, 'BAD_REQUEST', 'REST send with a bad conversationId');
});

test('new messages after a cursor do not shift older pages', async () => {
    const { A, B, cid } = hist;
    const p1 = await api(server, 'GET', `/api/chat/messages/${cid}?limit=10`, { token: B.token });
    const cursor = p1.json.nextCursor;
    const more = await sendMany(A, B.id, 5, 5, 'late');
    const p2 = await api(server, 'GET', `/api/chat/messages/${cid}?limit=10&before=${encodeURIComponent(cursor)}`,
                         { token: B.token });
    assert.equal(p2.status, 200, p2.text);
    assert.deepEqual(p2.json.messages.map((m) => m.seq), Array.from({ length: 10 }, (_, k) => 231 + k));
    const top = await api(server, 'GET', `/api/chat/messages/${cid}?limit=5`, { token: B.token });
    assert.deepEqual(top.json.messages, more.sort((x, y) => x.seq - y.seq));
    hist.total = 255;
});

test('conversations: newest activity first, lastMessage, unreadCount per caller, limit=1 paging', async () => {
    const A = await user();
    const [B, C, D] = [await user(), await user(), await user()];
    const send = async (from, to, content) => {
        const ack = await emitAck(from.s, 'send_message', { recipientId: to.id, content, type: 'text' });
        assert.equal(ack.ok, true, JSON.stringify(ack));
        await sleep(15); // distinct activity times
        return ack.message;
    };
    await send(A, B, 'to B 1');
    await send(A, C, 'to C');
    await send(D, A, 'from D');
    const g = await api(server, 'POST', '/api/chat/conversations',
                        { token: B.token, body: { participantIds: [A.id, C.id], title: 'G' } });
    assert.equal(g.status, 201, g.text);
    await sleep(15);
    const lastB = await send(A, B, 'to B 2');
    const fromB = await send(B, A, 'from B');
    // activity order now: AB (from B), group (created, empty), AD, AC
    const r = await api(server, 'GET', '/api/chat/conversations', { token: A.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['conversations', 'nextCursor']);
    const convs = r.json.conversations;
    assert.equal(r.json.nextCursor, null);
    assert.equal(convs.length, 4);
    for (const c of convs) assertConversation(c);
    const ab = convs[0];
    assertConversation(ab, { participants: [A.id, B.id], title: null, unreadCount: 1 });
    assert.deepEqual(ab.lastMessage, fromB);
    assert.equal(convs[1]._id, g.json._id, `order: ${JSON.stringify(convs.map((c) => c.lastMessage?.content ?? c.title))}`);
    assert.equal(convs[1].lastMessage, null);
    assertConversation(convs[2], { participants: [A.id, D.id], unreadCount: 1 });
    assert.equal(convs[2].lastMessage.content, 'from D');
    assertConversation(convs[3], { participants: [A.id, C.id], unreadCount: 0 });
    assert.equal(convs[3].lastMessage.content, 'to C');
    assert.ok(convs.every((c, i) => i === 0 || c.updatedAt <= convs[i - 1].updatedAt), 'not by updatedAt desc');
    // B's view of the same direct conversation: A sent two, B read none
    const rb = await api(server, 'GET', '/api/chat/conversations', { token: B.token });
    const abB = rb.json.conversations.find((c) => c._id === ab._id);
    assert.equal(abB.unreadCount, 2, 'B: unread of A to B');
    assert.deepEqual(abB.lastMessage, fromB);
    assert.equal(lastB.seq, 2);
    assert.equal(fromB.seq, 3);
    // limit=1 pages through the same list
    const seen = [];
    let before = null;
    for (let i = 0; i < 10; i++) {
        const q = before === null ? 'limit=1' : `limit=1&before=${encodeURIComponent(before)}`;
        const p = await api(server, 'GET', `/api/chat/conversations?${q}`, { token: A.token });
        assert.equal(p.status, 200, p.text);
        assert.ok(p.json.conversations.length <= 1);
        seen.push(...p.json.conversations.map((c) => c._id));
        if (p.json.nextCursor === null) break;
        assert.equal(typeof p.json.nextCursor, 'string');
        before = p.json.nextCursor;
    }
    assert.deepEqual(seen, convs.map((c) => c._id), 'limit=1 paging differs from the full list');
    const p2 = await api(server, 'GET', '/api/chat/conversations?limit=2', { token: A.token });
    assert.equal(p2.json.conversations.length, 2);
    assert.equal(typeof p2.json.nextCursor, 'string');
    const bad = await api(server, 'GET', '/api/chat/conversations?before=garbage', { token: A.token });
    assertApiError(bad, 400, 'BAD_REQUEST', 'bad conversations cursor');
});

// docs/api.md: conversations "limit defaults to 20 and is clamped to 100"; bad values are 400.
test('conversations: default page 20, clamped to 100, bad limit and cursor 400', async () => {
    const X = { id: newUserId() };
    X.token = tokenFor(server, X.id);
    const order = []; // conversation ids, oldest activity first
    for (let i = 0; i < 105; i++) {
        const r = await api(server, 'POST', '/api/chat/messages',
                            { token: X.token, body: { recipientId: newUserId(), content: `c${i}`, type: 'text' } });
        assert.equal(r.status, 201, r.text);
        order.push(r.json.message.conversationId);
    }
    const newest = [...order].reverse();
    const list = (q) => api(server, 'GET', `/api/chat/conversations${q}`, { token: X.token });
    const d = await list('');
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(d.json.conversations.map((c) => c._id), newest.slice(0, 20));
    assert.equal(typeof d.json.nextCursor, 'string');
    for (const limit of [100, 101, 100000]) {
        const r = await list(`?limit=${limit}`);
        assert.deepEqual(r.json.conversations.map((c) => c._id), newest.slice(0, 100), `limit=${limit}`);
        const rest = await list(`?limit=${limit}&before=${r.json.nextCursor}`);
        assert.deepEqual(rest.json.conversations.map((c) => c._id), newest.slice(100), `after limit=${limit}`);
        assert.equal(rest.json.nextCursor, null);
    }
    for (const q of ['limit=0', 'limit=', 'limit=-1', 'limit=2x', 'before=', 'before=0', `before=${d.json.nextCursor}0`]) {
        assertApiError(await list(`?${q}`), 400, 'BAD_REQUEST', q);
    }
});

test('a conversation with new activity moves to the top', async () => {
    const A = await user();
    const [B, C] = [await user(), await user()];
    const ab = await emitAck(A.s, 'send_message', { recipientId: B.id, content: '1', type: 'text' });
    await sleep(15);
    await emitAck(A.s, 'send_message', { recipientId: C.id, content: '2', type: 'text' });
    await sleep(15);
    let l = await api(server, 'GET', '/api/chat/conversations', { token: A.token });
    assert.equal(l.json.conversations[0].participants.includes(C.id), true);
    await emitAck(B.s, 'send_message', { recipientId: A.id, content: '3', type: 'text' });
    l = await api(server, 'GET', '/api/chat/conversations', { token: A.token });
    assert.equal(l.json.conversations[0]._id, ab.message.conversationId);
    assert.equal(l.json.conversations[0].lastMessage.content, '3');
});

// --max-message-length goes up to 60000 characters, and the store takes any of them (60,000
// emoji are 240,000 bytes of UTF-8): the longest messages come back in every page and list,
// even alone (limit=1), not as a 500.
test('with --max-message-length 60000 the longest messages page and list like any other', async () => {
    const srv = await startServer({ args: ['--max-message-length', '60000'] });
    try {
        const A = { id: newUserId() };
        A.token = tokenFor(srv, A.id);
        const B = { id: newUserId() };
        B.token = tokenFor(srv, B.id);
        const sent = [];
        for (const content of ['😀'.repeat(60000), '€'.repeat(21000), 'x'.repeat(60000)]) {
            const r = await api(srv, 'POST', '/api/chat/messages',
                                { token: A.token, body: { recipientId: B.id, content, type: 'text' } });
            assert.equal(r.status, 201, r.text.slice(0, 200));
            sent.push(r.json.message);
        }
        const cid = sent[0].conversationId;
        for (const q of ['limit=1', 'limit=1&before=3', 'limit=1&before=2', 'limit=200', '']) {
            const r = await api(srv, 'GET', `/api/chat/messages/${cid}?${q}`, { token: B.token });
            assert.equal(r.status, 200, `${q}: ${r.text.slice(0, 200)}`);
        }
        const { messages } = await fetchHistory(srv, B.token, cid, 1);
        assert.deepEqual(messages, sent);
        const all = await api(srv, 'GET', `/api/chat/messages/${cid}?limit=200`, { token: B.token });
        assert.deepEqual(all.json, { messages: sent, nextCursor: null });
        for (const who of [A, B]) {
            const l = await api(srv, 'GET', '/api/chat/conversations?limit=1', { token: who.token });
            assert.equal(l.status, 200, l.text.slice(0, 200));
            assert.deepEqual(l.json.conversations[0].lastMessage, sent[2]);
        }
    } finally {
        await srv.stop();
    }
});

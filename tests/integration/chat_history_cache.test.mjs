// The recent-history cache: the newest page is answered from memory once read, and must stay
// exactly what the store would answer: new messages, read receipts, paging, members only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    connectUser, emitAck, api, assertApiError, tokenFor, newUserId, serverPerFile,
} from './chat_helpers.mjs';

let server;
serverPerFile({}, (s) => (server = s));

async function user() {
    const id = newUserId();
    const token = tokenFor(server, id);
    return { id, token, s: await connectUser(server, token) };
}

const page = async (u, cid, q = '') => {
    const r = await api(server, 'GET', `/api/chat/messages/${cid}${q}`, { token: u.token });
    assert.equal(r.status, 200, r.text);
    return r.json;
};

test('the newest page follows new messages, receipts and paging exactly', async () => {
    const [a, b, stranger] = [await user(), await user(), await user()];
    const first = await emitAck(a.s, 'send_message', { recipientId: b.id, content: 'm1' });
    assert.equal(first.ok, true);
    const cid = first.message.conversationId;
    for (let i = 2; i <= 3; i++)
        assert.equal((await emitAck(a.s, 'send_message', { conversationId: cid, content: `m${i}` })).ok, true);
    // Fills the cache.
    let p = await page(b, cid);
    assert.deepEqual(p.messages.map((m) => m.content), ['m1', 'm2', 'm3']);
    assert.equal(p.nextCursor, null);
    // New messages, over the socket and REST, appear in the next answer (served from memory).
    assert.equal((await emitAck(b.s, 'send_message', { conversationId: cid, content: 'm4' })).ok, true);
    const r = await api(server, 'POST', '/api/chat/messages', { token: a.token, body: { conversationId: cid, content: 'm5' } });
    assert.equal(r.status, 201);
    p = await page(b, cid);
    assert.deepEqual(p.messages.map((m) => [m.seq, m.content]), [[1, 'm1'], [2, 'm2'], [3, 'm3'], [4, 'm4'], [5, 'm5']]);
    // A smaller limit pages into the rest.
    p = await page(b, cid, '?limit=2');
    assert.deepEqual(p.messages.map((m) => m.seq), [4, 5]);
    assert.equal(p.nextCursor, '4');
    p = await page(b, cid, `?limit=2&before=${p.nextCursor}`);
    assert.deepEqual(p.messages.map((m) => m.seq), [2, 3]);
    // A receipt changes read/readAt: the next newest page shows it.
    const mark = await emitAck(b.s, 'mark_read', { conversationId: cid, messageId: r.json.message._id });
    assert.equal(mark.ok, true);
    p = await page(a, cid);
    const mine = p.messages.filter((m) => m.sender === a.id);
    assert.ok(mine.length === 4 && mine.every((m) => m.read === true && typeof m.readAt === 'string'),
              JSON.stringify(p.messages));
    // The cached page never reaches a stranger.
    assertApiError(await api(server, 'GET', `/api/chat/messages/${cid}`, { token: stranger.token }), 404, 'NOT_FOUND');
});

test('past 50 messages the cache keeps the newest and pages on into the store', async () => {
    const [a, b] = [await user(), await user()];
    const first = await emitAck(a.s, 'send_message', { recipientId: b.id, content: 'x1' });
    const cid = first.message.conversationId;
    await page(a, cid); // fills with one message
    for (let i = 2; i <= 60; i++)
        assert.equal((await emitAck(a.s, 'send_message', { conversationId: cid, content: `x${i}` })).ok, true);
    let p = await page(a, cid, '?limit=50');
    assert.deepEqual(p.messages.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 11));
    assert.equal(p.nextCursor, '11');
    p = await page(a, cid, '?limit=100');
    assert.deepEqual(p.messages.map((m) => m.seq), Array.from({ length: 60 }, (_, i) => i + 1));
    assert.equal(p.nextCursor, null);
    p = await page(a, cid, '?before=11');
    assert.deepEqual(p.messages.map((m) => m.seq), Array.from({ length: 10 }, (_, i) => i + 1));
});

// Conversations about something (issue 15): a conversation's context {type, id, title?}.
// A one-to-one conversation is unique per pair AND context: the same tenant and owner have one
// thread per listing plus their plain thread; send_message {recipientId, context} and
// POST /api/chat/conversations {participantIds, context} find or create it; the list filters
// by contextType/contextId; the context is in every conversation document (REST, sockets,
// recovery); hostile contexts are refused with nothing created.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    connectLogged, emitAck, api, tokenFor, newUserId, assertApiError, assertConversation,
    assertConversationExact, serverPerFile, waitFor,
} from './chat_helpers.mjs';

let server;
serverPerFile({}, (s) => (server = s));

const user = () => {
    const id = newUserId();
    return { id, token: tokenFor(server, id) };
};
const L1 = { type: 'listing', id: 'L-1042', title: 'Flat 3B, 12 Baker Street' };
const L2 = { type: 'listing', id: 'L-2077', title: 'Studio, 4 Elm Row' };

test('two listings between the same pair are two threads, beside the plain one', async () => {
    const tenant = user(), owner = user();
    const t = await connectLogged(server, tenant.token);
    const o = await connectLogged(server, owner.token);
    const a1 = await emitAck(t, 'send_message', { recipientId: owner.id, content: 'is 3B free?', context: L1 });
    assert.equal(a1.ok, true, JSON.stringify(a1));
    const a2 = await emitAck(t, 'send_message', { recipientId: owner.id, content: 'and the studio?', context: L2 });
    const a3 = await emitAck(t, 'send_message', { recipientId: owner.id, content: 'plain hello' });
    const a4 = await emitAck(t, 'send_message', { recipientId: owner.id, content: 'again 3B', context: { type: 'listing', id: 'L-1042' } });
    const ids = [a1, a2, a3, a4].map((a) => a.message.conversationId);
    assert.equal(new Set(ids.slice(0, 3)).size, 3, 'three distinct threads');
    assert.equal(ids[3], ids[0], 'the same listing finds the same thread');
    await waitFor(() => o.received.length === 4, 5000, 'owner got all four live');

    const list = await api(server, 'GET', '/api/chat/conversations', { token: owner.token });
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.conversations.length, 3);
    for (const c of list.json.conversations) assertConversationExact(c);
    const byId = Object.fromEntries(list.json.conversations.map((c) => [c._id, c]));
    assert.deepEqual(byId[ids[0]].context, L1);
    assert.deepEqual(byId[ids[1]].context, L2);
    assert.equal(byId[ids[2]].context, null);

    const f = await api(server, 'GET', '/api/chat/conversations?contextType=listing&contextId=L-1042', { token: tenant.token });
    assert.equal(f.status, 200, f.text);
    assert.deepEqual(f.json.conversations.map((c) => c._id), [ids[0]]);
    assert.equal(f.json.conversations[0].lastMessage.content, 'again 3B');
    const none = await api(server, 'GET', '/api/chat/conversations?contextType=listing&contextId=L-9', { token: tenant.token });
    assert.deepEqual(none.json.conversations, []);
    // another user's filter never shows this pair's threads
    const other = user();
    const o2 = await api(server, 'GET', '/api/chat/conversations?contextType=listing&contextId=L-1042', { token: other.token });
    assert.deepEqual(o2.json.conversations, []);
});

test('POST /api/chat/conversations with a context finds or creates the direct thread', async () => {
    const a = user(), b = user();
    const r1 = await api(server, 'POST', '/api/chat/conversations', { token: a.token, body: { participantIds: [b.id], context: L1 } });
    assert.equal(r1.status, 201, r1.text);
    assertConversation(r1.json);
    assert.deepEqual(r1.json.context, L1);
    assert.deepEqual(r1.json.participants.sort(), [a.id, b.id].sort());
    const r2 = await api(server, 'POST', '/api/chat/conversations', { token: b.token, body: { participantIds: [a.id], context: { type: 'listing', id: 'L-1042' } } });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json._id, r1.json._id, 'the other side finds the same thread');
    assert.deepEqual(r2.json.context, L1, 'the title given first stays');
    // a socket send with the context lands in it
    const s = await connectLogged(server, b.token);
    const ack = await emitAck(s, 'send_message', { recipientId: a.id, content: 'yes', context: L1 });
    assert.equal(ack.message.conversationId, r1.json._id);
    // a group with a context
    const c = user();
    const g = await api(server, 'POST', '/api/chat/conversations', { token: a.token, body: { participantIds: [b.id, c.id], title: 'Viewing', context: L2 } });
    assert.equal(g.status, 201, g.text);
    assert.deepEqual(g.json.context, L2);
    assert.equal(g.json.title, 'Viewing');
});

test('hostile contexts are refused and nothing is created', async () => {
    const a = user(), b = user();
    const s = await connectLogged(server, a.token);
    const bad = [
        'listing',
        ['listing'],
        { type: 'listing' },
        { id: 'L-1' },
        { type: '', id: 'L-1' },
        { type: 'x'.repeat(65), id: 'L-1' },
        { type: 'listing', id: 'L 1' },
        { type: 'listing', id: 'L|1' },
        { type: 'listing', id: 'L-1', title: 'x'.repeat(201) },
        { type: 'listing', id: 'L-1', title: 'bad\u0001title' },
        { type: 'listing', id: 'L-1', title: 7 },
        { type: 'listing', id: 'L-1', extra: 1 },
        { type: 7, id: 'L-1' },
    ];
    for (const context of bad) {
        const ack = await emitAck(s, 'send_message', { recipientId: b.id, content: 'x', context });
        assert.equal(ack.ok, false, `accepted ${JSON.stringify(context)}`);
        assert.equal(ack.error.code, 'BAD_REQUEST', JSON.stringify(ack));
        const r = await api(server, 'POST', '/api/chat/conversations', { token: a.token, body: { participantIds: [b.id], context } });
        assertApiError(r, 400, 'BAD_REQUEST', JSON.stringify(context));
    }
    // a title of exactly 200 characters (multi-byte) is fine
    const ok = await emitAck(s, 'send_message', { recipientId: b.id, content: 'x', context: { type: 'a.b:c_d-e', id: 'Z'.repeat(64), title: 'é'.repeat(200) } });
    assert.equal(ok.ok, true, JSON.stringify(ok));
    // context with conversationId is refused
    const c2 = await emitAck(s, 'send_message', { conversationId: ok.message.conversationId, content: 'x', context: L1 });
    assert.equal(c2.ok, false);
    for (const q of ['contextType=listing', 'contextId=L-1', 'contextType=listing&contextId=L%201', `contextType=listing&contextId=${'x'.repeat(65)}`]) {
        const r = await api(server, 'GET', `/api/chat/conversations?${q}`, { token: a.token });
        assertApiError(r, 400, 'BAD_REQUEST', q);
    }
    const list = await api(server, 'GET', '/api/chat/conversations', { token: a.token });
    assert.equal(list.json.conversations.length, 1, 'only the one valid send created a thread');
});

test('a blocked user cannot open threads about contexts in the blocker\'s list', async () => {
    const a = user(), b = user();
    const blk = await api(server, 'POST', `/api/chat/users/${a.id}/block`, { token: b.token });
    assert.equal(blk.status, 200, blk.text);
    const s = await connectLogged(server, a.token);
    for (let i = 0; i < 2; i++) { // the second time the block is known from memory
        const ack = await emitAck(s, 'send_message', { recipientId: b.id, content: 'hi', context: { type: 'listing', id: `L-${i}` } });
        assert.equal(ack.ok, false, JSON.stringify(ack));
        assert.equal(ack.error.code, 'FORBIDDEN');
        assert.equal(ack.error.reason, 'BLOCKED');
    }
    const r = await api(server, 'POST', '/api/chat/conversations', { token: a.token, body: { participantIds: [b.id], context: L1 } });
    assertApiError(r, 403, 'FORBIDDEN', 'open about a context with a blocker');
    assert.equal(r.json.error.reason, 'BLOCKED');
    const lb = await api(server, 'GET', '/api/chat/conversations', { token: b.token });
    assert.deepEqual(lb.json.conversations, [], 'nothing in the blocker\'s list');
    const la = await api(server, 'GET', '/api/chat/conversations', { token: a.token });
    assert.deepEqual(la.json.conversations, []);
});

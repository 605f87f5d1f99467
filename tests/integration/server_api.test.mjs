// The server API (issue 15) and delete by a server credential (issue 16): a token with
// "scope": "server" works on /api/server/* only; user tokens get 403 there, and server
// credentials are refused by user endpoints and sockets. System notices are delivered live and
// stored (history, recovery list) like a user's message, idempotent by clientMsgId; sends as a
// user go through the user's pipeline; group membership changes emit conversation_updated to
// members and to the removed one, who loses access (history, send, read); any message can be
// deleted (tombstone + message_deleted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    connectLogged, connectRefused, emitAck, api, tokenFor, newUserId, assertApiError,
    assertMessage, serverPerFile, waitFor, runParlor,
} from './chat_helpers.mjs';

let server;
serverPerFile({}, (s) => (server = s));

const user = () => {
    const id = newUserId();
    return { id, token: tokenFor(server, id) };
};
const serverToken = () => tokenFor(server, 'platform', { scope: 'server' });
const srv = (method, path, body) => api(server, method, path, { token: serverToken(), body });
const L1 = { type: 'listing', id: 'L-1042', title: 'Flat 3B' };

test('credentials: user tokens refused on /api/server/*, server credentials refused elsewhere', async () => {
    const u = user();
    for (const [m, p] of [['POST', '/api/server/messages'], ['POST', '/api/server/conversations'],
        ['GET', '/api/server/conversations/0123456789abcdef01234567/messages'],
        ['DELETE', '/api/server/messages/0123456789abcdef01234567']]) {
        const r = await api(server, m, p, { token: u.token, body: m === 'POST' ? {} : undefined });
        assertApiError(r, 403, 'FORBIDDEN', `${m} ${p} with a user token`);
        assert.equal(r.json.error.reason, 'AUTH_SCOPE');
        const none = await api(server, m, p, { body: m === 'POST' ? {} : undefined });
        assertApiError(none, 401, 'UNAUTHORIZED', `${m} ${p} without a token`);
        const forged = await api(server, m, p, { token: tokenFor({ secret: 'x'.repeat(64) }, 'platform', { scope: 'server' }), body: m === 'POST' ? {} : undefined });
        assertApiError(forged, 401, 'UNAUTHORIZED', `${m} ${p} with a forged server token`);
    }
    for (const [m, p] of [['GET', '/api/chat/conversations'], ['GET', '/api/chat/unread'],
        ['POST', '/api/chat/messages']]) {
        const r = await api(server, m, p, { token: serverToken(), body: m === 'POST' ? { recipientId: u.id, content: 'x' } : undefined });
        assertApiError(r, 401, 'UNAUTHORIZED', `${m} ${p} with a server credential`);
        assert.equal(r.json.error.reason, 'AUTH_SCOPE');
    }
    const e = await connectRefused(server, { auth: { token: serverToken() } });
    assert.equal(e.data?.code, 'AUTH_SCOPE', JSON.stringify(e.data));
    // nobody may be "system"
    const sys = await api(server, 'GET', '/api/chat/conversations', { token: tokenFor(server, 'system') });
    assertApiError(sys, 401, 'UNAUTHORIZED', 'a user token for "system"');
    const bad = await api(server, 'GET', '/api/chat/conversations', { token: tokenFor(server, 'x', { scope: 7 }) });
    assertApiError(bad, 401, 'UNAUTHORIZED', 'a scope that is not a string');
});

test('system notice: live, in history, idempotent, unread for members, not from the other person', async () => {
    const tenant = user(), owner = user();
    const c = await srv('POST', '/api/server/conversations', { participantIds: [tenant.id, owner.id], context: L1 });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.json.context, L1);
    const conv = c.json._id;
    const again = await srv('POST', '/api/server/conversations', { participantIds: [owner.id, tenant.id], context: L1 });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json._id, conv);
    const t = await connectLogged(server, tenant.token);
    const o = await connectLogged(server, owner.token);
    const body = { conversationId: conv, senderId: 'system', type: 'system', content: 'Your viewing is confirmed for Tuesday 10:00', clientMsgId: 'viewing-1' };
    const r = await srv('POST', '/api/server/messages', body);
    assert.equal(r.status, 201, r.text);
    assertMessage(r.json.message, { type: 'system', clientMsgId: 'viewing-1' });
    assert.equal(r.json.message.sender, 'system');
    assert.equal(r.json.message.recipient, null);
    await waitFor(() => t.received.length === 1 && o.received.length === 1, 5000, 'notice live to both');
    assert.equal(t.received[0]._id, r.json.message._id);
    assert.equal(t.received[0].type, 'system');
    const dup = await srv('POST', '/api/server/messages', body);
    assert.equal(dup.status, 200, dup.text);
    assert.equal(dup.json.message._id, r.json.message._id);
    // (participantIds, context) finds the same thread; type may be left out with sender system
    const r2 = await srv('POST', '/api/server/messages', { participantIds: [tenant.id, owner.id], context: L1, senderId: 'system', content: 'Reminder' });
    assert.equal(r2.status, 201, r2.text);
    assert.equal(r2.json.message.conversationId, conv);
    // a user message after it, as the tenant through the server API
    const u = await srv('POST', '/api/server/messages', { conversationId: conv, senderId: tenant.id, content: 'thanks', clientMsgId: 'tx-1' });
    assert.equal(u.status, 201, u.text);
    assert.equal(u.json.message.sender, tenant.id);
    assert.equal(u.json.message.recipient, owner.id);
    await waitFor(() => o.received.length === 3, 5000, 'owner got 3 live');
    await waitFor(() => t.received.length === 3, 5000, "tenant got 3 live (its REST send too)");
    const h = await api(server, 'GET', `/api/chat/messages/${conv}`, { token: owner.token });
    assert.equal(h.status, 200, h.text);
    assert.deepEqual(h.json.messages.map((m) => [m.seq, m.type, m.sender]), [[1, 'system', 'system'], [2, 'system', 'system'], [3, 'text', tenant.id]]);
    const hs = await srv('GET', `/api/server/conversations/${conv}/messages?limit=2`);
    assert.equal(hs.status, 200, hs.text);
    assert.deepEqual(hs.json.messages.map((m) => m.seq), [2, 3]);
    assert.equal(hs.json.nextCursor, '2');
    const list = await api(server, 'GET', '/api/chat/conversations', { token: owner.token });
    assert.equal(list.json.conversations[0].unreadCount, 3);
    // refusals
    for (const [b, what] of [
        [{ conversationId: conv, senderId: 'system', type: 'text', content: 'x' }, 'system sender with type text'],
        [{ conversationId: conv, senderId: tenant.id, type: 'system', content: 'x' }, 'user sender with type system'],
        [{ conversationId: conv, content: 'x' }, 'no sender'],
        [{ conversationId: conv, senderId: 'system', content: '' }, 'empty notice'],
        [{ conversationId: conv, senderId: 'system', content: 'x'.repeat(5001) }, 'too long'],
        [{ recipientId: owner.id, senderId: 'system', content: 'x' }, 'system to a recipient'],
        [{ participantIds: [tenant.id, owner.id], senderId: 'system', content: 'x' }, 'participants without context'],
        [{ conversationId: conv, recipientId: owner.id, senderId: tenant.id, content: 'x' }, 'two ways'],
        [{ conversationId: 'nope', senderId: 'system', content: 'x' }, 'bad id'],
    ]) {
        const x = await srv('POST', '/api/server/messages', b);
        assertApiError(x, 400, 'BAD_REQUEST', what);
    }
    const nf = await srv('POST', '/api/server/messages', { conversationId: '0123456789abcdef01234567', senderId: 'system', content: 'x' });
    assertApiError(nf, 404, 'NOT_FOUND', 'unknown conversation');
    const stranger = user();
    const ns = await srv('POST', '/api/server/messages', { conversationId: conv, senderId: stranger.id, content: 'x' });
    assertApiError(ns, 404, 'NOT_FOUND', 'a sender who is not a member');
    const h2 = await srv('GET', `/api/server/conversations/${conv}/messages`);
    assert.equal(h2.json.messages.length, 3, 'nothing stored by the refusals');
});

test('group membership: conversation_updated to members and the removed one, access removed', async () => {
    const a = user(), b = user(), c = user();
    const g = await srv('POST', '/api/server/conversations', { participantIds: [a.id, b.id], type: 'group', title: 'Viewing 3B', context: L1 });
    assert.equal(g.status, 201, g.text);
    const conv = g.json._id;
    assert.equal(g.json.title, 'Viewing 3B');
    const sa = await connectLogged(server, a.token);
    const sb = await connectLogged(server, b.token);
    const sc = await connectLogged(server, c.token);
    const m1 = await emitAck(sa, 'send_message', { conversationId: conv, content: 'before c' });
    assert.equal(m1.ok, true);
    const add = await srv('POST', `/api/server/conversations/${conv}/members`, { userId: c.id });
    assert.equal(add.status, 200, add.text);
    assert.equal(add.json.changed, true);
    assert.deepEqual(add.json.conversation.participants.sort(), [a.id, b.id, c.id].sort());
    for (const s of [sa, sb, sc]) await waitFor(() => s.events('conversation_updated').length === 1, 5000, 'conversation_updated on add');
    assert.equal(sc.events('conversation_updated')[0]._id, conv);
    const again = await srv('POST', `/api/server/conversations/${conv}/members`, { userId: c.id });
    assert.equal(again.json.changed, false);
    // c now reads history and gets live messages
    const hc = await api(server, 'GET', `/api/chat/messages/${conv}`, { token: c.token });
    assert.equal(hc.status, 200, hc.text);
    const m2 = await emitAck(sa, 'send_message', { conversationId: conv, content: 'with c' });
    await waitFor(() => sc.received.some((m) => m._id === m2.message._id), 5000, 'c gets live messages');
    // remove b
    const rm = await srv('DELETE', `/api/server/conversations/${conv}/members/${b.id}`);
    assert.equal(rm.status, 200, rm.text);
    assert.equal(rm.json.changed, true);
    assert.deepEqual(rm.json.conversation.participants.sort(), [a.id, c.id].sort());
    await waitFor(() => sb.events('conversation_updated').length === 2, 5000, 'the removed member is told');
    await waitFor(() => sa.events('conversation_updated').length === 2, 5000, 'members are told');
    // b lost access: history, send, read, list
    const hb = await api(server, 'GET', `/api/chat/messages/${conv}`, { token: b.token });
    assertApiError(hb, [403, 404], ['NOT_FOUND', 'FORBIDDEN'], 'history after removal');
    const sendB = await emitAck(sb, 'send_message', { conversationId: conv, content: 'still here?' });
    assert.equal(sendB.ok, false, JSON.stringify(sendB));
    const readB = await api(server, 'PUT', `/api/chat/messages/${m2.message._id}/read`, { token: b.token });
    assertApiError(readB, [403, 404], ['NOT_FOUND', 'FORBIDDEN'], 'read after removal');
    const lb = await api(server, 'GET', '/api/chat/conversations', { token: b.token });
    assert.ok(!lb.json.conversations.some((x) => x._id === conv), 'gone from the list');
    const m3 = await emitAck(sa, 'send_message', { conversationId: conv, content: 'after b' });
    await waitFor(() => sc.received.some((m) => m._id === m3.message._id), 5000, 'c gets it');
    assert.ok(!sb.received.some((m) => m._id === m3.message._id), 'b does not');
    // direct conversations do not change members
    const d = await srv('POST', '/api/server/conversations', { participantIds: [a.id, b.id] });
    const bad = await srv('POST', `/api/server/conversations/${d.json._id}/members`, { userId: c.id });
    assertApiError(bad, 400, 'BAD_REQUEST', 'members of a direct conversation');
    const nf = await srv('DELETE', `/api/server/conversations/0123456789abcdef01234567/members/${c.id}`);
    assertApiError(nf, 404, 'NOT_FOUND', 'unknown conversation');
    const sysm = await srv('POST', `/api/server/conversations/${conv}/members`, { userId: 'system' });
    assertApiError(sysm, 400, 'BAD_REQUEST', '"system" as a member');
});

test('delete by a server credential: tombstone and message_deleted to members', async () => {
    const a = user(), b = user();
    const sa = await connectLogged(server, a.token);
    const sb = await connectLogged(server, b.token);
    const m = await emitAck(sa, 'send_message', { recipientId: b.id, content: 'wrong person' });
    await waitFor(() => sb.received.length === 1, 5000, 'delivered');
    const d = await srv('DELETE', `/api/server/messages/${m.message._id}`);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.message.deleted, true);
    assert.equal(d.json.message.content, '');
    for (const s of [sa, sb]) await waitFor(() => s.events('message_deleted').length === 1, 5000, 'message_deleted');
    assert.deepEqual(sb.events('message_deleted')[0], { conversationId: m.message.conversationId, messageId: m.message._id, seq: 1 });
    const h = await api(server, 'GET', `/api/chat/messages/${m.message.conversationId}`, { token: b.token });
    assert.equal(h.json.messages[0].deleted, true);
    const nf = await srv('DELETE', '/api/server/messages/0123456789abcdef01234567');
    assertApiError(nf, 404, 'NOT_FOUND', 'unknown message');
    // a user still cannot delete another's message
    const m2 = await emitAck(sa, 'send_message', { recipientId: b.id, content: 'mine' });
    const byB = await api(server, 'DELETE', `/api/chat/messages/${m2.message._id}`, { token: b.token });
    assertApiError(byB, 403, 'FORBIDDEN', 'a user deleting another user\'s message');
});

test('export and erase: everything about a user, then tombstones and nothing left', async () => {
    const a = user(), b = user();
    const sb = await connectLogged(server, b.token);
    const sa = await connectLogged(server, a.token);
    const m1 = await emitAck(sa, 'send_message', { recipientId: b.id, content: 'my door code is 4711', clientMsgId: 'c-1' });
    const m2 = await emitAck(sa, 'send_message', { recipientId: b.id, content: 'second', context: L1 });
    const m3 = await emitAck(sb, 'send_message', { recipientId: a.id, content: 'reply from b' });
    assert.ok(m1.ok && m2.ok && m3.ok);
    const block = await api(server, 'POST', `/api/chat/users/${newUserId()}/block`, { token: a.token });
    assert.equal(block.status, 200, block.text);
    const fd = new FormData();
    fd.append('file', new Blob([Buffer.from('%PDF-1.4 hello')], { type: 'application/pdf' }), 'lease.pdf');
    const up = await fetch(`${server.url}/api/chat/files`, { method: 'POST', headers: { authorization: `Bearer ${a.token}` }, body: fd });
    const upText = await up.text();
    assert.equal(up.status, 201, upText);
    const file = JSON.parse(upText).file;

    const ex = await srv('GET', `/api/server/users/${a.id}/export`);
    assert.equal(ex.status, 200, ex.text);
    assert.equal(ex.json.user.id, a.id);
    assert.deepEqual(ex.json.conversations.map((c) => c.conversationId).sort(), [m1.message.conversationId, m2.message.conversationId].sort());
    assert.deepEqual(ex.json.files.map((f) => f.id), [file.id]);
    assert.equal(ex.json.blocks.length, 1);
    assert.deepEqual(ex.json.messages.map((m) => m.content), ['my door code is 4711', 'second']);
    assert.equal(ex.json.nextCursor, null);
    const p1 = await srv('GET', `/api/server/users/${a.id}/export?limit=1`);
    assert.equal(p1.json.messages.length, 1);
    const p2 = await srv('GET', `/api/server/users/${a.id}/export?limit=1&cursor=${p1.json.nextCursor}`);
    assert.deepEqual(p2.json.messages.map((m) => m.content), ['second']);
    assert.equal(p2.json.user, undefined, 'later pages carry messages only');
    const bad = await srv('GET', `/api/server/users/${a.id}/export?cursor=-1`);
    assertApiError(bad, 400, 'BAD_REQUEST', 'bad cursor');

    const er = await srv('DELETE', `/api/server/users/${a.id}`);
    assert.equal(er.status, 200, er.text);
    assert.equal(er.json.erased, true);
    assert.equal(er.json.messagesDeleted, 2);
    assert.equal(er.json.filesDeleted, 1);
    assert.equal(er.json.conversationsLeft, 2);
    // b's history: a's messages are tombstones in place, b's own stays
    const h = await api(server, 'GET', `/api/chat/messages/${m1.message.conversationId}`, { token: b.token });
    assert.deepEqual(h.json.messages.map((m) => [m.seq, m.deleted, m.content]), [[1, true, ''], [2, false, 'reply from b']]);
    assert.equal(h.json.messages[0].clientMsgId, null);
    const f = await fetch(`${server.url}/api/chat/files/${file.id}`, { headers: { authorization: `Bearer ${b.token}` } });
    assert.equal(f.status, 404);
    const ex2 = await srv('GET', `/api/server/users/${a.id}/export`);
    assert.equal(ex2.json.user, null);
    assert.deepEqual(ex2.json.conversations, []);
    assert.deepEqual(ex2.json.files, []);
    assert.deepEqual(ex2.json.blocks, []);
    assert.deepEqual(ex2.json.messages.map((m) => [m.deleted, m.content]), [[true, ''], [true, '']]);
    // the erased user's old token finds nothing of theirs
    const la = await api(server, 'GET', '/api/chat/conversations', { token: a.token });
    assert.deepEqual(la.json.conversations, []);
    const sysErase = await srv('DELETE', '/api/server/users/system');
    assertApiError(sysErase, 400, 'BAD_REQUEST', 'erasing "system"');
    sa.disconnect();
    sb.disconnect();
});

test('parlor token --scope server mints a server credential', async () => {
    const r = await runParlor(['token', 'platform', '--scope', 'server', '--jwt-secret', server.secret]);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.scope, 'server');
    assert.equal(claims.sub, 'platform');
    const ok = await api(server, 'GET', '/api/server/users/nobody-here/export', { token });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.user, null);
    const refused = await api(server, 'GET', '/api/chat/conversations', { token });
    assertApiError(refused, 401, 'UNAUTHORIZED', 'the minted server credential on a user endpoint');
    const bad = await runParlor(['token', 'platform', '--scope', 'admin', '--jwt-secret', server.secret]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--scope takes only server/);
});

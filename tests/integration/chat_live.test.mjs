// Live signals with real socket.io clients: read receipts (messages_read to the right people,
// watermarks that never move back, read/readAt/unreadCount over REST and across a restart),
// typing (relayed to the other members, throttled, expiring, cleared by a send or the last
// disconnect) and presence (several tabs, one offline after the grace period, nothing leaked to
// strangers). Timings are shrunk by options so the file runs in seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, connectLogged, emitAck, api, assertApiError, assertRefused, tokenFor, newUserId,
    newSecret, mkDataDir, assertIsoTime, assertMessage, waitFor, sleep, serverPerFile,
} from './chat_helpers.mjs';
import { RawWs } from './helpers.mjs';

// Shrunk from the defaults, but not below a second where a test needs a step to finish inside
// the window (a burst within the throttle, a reload within the grace period, a clear before the
// expiry): those must hold under ASan on two busy cores too.
const GRACE_MS = 1200;
const TYPING_TIMEOUT_MS = 2000;
const TYPING_THROTTLE_MS = 1000;
const TIMING_ARGS = [
    '--presence-grace-ms', String(GRACE_MS), '--typing-timeout-ms', String(TYPING_TIMEOUT_MS),
    '--typing-throttle-ms', String(TYPING_THROTTLE_MS),
];
// Time for anything still in flight to arrive before we conclude that nothing was sent, where
// a timer (typing expiry, presence grace) decides it; everything else uses fence().
const QUIET_MS = 250;

let server;
const open = serverPerFile({ args: TIMING_ARGS }, (s) => (server = s));

// A user with `n` logged sockets (tabs); n = 0 for a user who only uses REST for now.
async function user(n = 1, srv = server) {
    const id = newUserId();
    const token = tokenFor(srv, id);
    const u = { id, token, sockets: [], srv };
    for (let i = 0; i < n; i++) await tab(u);
    u.s = u.sockets[0];
    return u;
}
async function tab(u) {
    const s = await connectLogged(u.srv, u.token);
    open.push(s);
    u.sockets.push(s);
    if (!u.s) u.s = s;
    return s;
}

// A fence instead of a quiet time: a fresh (REST-only) user sends each of `users` a message and
// we wait until every socket of theirs has it. Events that an earlier action sent to those
// sockets went out before it, so anything that did not arrive by then was never sent.
async function fence(...users) {
    for (const u of users) {
        const f = { id: newUserId(), srv: u.srv };
        f.token = tokenFor(u.srv, f.id);
        const m = await restSend(f, { recipientId: u.id, content: 'fence' });
        for (const s of u.sockets) {
            await waitFor(() => s.received.some((x) => x._id === m._id), 3000, `fence to ${u.id}`);
        }
    }
}

async function sendTo(from, to, content) {
    const ack = await emitAck(from.s, 'send_message', { recipientId: to.id, content, type: 'text' });
    assert.equal(ack.ok, true, `send ${content}: ${JSON.stringify(ack)}`);
    return ack.message;
}
async function restSend(from, body) {
    const r = await api(from.srv, 'POST', '/api/chat/messages', { token: from.token, body: { type: 'text', ...body } });
    assert.equal(r.status, 201, `REST send: ${r.text}`);
    return r.json.message;
}
async function createGroup(creator, others, title = 'group') {
    const r = await api(creator.srv, 'POST', '/api/chat/conversations',
                        { token: creator.token, body: { participantIds: others.map((u) => u.id), title } });
    assert.equal(r.status, 201, r.text);
    return r.json;
}
async function gets(sock, id, what) {
    return waitFor(() => sock.received.find((m) => m._id === id), 3000,
                   () => `${what} did not receive ${id}; got ${JSON.stringify(sock.received.map((m) => m._id))}`);
}
// The `n`-th (1-based) event `name` on `sock` matching `pred`, waiting for it.
async function nth(sock, name, n, pred = () => true, timeoutMs = 3000, what = name) {
    await waitFor(() => sock.events(name).filter(pred).length >= n, timeoutMs,
                  () => `${what}: wanted ${n} ${name} events, got ${JSON.stringify(sock.events(name))}`);
    return sock.events(name).filter(pred)[n - 1];
}
const count = (sock, name, pred = () => true) => sock.events(name).filter(pred).length;
const logEntries = (sock, name, pred = () => true) => sock.log.filter((e) => e.event === name && pred(e.args[0]));
async function conversations(u) {
    const r = await api(u.srv, 'GET', '/api/chat/conversations', { token: u.token });
    assert.equal(r.status, 200, r.text);
    return r.json.conversations;
}
async function unreadOf(u, cid) {
    const c = (await conversations(u)).find((x) => x._id === cid);
    assert.ok(c, `conversation ${cid} not in ${u.id}'s list`);
    return c.unreadCount;
}
async function history(u, cid) {
    const r = await api(u.srv, 'GET', `/api/chat/messages/${cid}?limit=100`, { token: u.token });
    assert.equal(r.status, 200, r.text);
    return r.json.messages;
}
function assertReadEvent(ev, expect) {
    assert.deepEqual(Object.keys(ev).sort(), ['conversationId', 'messageId', 'readAt', 'readerId', 'seq'],
                     `messages_read fields: ${JSON.stringify(ev)}`);
    assertIsoTime(ev.readAt, 'messages_read.readAt');
    for (const [k, v] of Object.entries(expect)) assert.deepEqual(ev[k], v, `messages_read.${k} of ${JSON.stringify(ev)}`);
}

// ---------------------------------------------------------------- read receipts

test('mark_read: ack, messages_read to the sender and every socket of the reader, not to strangers', async () => {
    const A = await user();
    const B = await user(2);
    const S = await user();
    const m = [];
    for (let i = 1; i <= 3; i++) m.push(await sendTo(A, B, `r${i}`));
    await gets(B.sockets[1], m[2]._id, 'B2');
    const cid = m[0].conversationId;
    const t0 = Date.now();
    const ack = await emitAck(B.sockets[0], 'mark_read', { conversationId: cid, messageId: m[1]._id });
    assert.deepEqual(ack, { ok: true, conversationId: cid, seq: 2, unreadCount: 1 }, 'mark_read ack');
    const evs = [];
    for (const [sock, who] of [[A.s, 'A (sender)'], [B.sockets[0], 'B1 (the reading socket)'], [B.sockets[1], 'B2 (reader\'s other tab)']]) {
        const ev = await nth(sock, 'messages_read', 1, () => true, 3000, who);
        assertReadEvent(ev, { conversationId: cid, readerId: B.id, seq: 2, messageId: m[1]._id });
        assert.ok(Date.parse(ev.readAt) >= t0 - 1000 && Date.parse(ev.readAt) <= Date.now() + 1000, `readAt ${ev.readAt} is not now`);
        evs.push(ev);
    }
    assert.deepEqual(evs[1], evs[0], 'the reader got a different messages_read');
    assert.deepEqual(evs[2], evs[0], 'the reader\'s other tab got a different messages_read');
    await fence(A, B, S);
    for (const [sock, who] of [[A.s, 'A'], [B.sockets[0], 'B1'], [B.sockets[1], 'B2']]) {
        assert.equal(count(sock, 'messages_read'), 1, `${who} got messages_read more than once: ${JSON.stringify(sock.events('messages_read'))}`);
    }
    assert.equal(count(S.s, 'messages_read'), 0, `a stranger got a receipt: ${JSON.stringify(S.s.events('messages_read'))}`);
    // the documents over REST: m1, m2 read at readAt, m3 unread
    for (const who of [A, B]) {
        const h = await history(who, cid);
        assert.deepEqual(h.map((x) => [x.seq, x.read, x.readAt]),
                         [[1, true, evs[0].readAt], [2, true, evs[0].readAt], [3, false, null]],
                         `read/readAt in the history seen by ${who === A ? 'A' : 'B'}`);
        for (const x of h) assertMessage(x, { conversationId: cid, sender: A.id, recipient: B.id, read: x.read, readAt: x.readAt });
    }
});

test('the watermark never moves back (socket and REST), and a no-op mark sends no receipt', async () => {
    const A = await user();
    const B = await user();
    const m = [];
    for (let i = 1; i <= 4; i++) m.push(await sendTo(A, B, `w${i}`));
    const cid = m[0].conversationId;
    let ack = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: m[2]._id });
    assert.deepEqual(ack, { ok: true, conversationId: cid, seq: 3, unreadCount: 1 });
    const first = await nth(A.s, 'messages_read', 1);
    assertReadEvent(first, { seq: 3, messageId: m[2]._id, readerId: B.id });
    // backwards over the socket: the watermark stays at 3
    ack = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: m[0]._id });
    assert.deepEqual(ack, { ok: true, conversationId: cid, seq: 3, unreadCount: 1 }, 'mark_read backwards');
    // backwards over REST (no conversationId in the path)
    const r = await api(server, 'PUT', `/api/chat/messages/${m[1]._id}/read`, { token: B.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true, conversationId: cid, seq: 3, unreadCount: 1 }, 'PUT read backwards');
    // the same message again
    ack = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: m[2]._id });
    assert.deepEqual(ack, { ok: true, conversationId: cid, seq: 3, unreadCount: 1 }, 'mark_read repeated');
    await fence(A, B);
    assert.equal(count(A.s, 'messages_read'), 1, `a backward/repeated mark sent a receipt: ${JSON.stringify(A.s.events('messages_read'))}`);
    assert.equal(count(B.s, 'messages_read'), 1, `a backward/repeated mark sent a receipt: ${JSON.stringify(B.s.events('messages_read'))}`);
    assert.equal(await unreadOf(B, cid), 1, 'unreadCount after backward marks');
    let h = await history(A, cid);
    assert.deepEqual(h.map((x) => x.read), [true, true, true, false], 'read flags after backward marks');
    assert.ok(h.slice(0, 3).every((x) => x.readAt === first.readAt), `readAt changed by a backward mark: ${JSON.stringify(h.map((x) => x.readAt))}`);
    // forward again: only m4 gets a new readAt; the earlier ones keep their first read time
    await sleep(20);
    ack = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: m[3]._id });
    assert.deepEqual(ack, { ok: true, conversationId: cid, seq: 4, unreadCount: 0 });
    const second = await nth(A.s, 'messages_read', 2);
    assertReadEvent(second, { seq: 4, messageId: m[3]._id, readerId: B.id, conversationId: cid });
    h = await history(B, cid);
    assert.deepEqual(h.map((x) => x.readAt), [first.readAt, first.readAt, first.readAt, second.readAt]);
});

test('unreadCount over REST follows the watermark; PUT /read delivers messages_read like mark_read', async () => {
    const A = await user();
    const B = await user(2);
    const cidOf = async () => (await sendTo(A, B, 'u1')).conversationId;
    const cid = await cidOf();
    const m2 = await restSend(A, { recipientId: B.id, content: 'u2' });
    const m3 = await sendTo(A, B, 'u3');
    assert.equal(await unreadOf(B, cid), 3, 'B unread before reading');
    assert.equal(await unreadOf(A, cid), 0, 'own messages count as unread for the sender');
    let r = await api(server, 'PUT', `/api/chat/messages/${m2._id}/read`, { token: B.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true, conversationId: cid, seq: 2, unreadCount: 1 }, 'PUT read answer');
    for (const [sock, who] of [[A.s, 'A'], [B.sockets[0], 'B1'], [B.sockets[1], 'B2']]) {
        const ev = await nth(sock, 'messages_read', 1, () => true, 3000, `${who} after PUT`);
        assertReadEvent(ev, { conversationId: cid, readerId: B.id, seq: 2, messageId: m2._id });
    }
    assert.equal(await unreadOf(B, cid), 1, 'B unread after reading up to 2');
    // B replies twice: A now has 2 unread, B's count does not include its own messages, and
    // sending did not move B's watermark (docs/api.md, read receipts): m3 stays unread for B
    const b1 = await sendTo(B, A, 'reply 1');
    const b2 = await restSend(B, { conversationId: cid, content: 'reply 2' });
    assert.equal(await unreadOf(A, cid), 2, 'A unread after two replies');
    assert.equal(await unreadOf(B, cid), 1, 'B unread after its own replies');
    // A reads B's latest: A's watermark jumps to 5, B's stays at 2
    const ack = await emitAck(A.s, 'mark_read', { conversationId: cid, messageId: b2._id });
    assert.deepEqual(ack, { ok: true, conversationId: cid, seq: 5, unreadCount: 0 });
    assert.equal(await unreadOf(A, cid), 0, 'A unread after reading');
    assert.equal(await unreadOf(B, cid), 1, 'A reading changed B\'s unreadCount');
    r = await api(server, 'PUT', `/api/chat/messages/${m3._id}/read`, { token: B.token });
    assert.deepEqual(r.json, { ok: true, conversationId: cid, seq: 3, unreadCount: 0 },
                     'B reads m3 (seq 3) while its own replies sit above: watermark at 3, nothing unread');
    assert.equal(await unreadOf(B, cid), 0);
    const h = await history(A, cid);
    assert.deepEqual(h.map((x) => [x.seq, x.read]), [[1, true], [2, true], [3, true], [4, true], [5, true]]);
    assert.equal(h[3]._id, b1._id);
    const conv = (await conversations(A)).find((x) => x._id === cid);
    assert.equal(conv.lastMessage._id, b2._id);
    assert.equal(conv.lastMessage.read, true, 'lastMessage.read in the conversation list');
});

test('group receipts: every member gets messages_read; the sender\'s message is read once anyone read it', async () => {
    const [A, B, C, S] = [await user(), await user(), await user(), await user()];
    const g = await createGroup(A, [B, C]);
    const m1 = await restSend(A, { conversationId: g._id, content: 'g1' });
    const m2 = await restSend(B, { conversationId: g._id, content: 'g2' });
    assert.equal(await unreadOf(C, g._id), 2);
    assert.equal(await unreadOf(A, g._id), 1);
    const ack = await emitAck(C.s, 'mark_read', { conversationId: g._id, messageId: m2._id });
    assert.deepEqual(ack, { ok: true, conversationId: g._id, seq: 2, unreadCount: 0 });
    for (const [u, who] of [[A, 'A'], [B, 'B'], [C, 'C']]) {
        const ev = await nth(u.s, 'messages_read', 1, () => true, 3000, who);
        assertReadEvent(ev, { conversationId: g._id, readerId: C.id, seq: 2, messageId: m2._id });
    }
    await fence(S);
    assert.equal(count(S.s, 'messages_read'), 0, 'a stranger got a group receipt');
    assert.equal(await unreadOf(A, g._id), 1, 'C reading changed A\'s unreadCount');
    assert.equal(await unreadOf(B, g._id), 1, 'C reading changed B\'s unreadCount');
    const h = await history(A, g._id);
    assert.deepEqual(h.map((x) => [x._id, x.read]), [[m1._id, true], [m2._id, true]]);
});

test('mark_read refusals: not a member, wrong conversation, unknown or malformed ids', async () => {
    const A = await user();
    const B = await user();
    const S = await user();
    const m = await sendTo(A, B, 'private');
    const cid = m.conversationId;
    const other = await sendTo(A, S, 'other conversation');
    const unknown = 'ffffffffffffffffffffffff';
    let ack = await emitAck(S.s, 'mark_read', { conversationId: cid, messageId: m._id });
    await assertRefused(S.s, ack, 'NOT_FOUND', undefined, 'stranger mark_read');
    ack = await emitAck(S.s, 'mark_read', { messageId: m._id });
    await assertRefused(S.s, ack, 'NOT_FOUND', undefined, 'stranger mark_read without conversationId');
    assertApiError(await api(server, 'PUT', `/api/chat/messages/${m._id}/read`, { token: S.token }),
                   404, 'NOT_FOUND', 'stranger PUT read');
    ack = await emitAck(B.s, 'mark_read', { conversationId: other.conversationId, messageId: m._id });
    await assertRefused(B.s, ack, 'NOT_FOUND', undefined, 'message of another conversation');
    ack = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: unknown });
    await assertRefused(B.s, ack, 'NOT_FOUND', undefined, 'unknown message');
    assertApiError(await api(server, 'PUT', `/api/chat/messages/${unknown}/read`, { token: B.token }),
                   404, 'NOT_FOUND', 'PUT unknown message');
    for (const [payload, what] of [[{ conversationId: cid }, 'no messageId'], [{ conversationId: cid, messageId: 'xyz' }, 'bad messageId'],
        [{ conversationId: 'nope', messageId: m._id }, 'bad conversationId'], ['str', 'not an object']]) {
        ack = await emitAck(B.s, 'mark_read', payload);
        await assertRefused(B.s, ack, 'BAD_REQUEST', undefined, what);
    }
    assertApiError(await api(server, 'PUT', '/api/chat/messages/xyz/read', { token: B.token }), 400, 'BAD_REQUEST', 'PUT bad id');
    await fence(A);
    assert.equal(count(A.s, 'messages_read'), 0, `refused marks sent receipts: ${JSON.stringify(A.s.events('messages_read'))}`);
    assert.equal(await unreadOf(B, cid), 1, 'a refused mark moved B\'s watermark');
    assert.equal((await history(A, cid))[0].read, false, 'a refused mark marked the message read');
});

test('watermarks, read/readAt and unreadCount survive a restart; receipts and typing still reach the other member', async () => {
    const dataDir = mkDataDir();
    const secret = newSecret();
    let srv = await startServer({ dataDir, secret, args: TIMING_ARGS });
    const A = await user(1, srv);
    const B = await user(1, srv);
    const m = [];
    for (let i = 1; i <= 3; i++) m.push(await sendTo(A, B, `p${i}`));
    const cid = m[0].conversationId;
    const ack = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: m[1]._id });
    assert.deepEqual(ack, { ok: true, conversationId: cid, seq: 2, unreadCount: 1 });
    const hBefore = await history(A, cid);
    assert.deepEqual(hBefore.map((x) => x.read), [true, true, false]);
    A.s.disconnect();
    B.s.disconnect();
    await sleep(100);
    await srv.stop();
    srv = await startServer({ dataDir, secret, args: TIMING_ARGS });
    A.srv = srv;
    B.srv = srv;
    A.sockets = [];
    B.sockets = [];
    A.s = B.s = null;
    try {
        // sockets first: no REST call may warm up the server's view of the conversation
        await tab(A);
        await tab(B);
        // the watermark still refuses to move back after the restart
        const back = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: m[0]._id });
        assert.deepEqual(back, { ok: true, conversationId: cid, seq: 2, unreadCount: 1 }, 'backward mark after restart');
        // the first thing after the restart in this conversation is a read: the sender hears of it
        const fwd = await emitAck(B.s, 'mark_read', { conversationId: cid, messageId: m[2]._id });
        assert.deepEqual(fwd, { ok: true, conversationId: cid, seq: 3, unreadCount: 0 }, 'forward mark after restart');
        const evB = await nth(B.s, 'messages_read', 1, () => true, 3000, 'reader after restart');
        assertReadEvent(evB, { conversationId: cid, readerId: B.id, seq: 3, messageId: m[2]._id });
        const evA = await nth(A.s, 'messages_read', 1, () => true, 3000,
                              'the sender did not get messages_read for a read made before anything else touched the conversation after a restart');
        assert.deepEqual(evA, evB);
        const hAfter = await history(A, cid);
        assert.deepEqual(hAfter.slice(0, 2), hBefore.slice(0, 2), 'read/readAt of m1, m2 changed across the restart');
        assert.deepEqual([hAfter[2].read, hAfter[2].readAt], [true, evA.readAt], 'm3 after the read');
        assert.equal(await unreadOf(B, cid), 0, 'B unreadCount after restart');
        assert.equal(await unreadOf(A, cid), 0, 'A unreadCount after restart');
        // typing right after a restart (the members are not cached yet)
        const tack = await emitAck(B.s, 'typing', { conversationId: cid, isTyping: true });
        assert.deepEqual(tack, { ok: true });
        assert.deepEqual(await nth(A.s, 'typing', 1, () => true, 3000, 'typing after restart'),
                         { conversationId: cid, userId: B.id, isTyping: true });
    } finally {
        for (const s of [...A.sockets, ...B.sockets]) s.disconnect();
        await sleep(100);
        await srv.stop();
    }
});

test('lastSeen is kept in the store: an offline contact\'s lastSeen survives a restart', async () => {
    const dataDir = mkDataDir();
    const secret = newSecret();
    let srv = await startServer({ dataDir, secret, args: TIMING_ARGS });
    const A = await user(1, srv);
    const B = await user(1, srv);
    await sendTo(A, B, 'hello');
    A.s.disconnect();
    const off = await nth(B.s, 'user_status', 1, (e) => e.userId === A.id && e.status === 'offline', GRACE_MS + 3000, 'A offline');
    assertIsoTime(off.lastSeen, 'offline lastSeen');
    B.s.disconnect();
    await sleep(100);
    await srv.stop();
    srv = await startServer({ dataDir, secret, args: TIMING_ARGS });
    try {
        const r = await api(srv, 'GET', `/api/chat/users/${A.id}/status`, { token: tokenFor(srv, B.id) });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { userId: A.id, status: 'offline', lastSeen: off.lastSeen }, 'lastSeen after restart');
    } finally {
        await srv.stop();
    }
});

// ---------------------------------------------------------------- typing

function typingEv(sock, pred = () => true) {
    return sock.events('typing').filter(pred);
}
const isTrue = (e) => e.isTyping === true;
const isFalse = (e) => e.isTyping === false;

test('typing is relayed to the other members only, as {conversationId, userId, isTyping}', async () => {
    const A = await user(2);
    const [B, C, S] = [await user(), await user(), await user()];
    const g = await createGroup(A, [B, C]);
    let ack = await emitAck(A.sockets[0], 'typing', { conversationId: g._id, isTyping: true });
    assert.deepEqual(ack, { ok: true }, 'typing ack');
    for (const [u, who] of [[B, 'B'], [C, 'C']]) {
        const ev = await nth(u.s, 'typing', 1, () => true, 3000, who);
        assert.deepEqual(ev, { conversationId: g._id, userId: A.id, isTyping: true }, `typing seen by ${who}`);
    }
    ack = await emitAck(A.sockets[0], 'typing', { conversationId: g._id, isTyping: false });
    assert.deepEqual(ack, { ok: true });
    for (const [u, who] of [[B, 'B'], [C, 'C']]) {
        const ev = await nth(u.s, 'typing', 2, () => true, 3000, who);
        assert.deepEqual(ev, { conversationId: g._id, userId: A.id, isTyping: false }, `typing stop seen by ${who}`);
    }
    await fence(A, B, S);
    assert.equal(typingEv(A.sockets[0]).length, 0, 'the typing socket got its own typing');
    assert.equal(typingEv(A.sockets[1]).length, 0, 'the typist\'s other tab got its own typing');
    assert.equal(typingEv(S.s).length, 0, 'a stranger got typing');
    assert.equal(typingEv(B.s).length, 2, `B: ${JSON.stringify(typingEv(B.s))}`);
    // a stop without a start relays nothing
    ack = await emitAck(B.s, 'typing', { conversationId: g._id, isTyping: false });
    assert.deepEqual(ack, { ok: true });
    await fence(A);
    assert.equal(typingEv(A.s).length, 0, 'a stop without a start was relayed');
    // typing is never stored
    assert.equal((await history(A, g._id)).length, 0, 'typing left something in the history');
    const conv = (await conversations(B)).find((x) => x._id === g._id);
    assert.equal(conv.lastMessage, null, 'typing became a lastMessage');
});

test('typing refusals: non-members and unknown conversations get NOT_FOUND, bad payloads BAD_REQUEST', async () => {
    const [A, B, S] = [await user(), await user(), await user()];
    const m = await sendTo(A, B, 'hi');
    const cid = m.conversationId;
    let ack = await emitAck(S.s, 'typing', { conversationId: cid, isTyping: true });
    await assertRefused(S.s, ack, 'NOT_FOUND', undefined, 'non-member typing');
    ack = await emitAck(S.s, 'typing', { conversationId: cid, isTyping: false });
    await assertRefused(S.s, ack, 'NOT_FOUND', undefined, 'non-member typing stop');
    ack = await emitAck(A.s, 'typing', { conversationId: 'ffffffffffffffffffffffff', isTyping: true });
    await assertRefused(A.s, ack, 'NOT_FOUND', undefined, 'unknown conversation');
    for (const [payload, what] of [[{ conversationId: cid }, 'no isTyping'], [{ conversationId: cid, isTyping: 'yes' }, 'isTyping not boolean'],
        [{ isTyping: true }, 'no conversationId'], [{ conversationId: 42, isTyping: true }, 'conversationId not a string'], [null, 'null']]) {
        ack = await emitAck(A.s, 'typing', payload);
        await assertRefused(A.s, ack, 'BAD_REQUEST', undefined, what);
    }
    // without an ack the refusal still arrives as message_error
    S.s.emit('typing', { conversationId: cid, isTyping: true });
    await waitFor(() => S.s.errors.some((e) => e.code === 'NOT_FOUND'), 3000, 'message_error without ack');
    await fence(A, B);
    assert.equal(typingEv(A.s).length + typingEv(B.s).length, 0,
                 `refused typing was relayed: ${JSON.stringify([typingEv(A.s), typingEv(B.s)])}`);
});

test('isTyping:true relays are throttled per user and conversation', async () => {
    const [A, B] = [await user(), await user()];
    const cid = (await sendTo(A, B, 'hi')).conversationId;
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
        const ack = await emitAck(A.s, 'typing', { conversationId: cid, isTyping: true });
        assert.deepEqual(ack, { ok: true }, 'a throttled typing is still acknowledged');
    }
    assert.ok(Date.now() - t0 < TYPING_THROTTLE_MS - 50, 'the burst took too long to test the throttle');
    await nth(B.s, 'typing', 1, isTrue);
    await sleep(Math.max(0, QUIET_MS - (Date.now() - t0)));
    assert.equal(typingEv(B.s, isTrue).length, 1, `5 typing:true within the throttle were relayed ${typingEv(B.s, isTrue).length} times`);
    // after the throttle window a renewal is relayed again
    await sleep(TYPING_THROTTLE_MS + 50 - (Date.now() - t0));
    await emitAck(A.s, 'typing', { conversationId: cid, isTyping: true });
    await nth(B.s, 'typing', 2, isTrue, 3000, 'relay after the throttle window');
    assert.equal(typingEv(B.s, isFalse).length, 0, 'typing expired while renewed');
    // the throttle is per conversation: typing in another conversation is relayed at once
    const C = await user();
    const g = await createGroup(A, [B, C]);
    await emitAck(A.s, 'typing', { conversationId: g._id, isTyping: true });
    const ev = await nth(B.s, 'typing', 1, (e) => e.conversationId === g._id, 3000, 'typing in a second conversation');
    assert.deepEqual(ev, { conversationId: g._id, userId: A.id, isTyping: true });
    // and per user: B typing in the first conversation is not throttled by A's state
    await emitAck(B.s, 'typing', { conversationId: cid, isTyping: true });
    assert.deepEqual(await nth(A.s, 'typing', 1), { conversationId: cid, userId: B.id, isTyping: true });
});

test('a typing state expires by itself with a relayed isTyping:false; renewals keep it alive', async () => {
    const [A, B] = [await user(), await user()];
    const cid = (await sendTo(A, B, 'hi')).conversationId;
    // renew every 200 ms for longer than the timeout: no false in between
    let last = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < TYPING_TIMEOUT_MS * 1.5) {
        await emitAck(A.s, 'typing', { conversationId: cid, isTyping: true });
        last = Date.now();
        await sleep(200);
    }
    assert.equal(typingEv(B.s, isFalse).length, 0, 'typing expired although renewed every 200 ms');
    const trues = typingEv(B.s, isTrue).length;
    assert.ok(trues >= 2 && trues <= Math.ceil(TYPING_TIMEOUT_MS * 1.5 / TYPING_THROTTLE_MS) + 1,
              `${trues} relays of isTyping:true while renewing for ${TYPING_TIMEOUT_MS * 1.5} ms with a ${TYPING_THROTTLE_MS} ms throttle`);
    const [stop] = await waitFor(() => logEntries(B.s, 'typing', isFalse).length && logEntries(B.s, 'typing', isFalse),
                                 TYPING_TIMEOUT_MS + 3000, 'the expiry of the typing state');
    assert.deepEqual(stop.args[0], { conversationId: cid, userId: A.id, isTyping: false });
    const after = stop.at - last;
    assert.ok(after >= TYPING_TIMEOUT_MS - 100, `expired ${after} ms after the last renewal (timeout ${TYPING_TIMEOUT_MS})`);
    assert.ok(after <= TYPING_TIMEOUT_MS + 1500, `expired only ${after} ms after the last renewal (timeout ${TYPING_TIMEOUT_MS})`);
    await sleep(QUIET_MS);
    assert.equal(typingEv(B.s, isFalse).length, 1, 'the expiry was relayed more than once');
    // after the expiry a new start is relayed at once
    await emitAck(A.s, 'typing', { conversationId: cid, isTyping: true });
    await nth(B.s, 'typing', trues + 1, isTrue, 3000, 'typing after the expiry');
});

test('sending a message clears typing (relayed false before the message), over the socket and REST', async () => {
    const [A, B] = [await user(), await user()];
    const cid = (await sendTo(A, B, 'hi')).conversationId;
    await emitAck(A.s, 'typing', { conversationId: cid, isTyping: true });
    await nth(B.s, 'typing', 1, isTrue);
    const t0 = Date.now();
    const m = await sendTo(A, B, 'done typing');
    await gets(B.s, m._id, 'B');
    const ev = await nth(B.s, 'typing', 1, isFalse, 3000, 'typing cleared by a send');
    assert.deepEqual(ev, { conversationId: cid, userId: A.id, isTyping: false });
    const iFalse = B.s.log.findIndex((e) => e.event === 'typing' && e.args[0].isTyping === false);
    const iMsg = B.s.log.findIndex((e) => e.event === 'receive_message' && e.args[0]._id === m._id);
    assert.ok(iFalse < iMsg, 'typing false arrived after the message it was cleared by');
    assert.ok(B.s.log[iFalse].at - t0 < TYPING_TIMEOUT_MS - 200, 'typing false came from the expiry, not from the send');
    // REST send clears too
    await sleep(TYPING_THROTTLE_MS);
    await emitAck(A.s, 'typing', { conversationId: cid, isTyping: true });
    await nth(B.s, 'typing', 2, isTrue);
    const t1 = Date.now();
    await restSend(A, { conversationId: cid, content: 'via REST' });
    const [e2] = await waitFor(() => logEntries(B.s, 'typing', isFalse).length >= 2 && logEntries(B.s, 'typing', isFalse).slice(1),
                               3000, 'typing cleared by a REST send');
    assert.ok(e2.at - t1 < TYPING_TIMEOUT_MS - 200, 'typing false after a REST send came from the expiry');
    await sleep(TYPING_TIMEOUT_MS + 200);
    assert.equal(typingEv(B.s, isFalse).length, 2, `a cleared typing state expired again: ${JSON.stringify(typingEv(B.s))}`);
});

test('closing one of two tabs keeps typing; closing the last socket clears it at once, once', async () => {
    const A = await user(2);
    const B = await user();
    const cid = (await sendTo(A, B, 'hi')).conversationId;
    await emitAck(A.sockets[0], 'typing', { conversationId: cid, isTyping: true });
    await nth(B.s, 'typing', 1, isTrue);
    A.sockets[0].disconnect();
    await sleep(QUIET_MS);
    assert.equal(typingEv(B.s, isFalse).length, 0, 'closing one of two tabs cleared typing');
    // renew from the remaining tab (throttled: not relayed, but the expiry restarts)
    await emitAck(A.sockets[1], 'typing', { conversationId: cid, isTyping: true });
    const t0 = Date.now();
    A.sockets[1].disconnect();
    const [stop] = await waitFor(() => logEntries(B.s, 'typing', isFalse).length && logEntries(B.s, 'typing', isFalse),
                                 3000, 'typing cleared by the last disconnect');
    assert.deepEqual(stop.args[0], { conversationId: cid, userId: A.id, isTyping: false });
    assert.ok(stop.at - t0 < TYPING_TIMEOUT_MS - 200, `cleared ${stop.at - t0} ms after the last disconnect: that is the expiry`);
    await sleep(TYPING_TIMEOUT_MS + 200);
    assert.equal(typingEv(B.s, isFalse).length, 1, `typing false relayed more than once: ${JSON.stringify(typingEv(B.s))}`);
});

// ---------------------------------------------------------------- presence

const statusOf = (id) => (e) => e.userId === id;

// A's first REST message to B makes them contacts without A having a socket.
async function contacts() {
    const A = await user(0);
    const B = await user();
    const S = await user();
    await restSend(A, { recipientId: B.id, content: 'we share a conversation' });
    return { A, B, S };
}

test('presence with two tabs: one closing sends nothing; both closing sends offline once, after the grace period', async () => {
    const { A, B, S } = await contacts();
    const t0 = Date.now();
    await tab(A);
    const on = await nth(B.s, 'user_status', 1, statusOf(A.id), 3000, 'A online');
    assert.deepEqual(Object.keys(on).sort(), ['lastSeen', 'status', 'userId']);
    assert.equal(on.status, 'online');
    assertIsoTime(on.lastSeen, 'online lastSeen');
    assert.ok(Date.parse(on.lastSeen) >= t0 - 1500, `online lastSeen ${on.lastSeen} is older than the connect`);
    await tab(A);
    await sleep(QUIET_MS);
    assert.equal(count(B.s, 'user_status', statusOf(A.id)), 1, `a second tab sent user_status: ${JSON.stringify(B.s.events('user_status'))}`);
    A.sockets[0].disconnect();
    await sleep(GRACE_MS + QUIET_MS);
    assert.equal(count(B.s, 'user_status', statusOf(A.id)), 1, `closing one of two tabs sent user_status: ${JSON.stringify(B.s.events('user_status'))}`);
    assert.equal(count(A.sockets[1], 'user_status', statusOf(A.id)), 0, 'the remaining tab was told about its own user');
    let st = await emitAck(B.s, 'get_status', { userIds: [A.id] });
    assert.equal(st.ok, true, JSON.stringify(st));
    assert.equal(st.statuses[0].status, 'online', 'A with one tab left is not online');
    const t1 = Date.now();
    A.sockets[1].disconnect();
    const [off] = await waitFor(() => logEntries(B.s, 'user_status', (e) => e.userId === A.id && e.status === 'offline').length &&
                                      logEntries(B.s, 'user_status', (e) => e.userId === A.id && e.status === 'offline'),
                                GRACE_MS + 3000, 'A offline');
    const waited = off.at - t1;
    assert.ok(waited >= GRACE_MS - 50, `offline ${waited} ms after the last socket left, before the ${GRACE_MS} ms grace period`);
    assert.ok(waited <= GRACE_MS + 1500, `offline only ${waited} ms after the last socket left (grace ${GRACE_MS} ms)`);
    assert.equal(off.args[0].status, 'offline');
    assertIsoTime(off.args[0].lastSeen, 'offline lastSeen');
    assert.ok(Date.parse(off.args[0].lastSeen) >= Date.parse(on.lastSeen), 'offline lastSeen before the online one');
    assert.ok(Math.abs(Date.parse(off.args[0].lastSeen) - t1) <= GRACE_MS + 1500,
              `offline lastSeen ${off.args[0].lastSeen} is not when A left (${new Date(t1).toJSON()})`);
    await sleep(GRACE_MS + QUIET_MS);
    assert.equal(count(B.s, 'user_status', (e) => e.userId === A.id && e.status === 'offline'), 1,
                 `offline sent more than once: ${JSON.stringify(B.s.events('user_status'))}`);
    assert.equal(count(B.s, 'user_status', statusOf(A.id)), 2);
    assert.equal(count(S.s, 'user_status'), 0, `a stranger got user_status: ${JSON.stringify(S.s.events('user_status'))}`);
    // the status queries agree with the last event
    st = await emitAck(B.s, 'get_status', { userIds: [A.id] });
    assert.deepEqual(st, { ok: true, statuses: [off.args[0]] }, 'get_status after offline');
    const r = await api(server, 'GET', `/api/chat/users/${A.id}/status`, { token: B.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, off.args[0], 'GET status after offline');
});

test('a user with more contacts than the first presence lookup holds still reaches every one', async () => {
    // The server first asks the store for 32 contacts, then again with room for 1,000.
    const A = await user(0);
    const others = [];
    for (let i = 0; i < 40; i++) {
        const o = await user(1);
        await restSend(A, { recipientId: o.id, content: `hello ${i}` });
        others.push(o);
    }
    await tab(A);
    for (const o of others) await nth(o.s, 'user_status', 1, statusOf(A.id), 5000, `A online to ${o.id}`);
    await sleep(QUIET_MS);
    for (const o of others) assert.equal(count(o.s, 'user_status', statusOf(A.id)), 1, `${o.id} was told more than once`);
});

test('a reload within the grace period sends nothing to contacts', async () => {
    const { A, B } = await contacts();
    await tab(A);
    await nth(B.s, 'user_status', 1, statusOf(A.id), 3000, 'A online');
    A.s.disconnect();
    open.splice(open.indexOf(A.s), 1);
    A.sockets = [];
    A.s = null;
    await sleep(Math.floor(GRACE_MS / 3));
    await tab(A);
    await sleep(GRACE_MS + QUIET_MS);
    assert.equal(count(B.s, 'user_status', statusOf(A.id)), 1, `a reload flapped presence: ${JSON.stringify(B.s.events('user_status'))}`);
    const st = await emitAck(B.s, 'get_status', { userIds: [A.id] });
    assert.equal(st.statuses[0].status, 'online');
    // back after the grace period: offline then online again
    A.s.disconnect();
    await nth(B.s, 'user_status', 1, (e) => e.userId === A.id && e.status === 'offline', GRACE_MS + 3000, 'offline');
    A.sockets = [];
    A.s = null;
    await tab(A);
    const again = await nth(B.s, 'user_status', 3, statusOf(A.id), 3000, 'online again');
    assert.equal(again.status, 'online');
});

test('presence is not leaked to strangers: get_status and GET status show them offline with lastSeen null', async () => {
    const { A, B, S } = await contacts();
    await tab(A);
    await nth(B.s, 'user_status', 1, statusOf(A.id));
    const unknown = newUserId();
    let st = await emitAck(S.s, 'get_status', { userIds: [A.id, S.id, B.id, unknown] });
    assert.equal(st.ok, true, JSON.stringify(st));
    assert.deepEqual(st.statuses[0], { userId: A.id, status: 'offline', lastSeen: null }, 'a stranger sees A');
    assert.equal(st.statuses[1].userId, S.id);
    assert.equal(st.statuses[1].status, 'online', 'a user is online to themself');
    assert.deepEqual(st.statuses[2], { userId: B.id, status: 'offline', lastSeen: null }, 'a stranger sees B');
    assert.deepEqual(st.statuses[3], { userId: unknown, status: 'offline', lastSeen: null }, 'an unknown user');
    assert.equal(st.statuses.length, 4);
    let r = await api(server, 'GET', `/api/chat/users/${A.id}/status`, { token: S.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { userId: A.id, status: 'offline', lastSeen: null }, 'GET status by a stranger');
    // the contact sees the truth
    st = await emitAck(B.s, 'get_status', { userIds: [A.id] });
    assert.equal(st.statuses[0].status, 'online');
    assertIsoTime(st.statuses[0].lastSeen, 'lastSeen seen by a contact');
    r = await api(server, 'GET', `/api/chat/users/${A.id}/status`, { token: B.token });
    assert.deepEqual(r.json, st.statuses[0], 'GET status and get_status disagree');
    // A user that was never online but shares a conversation: offline, no lastSeen
    const N = await user(0);
    await restSend(N, { recipientId: B.id, content: 'hello from REST only' });
    st = await emitAck(B.s, 'get_status', { userIds: [N.id] });
    assert.deepEqual(st.statuses, [{ userId: N.id, status: 'offline', lastSeen: null }]);
    // bad requests
    const many = Array.from({ length: 201 }, () => newUserId());
    for (const [payload, what] of [[{}, 'no userIds'], [{ userIds: 'x' }, 'not an array'], [{ userIds: ['bad id!'] }, 'bad id'],
        [{ userIds: many }, 'more than 200 ids']]) {
        const ack = await emitAck(B.s, 'get_status', payload);
        await assertRefused(B.s, ack, 'BAD_REQUEST', undefined, what);
    }
    assertApiError(await api(server, 'GET', '/api/chat/users/bad!id/status', { token: B.token }), 400, 'BAD_REQUEST', 'GET status bad id');
    // A goes offline: the stranger still hears nothing and still sees nothing
    A.s.disconnect();
    await nth(B.s, 'user_status', 1, (e) => e.userId === A.id && e.status === 'offline', GRACE_MS + 3000);
    st = await emitAck(S.s, 'get_status', { userIds: [A.id] });
    assert.deepEqual(st.statuses, [{ userId: A.id, status: 'offline', lastSeen: null }], 'stranger sees a lastSeen');
    assert.equal(count(S.s, 'user_status'), 0, `a stranger got user_status: ${JSON.stringify(S.s.events('user_status'))}`);
});

test('a client that goes silent is dropped by the heartbeat (ping options), then offline after the grace period', async () => {
    const PING_INTERVAL = 300;
    const PING_TIMEOUT = 300;
    const srv = await startServer({
        args: [...TIMING_ARGS, '--ping-interval-ms', String(PING_INTERVAL), '--ping-timeout-ms', String(PING_TIMEOUT)],
    });
    const A = await user(0, srv);
    const B = await user(1, srv);
    let ws;
    try {
        await restSend(A, { recipientId: B.id, content: 'hi' });
        ws = await RawWs.connect(srv.port, '/socket.io/?EIO=4&transport=websocket');
        const openPkt = await ws.nextText();
        assert.equal(openPkt[0], '0', openPkt);
        const hs = JSON.parse(openPkt.slice(1));
        assert.equal(hs.pingInterval, PING_INTERVAL, 'pingInterval in the handshake');
        assert.equal(hs.pingTimeout, PING_TIMEOUT, 'pingTimeout in the handshake');
        ws.autoPong = false;
        ws.sendText('40' + JSON.stringify({ token: A.token }));
        const connected = await ws.nextText();
        assert.match(connected, /^40\{/, 'CONNECT reply');
        const t0 = Date.now();
        await nth(B.s, 'user_status', 1, (e) => e.userId === A.id && e.status === 'online', 3000, 'A online');
        assert.equal(await ws.nextText(PING_INTERVAL + 1000), '2', 'the server pings');
        await waitFor(() => ws.closedAt !== null, PING_INTERVAL + PING_TIMEOUT + 3000, 'the server drops a client that does not pong');
        const alive = ws.closedAt - t0;
        assert.ok(alive >= PING_INTERVAL + PING_TIMEOUT - 100, `dropped after ${alive} ms, before pingInterval + pingTimeout`);
        const [off] = await waitFor(() => logEntries(B.s, 'user_status', (e) => e.userId === A.id && e.status === 'offline').length &&
                                          logEntries(B.s, 'user_status', (e) => e.userId === A.id && e.status === 'offline'),
                                    GRACE_MS + 3000, 'A offline after the drop');
        assert.ok(off.at - ws.closedAt >= GRACE_MS - 100, `offline ${off.at - ws.closedAt} ms after the drop (grace ${GRACE_MS})`);
    } finally {
        ws?.destroy();
        for (const s of B.sockets) s.disconnect();
        await sleep(100);
        await srv.stop();
    }
});

// Racing mark_read from two tabs, and against a new message: the watermark ends at the highest
// mark, never moves back, and each member sees the receipts in increasing seq order.
test('mark_read racing from two tabs and against a new message: the highest wins, receipts only go up', async () => {
    const A = await user();
    const B = await user(2);
    const sent = [];
    for (let i = 0; i < 10; i++) sent.push(await sendTo(A, B, `r${i}`));
    const cid = sent[0].conversationId;
    for (let round = 0; round < 5; round++) {
        const [lo, hi] = [sent[2 * round], sent[2 * round + 1]];
        const [a1, a2] = await Promise.all([
            emitAck(B.sockets[0], 'mark_read', { conversationId: cid, messageId: hi._id }),
            emitAck(B.sockets[1], 'mark_read', { conversationId: cid, messageId: lo._id }),
        ]);
        assert.equal(a1.ok && a2.ok, true, JSON.stringify([a1, a2]));
        assert.equal(a1.seq, hi.seq, 'the higher mark reports its own seq');
        assert.ok(a2.seq === lo.seq || a2.seq === hi.seq, `the lower mark: ${JSON.stringify(a2)}`);
    }
    // against a new message: B reads the 10th while A sends the 11th
    const [mark, m11] = await Promise.all([
        emitAck(B.sockets[0], 'mark_read', { conversationId: cid, messageId: sent[9]._id }),
        sendTo(A, B, 'r10'),
    ]);
    assert.equal(mark.seq, 10);
    assert.ok(mark.unreadCount === 0 || mark.unreadCount === 1, JSON.stringify(mark));
    await gets(B.sockets[1], m11._id, 'B2');
    assert.equal(await unreadOf(B, cid), 1, 'the new message is unread, the rest read');
    // Every socket's receipts for B only go up, and end at 10 (fence: A's own later mark).
    const done = await emitAck(A.s, 'mark_read', { conversationId: cid, messageId: m11._id });
    assert.equal(done.ok, true);
    for (const s of [A.s, ...B.sockets]) {
        await waitFor(() => s.events('messages_read').some((e) => e.readerId === A.id), 3000, 'A\'s receipt');
        const seqs = s.events('messages_read').filter((e) => e.readerId === B.id).map((e) => e.seq);
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), `receipts went back: ${seqs}`);
        assert.equal(new Set(seqs).size, seqs.length, `a receipt repeated: ${seqs}`);
        assert.equal(seqs[seqs.length - 1], 10);
    }
    const h = await history(B, cid);
    assert.deepEqual(h.map((m) => m.read), [...Array(10).fill(true), false]);
});

// Group conversations: creation over REST, fan-out to every member, recipient null, and
// refusals for non-members that agree across the socket and REST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    connectUser, emitAck, api, assertApiError, tokenFor, newUserId, assertMessage,
    assertConversation, assertConversationExact, assertRefused, waitFor, sleep, serverPerFile,
    startServer, fetchHistory, closeAll,
} from './chat_helpers.mjs';

let server;
const open = serverPerFile({}, (s) => (server = s));
async function user() {
    const id = newUserId();
    const token = tokenFor(server, id);
    const s = await connectUser(server, token);
    open.push(s);
    return { id, token, s };
}
async function gets(sock, id, what) {
    return waitFor(() => sock.received.find((m) => m._id === id), 3000,
                   () => `${what} did not receive ${id}; got ${JSON.stringify(sock.received.map((m) => m._id))}`);
}
async function createGroup(creator, others, title) {
    const body = { participantIds: others.map((u) => u.id) };
    if (title !== undefined) body.title = title;
    return api(server, 'POST', '/api/chat/conversations', { token: creator.token, body });
}

test('POST /api/chat/conversations -> 201 the group, fan-out to every member, recipient null', async () => {
    const [A, B, C] = [await user(), await user(), await user()];
    const r = await createGroup(A, [B, C], 'Flat 3B');
    assert.equal(r.status, 201, r.text);
    const g = r.json;
    assertConversation(g, { participants: [A.id, B.id, C.id], title: 'Flat 3B', lastMessage: null, unreadCount: 0 });
    const ack = await emitAck(A.s, 'send_message',
                              { conversationId: g._id, content: 'hi all', type: 'text', clientMsgId: 'g1' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assertMessage(ack.message, {
        conversationId: g._id, seq: 1, sender: A.id, recipient: null, content: 'hi all', clientMsgId: 'g1',
    });
    assert.deepEqual(await gets(B.s, ack.message._id, 'B'), ack.message);
    assert.deepEqual(await gets(C.s, ack.message._id, 'C'), ack.message);
    const reply = await emitAck(C.s, 'send_message', { conversationId: g._id, content: 'hey', type: 'text' });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assertMessage(reply.message, { conversationId: g._id, seq: 2, sender: C.id, recipient: null, content: 'hey' });
    assert.deepEqual(await gets(A.s, reply.message._id, 'A'), reply.message);
    assert.deepEqual(await gets(B.s, reply.message._id, 'B'), reply.message);
    // REST send to the group
    const rr = await api(server, 'POST', '/api/chat/messages',
                         { token: B.token, body: { conversationId: g._id, content: 'rest', type: 'text' } });
    assert.equal(rr.status, 201, rr.text);
    assertMessage(rr.json.message, { seq: 3, sender: B.id, recipient: null, conversationId: g._id, content: 'rest' });
    // rr came after ack and reply on every socket's single ordered path: a fence, no quiet time.
    for (const [u, n] of [[A, 'A'], [B, 'B'], [C, 'C']]) await gets(u.s, rr.json.message._id, n);
    assert.ok(!A.s.received.some((m) => m._id === ack.message._id), 'sending socket got its own group message');
    assert.ok(!C.s.received.some((m) => m._id === reply.message._id), 'sending socket got its own group message');
    // the group in each member's list, with unreadCount for that member
    for (const [u, unread] of [[A, 2], [B, 2], [C, 2]]) {
        const l = await api(server, 'GET', '/api/chat/conversations', { token: u.token });
        assert.equal(l.status, 200, l.text);
        const c = l.json.conversations.find((x) => x._id === g._id);
        assert.ok(c, 'group missing from a member list');
        assertConversation(c, { participants: [A.id, B.id, C.id], title: 'Flat 3B', unreadCount: unread });
        assert.deepEqual(c.lastMessage, rr.json.message);
    }
    // the creator's view of the group messages
    const h = await api(server, 'GET', `/api/chat/messages/${g._id}`, { token: A.token });
    assert.equal(h.status, 200, h.text);
    assert.deepEqual(h.json.messages.map((m) => m.seq), [1, 2, 3]);
});

test('conversation documents have exactly the contract fields (POST and GET, group and direct)', async () => {
    const [A, B, C] = [await user(), await user(), await user()];
    const r = await createGroup(A, [B, C], 'exact');
    assert.equal(r.status, 201, r.text);
    assertConversationExact(r.json);
    await emitAck(A.s, 'send_message', { recipientId: B.id, content: 'dm', type: 'text' });
    const l = await api(server, 'GET', '/api/chat/conversations', { token: A.token });
    assert.equal(l.json.conversations.length, 2);
    for (const c of l.json.conversations) assertConversationExact(c);
});

test('a group without a title has title null', async () => {
    const [A, B, C] = [await user(), await user(), await user()];
    const r = await createGroup(A, [B, C]);
    assert.equal(r.status, 201, r.text);
    assertConversation(r.json, { title: null, participants: [A.id, B.id, C.id], lastMessage: null, unreadCount: 0 });
});

test('duplicates and the creator in participantIds are folded', async () => {
    const [A, B, C] = [await user(), await user(), await user()];
    const r = await api(server, 'POST', '/api/chat/conversations', {
        token: A.token, body: { participantIds: [B.id, C.id, B.id, A.id], title: 'dups' },
    });
    assert.equal(r.status, 201, r.text);
    assertConversation(r.json, { participants: [A.id, B.id, C.id] });
});

test('a member who was offline at creation receives group messages once connected', async () => {
    const [A, B] = [await user(), await user()];
    const cId = newUserId();
    const g = (await createGroup(A, [B, { id: cId }], 'later')).json;
    assert.ok(g && g._id, 'create failed');
    const cs = await connectUser(server, tokenFor(server, cId));
    open.push(cs);
    const ack = await emitAck(B.s, 'send_message', { conversationId: g._id, content: 'welcome', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    await gets(cs, ack.message._id, 'C');
});

test('a group created while members are connected delivers its first message to them', async () => {
    // Membership joins must take effect for already-connected sockets (room join on create).
    const [A, B, C] = [await user(), await user(), await user()];
    const g = (await createGroup(B, [A, C], 'live')).json;
    const ack = await emitAck(A.s, 'send_message', { conversationId: g._id, content: 'first', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    await gets(B.s, ack.message._id, 'B');
    await gets(C.s, ack.message._id, 'C');
});

test('non-member: send refused (ack + message_error), REST refused, nothing delivered, consistent codes', async (t) => {
    const [A, B, C, D] = [await user(), await user(), await user(), await user()];
    const g = (await createGroup(A, [B, C], 'private')).json;
    const first = await emitAck(A.s, 'send_message', { conversationId: g._id, content: 'secret', type: 'text' });
    assert.equal(first.ok, true, JSON.stringify(first));

    const ack = await emitAck(D.s, 'send_message',
                              { conversationId: g._id, content: 'let me in', type: 'text', clientMsgId: 'intruder' });
    await assertRefused(D.s, ack, ['FORBIDDEN', 'NOT_FOUND'], 'intruder', 'non-member send');
    const code = ack.error.code;
    const status = code === 'FORBIDDEN' ? 403 : 404;
    t.diagnostic(`RECORD: non-member gets ${code} / ${status}`);

    const hist = await api(server, 'GET', `/api/chat/messages/${g._id}`, { token: D.token });
    assertApiError(hist, status, code, 'non-member history (must agree with the socket)');
    assert.ok(!hist.text.includes('secret'), 'history leaked to a non-member');
    const post = await api(server, 'POST', '/api/chat/messages',
                           { token: D.token, body: { conversationId: g._id, content: 'rest in', type: 'text' } });
    assertApiError(post, status, code, 'non-member REST send');
    // a conversation that does not exist at all gets the same answer as one you are not in
    // (otherwise ids can be probed)
    const ghost = '0123456789abcdef01234567';
    const gh = await api(server, 'GET', `/api/chat/messages/${ghost}`, { token: D.token });
    t.diagnostic(`RECORD: unknown conversation -> ${gh.status} ${gh.json?.error?.code}`);
    assertApiError(gh, [403, 404], ['FORBIDDEN', 'NOT_FOUND'], 'unknown conversation');
    const ghostAck = await emitAck(D.s, 'send_message', { conversationId: ghost, content: 'x', type: 'text' });
    await assertRefused(D.s, ghostAck, ['FORBIDDEN', 'NOT_FOUND'], undefined, 'unknown conversation send');
    assert.equal(ghostAck.error.code, gh.json.error.code, 'socket and REST disagree on an unknown conversation');
    // the non-member does not see the group and got nothing
    const l = await api(server, 'GET', '/api/chat/conversations', { token: D.token });
    assert.deepEqual(l.json.conversations, []);
    const after = await emitAck(A.s, 'send_message', { conversationId: g._id, content: 'still private', type: 'text' });
    assert.equal(after.message.seq, 2, 'a refused send used up a seq');
    await gets(B.s, after.message._id, 'B');
    // A fence on D's own path: a direct message to D arrives after anything sent to D before.
    const fence = await emitAck(A.s, 'send_message', { recipientId: D.id, content: 'fence', type: 'text' });
    await gets(D.s, fence.message._id, 'D fence');
    assert.deepEqual(D.s.received.map((m) => m._id), [fence.message._id], 'non-member received group messages');
    // a member of a direct conversation is not a member of someone else's direct conversation
    const ab = await emitAck(A.s, 'send_message', { recipientId: B.id, content: 'dm', type: 'text' });
    const dm = await api(server, 'GET', `/api/chat/messages/${ab.message.conversationId}`, { token: C.token });
    assertApiError(dm, status, code, 'third party reading a direct conversation');
    const dmSend = await emitAck(C.s, 'send_message',
                                 { conversationId: ab.message.conversationId, content: 'x', type: 'text' });
    await assertRefused(C.s, dmSend, code, undefined, 'third party sending into a direct conversation');
});

test('bad group creation requests -> 400 BAD_REQUEST', async () => {
    const A = await user();
    const B = await user();
    const cases = [
        [{}, 'no participantIds'],
        [{ participantIds: 'abc' }, 'participantIds not an array'],
        [{ participantIds: [] }, 'empty participantIds'],
        [{ participantIds: [A.id] }, 'only the creator'],
        [{ participantIds: [B.id, 'bad id!'] }, 'bad charset'],
        [{ participantIds: [B.id, ''] }, 'empty id'],
        [{ participantIds: [B.id, 'x'.repeat(65)] }, '65-char id'],
        [{ participantIds: [B.id, 42] }, 'number id'],
        [{ participantIds: [B.id, newUserId()], title: 42 }, 'title not a string'],
    ];
    for (const [body, what] of cases) {
        const r = await api(server, 'POST', '/api/chat/conversations', { token: A.token, body });
        assertApiError(r, 400, 'BAD_REQUEST', what);
    }
    // docs/api.md: the 255 counts entries as given, before duplicates are removed.
    const ids = Array.from({ length: 200 }, () => newUserId());
    const dup = await api(server, 'POST', '/api/chat/conversations',
                          { token: A.token, body: { participantIds: [...ids, ...ids.slice(0, 56)] } });
    assertApiError(dup, 400, 'BAD_REQUEST', '256 entries, 200 distinct');
    assert.equal(dup.json.error.message, 'participantIds must be a non-empty array of user ids (at most 255)');
    const self = await api(server, 'POST', '/api/chat/conversations', { token: A.token, body: { participantIds: [A.id, A.id] } });
    assertApiError(self, 400, 'BAD_REQUEST', 'only yourself');
    assert.equal(self.json.error.message, 'participantIds must name someone besides you');
    const l = await api(server, 'GET', '/api/chat/conversations', { token: A.token });
    assert.deepEqual(l.json.conversations, [], 'a refused creation left a conversation behind');
});

// docs/api.md: a group has 2-256 members, and "a group of two is not the pair's one-to-one
// conversation".
test('a group of the creator and one other user is a group, not their one-to-one conversation', async () => {
    const [A, B] = [await user(), await user()];
    const direct = await emitAck(A.s, 'send_message', { recipientId: B.id, content: 'direct', type: 'text' });
    assert.equal(direct.ok, true, JSON.stringify(direct));
    const r = await createGroup(A, [B], 'pair');
    assert.equal(r.status, 201, r.text);
    assertConversation(r.json, { participants: [A.id, B.id], title: 'pair', lastMessage: null, unreadCount: 0 });
    assert.notEqual(r.json._id, direct.message.conversationId);
    const ack = await emitAck(A.s, 'send_message', { conversationId: r.json._id, content: 'in the pair group', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assertMessage(ack.message, { conversationId: r.json._id, seq: 1, sender: A.id, recipient: null, content: 'in the pair group' });
    assert.deepEqual(await gets(B.s, ack.message._id, 'B'), ack.message);
    const again = await createGroup(A, [B], 'pair');
    assert.equal(again.status, 201, again.text);
    assert.notEqual(again.json._id, r.json._id, 'each call creates a new group');
});

test('three members sending at once into a group: one seq order, no gaps, same for everyone', async () => {
    const [A, B, C] = [await user(), await user(), await user()];
    const g = (await createGroup(A, [B, C], 'race')).json;
    const N = 40;
    const sends = [];
    for (let i = 0; i < N; i++) {
        for (const [u, n] of [[A, 'a'], [B, 'b'], [C, 'c']]) {
            sends.push(u.s.timeout(20000).emitWithAck('send_message',
                                                     { conversationId: g._id, content: `${n}${i}`, type: 'text' }));
        }
    }
    const acks = await Promise.all(sends);
    assert.ok(acks.every((a) => a.ok), JSON.stringify(acks.find((a) => !a.ok)));
    assert.deepEqual(acks.map((a) => a.message.seq).sort((x, y) => x - y), Array.from({ length: 3 * N }, (_, i) => i + 1));
    for (const [u, n] of [[A, 'a'], [B, 'b'], [C, 'c']]) {
        await waitFor(() => u.s.received.length >= 2 * N, 10000, () => `${n} got ${u.s.received.length}`);
        const seqs = u.s.received.map((m) => m.seq);
        assert.deepEqual([...seqs].sort((x, y) => x - y), seqs, `${n} received out of seq order`);
        assert.ok(!u.s.received.some((m) => m.sender === u.id), `${n} got its own messages back`);
        // each sender's own messages keep their emission order
        for (const [v, m] of [[A, 'a'], [B, 'b'], [C, 'c']]) {
            if (v === u) continue;
            const mine = u.s.received.filter((x) => x.sender === v.id).map((x) => x.content);
            assert.deepEqual(mine, Array.from({ length: N }, (_, i) => `${m}${i}`));
        }
    }
    const h = await api(server, 'GET', `/api/chat/messages/${g._id}?limit=200`, { token: C.token });
    assert.deepEqual(h.json.messages.map((m) => m.seq), Array.from({ length: 3 * N }, (_, i) => i + 1));
});

// docs/api.md: a group has at most 256 members (participantIds 1-255 besides you). At the
// boundary, sends, receipts and typing reach every connected member, and one more is refused.
test('a group of 256 members: sends, receipts and typing reach every connected member; 257 is refused', async () => {
    const [A, B, C, D, E] = [await user(), await user(), await user(), await user(), await user()];
    const log = new Map(); // socket -> events
    for (const u of [A, B, C, D, E]) {
        log.set(u, []);
        u.s.onAny((event, arg) => log.get(u).push({ event, arg }));
    }
    const offline = Array.from({ length: 251 }, () => newUserId());
    const ids = [B.id, C.id, D.id, E.id, ...offline];
    const tooMany = await api(server, 'POST', '/api/chat/conversations',
                              { token: A.token, body: { participantIds: [...ids, newUserId()] } });
    assertApiError(tooMany, 400, 'BAD_REQUEST', '256 participantIds');
    const r = await api(server, 'POST', '/api/chat/conversations', { token: A.token, body: { participantIds: ids } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.participants.length, 256);
    const g = r.json._id;
    const ack = await emitAck(A.s, 'send_message', { conversationId: g, content: 'to 255 others', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    for (const [u, n] of [[B, 'B'], [C, 'C'], [D, 'D'], [E, 'E']]) assert.deepEqual(await gets(u.s, ack.message._id, n), ack.message);
    const read = await emitAck(B.s, 'mark_read', { conversationId: g, messageId: ack.message._id });
    assert.deepEqual(read, { ok: true, conversationId: g, seq: 1, unreadCount: 0 });
    const receipt = (u) => log.get(u).find((e) => e.event === 'messages_read');
    for (const u of [A, B, C, D, E]) {
        await waitFor(() => receipt(u), 3000, 'messages_read to every member');
        assert.equal(receipt(u).arg.readerId, B.id);
    }
    assert.deepEqual(await emitAck(C.s, 'typing', { conversationId: g, isTyping: true }), { ok: true });
    const typing = (u) => log.get(u).filter((e) => e.event === 'typing');
    for (const u of [A, B, D, E]) {
        await waitFor(() => typing(u).length === 1, 3000, 'typing to the other members');
        assert.deepEqual(typing(u)[0].arg, { conversationId: g, userId: C.id, isTyping: true });
    }
    // C's own sockets never get its typing: a fence on C's path (a message of D) comes first.
    const f = await emitAck(D.s, 'send_message', { conversationId: g, content: 'fence', type: 'text' });
    await gets(C.s, f.message._id, 'C fence');
    assert.deepEqual(typing(C), []);
    const h = await api(server, 'GET', `/api/chat/messages/${g}`, { token: E.token });
    assert.deepEqual(h.json.messages.map((m) => [m.seq, m.read]), [[1, true], [2, false]]);
});

// A member whose client stops reading (its WebSocket's TCP socket paused) while the others chat:
// the senders' acks and the other members' deliveries go on, the stalled member's connection
// is cut once --max-outbound-bytes of unsent bytes wait for it (nothing else grows), and it
// catches up over REST afterwards with nothing lost.
test('a member who stops reading is cut at --max-outbound-bytes; the others are unaffected, nothing is lost', async () => {
    const srv = await startServer({ args: ['--max-outbound-bytes', '65536', '--max-message-length', '60000'] });
    const sessions = async () => {
        const m = await (await fetch(`${srv.url}/metrics`)).text();
        return Number(/^parlor_engineio_sessions (\d+)$/m.exec(m)[1]);
    };
    const mk = async () => {
        const id = newUserId();
        const token = tokenFor(srv, id);
        return { id, token, s: await connectUser(srv, token) };
    };
    const [A, B, S] = [await mk(), await mk(), await mk()];
    try {
        const g = (await api(srv, 'POST', '/api/chat/conversations',
                             { token: A.token, body: { participantIds: [B.id, S.id] } })).json;
        assert.equal(await sessions(), 3);
        const raw = S.s.io.engine.transport.ws._socket;
        raw.pause();
        const N = 80; // 80 x 60,000 bytes: far more than the kernel buffers and the 64 KiB queue
        const acks = [];
        for (let i = 0; i < N; i++) {
            const ack = await A.s.timeout(20000).emitWithAck('send_message',
                { conversationId: g._id, content: `${i} ${'z'.repeat(59990)}`, type: 'text' });
            assert.equal(ack.ok, true, JSON.stringify(ack).slice(0, 200));
            acks.push(ack.message);
        }
        await waitFor(() => B.s.received.length === N, 20000, () => `B got ${B.s.received.length} of ${N}`);
        assert.deepEqual(B.s.received.map((m) => m.seq), acks.map((m) => m.seq));
        for (let t = 0; (await sessions()) !== 2; t++) {
            assert.ok(t < 200, 'the stalled member was not cut');
            await sleep(50);
        }
        assert.match(srv.stderr(), /outbound queue over 65536 bytes \(slow reader\), closing/);
        raw.resume();
        await waitFor(() => !S.s.connected, 10000, 'the stalled client did not see the cut');
        assert.ok(S.s.received.length < N, `the stalled member got all ${N} messages before the cut`);
        // It catches up over REST: every message, in order (one per page: a page is queued
        // whole, and a bigger one than --max-outbound-bytes would be cut too).
        const h = await fetchHistory(srv, S.token, g._id, 1);
        assert.deepEqual(h.messages.map((m) => m._id), acks.map((m) => m._id));
        // and the others still chat
        const after = await emitAck(B.s, 'send_message', { conversationId: g._id, content: 'still here', type: 'text' });
        assert.equal(after.message.seq, N + 1);
        await waitFor(() => A.s.received.some((m) => m._id === after.message._id), 3000, 'A after the cut');
    } finally {
        await closeAll([A.s, B.s, S.s]);
        await srv.stop();
    }
});

test('GET /api/chat/conversations/:id: the member\'s document as in the list; 404 alike for strangers and unknown ids', async () => {
    const [A, B, C] = [await user(), await user(), await user()];
    const g = await createGroup(A, [B], 'one of mine');
    assert.equal(g.status, 201, g.text);
    const sent = await emitAck(B.s, 'send_message', { conversationId: g.json._id, content: 'unread for A', type: 'text' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const one = await api(server, 'GET', `/api/chat/conversations/${g.json._id}`, { token: A.token });
    assert.equal(one.status, 200, one.text);
    assertConversationExact(one.json);
    const list = await api(server, 'GET', '/api/chat/conversations', { token: A.token });
    assert.deepEqual(one.json, list.json.conversations.find((c) => c._id === g.json._id));
    assert.equal(one.json.unreadCount, 1);
    const stranger = await api(server, 'GET', `/api/chat/conversations/${g.json._id}`, { token: C.token });
    const unknown = await api(server, 'GET', `/api/chat/conversations/${'0'.repeat(24)}`, { token: C.token });
    for (const r of [stranger, unknown]) assertApiError(r, 404, 'NOT_FOUND');
    assert.equal(stranger.text, unknown.text, 'a stranger cannot tell an existing conversation from none');
    assertApiError(await api(server, 'GET', '/api/chat/conversations/nothex', { token: A.token }), 400, 'BAD_REQUEST');
    assertApiError(await api(server, 'GET', `/api/chat/conversations/${g.json._id}`, {}), 401, ['UNAUTHORIZED', 'AUTH_REQUIRED', 'AUTH_INVALID']);
    const wrong = await api(server, 'DELETE', `/api/chat/conversations/${g.json._id}`, { token: A.token });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
});

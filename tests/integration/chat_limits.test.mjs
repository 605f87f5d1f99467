// Rate limits and connection limits, each on its own server with small bounds: messages per
// user (socket and REST share one bucket; a refused message is not stored), REST requests per
// user, new connections per IP per window, concurrent connections per IP and per user. Each
// limit refuses past its bound, tells when to retry, and lets the client back in afterwards.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, connectUser, connectRefused, emitAck, api, assertApiError, assertRefused, tokenFor,
    newUserId, fetchHistory, waitFor, sleep, closeAll, clients,
} from './chat_helpers.mjs';

let servers = [];
afterEach(async () => {
    await closeAll(clients.splice(0));
    for (const s of servers) await s.stop();
    servers = [];
});
async function serve(args, opts = {}) {
    const s = await startServer({ args, ...opts });
    servers.push(s);
    return s;
}
function person(srv) {
    const id = newUserId();
    return { id, token: tokenFor(srv, id) };
}

// Retry-After is whole seconds (RFC 9110: delay-seconds), at least 1.
function assertRetryAfter(res, maxS, what) {
    const ra = res.headers.get('retry-after');
    assert.ok(ra !== null, `${what}: no Retry-After header`);
    assert.match(ra, /^\d+$/, `${what}: Retry-After ${ra}`);
    assert.ok(Number(ra) >= 1 && Number(ra) <= maxS, `${what}: Retry-After ${ra} not in 1..${maxS}`);
    return Number(ra);
}
function assertRetryAfterMs(err, maxMs, what) {
    assert.ok(Number.isInteger(err.retryAfterMs), `${what}: retryAfterMs ${JSON.stringify(err)}`);
    assert.ok(err.retryAfterMs >= 1 && err.retryAfterMs <= maxMs, `${what}: retryAfterMs ${err.retryAfterMs} not in 1..${maxMs}`);
    return err.retryAfterMs;
}
// Send `n` messages at once (no awaiting in between) and resolve their acks.
function burst(sock, to, n, tag) {
    return Promise.all(Array.from({ length: n }, (_, i) => emitAck(sock, 'send_message',
        { recipientId: to, content: `${tag} ${i}`, type: 'text', clientMsgId: `${tag}-${i}` })));
}
// A raw Engine.IO polling handshake (what socket.io-client does first with default options).
function handshake(srv) {
    return api(srv, 'GET', '/socket.io/?EIO=4&transport=polling');
}

test('messages per user: the burst passes, the next send is RATE_LIMITED over the socket and REST, not stored, and recovers', async () => {
    const RATE = 2; // per second: one token every 500 ms (slack for slow sanitizer runs)
    const BURST = 3;
    const srv = await serve(['--rate-messages-per-s', String(RATE), '--rate-messages-burst', String(BURST)]);
    const [A, B, C] = [person(srv), person(srv), person(srv)];
    const a = await connectUser(srv, A.token);
    const b = await connectUser(srv, B.token);
    const c = await connectUser(srv, C.token);
    const a2 = await connectUser(srv, A.token); // A's second tab
    const acks = await burst(a, B.id, BURST + 2, 'm');
    const okAcks = acks.filter((x) => x.ok);
    assert.equal(okAcks.length, BURST, `of ${BURST + 2} sends at once ${okAcks.length} passed (burst ${BURST}): ${JSON.stringify(acks.map((x) => x.ok || x.error.code))}`);
    const refused = acks.map((x, i) => [x, i]).filter(([x]) => !x.ok);
    for (const [x, i] of refused) {
        const err = await assertRefused(a, x, 'RATE_LIMITED', `m-${i}`, `send ${i} past the burst`);
        assertRetryAfterMs(x.error, Math.ceil(1000 / RATE) + 50, `ack of send ${i}`);
        assert.equal(err.code, 'RATE_LIMITED');
    }
    const cid = okAcks[0].message.conversationId;
    // REST shares the bucket
    let r = await api(srv, 'POST', '/api/chat/messages',
                      { token: A.token, body: { recipientId: B.id, content: 'rest', type: 'text', clientMsgId: 'rest-1' } });
    assertApiError(r, 429, 'RATE_LIMITED', 'REST send with an empty bucket');
    assertRetryAfter(r, 1, 'REST send');
    assertRetryAfterMs(r.json.error, Math.ceil(1000 / RATE) + 50, 'REST send body');
    // and so does the user's other socket
    const tab2 = await emitAck(a2, 'send_message', { recipientId: B.id, content: 'tab 2', type: 'text', clientMsgId: 'tab2-1' });
    await assertRefused(a2, tab2, 'RATE_LIMITED', 'tab2-1', 'send from the user\'s other socket');
    // right after retryAfterMs one more message passes (the rate), the one after it does not
    await sleep(r.json.error.retryAfterMs + 20);
    let ack = await emitAck(a, 'send_message', { recipientId: B.id, content: 'after wait', type: 'text', clientMsgId: 'late-1' });
    assert.equal(ack.ok, true, `still limited after retryAfterMs: ${JSON.stringify(ack)}`);
    assert.equal(ack.message.seq, BURST + 1, 'seq after refusals has a gap');
    ack = await emitAck(a, 'send_message', { recipientId: B.id, content: 'too soon', type: 'text', clientMsgId: 'late-2' });
    await assertRefused(a, ack, 'RATE_LIMITED', 'late-2', 'right after the refill');
    // the limit is per user: C is not affected
    const cAck = await emitAck(c, 'send_message', { recipientId: B.id, content: 'other user', type: 'text' });
    assert.equal(cAck.ok, true, `another user was limited: ${JSON.stringify(cAck)}`);
    // nothing refused was stored or delivered
    await sleep(200);
    const seen = b.received.filter((m) => m.sender === A.id).map((m) => m.clientMsgId).sort();
    assert.deepEqual(seen, [...okAcks.map((x) => x.message.clientMsgId), 'late-1'].sort(), 'B received a refused message');
    let h = await fetchHistory(srv, A.token, cid);
    assert.deepEqual(h.messages.map((m) => m.clientMsgId), [...okAcks.map((x) => x.message.clientMsgId), 'late-1'],
                     'refused messages were stored');
    // after a full burst's worth of time the whole burst is back, over REST as well
    await sleep(Math.ceil(BURST * 1000 / RATE) + 100);
    for (let i = 0; i < BURST; i++) {
        r = await api(srv, 'POST', '/api/chat/messages',
                      { token: A.token, body: { recipientId: B.id, content: `refilled ${i}`, type: 'text' } });
        assert.equal(r.status, 201, `REST send ${i} after the refill: ${r.text}`);
    }
    r = await api(srv, 'POST', '/api/chat/messages', { token: A.token, body: { recipientId: B.id, content: 'over', type: 'text' } });
    assertApiError(r, 429, 'RATE_LIMITED', 'REST send past the refilled burst');
    h = await fetchHistory(srv, A.token, cid);
    assert.deepEqual(h.messages.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7], 'history after the refill');
});

test('messages per user with the defaults (10/s, burst 30), and 0 lifts the limit', async () => {
    let srv = await serve([], { limits: true });
    const [A, B] = [person(srv), person(srv)];
    let a = await connectUser(srv, A.token);
    const acks = await burst(a, B.id, 36, 'd');
    const ok = acks.filter((x) => x.ok).length;
    assert.ok(ok >= 30 && ok <= 31, `${ok} of 36 sends at once passed with the default burst of 30`);
    for (const x of acks.filter((y) => !y.ok)) {
        assert.equal(x.error.code, 'RATE_LIMITED', JSON.stringify(x));
        assertRetryAfterMs(x.error, 150, 'default rate retryAfterMs');
    }
    a.disconnect();
    await sleep(100);
    await srv.stop();
    servers = [];
    srv = await serve(['--rate-messages-per-s', '0', '--rate-messages-burst', '1']);
    const A2 = person(srv);
    a = await connectUser(srv, A2.token);
    const all = await burst(a, newUserId(), 50, 'u');
    assert.deepEqual(all.filter((x) => !x.ok), [], 'rate-messages-per-s 0 still limited');
});

test('REST requests per user: 429 with Retry-After past the burst, per user, and back after the window', async () => {
    // One token a second: the burst of 5 requests has a whole second (not 400 ms) before a
    // token comes back, which holds under ASan on 2 cores too.
    const RATE = 1;
    const BURST = 3;
    const srv = await serve(['--rate-rest-per-s', String(RATE), '--rate-rest-burst', String(BURST)]);
    const [A, B] = [person(srv), person(srv)];
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: BURST + 2 }, () => api(srv, 'GET', '/api/chat/conversations', { token: A.token })));
    assert.ok(Date.now() - t0 < 1000 / RATE - 100, 'the burst took too long to test the limit');
    const codes = rs.map((r) => r.status);
    assert.deepEqual(codes.filter((c) => c === 200).length, BURST, `statuses of ${BURST + 2} requests at once: ${codes}`);
    for (const r of rs.filter((x) => x.status !== 200)) {
        assertApiError(r, 429, 'RATE_LIMITED', 'REST past the burst');
        assertRetryAfter(r, 1, 'REST');
        assertRetryAfterMs(r.json.error, Math.ceil(1000 / RATE) + 50, 'REST');
    }
    // other endpoints share the bucket
    assertApiError(await api(srv, 'GET', `/api/chat/users/${B.id}/status`, { token: A.token }), 429, 'RATE_LIMITED', 'status endpoint');
    // another user is not affected, and A's socket still works
    const other = await api(srv, 'GET', '/api/chat/conversations', { token: B.token });
    assert.equal(other.status, 200, `another user was limited: ${other.text}`);
    const a = await connectUser(srv, A.token);
    const ack = await emitAck(a, 'send_message', { recipientId: B.id, content: 'socket still works', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    // after the window the burst is back
    const wait = rs.find((r) => r.status === 429).json.error.retryAfterMs;
    await sleep(wait + 20);
    let r = await api(srv, 'GET', '/api/chat/conversations', { token: A.token });
    assert.equal(r.status, 200, `still limited after retryAfterMs ${wait}: ${r.text}`);
    await sleep(Math.ceil(BURST * 1000 / RATE) + 100);
    const again = await Promise.all(Array.from({ length: BURST }, () => api(srv, 'GET', '/api/chat/conversations', { token: A.token })));
    assert.deepEqual(again.map((x) => x.status), Array(BURST).fill(200), 'the burst did not come back');
    r = await api(srv, 'GET', '/api/chat/conversations', { token: A.token });
    assertApiError(r, 429, 'RATE_LIMITED', 'past the refilled burst');
});

test('new connections per IP per window: refused at the handshake (connect_error, HTTP 429), back after the window', async () => {
    // One connection back every 2 s: three connections have well over a second, not 500 ms.
    const PER_WINDOW = 3;
    const WINDOW_S = 6;
    const srv = await serve(['--rate-connections-per-ip', String(PER_WINDOW), '--rate-connections-window-s', String(WINDOW_S)]);
    const t0 = Date.now();
    const socks = [];
    for (let i = 0; i < PER_WINDOW; i++) socks.push(await connectUser(srv, person(srv).token));
    assert.ok(Date.now() - t0 < WINDOW_S * 1000 / PER_WINDOW - 150, 'connecting took too long to test the limit');
    const err = await connectRefused(srv, { auth: { token: person(srv).token } });
    assert.ok(err instanceof Error, 'connect_error');
    assert.ok(!socks.some((s) => !s.connected), 'an admitted socket was dropped');
    for (const transport of ['polling', 'websocket']) {
        const e = await connectRefused(srv, { auth: { token: person(srv).token }, transports: [transport] });
        assert.ok(e instanceof Error, `connect_error over ${transport}`);
    }
    const r = await handshake(srv);
    assertApiError(r, 429, 'RATE_LIMITED', 'polling handshake past the limit');
    assertRetryAfter(r, WINDOW_S, 'handshake');
    // REST is not a Socket.IO connection
    const p = person(srv);
    assert.equal((await api(srv, 'GET', '/api/chat/conversations', { token: p.token })).status, 200);
    // the admitted sockets still work
    const ack = await emitAck(socks[0], 'send_message', { recipientId: newUserId(), content: 'still here', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    // a whole window later the full allowance is back
    await sleep(WINDOW_S * 1000 + 100 - (Date.now() - t0));
    for (let i = 0; i < PER_WINDOW; i++) socks.push(await connectUser(srv, person(srv).token));
    await connectRefused(srv, { auth: { token: person(srv).token } });
    const h = await handshake(srv);
    assert.equal(h.status, 429, `handshake past the refilled allowance: ${h.status} ${h.text}`);
});

test('concurrent connections per IP: refused while at the bound, admitted again when one closes', async () => {
    const MAX = 2;
    const srv = await serve(['--max-connections-per-ip', String(MAX)]);
    const socks = [];
    // the default transports: a polling handshake upgraded to WebSocket is one connection
    const first = await connectUser(srv, person(srv).token, { transports: ['polling', 'websocket'] });
    await waitFor(() => first.io.engine.transport.name === 'websocket', 3000, 'upgrade to websocket');
    socks.push(first);
    for (let i = 1; i < MAX; i++) socks.push(await connectUser(srv, person(srv).token));
    await connectRefused(srv, { auth: { token: person(srv).token } });
    const r = await handshake(srv);
    assertApiError(r, 429, 'RATE_LIMITED', 'polling handshake at the bound');
    assertRetryAfter(r, 60, 'handshake at the bound');
    // REST is not a Socket.IO connection
    const p = person(srv);
    assert.equal((await api(srv, 'GET', '/api/chat/conversations', { token: p.token })).status, 200);
    socks[0].disconnect();
    // the server sees the close shortly; then one (and only one) new connection is admitted
    let admitted = null;
    const deadline = Date.now() + 3000;
    while (!admitted && Date.now() < deadline) {
        try {
            admitted = await connectUser(srv, p.token);
        } catch {
            await sleep(50);
        }
    }
    assert.ok(admitted, 'no connection admitted after one of the two closed');
    await connectRefused(srv, { auth: { token: person(srv).token } });
    // a polling handshake that never upgrades holds its slot too, and releases it when it closes
    admitted.disconnect();
    await sleep(200);
    const hs = await handshake(srv);
    assert.equal(hs.status, 200, `handshake after a close: ${hs.status} ${hs.text}`);
    await connectRefused(srv, { auth: { token: person(srv).token } });
});

test('concurrent sockets per user: connect_error rate_limited / RATE_LIMITED past the bound, per user', async () => {
    const MAX = 2;
    const srv = await serve(['--max-connections-per-user', String(MAX)]);
    const A = person(srv);
    const socks = [];
    for (let i = 0; i < MAX; i++) socks.push(await connectUser(srv, A.token));
    for (let i = 0; i < 2; i++) {
        const err = await connectRefused(srv, { auth: { token: A.token } });
        assert.equal(err.message, 'rate_limited', `connect_error message: ${err.message} ${JSON.stringify(err.data)}`);
        assert.equal(err.data?.code, 'RATE_LIMITED', `connect_error data: ${JSON.stringify(err.data)}`);
    }
    // other users are not affected
    const B = person(srv);
    const b = await connectUser(srv, B.token);
    assert.ok(b.connected);
    // the admitted sockets of A still work
    const ack = await emitAck(socks[1], 'send_message', { recipientId: B.id, content: 'hi', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    await waitFor(() => b.received.some((m) => m._id === ack.message._id), 3000, 'delivery');
    // one closes: A may connect once more, not twice
    socks[0].disconnect();
    let again = null;
    const deadline = Date.now() + 3000;
    while (!again && Date.now() < deadline) {
        try {
            again = await connectUser(srv, A.token);
        } catch {
            await sleep(50);
        }
    }
    assert.ok(again, 'A could not reconnect after closing one of its sockets');
    const err = await connectRefused(srv, { auth: { token: A.token } });
    assert.equal(err.message, 'rate_limited');
    // churn: every closed socket gives its slot back
    socks[1].disconnect();
    again.disconnect();
    for (let i = 0; i < 6; i++) {
        let s = null;
        const until = Date.now() + 3000;
        while (!s && Date.now() < until) {
            try {
                s = await connectUser(srv, A.token);
            } catch {
                await sleep(50);
            }
        }
        assert.ok(s, `churn round ${i}: no slot for A`);
        s.disconnect();
    }
    const final = [];
    const until = Date.now() + 3000;
    while (final.length < MAX && Date.now() < until) {
        try {
            final.push(await connectUser(srv, A.token));
        } catch {
            await sleep(50);
        }
    }
    assert.equal(final.length, MAX, 'slots leaked by connect/disconnect churn');
});

// Hardening of the chat layer (issue 11): recovery replays that starve nobody and stop at a
// bound, a budget for every client event, presence only for those who were written to, and
// refusal log lines that a client cannot multiply.
//
// Every test here also runs against a build without these fixes (PARLOR_BIN=<old build>) and
// fails there: the new options are given through PARLOR_* environment variables, which an
// older binary ignores, never as flags it would refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import {
    startServer, connectLogged, emitAck, api, tokenFor, newUserId, waitFor, sleep, closeAll,
    NO_LIMITS, HOST,
} from './chat_helpers.mjs';
import { connectTcp, procKiB, wsEncodeFrame } from './helpers.mjs';
import { randomBytes } from 'node:crypto';

// The limits lifted with flags every build knows; the new ones go through the environment.
const OLD_FLAGS = NO_LIMITS.filter((f, i, a) => f !== '--rate-events-per-s' && a[i - 1] !== '--rate-events-per-s');
const start = (env = {}, args = []) => startServer({ limits: true, args: [...OLD_FLAGS, ...args],
                                                     env: { PARLOR_RATE_EVENTS_PER_S: '0', ...env } });

function person(srv) {
    const id = newUserId();
    return { id, token: tokenFor(srv, id) };
}

async function sendAck(sock, body) {
    const ack = await emitAck(sock, 'send_message', { type: 'text', ...body });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return ack.message;
}

// n messages from `from` to `to` as fast as the server takes them (windows of 200 in flight).
async function flood(sock, to, n, tag = 'm', pad = '') {
    let last;
    for (let i = 0; i < n; i += 200) {
        const k = Math.min(200, n - i);
        const acks = await Promise.all(Array.from({ length: k }, (_, j) =>
            sock.timeout(30000).emitWithAck('send_message', { type: 'text', recipientId: to, content: `${tag} ${i + j}${pad}` })));
        for (const a of acks) assert.equal(a.ok, true, JSON.stringify(a));
        last = acks[acks.length - 1].message;
    }
    return last;
}

const rssKb = (srv, field = 'VmRSS') => procKiB(srv, field);

// An ASan build (its quarantine keeps freed memory resident, so RSS bounds do not apply).
const sanitized = (srv) => readFileSync(`/proc/${srv.proc.pid}/maps`, 'utf8').includes('libasan');

// ---------------------------------------------------------------- finding 7: recovery

// A socket of `user` that asks to be recovered from offset 0 and then never reads: raw TCP,
// WebSocket upgrade and the Socket.IO CONNECT written at once, then the stream is paused.
async function silentRecoverer(srv, token, pid) {
    const sock = await connectTcp(srv.port);
    const key = randomBytes(16).toString('base64');
    sock.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${HOST}:${srv.port}\r\n` +
               'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
               `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    sock.write(wsEncodeFrame(1, `40${JSON.stringify({ token, pid, offset: '0' })}`));
    sock.on('error', () => {});
    let got = 0;
    await new Promise((resolve) => {
        const stop = () => {
            sock.pause();
            resolve();
        };
        const timer = setTimeout(stop, 2000);
        sock.on('data', (d) => {
            got += d.length;
            if (got > 1000) { // the CONNECT answer and the first replayed messages
                clearTimeout(timer);
                stop();
            }
        });
    });
    return sock;
}

test('recovery replays run beside the writer, paced to the reader: 20 silent replays of a long history hold neither acks nor memory', async () => {
    // 8,000 messages of 2 kB: 17 MB for each socket, more than the kernel's buffers and the
    // 8 MB a connection may have queued.
    const N = 8000;
    const srv = await start({ PARLOR_RECOVERY_MAX_MESSAGES: String(10 * N) });
    const raw = [];
    try {
        const U = person(srv);
        const P = person(srv);
        const p = await connectLogged(srv, P.token);
        await flood(p, U.id, N, 'm', ' '.repeat(2000));
        const u0 = await connectLogged(srv, U.token);
        const pid = u0._pid;
        u0.disconnect();
        await sleep(100);
        writeFileSync(`/proc/${srv.proc.pid}/clear_refs`, '5'); // VmHWM := VmRSS
        const rss0 = rssKb(srv);
        // 20 sockets of U reconnect as if they had seen nothing, and then read nothing.
        for (let i = 0; i < 20; i++) raw.push(await silentRecoverer(srv, U.token, pid));
        // Meanwhile, two other users talk: every ack must come back promptly.
        const V = person(srv);
        const W = person(srv);
        const v = await connectLogged(srv, V.token);
        const lat = [];
        for (let i = 0; i < 10; i++) {
            const t = Date.now();
            await sendAck(v, { recipientId: W.id, content: `beside the replay ${i}` });
            lat.push(Date.now() - t);
        }
        await sleep(500);
        const peak = rssKb(srv, 'VmHWM');
        console.log(`# acks beside 20 silent replays of ${N}: ${lat.join(' ')} ms; RSS ${rss0} kB, peak ${peak} kB`);
        assert.ok(Math.max(...lat) < 3000, `send_message acks took ${lat.join(', ')} ms while sockets replayed`);
        // Under ASan freed memory sits in its quarantine: RSS says nothing there.
        if (!sanitized(srv)) assert.ok(peak - rss0 < 64 * 1024, `peak RSS grew by ${peak - rss0} kB with 20 replays queued on sockets that do not read`);
        // Two well-behaved sockets replay everything, in order, once, then go on live.
        const good = [];
        for (let i = 0; i < 2; i++) good.push(await connectLogged(srv, U.token, { auth: { token: U.token, pid, offset: '0' } }));
        for (const s of good) assert.equal(s._pid, pid, 'a recoverable session was not recovered (a new pid)');
        await waitFor(() => good.every((s) => s.received.length >= N), 30000,
                      () => `replayed: ${good.map((s) => s.received.length).join(',')}`);
        const live = await sendAck(p, { recipientId: U.id, content: 'live after the replay' });
        await waitFor(() => good.every((s) => s.received.some((m) => m._id === live._id)), 10000, 'live message');
        for (const s of good) {
            assert.deepEqual(s.received.map((m) => m.seq), Array.from({ length: N + 1 }, (_, i) => i + 1),
                             'replay then live: in order, once');
        }
        await closeAll([...good, p, v]);
    } finally {
        for (const r of raw) r.destroy();
        await sleep(100);
        await srv.stop();
    }
});

test('past --recovery-max-messages a session is not recovered: a new pid, nothing replayed (REST catch-up); at the bound it is', async () => {
    const srv = await start({ PARLOR_RECOVERY_MAX_MESSAGES: '50' });
    try {
        const U = person(srv);
        const X = person(srv);
        const P = person(srv);
        const p = await connectLogged(srv, P.token);
        const u0 = await connectLogged(srv, U.token);
        const pidU = u0._pid;
        u0.disconnect();
        await flood(p, U.id, 60, 'for U');
        // 60 committed since U's session started: more than 50, so U starts afresh.
        const u = await connectLogged(srv, U.token, { auth: { token: U.token, pid: pidU } });
        assert.notEqual(u._pid, pidU, 'a session 60 messages behind was recovered');
        const fence = await sendAck(p, { recipientId: U.id, content: 'fence' });
        await waitFor(() => u.received.some((m) => m._id === fence._id), 5000, 'the fence');
        assert.deepEqual(u.received.map((m) => m._id), [fence._id], 'messages were replayed to a session that was not recovered');
        // The same from offset 0, explicitly.
        const u2 = await connectLogged(srv, U.token, { auth: { token: U.token, pid: pidU, offset: '0' } });
        assert.notEqual(u2._pid, pidU);
        // X, 50 messages behind (exactly the bound), is recovered with all of them.
        const x0 = await connectLogged(srv, X.token);
        const pidX = x0._pid;
        x0.disconnect();
        await flood(p, X.id, 50, 'for X');
        const x = await connectLogged(srv, X.token, { auth: { token: X.token, pid: pidX } });
        assert.equal(x._pid, pidX, 'a session 50 messages behind was not recovered');
        await waitFor(() => x.received.length >= 50, 5000, () => `X got ${x.received.length} of 50`);
        assert.deepEqual(x.received.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 1));
        await closeAll([p, u, u2, x]);
    } finally {
        await srv.stop();
    }
});

// ---------------------------------------------------------------- finding 8: events

async function storeWrites(srv) {
    const r = await api(srv, 'GET', '/metrics');
    return Number(/parlor_store_writes_total (\d+)/.exec(r.text)[1]);
}

test('every event of a socket, of any name, spends its budget: refused RATE_LIMITED exactly past the burst', async () => {
    // 20 at once, then 1 per second: of 30 events sent at once, 10 are refused (9 if the
    // sending took more than a second).
    const srv = await start({ PARLOR_RATE_EVENTS_PER_S: '1', PARLOR_RATE_EVENTS_BURST: '20', PARLOR_EVENTS_FLOOD_DISCONNECT: '0' });
    try {
        const A = person(srv);
        const kinds = [['get_status', { userIds: [A.id] }], ['typing', { conversationId: '0'.repeat(24), isTyping: true }],
                       ['no_such_event', {}], ['mark_read', { messageId: '0'.repeat(24) }],
                       ['send_message', { recipientId: 'nobody-here', content: '' }]];
        for (const [event, arg] of kinds) {
            const a = await connectLogged(srv, A.token); // a fresh budget for each kind
            const acks = await Promise.all(Array.from({ length: 30 }, () => a.timeout(10000).emitWithAck(event, arg)));
            const limited = acks.filter((x) => x.ok === false && x.error.code === 'RATE_LIMITED');
            assert.ok(limited.length >= 9 && limited.length <= 10,
                      `${event}: ${limited.length} of 30 refused RATE_LIMITED (want 10, or 9 after a refill): ${JSON.stringify(acks.slice(-1))}`);
            for (const x of limited) assert.ok(Number.isInteger(x.error.retryAfterMs) && x.error.retryAfterMs > 0, JSON.stringify(x));
            await waitFor(() => a.errors.filter((e) => e.code === 'RATE_LIMITED').length >= limited.length, 3000, 'message_error RATE_LIMITED');
            a.disconnect();
        }
    } finally {
        await srv.stop();
    }
});

test('a socket that keeps flooding past its budget is disconnected; one that slows down is not', async () => {
    const srv = await start({ PARLOR_RATE_EVENTS_PER_S: '5', PARLOR_RATE_EVENTS_BURST: '10', PARLOR_EVENTS_FLOOD_DISCONNECT: '100' });
    try {
        const A = person(srv);
        const a = await connectLogged(srv, A.token);
        let gone = false;
        a.on('disconnect', () => { gone = true; });
        for (let i = 0; i < 500; i++) a.emit('typing', { conversationId: '0'.repeat(24), isTyping: true });
        await waitFor(() => gone, 5000, 'the flooding socket was not disconnected');
        // A socket refused a few times that then waits is served again.
        const b = await connectLogged(srv, A.token);
        const acks = await Promise.all(Array.from({ length: 20 }, () => b.timeout(5000).emitWithAck('get_status', { userIds: [] })));
        assert.ok(acks.some((x) => x.ok === false));
        await sleep(1200);
        const again = await b.timeout(5000).emitWithAck('get_status', { userIds: [] });
        assert.equal(again.ok, true, JSON.stringify(again));
        assert.equal(b.connected, true);
        b.disconnect();
    } finally {
        await srv.stop();
    }
});

test('a mark_read that cannot move the watermark never reaches the store', async () => {
    const srv = await start();
    try {
        const A = person(srv);
        const B = person(srv);
        const a = await connectLogged(srv, A.token);
        const b = await connectLogged(srv, B.token);
        const m1 = await sendAck(b, { recipientId: A.id, content: 'one' });
        const m2 = await sendAck(b, { recipientId: A.id, content: 'two' });
        const first = await emitAck(a, 'mark_read', { messageId: m2._id });
        assert.equal(first.ok, true, JSON.stringify(first));
        assert.equal(first.seq, 2);
        await emitAck(a, 'mark_read', { messageId: m1._id }); // learns m1's seq (does not move)
        const w0 = await storeWrites(srv);
        // 2,000 repeats of both, then a fence with an ack.
        for (let i = 0; i < 1000; i++) {
            a.emit('mark_read', { messageId: m2._id });
            a.emit('mark_read', { messageId: m1._id, conversationId: m1.conversationId });
        }
        const fence = await emitAck(a, 'mark_read', { messageId: m2._id });
        assert.deepEqual(fence, { ok: true, conversationId: m2.conversationId, seq: 2, unreadCount: 0 });
        const writes = (await storeWrites(srv)) - w0;
        assert.ok(writes <= 2, `${writes} store writes for 2,001 mark_read that moved nothing`);
        // A new message: the watermark can move again, and it does.
        const m3 = await sendAck(b, { recipientId: A.id, content: 'three' });
        const stale = await emitAck(a, 'mark_read', { messageId: m2._id });
        assert.deepEqual(stale, { ok: true, conversationId: m2.conversationId, seq: 2, unreadCount: 1 });
        const moved = await emitAck(a, 'mark_read', { messageId: m3._id });
        assert.deepEqual(moved, { ok: true, conversationId: m3.conversationId, seq: 3, unreadCount: 0 });
        // A wrong conversationId for a known message still gets the store's NOT_FOUND.
        const wrong = await emitAck(a, 'mark_read', { messageId: m2._id, conversationId: 'f'.repeat(24) });
        assert.equal(wrong.ok, false);
        assert.equal(wrong.error.code, 'NOT_FOUND');
        await closeAll([a, b]);
    } finally {
        await srv.stop();
    }
});

// ---------------------------------------------------------------- finding 9: presence

test('presence is shown only to those a user has written to: a stranger who opens a conversation sees nothing', async () => {
    const srv = await start({}, ['--presence-grace-ms', '0']);
    try {
        const S = person(srv); // the stranger
        const V = person(srv); // the victim
        const G = person(srv); // a friend of S (has written to S): a fence for user_status
        const s = await connectLogged(srv, S.token);
        const g0 = await connectLogged(srv, G.token);
        await sendAck(g0, { recipientId: S.id, content: 'hi S' });
        g0.disconnect();
        const conv = await api(srv, 'POST', '/api/chat/conversations', { token: S.token, body: { participantIds: [V.id] } });
        assert.ok([200, 201].includes(conv.status), conv.text);
        const v = await connectLogged(srv, V.token);
        const g = await connectLogged(srv, G.token);
        await waitFor(() => s.events('user_status').some((e) => e.userId === G.id && e.status === 'online'), 5000, 'the fence (G online)');
        await sleep(200);
        const hidden = { userId: V.id, status: 'offline', lastSeen: null };
        assert.deepEqual(s.events('user_status').filter((e) => e.userId === V.id), [], 'the stranger was told the victim came online');
        const st = await emitAck(s, 'get_status', { userIds: [V.id, S.id] });
        assert.equal(st.ok, true);
        assert.deepEqual(st.statuses[0], hidden, 'get_status showed the victim to a stranger');
        assert.equal(st.statuses[1].status, 'online', 'a user sees their own status');
        const rest = await api(srv, 'GET', `/api/chat/users/${V.id}/status`, { token: S.token });
        assert.equal(rest.status, 200, rest.text);
        assert.deepEqual(rest.json, hidden, 'REST status showed the victim to a stranger');
        // The victim sees the stranger no more than the other way round.
        const vs = await emitAck(v, 'get_status', { userIds: [S.id] });
        assert.deepEqual(vs.statuses[0], { userId: S.id, status: 'offline', lastSeen: null });
        // Once the victim writes to the stranger, the stranger may see the victim (not the reverse).
        await sendAck(v, { conversationId: conv.json._id, content: 'who are you?' });
        const now = await emitAck(s, 'get_status', { userIds: [V.id] });
        assert.equal(now.statuses[0].status, 'online', JSON.stringify(now));
        const rest2 = await api(srv, 'GET', `/api/chat/users/${V.id}/status`, { token: S.token });
        assert.equal(rest2.json.status, 'online');
        const vs2 = await emitAck(v, 'get_status', { userIds: [S.id] });
        assert.equal(vs2.statuses[0].status, 'offline', 'the victim sees a stranger who never wrote');
        // ... and is told when the victim goes.
        v.disconnect();
        await waitFor(() => s.events('user_status').some((e) => e.userId === V.id && e.status === 'offline'), 5000, 'user_status offline of V');
        await closeAll([s, g]);
    } finally {
        await srv.stop();
    }
});

// ---------------------------------------------------------------- finding 12: log lines

test('refused handshakes are logged once per interval with a count, not once each', async () => {
    const srv = await startServer({ limits: true, args: ['--rate-connections-per-ip', '3', '--rate-connections-window-s', '600'] });
    try {
        const statuses = [];
        for (let i = 0; i < 300; i += 30) {
            const batch = await Promise.all(Array.from({ length: 30 }, () =>
                fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(10000) })
                    .then(async (r) => { await r.arrayBuffer(); return r.status; })));
            statuses.push(...batch);
        }
        const refused = statuses.filter((x) => x === 429).length;
        assert.ok(refused >= 290, `only ${refused} of 300 handshakes were refused`);
        const lines = srv.stderr().split('\n').filter((l) => /refused/.test(l));
        assert.ok(lines.length <= 2, `${lines.length} log lines for ${refused} refusals:\n${lines.slice(0, 5).join('\n')}`);
    } finally {
        await srv.stop();
    }
});

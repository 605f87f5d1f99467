// Connection state recovery with socket.io-client 4.x: the CONNECT reply carries a pid, each
// receive_message an offset; a client that really was disconnected while messages were
// committed gets every one of them on reconnect, in order and once, with socket.recovered ===
// true — also across a server restart (SIGTERM or kill -9) on the same data directory and port.
//
// To know that the client was disconnected while the messages were committed, its auth is a
// function that holds the CONNECT packet of the reconnection until the test opens a gate: the
// Engine.IO transport may come back by itself, but the Socket.IO session only after the sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
    startServer, connectLogged, emitAck, api, tokenFor, newUserId, newSecret, mkDataDir,
    assertMessage, waitFor, sleep, once, serverPerFile,
} from './chat_helpers.mjs';

let server;
const open = serverPerFile({}, (s) => (server = s));

function person(srv = server) {
    const id = newUserId();
    return { id, token: tokenFor(srv, id) };
}

// A socket that reconnects by itself; its CONNECT waits for gate.open() when gate.close() was
// called. sock.connects counts 'connect' events.
async function recoverable(srv, token, extra = {}) {
    let release = null;
    let held = Promise.resolve();
    const gate = {
        close() {
            held = new Promise((r) => {
                release = r;
            });
        },
        open() {
            if (release) release();
            release = null;
        },
        waiting: false,
    };
    const sock = await connectLogged(srv, token, {
        reconnection: true,
        reconnectionDelay: 50,
        reconnectionDelayMax: 200,
        randomizationFactor: 0,
        auth: (cb) => {
            gate.waiting = true;
            held.then(() => {
                gate.waiting = false;
                cb({ token });
            });
        },
        ...extra,
    });
    open.push(sock);
    sock.srv = srv;
    sock.userId = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).sub;
    sock.gate = gate;
    sock.connects = 1;
    sock.on('connect', () => sock.connects++);
    return sock;
}

// Cut the client's transport without a goodbye (what a network drop looks like to the client).
function dropTransport(sock) {
    const t = sock.io.engine.transport;
    if (t.ws && typeof t.ws.terminate === 'function') t.ws.terminate();
    else sock.io.engine.close();
}

async function sendAck(sock, body) {
    const ack = await emitAck(sock, 'send_message', { type: 'text', ...body });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return ack.message;
}
async function restSend(srv, who, body) {
    const r = await api(srv, 'POST', '/api/chat/messages', { token: who.token, body: { type: 'text', ...body } });
    assert.equal(r.status, 201, r.text);
    return r.json.message;
}
async function gets(sock, id, what) {
    return waitFor(() => sock.received.find((m) => m._id === id), 3000,
                   () => `${what} did not receive ${id}; got ${JSON.stringify(sock.received.map((m) => m._id))}`);
}
const ids = (list) => list.map((m) => m._id);

// A fence instead of a quiet time: a message from a fresh user to the socket's user, sent now,
// arrives after anything the server still had for the socket (replay comes before live
// delivery). It is taken out of sock.received again.
async function fence(sock, srv = sock.srv) {
    const m = await restSend(srv, person(srv), { recipientId: sock.userId, content: 'fence' });
    await gets(sock, m._id, 'the fence');
    sock.received.splice(sock.received.findIndex((x) => x._id === m._id), 1);
}

// Wait for the reconnection (through the gate) and for `expected` to have arrived; then check
// that the client got exactly `expected` after `before` entries, in order, each once.
async function expectRecovered(sock, beforeCount, expected, what, srv = sock.srv) {
    sock.gate.open();
    await waitFor(() => sock.connected, 5000, `${what}: the client did not reconnect`);
    assert.equal(sock.recovered, true, `${what}: socket.recovered is ${sock.recovered} after the reconnection`);
    await waitFor(() => sock.received.length >= beforeCount + expected.length, 3000,
                  () => `${what}: missed messages not replayed: wanted ${JSON.stringify(ids(expected))}, got ${JSON.stringify(ids(sock.received.slice(beforeCount)))}`);
    await fence(sock, srv); // anything extra (duplicates) has arrived by now
    const got = sock.received.slice(beforeCount);
    assert.deepEqual(ids(got), ids(expected), `${what}: replayed messages (order, no duplicates, nothing else)`);
    for (let i = 0; i < got.length; i++) {
        assert.deepEqual(got[i], expected[i], `${what}: replayed document ${i} differs from the acknowledged one`);
    }
    return got;
}

test('the CONNECT reply carries a pid and receive_message a string offset that grows', async () => {
    const A = person();
    const B = person();
    const a = await connectLogged(server, A.token);
    open.push(a);
    const b = await connectLogged(server, B.token);
    open.push(b);
    assert.equal(typeof a._pid, 'string', `no pid in the CONNECT reply (socket._pid = ${a._pid})`);
    assert.ok(a._pid.length > 0);
    assert.equal(a.recovered, false, 'a first connection is not a recovered one');
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await sendAck(b, { recipientId: A.id, content: `o${i}` }));
    await gets(a, sent[2]._id, 'A');
    assert.equal(a.offsets.length, 3);
    for (const o of a.offsets) assert.equal(typeof o, 'string', `offset ${JSON.stringify(o)} is not a string`);
    const nums = a.offsets.map((o) => BigInt(o));
    assert.ok(nums[0] < nums[1] && nums[1] < nums[2], `offsets do not grow: ${a.offsets}`);
    assert.equal(a._lastOffset, a.offsets[2], 'socket.io-client did not take the offset');
    // the offset is an extra argument: the message itself is the first one, unchanged
    assert.deepEqual(a.received, sent);
});

test('a client whose transport drops while messages are sent gets all of them on reconnect, in order, once', async () => {
    const A = person();
    const B = person();
    const C = person();
    const D = person();
    const a = await recoverable(server, A.token);
    const b = await connectLogged(server, B.token);
    open.push(b);
    const c = await connectLogged(server, C.token);
    open.push(c);
    const first = await sendAck(b, { recipientId: A.id, content: 'before the drop' });
    await gets(a, first._id, 'A before the drop');
    const grp = await api(server, 'POST', '/api/chat/conversations',
                          { token: C.token, body: { participantIds: [A.id, B.id], title: 'recovery' } });
    assert.equal(grp.status, 201, grp.text);
    const g = grp.json;
    const base = a.received.length;
    a.gate.close();
    const disconnected = once(a, 'disconnect', 3000);
    dropTransport(a);
    await disconnected;
    // while A is away: socket and REST sends, direct and group, from several users
    const missed = [];
    missed.push(await sendAck(b, { recipientId: A.id, content: 'missed 1' }));
    missed.push(await restSend(server, B, { recipientId: A.id, content: 'missed 2 (REST)' }));
    missed.push(await sendAck(c, { conversationId: g._id, content: 'missed 3 (group)' }));
    missed.push(await sendAck(b, { conversationId: first.conversationId, content: 'missed 4' }));
    missed.push(await restSend(server, C, { recipientId: A.id, content: 'missed 5 (new conversation)' }));
    // a conversation A is not in: never replayed to A
    const foreign = await restSend(server, C, { recipientId: D.id, content: 'not for A' });
    assert.equal(a.connected, false, 'the client reconnected before the gate opened: the test proves nothing');
    assert.ok(a.received.length === base, 'A received something while disconnected');
    await expectRecovered(a, base, missed, 'after a transport drop');
    assert.ok(!a.received.some((m) => m._id === foreign._id), 'a message of a foreign conversation was replayed');
    // live delivery goes on, once
    const live = await sendAck(b, { recipientId: A.id, content: 'live again' });
    await gets(a, live._id, 'A after recovery');
    await fence(a);
    assert.equal(a.received.filter((m) => m._id === live._id).length, 1, 'a live message after recovery arrived twice');
    // and a second drop recovers from the newer offset, not from the start
    const base2 = a.received.length;
    a.gate.close();
    const d2 = once(a, 'disconnect', 3000);
    dropTransport(a);
    await d2;
    const missed2 = [await restSend(server, B, { recipientId: A.id, content: 'second drop' })];
    await expectRecovered(a, base2, missed2, 'after a second drop');
});

test('recovery over HTTP long-polling (the client closes its Engine.IO session and reconnects)', async () => {
    const A = person();
    const B = person();
    const a = await recoverable(server, A.token, { transports: ['polling'] });
    const b = await connectLogged(server, B.token);
    open.push(b);
    const first = await sendAck(b, { recipientId: A.id, content: 'polling 0' });
    await gets(a, first._id, 'A');
    const base = a.received.length;
    a.gate.close();
    const disconnected = once(a, 'disconnect', 3000);
    a.io.engine.close();
    await disconnected;
    const missed = [];
    for (let i = 1; i <= 3; i++) missed.push(await sendAck(b, { conversationId: first.conversationId, content: `polling ${i}` }));
    assert.equal(a.connected, false);
    await expectRecovered(a, base, missed, 'over polling');
    assert.equal(a.io.engine.transport.name, 'polling');
});

test('a client that got nothing before the drop is recovered from its session start, not from the beginning', async () => {
    const A = person();
    const B = person();
    const old = await restSend(server, B, { recipientId: A.id, content: 'before A connected' });
    const a = await recoverable(server, A.token);
    const b = await connectLogged(server, B.token);
    open.push(b);
    await sleep(100);
    assert.equal(a.received.length, 0, 'a fresh connection got history pushed at it');
    a.gate.close();
    const disconnected = once(a, 'disconnect', 3000);
    dropTransport(a);
    await disconnected;
    const missed = [];
    for (let i = 0; i < 3; i++) missed.push(await sendAck(b, { conversationId: old.conversationId, content: `while away ${i}` }));
    assert.equal(a.connected, false);
    await expectRecovered(a, 0, missed, 'no offset yet');
});

test('many missed messages (more than a page) all arrive, in seq order', async () => {
    const A = person();
    const B = person();
    const a = await recoverable(server, A.token);
    const b = await connectLogged(server, B.token);
    open.push(b);
    const first = await sendAck(b, { recipientId: A.id, content: 'first' });
    await gets(a, first._id, 'A');
    const base = a.received.length;
    a.gate.close();
    const disconnected = once(a, 'disconnect', 3000);
    dropTransport(a);
    await disconnected;
    const N = 260;
    const missed = [];
    for (let i = 0; i < N; i += 20) {
        const chunk = await Promise.all(Array.from({ length: Math.min(20, N - i) }, (_, k) =>
            sendAck(b, { conversationId: first.conversationId, content: `bulk ${i + k}` })));
        missed.push(...chunk);
    }
    missed.sort((x, y) => x.seq - y.seq);
    const got = await expectRecovered(a, base, missed, `${N} missed messages`);
    assert.deepEqual(got.map((m) => m.seq), Array.from({ length: N }, (_, i) => i + 2), 'seqs of the replay');
});

test('messages keep flowing while the client drops and recovers: none lost, none twice, in order', async () => {
    const A = person();
    const B = person();
    const a = await recoverable(server, A.token);
    const b = await connectLogged(server, B.token);
    open.push(b);
    const first = await sendAck(b, { recipientId: A.id, content: 'stream 0' });
    await gets(a, first._id, 'A');
    const N = 150;
    let sent = 0;
    let dropped = false;
    let reopened = false;
    const all = [first];
    async function producer() {
        while (sent < N) {
            const i = ++sent;
            all.push(await sendAck(b, { conversationId: first.conversationId, content: `stream ${i}` }));
            if (i === 30 && !dropped) {
                dropped = true;
                a.gate.close();
                dropTransport(a);
            }
            if (i === 90 && !reopened) {
                reopened = true;
                assert.equal(a.connected, false, 'reconnected before the gate opened');
                a.gate.open(); // the reconnection races the rest of the stream
            }
        }
    }
    await Promise.all([producer(), producer(), producer(), producer()]);
    assert.ok(dropped && reopened);
    await waitFor(() => a.connected, 5000, 'reconnect');
    assert.equal(a.recovered, true, 'not recovered');
    await waitFor(() => a.received.length >= N + 1, 5000,
                  () => `A got ${a.received.length} of ${N + 1}: missing seqs ${JSON.stringify(
                      all.map((m) => m.seq).filter((q) => !a.received.some((m) => m.seq === q)).sort((x, y) => x - y))}`);
    await sleep(200);
    const seqs = a.received.map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: N + 1 }, (_, i) => i + 1), 'A\'s stream (lost, duplicated or out of order)');
});

test('the sending socket is not sent its own acknowledged messages again on recovery', async () => {
    const A = person();
    const B = person();
    const a = await recoverable(server, A.token);
    const b = await connectLogged(server, B.token);
    open.push(b);
    const m1 = await sendAck(b, { recipientId: A.id, content: 'from B' });
    await gets(a, m1._id, 'A');
    const own = await sendAck(a, { recipientId: B.id, content: 'A\'s own, acknowledged' });
    await gets(b, own._id, 'B');
    const base = a.received.length;
    a.gate.close();
    const disconnected = once(a, 'disconnect', 3000);
    dropTransport(a);
    await disconnected;
    const missed = [await sendAck(b, { recipientId: A.id, content: 'while A is away' })];
    assert.equal(a.connected, false);
    await expectRecovered(a, base, missed, 'own message before the drop');
    assert.ok(!a.received.some((m) => m._id === own._id),
              'the socket that sent (and got the ack for) a message received it again as receive_message');
});

// A pid as the server issues it: "<32 hex>-<position>-<8 random>". The random part's alphabet
// contains '-', so it is the rest after the second dash, not a split on '-'.
function parsePid(pid) {
    const m = /^([0-9a-f]{32})-(0|[1-9][0-9]{0,17})-([A-Za-z0-9_-]{8})$/.exec(pid);
    assert.ok(m, `pid ${JSON.stringify(pid)} is not in the documented form`);
    return { hash: m[1], pos: m[2], rnd: m[3] };
}
// 8 random characters of the pid alphabet, other than `not`.
function otherRnd(not) {
    for (;;) {
        const r = randomBytes(6).toString('base64url');
        if (r !== not) return r;
    }
}

// Connect `who` with auth {pid, offset: '0'} and return the socket once a fence message sent
// after the CONNECT has arrived: a replay comes before live delivery, so anything received
// before the fence was replayed. socket.io-client sets `recovered` only when the answer repeats
// the socket's own earlier pid, never on a first connection: the answer's pid (sock._pid) is what
// tells whether the server resumed the session.
async function connectWithPid(who, pid, sender) {
    const c = await connectLogged(server, who.token, { auth: { token: who.token, pid, offset: '0' } });
    open.push(c);
    const fence = await restSend(server, sender, { recipientId: who.id, content: 'fence' });
    await gets(c, fence._id, 'the fence');
    c.replayed = c.received.slice(0, c.received.findIndex((m) => m._id === fence._id));
    return c;
}

test('a pid is only honoured for its own user; a socket without one starts a new session', async () => {
    const A = person();
    const B = person();
    const E = person(); // eavesdropper
    const a = await connectLogged(server, A.token);
    open.push(a);
    const pid = a._pid;
    const issued = parsePid(pid);
    const m = await restSend(server, B, { recipientId: A.id, content: 'secret' });
    await gets(a, m._id, 'A');
    // E presents A's pid and an offset before A's message: a fresh session of E's own.
    const e = await connectWithPid(E, pid, B);
    assert.deepEqual(ids(e.replayed), [], 'another user\'s pid replayed messages');
    assert.notEqual(parsePid(e._pid).hash, issued.hash, 'the server confirmed another user\'s pid');
    // A fresh socket of A without a pid: a new session (same user hash, new random part), no replay.
    const a2 = await connectLogged(server, A.token);
    open.push(a2);
    const fresh = parsePid(a2._pid);
    assert.equal(fresh.hash, issued.hash, 'the first part names the user');
    assert.notEqual(fresh.rnd, issued.rnd, 'a fresh session reused another session\'s random part');
    assert.equal(a2.recovered, false);
    const fence = await restSend(server, B, { recipientId: A.id, content: 'fence 2' });
    await gets(a2, fence._id, 'A fresh');
    assert.deepEqual(ids(a2.received), [fence._id], 'a fresh socket got a replay');
});

test('a pid is honoured only in the form it was issued in', async () => {
    const A = person();
    const B = person();
    const a = await connectLogged(server, A.token);
    open.push(a);
    const pid = a._pid;
    const { hash, pos, rnd } = parsePid(pid);
    const m = await restSend(server, B, { recipientId: A.id, content: 'for the issued pid only' });
    await gets(a, m._id, 'A');
    // Forms the server never issues, each breaking one rule and keeping the rest: a leading
    // zero, a sign, a random part of 9 or 7, uppercase hex, a position over 18 digits, no
    // position, a character outside the alphabet (same length as the real pid).
    const bad = [`${hash}-0${pos}-${rnd}`, `${hash}-+${pos}-${rnd}`, `${hash}-${pos}-${rnd}x`,
                 `${hash}-${pos}-${rnd.slice(1)}`, `${hash.toUpperCase()}-${pos}-${rnd}`,
                 `${hash}-${'9'.repeat(19)}-${rnd}`, `${hash}--${rnd}`, `${hash}-${pos}-${rnd.slice(0, 7)}!`];
    for (const b of bad) {
        const c = await connectWithPid(A, b, B);
        assert.notEqual(c._pid, b, `pid ${b} was resumed`);
        assert.deepEqual(ids(c.replayed), [], `pid ${b} replayed messages`);
        assert.equal(parsePid(c._pid).hash, hash);
    }
    // The issued pid itself is honoured (a second tab of the same session, replaying after 0).
    const again = await connectWithPid(A, pid, B);
    assert.equal(again._pid, pid);
    assert.deepEqual(ids(again.replayed).slice(0, 1), [m._id]);
});

// docs/api.md: "Any valid token of the same user may resume a pid": the pid is not a secret, and
// a pid of the right form for the user, whatever its random part, resumes from the offset.
test('any pid of the issued form for the same user resumes the stream', async () => {
    const A = person();
    const B = person();
    const a = await connectLogged(server, A.token);
    open.push(a);
    const { hash, pos, rnd } = parsePid(a._pid);
    const m = await restSend(server, B, { recipientId: A.id, content: 'replayed for any pid of A' });
    await gets(a, m._id, 'A');
    const forged = `${hash}-${pos}-${otherRnd(rnd)}`;
    assert.equal(forged.length, a._pid.length);
    const c = await connectWithPid(A, forged, B);
    assert.equal(c._pid, forged, 'a same-form pid of the same user was not resumed');
    assert.deepEqual(ids(c.replayed), [m._id]);
    // With a token of the same user that is another token (other iat/exp) it is the same.
    const other = { id: A.id, token: tokenFor(server, A.id, { exp: Math.floor(Date.now() / 1000) + 600 }) };
    const d = await connectWithPid(other, a._pid, B);
    assert.equal(d._pid, a._pid);
    assert.equal(ids(d.replayed)[0], m._id);
});

// ---------------------------------------------------------------- across a restart

async function restartScenario(how, clientOpts = {}) {
    const dataDir = mkDataDir();
    const secret = newSecret();
    let srv = await startServer({ dataDir, secret });
    const port = srv.port;
    const A = person(srv);
    const B = person(srv);
    const a = await recoverable(srv, A.token, clientOpts);
    const first = await restSend(srv, B, { recipientId: A.id, content: 'before the restart' });
    await gets(a, first._id, 'A before the restart');
    const base = a.received.length;
    a.gate.close();
    const disconnected = once(a, 'disconnect', 5000);
    if (how === 'SIGTERM') await srv.stop();
    else await srv.crash();
    await disconnected;
    srv = await startServer({ dataDir, secret, port });
    const missed = [];
    for (let i = 0; i < 3; i++) missed.push(await restSend(srv, B, { recipientId: A.id, content: `after the restart ${i}` }));
    const b = await connectLogged(srv, B.token);
    open.push(b);
    missed.push(await sendAck(b, { conversationId: first.conversationId, content: 'over a socket' }));
    assert.equal(a.connected, false, 'reconnected before the gate opened');
    await waitFor(() => a.gate.waiting, 5000, 'the client did not get its transport back to the restarted server');
    await expectRecovered(a, base, missed, `across a ${how} restart`, srv);
    const live = await sendAck(b, { recipientId: A.id, content: 'live after the restart' });
    await gets(a, live._id, 'A live after the restart');
    for (const m of missed) assertMessage(m, { sender: B.id, recipient: A.id, conversationId: first.conversationId, content: m.content });
    a.disconnect();
    b.disconnect();
    await sleep(100);
    await srv.stop();
}

test('recovery across a server restart (SIGTERM) on the same data directory and port', async () => {
    await restartScenario('SIGTERM');
});

test('recovery across a server crash (kill -9) on the same data directory and port', async () => {
    await restartScenario('SIGKILL');
});

test('a polling-only client across a server crash (kill -9) and restart: recovered, nothing lost', async () => {
    await restartScenario('SIGKILL', { transports: ['polling'] });
});

test('a client that cannot be recovered catches up with the REST history after its last seq', async () => {
    const A = person();
    const B = person();
    const a = await connectLogged(server, A.token); // no reconnection: a new page load
    open.push(a);
    const first = await restSend(server, B, { recipientId: A.id, content: 'seen' });
    await gets(a, first._id, 'A');
    a.disconnect();
    const missed = [];
    for (let i = 0; i < 3; i++) missed.push(await restSend(server, B, { recipientId: A.id, content: `unseen ${i}` }));
    const a2 = await connectLogged(server, A.token);
    open.push(a2);
    assert.equal(a2.recovered, false);
    const r = await api(server, 'GET', `/api/chat/messages/${first.conversationId}?limit=50`, { token: A.token });
    assert.equal(r.status, 200, r.text);
    const after = r.json.messages.filter((m) => m.seq > first.seq);
    assert.deepEqual(ids(after), ids(missed), 'history after the last seen seq');
});

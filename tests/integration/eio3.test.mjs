// Engine.IO v3 / socket.io-client 2.x (--allow-eio3) on `parlor echo` and `parlor serve`:
// the real socket.io-client@2.5.0 (npm alias socket.io-client-v2) over polling, upgrade and
// WebSocket, events, acks, binary and reconnection; raw v3 exchanges checked against what
// socket.io 4.8 with allowEIO3 answers; the hostile-client rules that change with v3 (client
// pings are answered, but bounded; a v3 pong closes; a v4 ping still closes); and a chat
// session on `parlor serve` between a v2 client (token in the query) and a v4 one.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import ioV2 from 'socket.io-client-v2';
import { startEcho, sleep, once, withTimeout, httpRequest, procKiB } from './helpers.mjs';
import {
    startServer, tokenFor, newUserId, connectUser, emitAck, closeAll, waitFor,
} from './chat_helpers.mjs';

// Every v2 socket a test opens is closed after it.
let open = [];
afterEach(() => {
    for (const s of open) s.close();
    open = [];
});

function v2(url, opts = {}) {
    const s = ioV2(url, { forceNew: true, reconnection: false, ...opts });
    open.push(s);
    return s;
}

// Resolves once a v2 socket is connected; a CONNECT_ERROR (the 'error' event) rejects.
function connected(s, what = 'v2 connect') {
    return withTimeout(new Promise((resolve, reject) => {
        if (s.connected) return resolve();
        s.once('connect', resolve);
        s.once('error', (e) => reject(new Error(`error: ${JSON.stringify(e)}`)));
        s.once('connect_error', (e) => reject(new Error(`connect_error: ${e.message}`)));
    }), 5000, what);
}

// v2's emit with an acknowledgement, as a promise of all the ack's arguments.
function emitAckV2(s, ...args) {
    return withTimeout(new Promise((resolve) => s.emit(...args, (...r) => resolve(r))), 5000,
                       `ack of ${args[0]}`);
}

// One v3 polling payload: "<UTF-16 length>:<packet>" each.
const frame = (...packets) => packets.map((p) => `${p.length}:${p}`).join('');
function unframe(text) {
    const out = [];
    for (let i = 0; i < text.length;) {
        const colon = text.indexOf(':', i);
        const n = Number(text.slice(i, colon));
        assert.ok(colon > i && Number.isInteger(n), `bad v3 payload: ${text}`);
        out.push(text.slice(colon + 1, colon + 1 + n));
        i = colon + 1 + n;
    }
    return out;
}

const v3Url = (server, q = '') =>
    `${server.url}/socket.io/?EIO=3&transport=polling${q ? '&' + q : ''}`;

// A raw v3 polling session on /socket.io/: returns {sid, open, get(), post(body)}.
async function rawV3(server, q = 'b64=1') {
    const r = await httpRequest(v3Url(server, q));
    assert.equal(r.status, 200, r.text);
    const [openPkt] = unframe(r.text);
    assert.equal(openPkt[0], '0');
    const openMsg = JSON.parse(openPkt.slice(1));
    const sid = openMsg.sid;
    return {
        sid,
        open: openMsg,
        get: (timeoutMs = 3000) => httpRequest(v3Url(server, `sid=${sid}`), {}, timeoutMs),
        post: (body) => httpRequest(v3Url(server, `sid=${sid}`), { method: 'POST', body }),
    };
}

const MODES = [
    { name: 'polling then websocket', opts: {}, upgrade: true, final: 'websocket' },
    { name: 'websocket only', opts: { transports: ['websocket'] }, final: 'websocket' },
    { name: 'polling only', opts: { transports: ['polling'] }, final: 'polling' },
];

describe('parlor echo --allow-eio3, socket.io-client 2.5', () => {
    let server;
    before(async () => {
        // The v2 client checks each pong within pingTimeout: room for a loaded machine. The
        // server closes a v3 session with no client ping for 300 + 2000 ms.
        server = await startEcho(['--allow-eio3', '--ping-interval-ms', '300',
                                  '--ping-timeout-ms', '2000']);
    });
    after(async () => {
        if (server) await server.stop();
    });

    for (const mode of MODES) {
        test(`${mode.name}: connect, events, acks and binary both ways`, async () => {
            const s = v2(server.url, mode.opts);
            const upgraded = mode.upgrade ? once(s.io.engine, 'upgrade', 5000, 'upgrade') : null;
            const auth = once(s, 'auth', 5000, 'auth event');
            await connected(s);
            // socket.io 4 gives a v2 client's "/" an empty auth (its query is in the handshake).
            assert.deepEqual((await auth)[0], {});
            if (upgraded) await upgraded;
            assert.equal(s.io.engine.transport.name, mode.final);

            const ack = await emitAckV2(s, 'message-with-ack', 'hi', 42, Buffer.from([1, 2, 3]));
            assert.equal(ack[0], 'hi');
            assert.equal(ack[1], 42);
            assert.deepEqual([...ack[2]], [1, 2, 3]);

            const back = new Promise((resolve) => s.once('message-back', (...a) => resolve(a)));
            s.emit('message', { a: 'é😀' }, Buffer.from([0, 255]));
            const [obj, bin] = await withTimeout(back, 5000, 'message-back');
            assert.deepEqual(obj, { a: 'é😀' });
            assert.deepEqual([...bin], [0, 255]);

            // The server's own emit with an ack, answered by the v2 client.
            s.once('ack-request', (x, cb) => cb('answer', x));
            const reply = new Promise((resolve) => s.once('ack-reply', (...a) => resolve(a)));
            s.emit('request-ack', 7);
            assert.deepEqual(await withTimeout(reply, 5000, 'ack-reply'), ['answer', 7]);
            assert.equal(s.io.engine.transport.name, mode.final);
        });
    }

    test('a namespace CONNECT carries its query: socket.io 4 makes it the auth payload', async () => {
        const s = v2(`${server.url}/custom`, { query: { token: 'abc', n: 'é' } });
        const auth = once(s, 'auth', 5000, 'auth event');
        await connected(s);
        assert.deepEqual((await auth)[0], { token: 'abc', n: 'é' });
    });

    test('the client pings, the server answers: the session outlives pingInterval + pingTimeout', async () => {
        const s = v2(server.url, { transports: ['websocket'] });
        await connected(s);
        let pongs = 0;
        s.io.engine.on('pong', () => pongs++);
        // The server would close a session without pings after 2.3 s.
        await waitFor(() => pongs >= 10, 15000, '10 pongs');
        assert.ok(s.connected);
        const ack = await emitAckV2(s, 'message-with-ack', 'still here');
        assert.deepEqual(ack, ['still here']);
    });

    test('reconnection after a server restart', async () => {
        const own = await startEcho(['--allow-eio3', '--ping-interval-ms', '300',
                                     '--ping-timeout-ms', '2000']);
        try {
            const s = v2(own.url, { reconnection: true, reconnectionDelay: 100,
                                    reconnectionDelayMax: 200 });
            await connected(s);
            const gone = once(s, 'disconnect', 5000, 'disconnect');
            await own.stop();
            await gone;
            const back = once(s, 'reconnect', 10000, 'reconnect');
            const again = await startEcho(['--allow-eio3'], { port: own.port });
            try {
                await back;
                const ack = await emitAckV2(s, 'message-with-ack', 'again');
                assert.deepEqual(ack, ['again']);
            } finally {
                s.close();
                await again.stop();
            }
        } finally {
            if (!own.exited()) await own.stop();
        }
    });

    test('raw v3 polling: framing, implicit "/" CONNECT, ping/pong, b4 binary, invalid namespace', async () => {
        const c = await rawV3(server);
        assert.deepEqual(c.open.upgrades, ['websocket']);
        assert.equal(c.open.pingInterval, 300);
        assert.equal(c.open.pingTimeout, 2000);
        // The CONNECT to "/" is the server's (no payload for v3), then the echo's auth event.
        let r = await c.get();
        assert.deepEqual(unframe(r.text), ['40', '42["auth",{}]']);
        // A client ping gets a bare pong (as engine.io: "1:3"), "2probe" over polling too; a
        // second ping before the first pong was read is not answered (Parlor's rule).
        assert.equal((await c.post(frame('2', '2'))).text, 'ok');
        r = await c.get();
        assert.equal(r.text, '1:3');
        await c.post(frame('2probe'));
        assert.equal((await c.get()).text, '1:3');
        // A binary event over polling: b4 + base64, lengths in UTF-16 units.
        await c.post(frame('451-["message","é😀",{"_placeholder":true,"num":0}]', 'b4AQID'));
        r = await c.get();
        assert.equal(r.text,
                     frame('451-["message-back","é😀",{"_placeholder":true,"num":0}]', 'b4AQID'));
        // As socket.io 4 answers a v2 client: the query is dropped from the namespace.
        await c.post(frame('40/nope?x=1,'));
        r = await c.get();
        assert.deepEqual(unframe(r.text), ['44/nope,{"message":"Invalid namespace"}']);
        // A client close: the session is gone.
        await c.post(frame('1'));
        r = await c.get();
        assert.equal(r.status, 400);
    });

    test('a binary (XHR2) v3 POST, as a browser socket.io-client 2 sends binary over polling', async () => {
        const c = await rawV3(server, '');
        await c.get();
        // kind byte (0 text, 1 binary), the length as digit bytes, 0xff, the packet.
        const digits = (n) => Buffer.from(String(n).split('').map(Number));
        const text = Buffer.from('451-["message","é",{"_placeholder":true,"num":0}]');
        const bin = Buffer.from([4, 1, 2, 3]);
        const body = Buffer.concat([Buffer.from([0]), digits(text.length), Buffer.from([255]), text,
                                    Buffer.from([1]), digits(bin.length), Buffer.from([255]), bin]);
        const r = await httpRequest(v3Url(server, `sid=${c.sid}`), {
            method: 'POST', body, headers: { 'content-type': 'application/octet-stream' },
        });
        assert.equal(r.text, 'ok');
        // The answer is in the text form (b4), which every v3 client decodes.
        assert.equal((await c.get()).text,
                     frame('451-["message-back","é",{"_placeholder":true,"num":0}]', 'b4AQID'));
        // A malformed one closes the session.
        const bad = await httpRequest(v3Url(server, `sid=${c.sid}`), {
            method: 'POST', body: Buffer.from([0, 9, 255, 0x34]),
            headers: { 'content-type': 'application/octet-stream' },
        });
        assert.equal(bad.text, 'ok');
        assert.equal((await c.get()).status, 400);
    });

    test('handshake refusals: JSONP is off; EIO=2 is still code 5', async () => {
        let r = await httpRequest(v3Url(server, 'j=0'));
        assert.equal(r.status, 400);
        assert.deepEqual(JSON.parse(r.text), { code: 3, message: 'Bad request' });
        r = await httpRequest(`${server.url}/socket.io/?EIO=2&transport=polling`);
        assert.equal(r.status, 400);
        assert.equal(JSON.parse(r.text).code, 5);
    });

    test('the raw Engine.IO endpoint speaks v3 too', async () => {
        const r = await httpRequest(`${server.url}/engine.io/?EIO=3&transport=polling`);
        assert.equal(r.status, 200);
        assert.match(unframe(r.text)[0], /^0\{"sid":/);
    });

    test('a v3 session without client pings is closed after pingInterval + pingTimeout', async () => {
        const c = await rawV3(server);
        await c.get(); // "40" and the auth event
        const r = await c.get(10000); // held until the heartbeat deadline closes the session
        assert.equal(r.text, '1:1');
        assert.equal((await c.get()).status, 400);
    });

    test('a v3 pong closes the session (wrong heartbeat direction, as engine.io)', async () => {
        const c = await rawV3(server);
        await c.get();
        await c.post(frame('3'));
        assert.equal((await c.get()).status, 400);
    });

    test('malformed v3 payloads close the session: v4 framing, bad length, bad UTF-8', async () => {
        for (const body of ['42["message",1]\x1e2', '9:42[1]', Buffer.from('3:4\xc3', 'latin1')]) {
            const c = await rawV3(server);
            await c.get();
            await c.post(body);
            assert.equal((await c.get()).status, 400, `after ${JSON.stringify(String(body))}`);
        }
    });

    test('a v4 session is still closed by a client ping when v3 is allowed', async () => {
        const r = await httpRequest(`${server.url}/engine.io/?EIO=4&transport=polling`);
        const { sid } = JSON.parse(r.text.slice(1));
        const u = `${server.url}/engine.io/?EIO=4&transport=polling&sid=${sid}`;
        await httpRequest(u, { method: 'POST', body: '2' });
        assert.equal((await httpRequest(u)).status, 400);
    });

    test('a ping flood: one pong in flight per session, memory flat', async () => {
        const c = await rawV3(server);
        await c.get();
        const rss0 = rssKb(server);
        // 100 000 pings per POST: a pong for each would queue about 6.6 MB (with bookkeeping)
        // per POST. A ping counts, and is answered, only once the last pong has left.
        const pings = '1:2'.repeat(100000);
        for (let i = 0; i < 3; i++) assert.equal((await c.post(pings)).text, 'ok');
        const r = await c.get();
        assert.equal(r.text, '1:3', 'one pong for the flood');
        const grown = rssKb(server) - rss0;
        assert.ok(grown < 20000, `RSS grew by ${grown} kB`);
        // The next ping, the pong having been read, is answered again.
        await c.post(frame('2'));
        assert.equal((await c.get()).text, '1:3');
    });

    test('a client that pings but never reads is dropped by the heartbeat', async () => {
        const c = await rawV3(server);
        await c.get();
        // The first pong waits for a GET that never comes: later pings do not count, and the
        // session is closed 2.3 s after the first one.
        let closed = false;
        for (let i = 0; i < 40 && !closed; i++) {
            const r = await c.post(frame('2'));
            closed = r.status !== 200;
            await sleep(250);
        }
        assert.ok(closed, 'the session outlived 10 s of pings without a read');
    });
});

const rssKb = (server) => procKiB(server);

describe('parlor echo without --allow-eio3', () => {
    test('EIO=3 is answered 400 code 5, as by default in socket.io 4', async () => {
        const server = await startEcho();
        try {
            const r = await httpRequest(v3Url(server));
            assert.equal(r.status, 400);
            assert.deepEqual(JSON.parse(r.text), { code: 5, message: 'Unsupported protocol version' });
        } finally {
            await server.stop();
        }
    });
});

describe('parlor serve --allow-eio3: a chat with socket.io-client 2.5', () => {
    let server;
    before(async () => {
        server = await startServer({ args: ['--allow-eio3'] });
    });
    after(async () => {
        await closeAll();
        await server.stop();
    });

    test('send, receive and read receipts between a v2 and a v4 client', async () => {
        const alice = newUserId();
        const bob = newUserId();
        const a = v2(server.url, { query: { token: tokenFor(server, alice) } });
        const upgraded = once(a.io.engine, 'upgrade', 5000, 'upgrade');
        await connected(a);
        await upgraded;
        const b = await connectUser(server, tokenFor(server, bob));

        // v2 -> v4, with the ack.
        const got = once(b, 'receive_message', 5000, 'receive_message at bob');
        const [ack] = await emitAckV2(a, 'send_message', { recipientId: bob, content: 'hé 😀' });
        assert.equal(ack.ok, true, JSON.stringify(ack));
        assert.equal(ack.message.sender, alice);
        const [m] = await got;
        assert.equal(m._id, ack.message._id);
        assert.equal(m.content, 'hé 😀');

        // v4 -> v2.
        const gotA = once(a, 'receive_message', 5000, 'receive_message at alice');
        const ack2 = await emitAck(b, 'send_message', { recipientId: alice, content: 'back' });
        assert.equal(ack2.ok, true);
        assert.equal((await gotA)[0]._id, ack2.message._id);

        // Receipts: bob reads alice's message, alice is told; alice reads bob's.
        const read = once(a, 'messages_read', 5000, 'messages_read at alice');
        const r = await emitAck(b, 'mark_read', { conversationId: m.conversationId, messageId: m._id });
        assert.equal(r.ok, true, JSON.stringify(r));
        const [ev] = await read;
        assert.equal(ev.readerId, bob);
        assert.equal(ev.messageId, m._id);
        const [r2] = await emitAckV2(a, 'mark_read', { conversationId: m.conversationId,
                                                       messageId: ack2.message._id });
        assert.equal(r2.ok, true, JSON.stringify(r2));
        assert.equal(a.io.engine.transport.name, 'websocket');
    });

    test('over polling only, and the token from the query', async () => {
        const alice = newUserId();
        const a = v2(server.url, { transports: ['polling'], query: { token: tokenFor(server, alice) } });
        await connected(a);
        const [st] = await emitAckV2(a, 'get_status', { userIds: [alice] });
        assert.equal(st.ok, true);
        assert.equal(st.statuses[0].status, 'online');
    });

    test('a bad or missing token: the v2 client gets the error data (socket.io 4: err.data)', async () => {
        for (const [query, code] of [[{ token: 'nope' }, 'AUTH_INVALID'], [{}, 'AUTH_MISSING']]) {
            const a = v2(server.url, { transports: ['websocket'], query });
            const err = await withTimeout(new Promise((resolve, reject) => {
                a.once('error', resolve);
                a.once('connect', () => reject(new Error('connected with a bad token')));
            }), 5000, 'error event');
            assert.equal(err.code, code, JSON.stringify(err));
            a.close();
        }
    });

    test('refused at the handshake, a v3 client may CONNECT again with the token in the namespace query (auth)', async () => {
        const c = await rawV3(server);
        let r = await c.get();
        assert.match(unframe(r.text)[0], /^44\{"code":"AUTH_MISSING"/);
        // Before signing in: a ping is answered; anything but CONNECT would close.
        await c.post(frame('2'));
        assert.equal((await c.get()).text, '1:3');
        await c.post(frame(`40/?token=${tokenFor(server, newUserId())},`));
        r = await c.get();
        assert.equal(unframe(r.text)[0], '40');
        await c.post(frame('1'));
    });

    test('no connection state recovery for a v2 client: the CONNECT answer has no pid', async () => {
        const c = await rawV3(server, `b64=1&token=${tokenFor(server, newUserId())}`);
        const r = await c.get();
        assert.equal(unframe(r.text)[0], '40');
    });
});

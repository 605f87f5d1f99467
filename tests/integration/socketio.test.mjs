// Socket.IO v5 on /socket.io/ of `parlor echo`, driven by socket.io-client 4.8 over every
// transport, plus raw packet-level checks over a hand-rolled WebSocket.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { io, Manager } from 'socket.io-client';
import {
    startEcho, sleep, once, withTimeout, RawWs, normalizeBinary, relaxClientPingCheck,
} from './helpers.mjs';

let server;
before(async () => {
    server = await startEcho();
});
after(async () => {
    if (server) await server.stop();
});

// Every client a test opens is closed after it, pass or fail.
let open = [];
afterEach(() => {
    for (const s of open) s.disconnect();
    open = [];
});

const MODES = [
    { name: 'default transports (polling then websocket)', opts: {}, final: 'websocket',
      upgrade: true },
    { name: 'websocket only', opts: { transports: ['websocket'] }, final: 'websocket' },
    { name: 'polling only', opts: { transports: ['polling'] }, final: 'polling' },
];

// Connect a socket and wait for both 'connect' and the server's 'auth' event (and for the
// upgrade when asked). Resolves {socket, auth}.
async function connect(nsp, opts = {}, { upgrade = false } = {}) {
    const socket = io(server.url + nsp, { forceNew: true, reconnection: false, ...opts });
    open.push(socket);
    const upgraded = upgrade ? once(socket.io.engine, 'upgrade', 3000, 'upgrade') : null;
    const authP = once(socket, 'auth', 3000, 'auth event');
    await withTimeout(new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', (e) => reject(new Error(`connect_error: ${e.message}`)));
    }), 3000, `connect to ${nsp}`);
    const [auth] = await authP;
    if (upgraded) await upgraded;
    return { socket, auth };
}

function nextEvent(socket, event, timeoutMs = 3000) {
    return once(socket, event, timeoutMs, `event ${event}`);
}

// What JSON makes of a value (e.g. -0 becomes 0): the expected result of an echo.
const viaJson = (v) => JSON.parse(JSON.stringify(v));

const TEXT_ARGS = [
    'hello', 42, 0.1, 1e21, -0, -1.5e-7, 2 ** 53 - 1, -(2 ** 31), 3.141592653589793,
    true, false, null, '',
    'ünïcödé 🌍 \u0000 \u001f "quoted" \\ / \n\r\t \u2028',
    { nested: { deep: [1, { x: 'y' }, []], empty: {}, 'key with "quotes"': 'v' } },
    [],
    [1, [2, [3, [4, [5, [6, [7, [8, [9, [10]]]]]]]]]],
    'x'.repeat(100000),
];

const BIN_ARGS = [
    Buffer.from([1, 2, 3]),
    new Uint8Array([4, 5, 6, 0]),
    { file: Buffer.from('hello'), meta: { parts: [Buffer.alloc(0), 'text', Buffer.from([255])] } },
    'plain string',
    12.5,
    Buffer.alloc(200000, 0x5a),
];

for (const mode of MODES) {
    describe(mode.name, () => {
        const conn = (nsp, opts = {}) => connect(nsp, { ...mode.opts, ...opts },
                                                  { upgrade: mode.upgrade });

        test('auth event carries the handshake auth payload', async () => {
            const auth = { token: 'tok-123', user: { id: 7, roles: ['a', 'b'] }, u: 'ü🌍' };
            const { socket, auth: got } = await conn('/', { auth });
            assert.deepEqual(got, auth);
            assert.equal(typeof socket.id, 'string');
            assert.equal(socket.io.engine.transport.name, mode.final);
        });

        test('auth event is {} when the client sends no auth', async () => {
            const { auth } = await conn('/');
            assert.deepEqual(auth, {});
        });

        test('message -> message-back with the same arguments', async () => {
            const { socket } = await conn('/');
            const back = nextEvent(socket, 'message-back');
            socket.emit('message', ...TEXT_ARGS);
            assert.deepStrictEqual(await back, viaJson(TEXT_ARGS));
        });

        test('events come back in the order they were sent', async () => {
            const { socket } = await conn('/');
            const got = [];
            const done = new Promise((resolve) => {
                socket.on('message-back', (i) => {
                    got.push(i);
                    if (got.length === 50) resolve();
                });
            });
            for (let i = 0; i < 50; i++) socket.emit('message', i);
            await withTimeout(done, 3000, '50 echoes');
            assert.deepEqual(got, [...Array(50).keys()]);
        });

        test('message-with-ack is acknowledged with the same arguments', async () => {
            const { socket } = await conn('/');
            assert.deepStrictEqual(await socket.timeout(5000).emitWithAck('message-with-ack', { a: [1, 'b'] }),
                                   { a: [1, 'b'] });
            const all = await withTimeout(new Promise((resolve) => {
                socket.emit('message-with-ack', ...TEXT_ARGS, (...res) => resolve(res));
            }), 3000, 'ack with many arguments');
            assert.deepStrictEqual(all, viaJson(TEXT_ARGS));
            // acks are matched by id: interleaved requests each get their own answer
            const many = await Promise.all([...Array(20).keys()].map(
                (i) => socket.timeout(5000).emitWithAck('message-with-ack', `n${i}`)));
            assert.deepEqual(many, [...Array(20).keys()].map((i) => `n${i}`));
        });

        test('binary arguments survive an event round trip', async () => {
            const { socket } = await conn('/');
            const back = nextEvent(socket, 'message-back');
            socket.emit('message', ...BIN_ARGS);
            assert.deepStrictEqual(normalizeBinary(await back), normalizeBinary(BIN_ARGS));
        });

        test('binary arguments survive an ack round trip', async () => {
            const { socket } = await conn('/');
            const res = await withTimeout(new Promise((resolve) => {
                socket.emit('message-with-ack', ...BIN_ARGS, (...r) => resolve(r));
            }), 3000, 'binary ack');
            assert.deepStrictEqual(normalizeBinary(res), normalizeBinary(BIN_ARGS));
            const one = await socket.timeout(5000).emitWithAck('message-with-ack', Buffer.from([7, 7]));
            assert.deepStrictEqual(normalizeBinary(one), Buffer.from([7, 7]));
        });

        test('emitWithAck with a timeout rejects when the server never acks', async () => {
            const { socket } = await conn('/');
            const t0 = Date.now();
            await assert.rejects(socket.timeout(300).emitWithAck('not-an-echo-event', 1),
                                 /operation has timed out/);
            const ms = Date.now() - t0;
            assert.ok(ms >= 290 && ms < 1000, `rejected after ${ms} ms`);
            assert.equal(socket.connected, true);
            assert.equal(await socket.timeout(5000).emitWithAck('message-with-ack', 'alive'), 'alive');
        });

        test('namespace /custom gets its own auth and echoes', async () => {
            const { socket, auth } = await conn('/custom', { auth: { room: 'custom', n: 1 } });
            assert.deepEqual(auth, { room: 'custom', n: 1 });
            const back = nextEvent(socket, 'message-back');
            socket.emit('message', 'in custom', Buffer.from([1]));
            assert.deepStrictEqual(normalizeBinary(await back),
                                   ['in custom', Buffer.from([1])]);
            assert.equal(await socket.timeout(5000).emitWithAck('message-with-ack', 'c'), 'c');
        });

        test('an unknown namespace is refused with connect_error "Invalid namespace"',
             async () => {
                 const socket = io(server.url + '/no-such-nsp',
                                   { forceNew: true, reconnection: false, ...mode.opts });
                 open.push(socket);
                 const [err] = await once(socket, 'connect_error', 3000);
                 assert.equal(err.message, 'Invalid namespace');
                 assert.equal(socket.connected, false);
             });

        test('client disconnect: reason "io client disconnect", reconnect works', async () => {
            const { socket } = await conn('/', { auth: { v: 1 } });
            const disc = nextEvent(socket, 'disconnect');
            socket.disconnect();
            const [reason] = await disc;
            assert.equal(reason, 'io client disconnect');
            const authAgain = nextEvent(socket, 'auth');
            socket.connect();
            assert.deepEqual((await authAgain)[0], { v: 1 });
            assert.equal(await socket.timeout(5000).emitWithAck('message-with-ack', 'again'), 'again');
        });
    });
}

describe('server-side emit with ack', () => {
    test('the client acknowledges the server\'s event; no answer times out', async () => {
        const { socket } = await connect('/', { transports: ['websocket'] });
        // The client answers "ack-request" through its callback; the server echoes the answer.
        socket.once('ack-request', (a, b, callback) => callback({ got: [a, b] }, 'second'));
        const reply = once(socket, 'ack-reply');
        socket.emit('request-ack', 1, 'two');
        assert.deepEqual(await reply, [{ got: [1, 'two'] }, 'second']);
        // A client that never calls back: the server's timeout fires, once.
        socket.once('ack-request', () => {});
        const timedOut = once(socket, 'ack-timeout', 3000);
        const t0 = Date.now();
        socket.emit('request-ack', 'ignored');
        await timedOut;
        const waited = Date.now() - t0;
        assert.ok(waited >= 900 && waited < 2500, `timeout after ${waited} ms`);
        let late = false;
        socket.on('ack-reply', () => { late = true; });
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(late, false);
    });
});

describe('multiplexing', () => {
    test('/ and /custom share one Engine.IO session; leaving one keeps the other', async () => {
        const m = new Manager(server.url, { reconnection: false });
        const root = m.socket('/', { auth: { who: 'root' } });
        const custom = m.socket('/custom', { auth: { who: 'custom' } });
        const bad = m.socket('/nope');
        open.push(root, custom, bad);
        const rootAuth = once(root, 'auth');
        const customAuth = once(custom, 'auth');
        const badErr = once(bad, 'connect_error');
        root.connect();
        custom.connect();
        bad.connect();
        assert.deepEqual((await rootAuth)[0], { who: 'root' });
        assert.deepEqual((await customAuth)[0], { who: 'custom' });
        assert.equal((await badErr)[0].message, 'Invalid namespace');
        assert.equal(root.io, custom.io);

        const [a, b] = await Promise.all([root.timeout(5000).emitWithAck('message-with-ack', 'r'),
                                          custom.timeout(5000).emitWithAck('message-with-ack', 'c')]);
        assert.deepEqual([a, b], ['r', 'c']);
        // an event on one namespace is not delivered on the other
        let leaked = false;
        custom.on('message-back', () => {
            leaked = true;
        });
        const back = once(root, 'message-back');
        root.emit('message', 'only root');
        assert.deepEqual(await back, ['only root']);

        const disc = once(custom, 'disconnect');
        custom.disconnect();
        assert.equal((await disc)[0], 'io client disconnect');
        assert.equal(await root.timeout(5000).emitWithAck('message-with-ack', 'still'), 'still');
        assert.equal(leaked, false);

        const again = once(custom, 'auth');
        custom.connect();
        assert.deepEqual((await again)[0], { who: 'custom' });
        assert.equal(await custom.timeout(5000).emitWithAck('message-with-ack', 'back'), 'back');
        m.engine.close();
    });
});

describe('raw Socket.IO packets over WebSocket', () => {
    async function rawConnect() {
        const ws = await RawWs.connect(server.port, '/socket.io/?EIO=4&transport=websocket');
        const open0 = await ws.nextText();
        assert.equal(open0[0], '0');
        return ws;
    }

    test('CONNECT to / and /custom, auth event, ack, binary event, DISCONNECT', async () => {
        const ws = await rawConnect();
        try {
            ws.sendText('40');
            const c = await ws.nextText();
            assert.match(c, /^40\{/);
            assert.equal(typeof JSON.parse(c.slice(2)).sid, 'string');
            assert.equal(await ws.nextText(), '42["auth",{}]');

            ws.sendText('40/custom,{"token":"x"}');
            const cc = await ws.nextText();
            assert.match(cc, /^40\/custom,\{/);
            assert.equal(typeof JSON.parse(cc.slice(10)).sid, 'string');
            assert.equal(await ws.nextText(), '42/custom,["auth",{"token":"x"}]');

            ws.sendText('4217["message-with-ack","a",1]');
            assert.equal(await ws.nextText(), '4317["a",1]');
            ws.sendText('42/custom,5["message-with-ack",{"k":[true,null]}]');
            assert.equal(await ws.nextText(), '43/custom,5[{"k":[true,null]}]');

            ws.sendText('451-["message",{"_placeholder":true,"num":0}]');
            ws.sendBinary(Buffer.from([1, 2, 3]));
            assert.equal(await ws.nextText(), '451-["message-back",{"_placeholder":true,"num":0}]');
            const bin = await ws.next();
            assert.equal(bin.opcode, 2);
            assert.deepEqual(bin.data, Buffer.from([1, 2, 3]));

            ws.sendText('451-9["message-with-ack",{"_placeholder":true,"num":0}]');
            ws.sendBinary(Buffer.from([9]));
            assert.equal(await ws.nextText(), '461-9[{"_placeholder":true,"num":0}]');
            assert.deepEqual((await ws.next()).data, Buffer.from([9]));

            ws.sendText('40/nope,');
            assert.equal(await ws.nextText(), '44/nope,{"message":"Invalid namespace"}');

            ws.sendText('41/custom,');
            ws.sendText('42["message","root"]');
            assert.equal(await ws.nextText(), '42["message-back","root"]');
        } finally {
            ws.destroy();
        }
    });

    for (const [name, packet] of [
        ['truncated JSON', '42["message"'],
        ['unknown packet type', '49["x"]'],
        ['event on a namespace that is not connected', '42/custom,["message","x"]'],
    ]) {
        test(`a malformed Socket.IO packet (${name}) closes the connection`, async () => {
            const ws = await rawConnect();
            try {
                ws.sendText('40');
                await ws.nextText();
                await ws.nextText();
                ws.sendText(packet);
                await Promise.race([ws.closed, sleep(2000)]);
                assert.ok(ws.closedAt !== null, 'connection still open');
            } finally {
                ws.destroy();
            }
        });
    }

    test('no CONNECT within connectTimeout (1000 ms) closes the connection', async () => {
        const t0 = Date.now();
        const ws = await rawConnect();
        try {
            // RawWs answers pings, so only the connect timeout can end the session
            await Promise.race([ws.closed, sleep(3000)]);
            assert.ok(ws.closedAt !== null, 'connection still open after 3 s');
            const ms = ws.closedAt - t0;
            assert.ok(ms >= 850 && ms <= 1700, `closed after ${ms} ms, want ~1000`);
        } finally {
            ws.destroy();
        }
    });
});

describe('load', () => {
    test('1000 concurrent websocket clients each complete an ack round trip', async () => {
        const N = 1000;
        // small bursts: opening 100 at once can stall this process past the pingTimeout
        const BATCH = 25;
        const sockets = [];
        const dropped = {}; // reason -> count of disconnects the test did not ask for
        // Its own server with a relaxed heartbeat: this test is about many sockets at once,
        // not the 200 ms pong deadline, which a loaded test machine (sanitizer build) misses.
        const loadServer = await startEcho(['--ping-interval-ms', '5000', '--ping-timeout-ms', '10000']);
        const t0 = Date.now();
        try {
            for (let i = 0; i < N; i += BATCH) {
                const batch = [];
                for (let j = i; j < i + BATCH; j++) {
                    const s = io(loadServer.url, {
                        forceNew: true, reconnection: false, transports: ['websocket'],
                        auth: { n: j },
                    });
                    sockets.push(s);
                    s.io.on('open', () => relaxClientPingCheck(s.io.engine));
                    batch.push(withTimeout(new Promise((resolve, reject) => {
                        s.once('auth', resolve);
                        s.once('connect_error', reject);
                    }), 10000, `client ${j} connect`));
                    s.on('disconnect', (reason) => {
                        if (reason !== 'io client disconnect') {
                            dropped[reason] = (dropped[reason] || 0) + 1;
                        }
                    });
                }
                const auths = await Promise.all(batch);
                auths.forEach((a, k) => assert.deepEqual(a, { n: i + k }));
            }
            const connectedMs = Date.now() - t0;
            const results = await Promise.allSettled(
                sockets.map((s, i) => s.timeout(8000).emitWithAck('message-with-ack', i, 'x')));
            const failed = results.filter((r) => r.status !== 'fulfilled').length;
            assert.deepEqual(dropped, {}, 'clients disconnected by the server');
            assert.equal(failed, 0, 'acks that never came');
            assert.deepEqual(results.map((r) => r.value), [...Array(N).keys()]);
            const totalMs = Date.now() - t0;
            process.stderr.write(`1000 clients: connected in ${connectedMs} ms, ` +
                                 `acked in ${totalMs} ms\n`);
            assert.ok(totalMs < 20000, `took ${totalMs} ms`);
        } finally {
            for (const s of sockets) s.disconnect();
            await loadServer.stop();
        }
    });
});

// Server lifecycle seen by real clients: SIGTERM closes every transport and exits 0, and a
// socket.io-client reconnects by itself once the server is back on the same port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { Socket as EioSocket } from 'engine.io-client';
import { startEcho, once, withTimeout, sleep } from './helpers.mjs';

function connectClient(server, opts) {
    const socket = io(server.url, { forceNew: true, reconnection: false, ...opts });
    const upgraded = opts.transports ? null : once(socket.io.engine, 'upgrade', 3000, 'upgrade');
    return withTimeout((async () => {
        await once(socket, 'auth', 3000, 'auth');
        if (upgraded) await upgraded;
        return socket;
    })(), 4000, 'connect');
}

test('SIGTERM: clients see "transport close" and the server exits 0', async () => {
    const server = await startEcho();
    let clients = [];
    try {
        const upgradedClient = await connectClient(server, {});
        const wsClient = await connectClient(server, { transports: ['websocket'] });
        const pollClient = await connectClient(server, { transports: ['polling'] });
        const rawEio = new EioSocket(server.url, { path: '/engine.io/',
                                                   transports: ['websocket'] });
        await once(rawEio, 'open');
        clients = [upgradedClient, wsClient, pollClient];
        assert.equal(upgradedClient.io.engine.transport.name, 'websocket');
        const reasons = clients.map((c) => once(c, 'disconnect', 5000, 'disconnect'));
        const eioClosed = once(rawEio, 'close', 5000, 'engine.io close');

        await server.stop(); // asserts exit code 0

        const [upgraded, ws, polling] = (await Promise.all(reasons)).map((r) => r[0]);
        assert.equal(upgraded, 'transport close');
        assert.equal(ws, 'transport close');
        // A long-poll client whose GET is pending gets the close packet ("transport close");
        // one caught between two polls sees the refused connection ("transport error").
        assert.ok(polling === 'transport close' || polling === 'transport error', polling);
        assert.equal((await eioClosed)[0], 'transport close');
    } finally {
        for (const c of clients) c.disconnect();
        await server.crash();
    }
});

for (const [name, transports] of [['default transports', undefined],
                                  ['websocket only', ['websocket']]]) {
    test(`reconnection after a restart on the same port (${name})`, async () => {
        let server = await startEcho();
        const port = server.port;
        const auth = { token: 'again', n: 1 };
        const socket = io(server.url, {
            forceNew: true, auth, transports,
            reconnectionDelay: 50, reconnectionDelayMax: 100, randomizationFactor: 0,
            reconnectionAttempts: 100,
        });
        try {
            const firstAuth = once(socket, 'auth', 3000);
            assert.deepEqual((await firstAuth)[0], auth);
            const firstId = socket.id;
            assert.equal(await socket.timeout(5000).emitWithAck('message-with-ack', 1), 1);

            const disc = once(socket, 'disconnect', 5000);
            await server.stop();
            assert.equal((await disc)[0], 'transport close');

            await sleep(200); // a few refused attempts while the server is down
            const reconnected = once(socket.io, 'reconnect', 8000, 'manager reconnect');
            const authAgain = once(socket, 'auth', 8000, 'auth after reconnect');
            server = await startEcho([], { port });
            await reconnected;
            assert.deepEqual((await authAgain)[0], auth);
            assert.equal(socket.connected, true);
            assert.notEqual(socket.id, firstId, 'a new server knows nothing of the old session');
            assert.equal(await socket.timeout(5000).emitWithAck('message-with-ack', 2), 2);
            const back = once(socket, 'message-back');
            socket.emit('message', 'after restart', Buffer.from([1, 2]));
            const [text, bin] = await back;
            assert.equal(text, 'after restart');
            assert.deepEqual(Buffer.from(bin), Buffer.from([1, 2]));
        } finally {
            socket.disconnect();
        }
        await server.stop();
    });
}

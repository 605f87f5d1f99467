// Raw TCP/HTTP behaviour of `parlor echo` with its test options: slow readers are cut at
// --max-outbound-bytes, pipelined requests are answered in order, slow request heads are
// timed out at --header-timeout-ms, and malformed or oversized heads are refused.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startEcho, sleep, connectTcp, recorder, readHttpResponses, parseHttpResponses,
    RawWs, wsEncodeFrame, eioPost, eioHandshake,
} from './helpers.mjs';

const MAX_OUT = 1000000;
const HEADER_TIMEOUT = 300;

let server;
before(async () => {
    server = await startEcho(['--max-outbound-bytes', String(MAX_OUT),
                              '--header-timeout-ms', String(HEADER_TIMEOUT)]);
});
after(async () => {
    if (server) await server.stop();
});

// The server still serves a fresh client (nothing above broke it).
async function assertServerHealthy() {
    const ws = await RawWs.connect(server.port, '/engine.io/?EIO=4&transport=websocket');
    try {
        await ws.nextText();
        ws.sendText('4healthy?');
        assert.equal(await ws.nextText(), '4healthy?');
    } finally {
        ws.destroy();
    }
}

// A WebSocket Engine.IO session whose client stops reading after the open packet. Pongs are
// sent blind every 100 ms so the heartbeat cannot be what ends it; they also make a closed
// connection show up as a write error while we are not reading.
async function stalledSession() {
    const ws = await RawWs.connect(server.port, '/engine.io/?EIO=4&transport=websocket');
    await ws.nextText(); // open packet
    ws.sock.pause();
    const pong = wsEncodeFrame(0x1, Buffer.from('3'));
    const timer = setInterval(() => {
        if (!ws.sock.destroyed) ws.sock.write(pong);
    }, 100);
    ws.closed.then(() => clearInterval(timer));
    return { ws, stopPongs: () => clearInterval(timer) };
}

describe('outbound limit (--max-outbound-bytes 1000000)', () => {
    test('a client that never reads its echoes is disconnected', async () => {
        const { ws, stopPongs } = await stalledSession();
        try {
            const frame = wsEncodeFrame(0x1, Buffer.from('4' + 'x'.repeat(64 * 1024 - 1)));
            const t0 = Date.now();
            // ~25 MiB of echoes to send back: far more than the kernel buffers on both
            // sides hold, so most of it must queue in the server.
            for (let i = 0; i < 400; i++) ws.sock.write(frame);
            await Promise.race([ws.closed, sleep(5000)]);
            assert.ok(ws.closedAt !== null,
                      'connection still open 5 s after the server had 25 MiB to send to it');
            process.stderr.write(`slow reader cut after ${ws.closedAt - t0} ms\n`);
        } finally {
            stopPongs();
            ws.destroy();
        }
        await assertServerHealthy();
    });

    test('a client that reads late, within the limit, is not disconnected', async () => {
        const { ws, stopPongs } = await stalledSession();
        try {
            const payload = '4' + 'y'.repeat(64 * 1024 - 1);
            for (let i = 0; i < 5; i++) ws.sendText(payload); // 320 KiB < 1 MB
            await sleep(1200);
            assert.equal(ws.closedAt, null, 'connection closed although under the limit');
            stopPongs();
            ws.sock.resume();
            for (let i = 0; i < 5; i++) assert.equal(await ws.nextText(3000), payload);
            ws.sendText('4done');
            assert.equal(await ws.nextText(), '4done');
        } finally {
            stopPongs();
            ws.destroy();
        }
    });
});

describe('pipelining', () => {
    test('requests written in one go are answered in order', async () => {
        const sock = await connectTcp(server.port);
        const rec = recorder(sock);
        try {
            const get = (q) => `GET /engine.io/?EIO=4&transport=polling${q} HTTP/1.1\r\n` +
                               `Host: 127.0.0.1:${server.port}\r\n\r\n`;
            sock.write(get('') + get('') + get('&sid=unknown-sid') + get(''));
            const res = await readHttpResponses(rec, 4);
            assert.deepEqual(res.map((r) => r.status), [200, 200, 400, 200]);
            const sids = [0, 1, 3].map((i) => {
                const body = res[i].body.toString('utf8');
                assert.equal(body[0], '0', body);
                return JSON.parse(body.slice(1)).sid;
            });
            assert.equal(new Set(sids).size, 3, `each handshake has its own sid: ${sids}`);
            assert.deepEqual(JSON.parse(res[2].body.toString('utf8')),
                             { code: 1, message: 'Session ID unknown' });
            // the connection is still usable afterwards
            sock.write(get(`&sid=${sids[0]}`).replace('GET', 'POST')
                           .replace('\r\n\r\n', '\r\nContent-Length: 5\r\n\r\n4ping'));
            const [post] = (await readHttpResponses(rec, 5)).slice(4);
            assert.equal(post.status, 200);
            assert.equal(post.body.toString(), 'ok');
        } finally {
            sock.destroy();
        }
    });
});

describe('header timeout (--header-timeout-ms 300)', () => {
    async function assertCutWithoutHead(writeSome) {
        const t0 = Date.now(); // before connecting: the server's clock starts at accept
        const sock = await connectTcp(server.port);
        const rec = recorder(sock);
        try {
            const busy = writeSome(sock);
            await Promise.race([rec.closed, sleep(2000)]);
            await busy;
            assert.ok(rec.closedAt !== null, 'connection still open after 2 s');
            const ms = rec.closedAt - t0;
            // Well before the 2 s race above and the 10 s default: the option is in force.
            assert.ok(ms >= HEADER_TIMEOUT - 50 && ms <= 1900, `closed after ${ms} ms`);
            // docs/api.md: the connection is closed without an answer (no 408).
            assert.equal(rec.text(), '', `unexpected response ${rec.text().slice(0, 200)}`);
        } finally {
            sock.destroy();
        }
    }

    test('a half-sent request head is cut; a client meanwhile is unaffected', async () => {
        const normal = (async () => {
            // a WebSocket that outlives the header timeout several times over
            const ws = await RawWs.connect(server.port, '/engine.io/?EIO=4&transport=websocket');
            try {
                await ws.nextText();
                for (let i = 0; i < 4; i++) {
                    await sleep(250);
                    ws.sendText(`4tick ${i}`);
                    assert.equal(await ws.nextText(), `4tick ${i}`);
                }
            } finally {
                ws.destroy();
            }
            // and plain polling requests
            const { sid } = await eioHandshake(server);
            const r = await eioPost(server, sid, '4p');
            assert.equal(r.status, 200);
        })();
        await assertCutWithoutHead(async (sock) => {
            sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
        });
        await normal;
    });

    test('a connection that sends nothing is cut', async () => {
        await assertCutWithoutHead(async () => {});
    });

    test('a head trickled a byte at a time does not extend the deadline', async () => {
        await assertCutWithoutHead(async (sock) => {
            const head = 'GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n' +
                         'X-Slow: ' + 'z'.repeat(100);
            for (const ch of head) {
                if (sock.destroyed) return;
                sock.write(ch);
                await sleep(20);
            }
        });
    });
});

describe('malformed requests', () => {
    async function exchange(raw) {
        const sock = await connectTcp(server.port);
        const rec = recorder(sock);
        try {
            sock.write(raw);
            await Promise.race([rec.closed, sleep(2000)]);
            const { responses } = parseHttpResponses(rec.data);
            return { responses, closed: rec.closedAt !== null, text: rec.text() };
        } finally {
            sock.destroy();
        }
    }

    for (const [name, raw, statuses] of [
        ['garbage request line', 'GARBAGE\r\n\r\n', [400]],
        ['junk after the version', 'GET / HTTP/1.1 junk\r\nHost: x\r\n\r\n', [400]],
        ['unknown HTTP version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n', [400, 505]],
        ['header line without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
         [400]],
        ['oversized header (40 KiB)',
         `GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Big: ${
             'a'.repeat(40 * 1024)}\r\n\r\n`,
         [431]],
    ]) {
        test(`${name} -> ${statuses.join(' or ')} and the connection is closed`, async () => {
            const { responses, closed, text } = await exchange(raw);
            assert.equal(responses.length, 1, `responses to ${JSON.stringify(raw.slice(0, 60))}: ` +
                                              JSON.stringify(text.slice(0, 300)));
            assert.ok(statuses.includes(responses[0].status), responses[0].statusLine);
            assert.ok(closed, 'connection left open after a protocol error');
        });
    }

    test('the server still works after all of the above', async () => {
        await assertServerHealthy();
    });
});

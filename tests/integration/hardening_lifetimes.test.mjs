// Issue 11, findings 1 and 2: a peer that vanishes while the server still works for it must not
// make the server touch freed memory (docs/architecture.md, "Lifetimes"). Both used to kill the
// release build within a few rounds; tests/chaos/ attacks every other operation the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { HOST, api, sleep, startServer, tokenFor, newUserId } from './chat_helpers.mjs';

// Each test has a server of its own, so one crash does not hide the other.
let server;

function connect(port) {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, HOST, () => resolve(s));
        s.on('error', reject);
    });
}

// Sends everything, and resolves once the peer answered something or closed (or after ms).
function sendAndSettle(sock, bytes, ms = 2000) {
    return new Promise((resolve) => {
        const t = setTimeout(resolve, ms);
        const done = () => { clearTimeout(t); resolve(); };
        sock.once('data', done);
        sock.once('close', done);
        sock.on('error', () => {});
        sock.write(bytes);
    });
}

async function pollingSid() {
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200);
    return JSON.parse((await res.text()).slice(1)).sid;
}

test('a long poll reset while a POST lands on its session (finding 1)', async () => {
    server = await startServer();
    for (let i = 0; i < 150; i++) {
        const sid = await pollingSid();
        const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
        const get = await connect(server.port);
        get.on('error', () => {});
        get.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        const post = await connect(server.port);
        post.on('error', () => {});
        post.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n40`);
        get.resetAndDestroy();
        await sleep(i % 6);
        post.destroy();
        server.assertAlive();
    }
    const res = await api(server, 'GET', '/healthz');
    assert.equal(res.status, 200);
    await server.stop();
});

test('an upload reset right after its last byte (finding 2)', async () => {
    server = await startServer({ args: ['--rate-uploads-per-min', '0'] });
    const token = tokenFor(server, newUserId());
    const content = 'hello, this is a text file\n'.repeat(80);
    const body = '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n' +
        `Content-Type: text/plain\r\n\r\n${content}\r\n--XyZ--\r\n`;
    const req = `POST /api/chat/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    for (let i = 0; i < 60; i++) {
        const s = await connect(server.port);
        s.on('error', () => {});
        s.write(req);
        await sleep(i % 5); // the reset lands in the worker, in the store, or after the answer
        s.resetAndDestroy();
        server.assertAlive();
    }
    // The server is alive and still takes uploads; one not reset gets its answer.
    const s = await connect(server.port);
    let text = '';
    s.on('data', (d) => { text += d; });
    await sendAndSettle(s, req, 10000);
    s.destroy();
    assert.match(text, /^HTTP\/1\.1 201 /, text.slice(0, 200));
    await server.stop();
});

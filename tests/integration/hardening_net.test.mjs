// Output a peer never takes (issue 11: memory and lifetimes without bound): a connection whose
// queued output the peer does not read is cut after --send-timeout-ms, and all queues together
// are bounded by --max-outbound-total-bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
    HOST, closeAll, connectUser, emitAck, newUserId, sleep, startServer, tokenFor,
} from './chat_helpers.mjs';
import { metric } from './helpers.mjs';

async function waitMetric(server, name, pred, timeoutMs, what) {
    const until = Date.now() + timeoutMs;
    let v;
    for (;;) {
        v = await metric(server, name);
        if (pred(v)) return v;
        if (Date.now() > until) assert.fail(`${what}: ${name} is ${v} after ${timeoutMs} ms`);
        await sleep(100);
    }
}

// A raw connection that sends `req` and then never reads a byte.
function stalledRequest(port, req) {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, HOST, () => {
            s.pause();
            s.write(req);
            resolve(s);
        });
        s.on('error', () => {});
        s.once('error', reject);
    });
}

test('a download the client never reads is cut after --send-timeout-ms', async () => {
    const server = await startServer({ args: ['--send-timeout-ms', '1000', '--max-file-size', '33554432'] });
    const token = tokenFor(server, newUserId());
    // 24 MB: far more than the kernel's buffers on both sides of a loopback connection.
    const fd = new FormData();
    fd.append('file', new Blob(['a line of a long text file, read by nobody\n'.repeat(560000)],
                               { type: 'text/plain' }), 'big.txt');
    const up = await fetch(`${server.url}/api/chat/files`, { method: 'POST', body: fd, headers: { authorization: `Bearer ${token}` } });
    const upText = await up.text();
    assert.equal(up.status, 201, upText);
    const { file } = JSON.parse(upText);
    const before = await metric(server, 'parlor_connections');
    const stalled = [];
    for (let i = 0; i < 3; i++) {
        stalled.push(await stalledRequest(server.port, `GET /api/chat/files/${file.id} HTTP/1.1\r\nHost: x\r\n` +
                                                         `Authorization: Bearer ${token}\r\n\r\n`));
    }
    await waitMetric(server, 'parlor_connections', (v) => v >= before + 3, 5000, 'the downloads started');
    // Cut within the send timeout (1 s) plus slack for a loaded machine; before, never.
    await waitMetric(server, 'parlor_connections', (v) => v <= before, 15000, 'stalled downloads cut');
    for (const s of stalled) s.destroy();
    await server.stop();
});

test('all queues together stay under --max-outbound-total-bytes: the stalled readers are cut', async () => {
    const budget = 4 * 1024 * 1024;
    const server = await startServer({ args: ['--max-outbound-total-bytes', String(budget), '--max-message-length', '4000'] });
    const alice = newUserId();
    const bob = newUserId();
    const a = await connectUser(server, tokenFor(server, alice));
    const first = await emitAck(a, 'send_message', { recipientId: bob, content: 'x'.repeat(4000) });
    assert.equal(first.ok, true);
    const conv = first.message.conversationId;
    for (let i = 0; i < 199; i++) {
        const r = await emitAck(a, 'send_message', { conversationId: conv, content: `${i} ${'y'.repeat(3990)}` });
        assert.equal(r.ok, true);
    }
    await closeAll([a]);
    // Each connection asks for pages of ~800 KB and reads none: each holds about one answer
    // (pipelined requests wait behind it), 8 of them more than the 4 MiB budget.
    const page = `GET /api/chat/messages/${conv}?limit=200 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokenFor(server, alice)}\r\n\r\n`;
    const stalled = [];
    for (let i = 0; i < 8; i++) stalled.push(await stalledRequest(server.port, page.repeat(4)));
    const cuts = await waitMetric(server, 'parlor_outbound_cuts_total', (v) => v >= 1, 20000, 'a stalled reader cut by the budget');
    assert.ok(cuts >= 1);
    const queued = await metric(server, 'parlor_outbound_bytes');
    // What is queued is under the budget (a cut releases its queue at once).
    assert.ok(queued <= budget, `${queued} bytes queued, budget ${budget}`);
    // A reader that reads is not cut: a fresh client still gets its page.
    const res = await fetch(`${server.url}/api/chat/messages/${conv}?limit=5`, { headers: { authorization: `Bearer ${tokenFor(server, bob)}` } });
    assert.equal(res.status, 200);
    for (const s of stalled) s.destroy();
    await server.stop();
});

test('pipelined requests wait while the client reads none of the answers', async () => {
    // Outbound caps out of the way: what bounds the work is backpressure alone. The send
    // timeout ends the stalled connection, which is the fence for counting.
    const server = await startServer({ args: ['--max-outbound-bytes', String(256 * 1024 * 1024), '--send-timeout-ms', '2000'] });
    const alice = newUserId();
    const a = await connectUser(server, tokenFor(server, alice));
    const first = await emitAck(a, 'send_message', { recipientId: newUserId(), content: 'x'.repeat(4000) });
    const conv = first.message.conversationId;
    for (let i = 0; i < 199; i++) {
        const r = await emitAck(a, 'send_message', { conversationId: conv, content: `${i} ${'y'.repeat(3990)}` });
        assert.equal(r.ok, true);
    }
    await closeAll([a]);
    const reads0 = await metric(server, 'parlor_store_reads_total');
    const before = await metric(server, 'parlor_connections');
    // before=201: a page read on the store's reader threads, counted in reads_total.
    const page = `GET /api/chat/messages/${conv}?limit=200&before=201 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokenFor(server, alice)}\r\n\r\n`;
    const s = await stalledRequest(server.port, page.repeat(80)); // 80 answers of ~850 KB
    await waitMetric(server, 'parlor_connections', (v) => v >= before + 1, 5000, 'the client connected');
    await waitMetric(server, 'parlor_connections', (v) => v <= before, 30000, 'the stalled client cut by the send timeout');
    const pages = (await metric(server, 'parlor_store_reads_total')) - reads0;
    // Only what the kernel's buffers took, plus one answer, was rendered (before: all 80).
    assert.ok(pages >= 1 && pages <= 30, `${pages} of 80 pipelined pages were read from the store`);
    s.destroy();
    await server.stop();
});

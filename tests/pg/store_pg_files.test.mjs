// Uploads across nodes (issue 13, files): two `parlor serve` nodes on one PostgreSQL schema that
// share one --files-dir serve each other's uploads: a file uploaded through one node is sent in
// a message and downloaded, whole and by range, through the other, and the quota counts the
// user's files on every node. Runs in the PostgreSQL stage (tests/pg/).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
    startServer, connectUser, emitAck, tokenFor, newUserId, newSecret, closeAll,
} from '../integration/chat_helpers.mjs';
import { PG_URL, pgFreshStore } from '../integration/helpers.mjs';

const nodes = [];
after(async () => {
    await closeAll();
    for (const n of nodes) if (!n.exited()) await n.stop();
});

// Text (an accepted type) of n bytes, different every time.
const text = (n) => Buffer.from(randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n - 1) + '\n');

async function upload(srv, token, bytes, filename) {
    const fd = new FormData();
    fd.append('file', new Blob([bytes], { type: 'text/plain' }), filename);
    const res = await fetch(`${srv.url}/api/chat/files`, {
        method: 'POST', headers: { authorization: `Bearer ${token}` }, body: fd,
        signal: AbortSignal.timeout(20000),
    });
    return { status: res.status, json: await res.json() };
}

async function download(srv, token, id, headers = {}) {
    const res = await fetch(`${srv.url}/api/chat/files/${id}`, {
        headers: { authorization: `Bearer ${token}`, ...headers }, signal: AbortSignal.timeout(20000),
    });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

test('two nodes sharing --files-dir serve each other\'s uploads; the quota spans both', async () => {
    assert.ok(PG_URL, 'PARLOR_TEST_PG_URL is not set: tests/pg/ runs in the PostgreSQL stage (make test-pg)');
    const store = pgFreshStore();
    const secret = newSecret();
    const shared = mkdtempSync(path.join(os.tmpdir(), 'parlor-shared-files-'));
    const args = ['--files-dir', shared, '--max-storage-per-user', '300000', '--rate-uploads-per-min', '0'];
    for (let i = 0; i < 2; i++) nodes.push(await startServer({ store, secret, args }));
    const [n1, n2] = nodes;
    const a = newUserId();
    const b = newUserId();

    // A uploads through node 1 and sends it; B, on node 2, downloads it there.
    const bytes = text(200000);
    const up = await upload(n1, tokenFor(n1, a), bytes, 'plan.txt');
    assert.equal(up.status, 201, JSON.stringify(up.json));
    const A = await connectUser(n1, tokenFor(n1, a));
    const sent = await emitAck(A, 'send_message', { recipientId: b, content: 'the plan', type: 'file', fileId: up.json.file.id });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const whole = await download(n2, tokenFor(n2, b), up.json.file.id);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(bytes), 'node 2 served different bytes');
    const part = await download(n2, tokenFor(n2, b), up.json.file.id, { range: 'bytes=100-199' });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(bytes.subarray(100, 200)));

    // Someone outside the conversation gets 404 on either node, as for an id that does not exist.
    const stranger = newUserId();
    assert.equal((await download(n2, tokenFor(n2, stranger), up.json.file.id)).status, 404);

    // The quota (300,000 bytes) counts A's upload on node 1 when A uploads through node 2.
    const over = await upload(n2, tokenFor(n2, a), text(150000), 'more.txt');
    assert.equal(over.status, 413, JSON.stringify(over.json));
    await closeAll([A]);
});

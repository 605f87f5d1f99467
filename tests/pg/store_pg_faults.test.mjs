// PostgreSQL stopped and started under load (issue 13, faults): sends are refused with the
// retryable STORE_UNAVAILABLE (retryAfterMs), REST reads fail with 503, /healthz answers 503
// with the reason, the server reconnects by itself once the database is back, and nothing that
// was acknowledged is lost or stored twice (clients retry with the same clientMsgId).
//
// The test runs its own private PostgreSQL (scripts/pg.sh), so stopping it disturbs no other
// test. It belongs to the PostgreSQL stage of `make test` (tests/pg/).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import {
    startServer, connectUser, api, tokenFor, newUserId, fetchHistory, waitFor, sleep, closeAll,
    freePort,
} from '../integration/chat_helpers.mjs';

const run = promisify(execFile);
const PG = 'scripts/pg.sh';
const pgDir = `/tmp/parlor-pgfault-${process.pid}`;
const TOTAL = 600;
const WINDOW = 10;

let server;
after(async () => {
    await closeAll();
    if (server && !server.exited()) await server.stop();
    execFileSync(PG, ['stop', pgDir]);
});

test('PostgreSQL stopped and started during a burst: refusals are retryable, nothing acknowledged is lost', async () => {
    const url = execFileSync(PG, ['start', pgDir, String(await freePort())]).toString().trim();
    server = await startServer({ store: url });
    const aId = newUserId();
    const bId = newUserId();
    const aTok = tokenFor(server, aId);
    const bTok = tokenFor(server, bId);
    const A = await connectUser(server, aTok);
    const B = await connectUser(server, bTok);

    const acked = new Map(); // clientMsgId -> message
    let unavailable = 0;
    let other = [];
    let next = 0;
    // Each worker sends its messages one by one and retries a refused or unanswered send with
    // the same clientMsgId until it is acknowledged, as a client should.
    async function worker() {
        while (next < TOTAL) {
            const i = next++;
            const clientMsgId = `f-${i}`;
            for (let attempt = 0; ; attempt++) {
                assert.ok(attempt < 400, `${clientMsgId} never acknowledged`);
                let ack;
                try {
                    ack = await A.timeout(10000).emitWithAck('send_message',
                        { recipientId: bId, content: `fault ${i}`, type: 'text', clientMsgId });
                } catch {
                    continue; // no answer in time: retry
                }
                if (ack.ok) {
                    acked.set(clientMsgId, ack.message);
                    break;
                }
                if (ack.error?.code === 'STORE_UNAVAILABLE') {
                    unavailable++;
                    assert.equal(typeof ack.error.retryAfterMs, 'number', JSON.stringify(ack));
                    assert.ok(ack.error.retryAfterMs > 0 && ack.error.retryAfterMs <= 60000);
                    await sleep(Math.min(ack.error.retryAfterMs, 300));
                    continue;
                }
                other.push(ack);
                break;
            }
        }
    }
    const burst = Promise.all(Array.from({ length: WINDOW }, worker));

    await waitFor(() => acked.size >= 100, 30000, '100 acknowledged sends before the fault');
    await run(PG, ['down', pgDir]);

    // While it is down: /healthz 503 with the reason, REST reads 503, sends refused.
    await waitFor(async () => (await api(server, 'GET', '/healthz')).status === 503, 15000,
                  '/healthz to answer 503');
    const h = await api(server, 'GET', '/healthz');
    assert.equal(h.json.status, 'unavailable', h.text);
    assert.equal(h.json.store, 'unreachable', h.text);
    assert.match(h.json.reason, /unavailable/, h.text);
    assert.equal(h.headers.get('retry-after'), '1');
    const list = await api(server, 'GET', '/api/chat/conversations', { token: aTok });
    assert.equal(list.status, 503, list.text);
    assert.equal(list.json.error.code, 'STORE_UNAVAILABLE', list.text);
    assert.ok(list.headers.get('retry-after'), 'Retry-After on a 503');
    await waitFor(() => unavailable >= 5, 15000, 'sends refused with STORE_UNAVAILABLE');
    const ackedWhileDown = acked.size;
    await sleep(1000);
    server.assertAlive();

    await run(PG, ['up', pgDir]);
    await waitFor(async () => (await api(server, 'GET', '/healthz')).status === 200, 30000,
                  '/healthz to answer 200 again after the database came back');
    await burst;
    assert.deepEqual(other, [], 'refusals other than STORE_UNAVAILABLE');
    assert.equal(acked.size, TOTAL);
    assert.ok(acked.size > ackedWhileDown, 'sends resumed after the database came back');

    // Every acknowledged message is stored exactly once, seq 1..N without a gap.
    const cid = acked.get('f-0').conversationId;
    const { messages } = await fetchHistory(server, aTok, cid, 200);
    assert.deepEqual(messages.map((m) => m.seq), Array.from({ length: messages.length }, (_, i) => i + 1));
    const stored = new Map(messages.map((m) => [m.clientMsgId, m]));
    assert.equal(stored.size, messages.length, 'a clientMsgId stored twice');
    assert.equal(messages.length, TOTAL);
    for (const [k, m] of acked) assert.equal(stored.get(k)?._id, m._id, `${k}: the acknowledged message`);

    // The recipient got no message twice and nothing that was not stored; what it missed live
    // (a send whose commit outcome was unknown and that was answered on retry) it can fetch
    // by seq, which is the documented way to close a gap.
    const seen = new Set();
    for (const m of B.received) {
        assert.ok(!seen.has(m._id), `delivered twice: ${m._id}`);
        seen.add(m._id);
        assert.equal(stored.get(m.clientMsgId)?._id, m._id);
    }
    assert.ok(seen.size >= TOTAL - WINDOW, `B received ${seen.size} of ${TOTAL} live`);
    server.assertAlive();
    await closeAll([A, B]);
});

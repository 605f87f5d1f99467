// Durability: kill -9 in the middle of a burst of acknowledged sends, restart on the same data
// directory, and every acknowledged (or delivered) message is there exactly once, seq 1..N.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import {
    startServer, connectUser, emitAck, api, tokenFor, newUserId, newSecret, mkDataDir, fetchHistory,
    assertMessage, waitFor, sleep, closeAll, runParlor, freePort, HOST,
} from './chat_helpers.mjs';

const TOTAL = 500;
const WINDOW = 20;

// Send messages `d-<i>` (i from `from` to TOTAL-1) with at most WINDOW in flight; SIGKILL the
// server as soon as `killAfter` acks arrived. Returns {acked: Map clientMsgId->message, sent}.
async function burstAndKill(server, A, bId, { from = 0, killAfter }) {
    const acked = new Map();
    let next = from;
    let killed = false;
    let sent = 0;
    async function worker() {
        while (!killed && next < TOTAL) {
            const i = next++;
            const clientMsgId = `d-${i}`;
            sent++;
            let ack;
            try {
                ack = await A.timeout(10000).emitWithAck('send_message',
                    { recipientId: bId, content: `durable ${i}`, type: 'text', clientMsgId });
            } catch {
                return; // disconnected by the kill, or timed out: not acknowledged
            }
            if (killed) {
                // An ack that raced the kill is still an ack the client saw: it must survive.
                if (ack?.ok) acked.set(clientMsgId, ack.message);
                return;
            }
            assert.equal(ack.ok, true, JSON.stringify(ack));
            acked.set(clientMsgId, ack.message);
            if (acked.size >= killAfter && !killed) {
                killed = true;
                server.proc.kill('SIGKILL');
            }
        }
    }
    await Promise.all(Array.from({ length: WINDOW }, worker));
    const exit = await server.crash();
    assert.equal(exit.signal, 'SIGKILL', `the server was not killed: ${JSON.stringify(exit)}`);
    return { acked, sent, lastIndex: next };
}

function checkHistory(messages, ackedAll, delivered, cid, what) {
    const seqs = messages.map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `${what}: seqs not 1..N`);
    const byKey = new Map();
    for (const m of messages) {
        assertMessage(m, { conversationId: cid, clientMsgId: m.clientMsgId });
        assert.ok(m.clientMsgId, `${what}: message without clientMsgId ${JSON.stringify(m)}`);
        assert.ok(!byKey.has(m.clientMsgId), `${what}: ${m.clientMsgId} stored twice`);
        byKey.set(m.clientMsgId, m);
        assert.equal(m.content, `durable ${m.clientMsgId.slice(2)}`, `${what}: content of ${m.clientMsgId}`);
    }
    assert.equal(new Set(messages.map((m) => m._id)).size, messages.length, `${what}: duplicate _id`);
    for (const [k, m] of ackedAll) {
        assert.ok(byKey.has(k), `${what}: acknowledged ${k} (seq ${m.seq}) lost`);
        assert.deepEqual(byKey.get(k), m, `${what}: acknowledged ${k} changed`);
    }
    for (const m of delivered) {
        assert.ok(byKey.has(m.clientMsgId), `${what}: delivered ${m.clientMsgId} (seq ${m.seq}) lost`);
        assert.deepEqual(byKey.get(m.clientMsgId), m, `${what}: delivered ${m.clientMsgId} changed`);
    }
    return byKey;
}

test('kill -9 during a burst: every acked message survives exactly once, seqs contiguous', async (t) => {
    const dataDir = mkDataDir();
    const secret = newSecret();
    const aId = newUserId();
    const bId = newUserId();
    let server = await startServer({ dataDir, secret });
    const tokA = tokenFor(server, aId);
    const tokB = tokenFor(server, bId);
    const ackedAll = new Map();
    const delivered = [];
    let cid = null;
    let from = 0;
    try {
        for (let round = 0; round < 2; round++) {
            const A = await connectUser(server, tokA);
            const B = await connectUser(server, tokB);
            const r = await burstAndKill(server, A, bId, { from, killAfter: 100 });
            A.disconnect();
            B.disconnect();
            for (const [k, m] of r.acked) {
                assert.ok(!ackedAll.has(k));
                ackedAll.set(k, m);
            }
            delivered.push(...B.received);
            cid ??= [...r.acked.values()][0].conversationId;
            t.diagnostic(`round ${round}: sent ${r.sent}, acked ${r.acked.size}, B got ${B.received.length}`);
            assert.ok(r.acked.size >= 100, `round ${round}: only ${r.acked.size} acked before the kill`);
            assert.ok(r.lastIndex < TOTAL, `round ${round}: every message was sent before the kill`);
            from = r.lastIndex;

            server = await startServer({ dataDir, secret });
            const { messages } = await fetchHistory(server, tokB, cid, 200);
            checkHistory(messages, ackedAll, delivered, cid, `after crash ${round}`);
            t.diagnostic(`round ${round}: stored ${messages.length} (acked ${ackedAll.size}, sent ${from})`);
            assert.ok(messages.length <= from, `more messages stored (${messages.length}) than sent (${from})`);
        }

        // Finish: resend everything with the same clientMsgIds. Stored ones must answer the
        // stored message, the rest get stored; then there are exactly TOTAL messages.
        const A = await connectUser(server, tokA);
        const B = await connectUser(server, tokB);
        for (let i = 0; i < TOTAL; i += WINDOW) {
            const acks = await Promise.all(Array.from({ length: Math.min(WINDOW, TOTAL - i) }, (_, k) =>
                emitAck(A, 'send_message',
                        { recipientId: bId, content: `durable ${i + k}`, type: 'text', clientMsgId: `d-${i + k}` })));
            for (let k = 0; k < acks.length; k++) {
                const key = `d-${i + k}`;
                assert.equal(acks[k].ok, true, JSON.stringify(acks[k]));
                if (ackedAll.has(key)) assert.deepEqual(acks[k].message, ackedAll.get(key), `resend of ${key}`);
                else ackedAll.set(key, acks[k].message);
            }
        }
        const { messages } = await fetchHistory(server, tokB, cid, 200);
        const byKey = checkHistory(messages, ackedAll, delivered, cid, 'after resend');
        assert.equal(messages.length, TOTAL);
        assert.equal(byKey.size, TOTAL);
        // B got every message that was new in this session, none it had before
        await sleep(200);
        const before = new Set(delivered.map((m) => m._id));
        for (const m of B.received) assert.ok(!before.has(m._id), `resend re-delivered ${m.clientMsgId}`);
        const next = await emitAck(A, 'send_message', { recipientId: bId, content: 'after', type: 'text' });
        assert.equal(next.message.seq, TOTAL + 1);
        await closeAll([A, B]);
        await server.stop();
    } finally {
        await server.crash();
    }
});

test('kill -9 during concurrent REST sends: every 201 survives exactly once', async (t) => {
    const dataDir = mkDataDir();
    const secret = newSecret();
    let server = await startServer({ dataDir, secret });
    const aId = newUserId();
    const bId = newUserId();
    const tokA = tokenFor(server, aId);
    const acked = new Map();
    let next = 0;
    let killed = false;
    try {
        async function worker() {
            while (!killed && next < TOTAL) {
                const i = next++;
                let r;
                try {
                    r = await api(server, 'POST', '/api/chat/messages', {
                        token: tokA,
                        body: { recipientId: bId, content: `durable ${i}`, type: 'text', clientMsgId: `d-${i}` },
                    });
                } catch {
                    return; // connection cut by the kill
                }
                if (r.status === 201) acked.set(`d-${i}`, r.json.message);
                else if (!killed) assert.fail(`POST answered ${r.status} ${r.text}`);
                if (acked.size >= 100 && !killed) {
                    killed = true;
                    server.proc.kill('SIGKILL');
                }
            }
        }
        await Promise.all(Array.from({ length: WINDOW }, worker));
        const exit = await server.crash();
        assert.equal(exit.signal, 'SIGKILL');
        t.diagnostic(`REST: sent ${next}, got 201 for ${acked.size}`);
        // The kill came in the middle of the run: at least 100 sends were answered 201 (so the
        // check below covers them) and the rest of the run was never sent.
        assert.equal(killed, true, 'every send finished before the kill: nothing was tested');
        assert.ok(acked.size >= 100, `only ${acked.size} sends answered 201 before the kill`);
        assert.ok(next < TOTAL, `every message was sent before the kill (sent ${next})`);
        server = await startServer({ dataDir, secret });
        const cid = [...acked.values()][0].conversationId;
        const { messages } = await fetchHistory(server, tokenFor(server, bId), cid, 200);
        checkHistory(messages, acked, [], cid, 'REST after crash');
        assert.ok(messages.length >= acked.size && messages.length <= next,
                  `${messages.length} stored for ${acked.size} answered 201 and ${next} sent`);
        await server.stop();
    } finally {
        await server.crash();
    }
});

test('SIGTERM right after acks: everything acked is there after a restart', async () => {
    const dataDir = mkDataDir();
    const secret = newSecret();
    let server = await startServer({ dataDir, secret });
    const aId = newUserId();
    const bId = newUserId();
    try {
        const A = await connectUser(server, tokenFor(server, aId));
        const acks = await Promise.all(Array.from({ length: 100 }, (_, i) =>
            emitAck(A, 'send_message', { recipientId: bId, content: `durable ${i}`, type: 'text', clientMsgId: `d-${i}` })));
        assert.ok(acks.every((a) => a.ok));
        const g = await api(server, 'POST', '/api/chat/conversations',
                            { token: tokenFor(server, aId), body: { participantIds: [bId, newUserId()], title: 'kept' } });
        assert.equal(g.status, 201, g.text);
        await closeAll([A]);
        await server.stop();
        server = await startServer({ dataDir, secret });
        const tokB = tokenFor(server, bId);
        const { messages } = await fetchHistory(server, tokB, acks[0].message.conversationId, 200);
        checkHistory(messages, new Map(acks.map((a) => [a.message.clientMsgId, a.message])), [],
                     acks[0].message.conversationId, 'after SIGTERM');
        assert.equal(messages.length, 100);
        const l = await api(server, 'GET', '/api/chat/conversations', { token: tokB });
        assert.equal(l.json.conversations.length, 2);
        assert.equal(l.json.conversations[0]._id, g.json._id);
        assert.equal(l.json.conversations[1].unreadCount, 100);
        await server.stop();
    } finally {
        await server.crash();
    }
});

// Every message of a conversation, paging back 200 at a time.
async function allMessages(server, token, cid) {
    const all = [];
    let before = '';
    for (;;) {
        const r = await api(server, 'GET', `/api/chat/messages/${cid}?limit=200${before}`, { token });
        assert.equal(r.status, 200, r.text);
        all.unshift(...r.json.messages);
        if (!r.json.nextCursor) return all;
        before = `&before=${r.json.nextCursor}`;
    }
}

test('SIGTERM with sends in flight: every stored message was acknowledged first; later sends refused, retryable', async () => {
    const dataDir = mkDataDir();
    const secret = newSecret();
    let server = await startServer({ dataDir, secret });
    const aId = newUserId();
    const bId = newUserId();
    const N = 2000;
    try {
        const A = await connectUser(server, tokenFor(server, aId));
        await emitAck(A, 'send_message', { recipientId: bId, content: 'first', type: 'text', clientMsgId: 'first' });
        // N sends at once, and the signal while they are in flight: each gets its ack, a
        // retryable refusal (the node is stopping), or nothing (the session closed before it
        // was read); none is stored without its ack having gone out first.
        const answers = new Map();
        let signalled = false;
        const pending = Array.from({ length: N }, (_, i) =>
            A.timeout(10000).emitWithAck('send_message', { recipientId: bId, content: `durable ${i}`, type: 'text', clientMsgId: `d-${i}` })
                .then((ack) => {
                    answers.set(`d-${i}`, ack);
                    // the signal once the first acks are back: the rest are still in flight
                    if (answers.size === 50 && !signalled) {
                        signalled = true;
                        server.proc.kill('SIGTERM');
                    }
                }, () => {}));
        await Promise.all(pending);
        assert.ok(signalled, 'the signal was sent');
        await waitFor(() => server.exited(), 15000, 'the exit after SIGTERM');
        const exit = server.exited();
        assert.deepEqual(exit, { code: 0, signal: null }, `a clean exit after SIGTERM\n${server.stderr().slice(-3000)}`);
        const refused = [...answers.values()].filter((a) => !a.ok);
        for (const a of refused) {
            assert.equal(a.error?.code, 'UNAVAILABLE', JSON.stringify(a));
            assert.ok(a.error.retryAfterMs > 0, JSON.stringify(a));
        }
        await closeAll([A]);
        server = await startServer({ dataDir, secret });
        const tokB = tokenFor(server, bId);
        const l = await api(server, 'GET', '/api/chat/conversations', { token: tokB });
        const messages = await allMessages(server, tokB, l.json.conversations[0]._id);
        const stored = messages.filter((m) => m.clientMsgId !== 'first');
        const unacked = stored.filter((m) => !answers.get(m.clientMsgId)?.ok);
        assert.deepEqual(unacked.map((m) => m.clientMsgId), [],
                         `stored without an ack (${stored.length} stored, ${answers.size} answered, ${refused.length} refused)`);
        for (const [k, a] of answers) {
            if (a.ok) assert.ok(stored.some((m) => m.clientMsgId === k), `acknowledged ${k} lost`);
        }
        await server.stop();
    } finally {
        await server.crash();
    }
});

// Two servers on one database is the worst corruption case: the second must be refused before
// it touches anything (issue 18, item 1). On PostgreSQL several nodes may share a database,
// but never a data directory: the lock is the data directory's, so this holds on both engines
// (the second server gets the first one's schema, see helpers.mjs).
test('a second server on the same data directory is refused and writes nothing', async () => {
    const dataDir = mkDataDir();
    const secret = newSecret();
    const first = await startServer({ dataDir, secret });
    const alice = newUserId();
    const bob = newUserId();
    const sent = await api(first, 'POST', '/api/chat/messages', {
        token: tokenFor(first, alice), body: { recipientId: bob, content: 'before the second server' },
    });
    assert.equal(sent.status, 201, sent.text);
    const files = () => Object.fromEntries(readdirSync(dataDir).map((f) => {
        const st = statSync(path.join(dataDir, f));
        return [f, `${st.size}/${st.mtimeMs}`];
    }));
    await sleep(300); // the first server's lazy writes (user records) are committed by now
    const before = files();
    const port = await freePort();
    const second = await runParlor(['serve', '--port', String(port), '--host', HOST, '--data', dataDir,
                                    '--jwt-secret', secret], { timeoutMs: 15000 });
    assert.equal(second.signal, null, `second server: ${JSON.stringify(second)}`);
    assert.equal(second.code, 1, `second server exit status (stderr: ${second.stderr})`);
    assert.match(second.stderr, /data directory .* is in use by another parlor/);
    assert.doesNotMatch(second.stderr, /listening on/);
    assert.deepEqual(files(), before, 'the second server changed the data directory');
    // The first one is untouched and still serves what it stored.
    first.assertAlive();
    const hist = await api(first, 'GET', `/api/chat/messages/${sent.json.message.conversationId}`,
                           { token: tokenFor(first, bob) });
    assert.equal(hist.status, 200, hist.text);
    assert.deepEqual(hist.json.messages.map((m) => m.content), ['before the second server']);
    await first.stop();
});

// Webhooks (issue 15, docs/webhooks.md) against a real HTTP receiver in this process: the
// signature verifies, every event type arrives with its documents, message.unread goes only to
// a recipient who was offline and had not read, a receiver failing 5 times then recovering
// gets every delivery once by id and in order per conversation, and a kill -9 with deliveries
// pending (receiver down) loses none after the restart. Runs on SQLite and (scripts/test.sh
// pg_integration) on PostgreSQL.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
    HOST, api, closeAll, connectUser, freePort, mkDataDir, newSecret, newUserId, startServer,
    tokenFor, waitFor,
} from './chat_helpers.mjs';
import { metric } from './helpers.mjs';

const HOOK_SECRET = 'whsec-test-0123456789abcdef';
// Short retries for the test; everything else at its defaults.
const FAST = ['--webhook-secret', HOOK_SECRET, '--webhook-unread-delay-s', '1',
              '--webhook-retry-base-ms', '50', '--webhook-retry-max-ms', '400',
              '--webhook-timeout-ms', '2000', '--webhook-poll-ms', '20'];

// A receiver: records every request; answers 500 to the first `failFirst` ones.
async function startReceiver(port = 0) {
    const r = { requests: [], accepted: [], failFirst: 0 };
    r.server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks);
            const entry = { headers: req.headers, raw, json: JSON.parse(raw.toString('utf8')) };
            r.requests.push(entry);
            if (r.failFirst > 0) {
                r.failFirst--;
                res.writeHead(500).end('not now');
                return;
            }
            r.accepted.push(entry);
            res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        });
    });
    await new Promise((resolve) => r.server.listen(port, HOST, resolve));
    r.port = r.server.address().port;
    r.url = `http://${HOST}:${r.port}/hooks`;
    r.close = () => new Promise((resolve) => {
        r.server.closeAllConnections?.();
        r.server.close(resolve);
    });
    r.of = (type) => r.accepted.filter((d) => d.json.type === type);
    return r;
}

const receivers = [];
after(async () => {
    await closeAll();
    for (const r of receivers) await r.close().catch(() => {});
});

// waitFor for a /metrics value (waitFor's condition is synchronous).
async function waitMetric(server, name, pred, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    let v;
    for (;;) {
        v = await metric(server, name);
        if (pred(v)) return v;
        if (Date.now() > deadline) throw new Error(`timed out: ${what} (${name} = ${v})`);
        await new Promise((r) => setTimeout(r, 50));
    }
}

function verify(d) {
    const want = 'sha256=' + createHmac('sha256', HOOK_SECRET).update(d.raw).digest('hex');
    assert.equal(d.headers['x-parlor-signature'], want, 'signature of the raw body');
    assert.equal(d.headers['x-parlor-event'], d.json.type);
    assert.equal(d.headers['x-parlor-delivery'], d.json.id);
    assert.equal(d.headers['content-type'], 'application/json');
    assert.match(d.json.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
}

async function send(server, token, body) {
    const res = await api(server, 'POST', '/api/chat/messages', { token, body });
    assert.equal(res.status, 201, res.text);
    return res.json.message;
}

test('every event type, signed; message.unread only for the offline recipient who did not read', async () => {
    const rcv = await startReceiver();
    receivers.push(rcv);
    const server = await startServer({ args: ['--webhook-url', rcv.url, ...FAST] });
    try {
        const [alice, bob, carol, dave] = [newUserId(), newUserId(), newUserId(), newUserId()];
        const tok = (u) => tokenFor(server, u);
        // carol stays connected the whole time; bob and dave never connect
        await connectUser(server, tok(carol));
        const direct = await send(server, tok(alice), { recipientId: bob, content: 'hello bob' });
        const read = await api(server, 'PUT', `/api/chat/messages/${direct._id}/read`, { token: tok(bob) });
        assert.equal(read.status, 200, read.text);

        const g = await api(server, 'POST', '/api/chat/conversations',
                            { token: tok(alice), body: { participantIds: [bob, carol, dave], title: 'Flat 3B' } });
        assert.equal(g.status, 201, g.text);
        const gm = await send(server, tok(alice), { conversationId: g.json._id, content: 'viewing at 10:00' });
        // dave reads at once; bob (offline) and carol (online) do not
        const dr = await api(server, 'PUT', `/api/chat/messages/${gm._id}/read`, { token: tok(dave) });
        assert.equal(dr.status, 200, dr.text);

        // the unread checks (1 s later) have run once carol's was skipped and bob's sent
        await waitFor(() => rcv.of('message.unread').length >= 1, 20000,
                      () => `message.unread never came: ${rcv.accepted.map((d) => d.json.type)}`);
        await waitMetric(server, 'parlor_webhook_skipped_total', (v) => v >= 1, 20000,
                         'carol\'s message.unread skipped');
        await waitMetric(server, 'parlor_webhook_pending', (v) => v === 0, 20000, 'outbox empty');

        for (const d of rcv.accepted) verify(d);
        const types = rcv.accepted.map((d) => d.json.type);
        assert.equal(new Set(rcv.accepted.map((d) => d.json.id)).size, rcv.accepted.length, 'ids unique');

        const created = rcv.of('conversation.created').map((d) => d.json.data.conversation);
        assert.deepEqual(created.map((c) => c._id).sort(), [direct.conversationId, g.json._id].sort(), types.join());
        const grp = created.find((c) => c._id === g.json._id);
        assert.equal(grp.title, 'Flat 3B');
        assert.deepEqual([...grp.participants].sort(), [alice, bob, carol, dave].sort());

        const msgs = rcv.of('message.created').map((d) => d.json.data);
        assert.deepEqual(msgs.map((m) => m.message._id).sort(), [direct._id, gm._id].sort());
        const dm = msgs.find((m) => m.message._id === direct._id);
        assert.equal(dm.message.content, 'hello bob');
        assert.equal(dm.message.sender, alice);
        assert.equal(dm.conversation._id, direct.conversationId);

        const reads = rcv.of('message.read').map((d) => d.json.data);
        assert.deepEqual(reads.map((r) => `${r.userId}:${r.messageId}`).sort(),
                         [`${bob}:${direct._id}`, `${dave}:${gm._id}`].sort());
        assert.equal(reads.find((r) => r.userId === bob).conversationId, direct.conversationId);

        // the direct message was read by bob before its due time: no unread for it; the group's
        // goes to bob only (carol was online, dave had read, alice sent it)
        const unread = rcv.of('message.unread').map((d) => d.json.data);
        assert.equal(unread.length, 1, JSON.stringify(unread));
        assert.equal(unread[0].recipient.id, bob);
        assert.equal(unread[0].message._id, gm._id);
        assert.equal(unread[0].message.content, 'viewing at 10:00');
        assert.equal(unread[0].conversation._id, g.json._id);
        assert.equal(unread[0].conversation.title, 'Flat 3B');
        // per conversation, conversation.created comes before its message
        for (const c of [direct.conversationId, g.json._id]) {
            const mine = rcv.accepted.filter((d) => d.json.type !== 'message.unread' &&
                (d.json.data.conversation?._id ?? d.json.data.conversationId) === c)
                .map((d) => d.json.type);
            assert.equal(mine[0], 'conversation.created', mine.join());
        }
        assert.ok((await metric(server, 'parlor_webhook_delivered_total')) >= rcv.accepted.length);
    } finally {
        await server.stop();
    }
});

test('a receiver failing 5 times then recovering gets every delivery once by id, in order per conversation', async () => {
    const rcv = await startReceiver();
    receivers.push(rcv);
    rcv.failFirst = 5;
    const server = await startServer({ args: ['--webhook-url', rcv.url, ...FAST] });
    try {
        const [alice, bob] = [newUserId(), newUserId()];
        const first = await send(server, tokenFor(server, alice), { recipientId: bob, content: 'm0' });
        const conv = first.conversationId;
        const N = 20;
        for (let i = 1; i < N; i++) await send(server, tokenFor(server, alice), { conversationId: conv, content: `m${i}` });
        await waitFor(() => rcv.of('message.created').length >= N, 30000,
                      () => `${rcv.of('message.created').length} of ${N} (requests ${rcv.requests.length})`);
        const seqs = rcv.of('message.created').map((d) => d.json.data.message.seq);
        assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1), 'in seq order, each once');
        const ids = rcv.accepted.map((d) => d.json.id);
        assert.equal(new Set(ids).size, ids.length, 'no id accepted twice');
        assert.equal(rcv.of('conversation.created').length, 1);
        // message.unread (bob never reads) is outside the conversation's order
        const ordered = rcv.accepted.filter((d) => d.json.type !== 'message.unread');
        assert.equal(ordered[0].json.type, 'conversation.created', 'conversation.created first');
        assert.equal(rcv.requests.length - rcv.accepted.length, 5, 'the 5 failures, retried');
        for (const d of rcv.accepted) verify(d);
        // a retried delivery keeps its id
        const failedIds = new Set(rcv.requests.slice(0, 5).map((d) => d.json.id));
        for (const id of failedIds) assert.ok(ids.includes(id), `failed delivery ${id} delivered later`);
        assert.ok((await metric(server, 'parlor_webhook_attempt_errors_total')) >= 5);
    } finally {
        await server.stop();
    }
});

test('kill -9 with deliveries pending (receiver down), then a restart: every delivery arrives', async () => {
    const port = await freePort(); // nothing listens there yet: the receiver is down
    const url = `http://${HOST}:${port}/hooks`;
    const dataDir = mkDataDir();
    const secret = newSecret();
    const args = ['--webhook-url', url, ...FAST, '--webhook-timeout-ms', '1000'];
    let server = await startServer({ dataDir, secret, args });
    const [alice, bob] = [newUserId(), newUserId()];
    const sent = [];
    let rcv;
    try {
        const token = tokenFor(server, alice);
        sent.push(await send(server, token, { recipientId: bob, content: 'k0' }));
        for (let i = 1; i < 10; i++) sent.push(await send(server, token, { conversationId: sent[0].conversationId, content: `k${i}` }));
        await waitMetric(server, 'parlor_webhook_attempt_errors_total', (v) => v >= 2, 20000,
                         'attempts failing against the dead receiver');
        await server.crash();
        rcv = await startReceiver(port);
        receivers.push(rcv);
        server = await startServer({ dataDir, secret, args, store: server.store });
        await waitFor(() => rcv.of('message.created').length >= sent.length, 45000,
                      () => `${rcv.of('message.created').length} of ${sent.length} after the restart`);
        const got = rcv.of('message.created').map((d) => d.json.data.message._id);
        assert.deepEqual(got, sent.map((m) => m._id), 'all, in order');
        assert.equal(rcv.of('conversation.created').length, 1);
        for (const d of rcv.accepted) verify(d);
    } finally {
        await server.stop();
    }
});

test('a receiver that never answers: in-flight deliveries stay capped, chat goes on, the server stops at once', async () => {
    const rcv = await startReceiver();
    receivers.push(rcv);
    const held = [];
    rcv.server.removeAllListeners('request');
    rcv.server.on('request', (req, res) => held.push(res)); // never answered
    const server = await startServer({
        args: ['--webhook-url', rcv.url, ...FAST, '--webhook-concurrency', '1', '--webhook-timeout-ms', '60000'],
    });
    try {
        const alice = newUserId();
        const token = tokenFor(server, alice);
        // 100 conversations: 100 independent queues, more than the 64 a sender may hold
        const N = 100;
        await Promise.all(Array.from({ length: N }, () => send(server, token, { recipientId: newUserId(), content: 'x' })));
        await waitMetric(server, 'parlor_webhook_pending', (v) => v >= 2 * N, 20000, 'all recorded');
        await waitMetric(server, 'parlor_webhook_in_flight', (v) => v === 64, 20000, 'in flight up to the cap');
        // chat is not held up by the receiver
        const t0 = Date.now();
        await send(server, token, { recipientId: newUserId(), content: 'still fast' });
        assert.ok(Date.now() - t0 < 5000);
        assert.equal(await metric(server, 'parlor_webhook_in_flight'), 64, 'never past 64 × concurrency');
        assert.equal(held.length, 1, 'one sender: one POST at a time');
    } finally {
        const t0 = Date.now();
        await server.stop(); // the POST in progress is aborted, not waited for (60 s timeout)
        assert.ok(Date.now() - t0 < 10000, `stop took ${Date.now() - t0} ms`);
        for (const res of held) res.destroy();
    }
});

test('a conversation about a listing carries its context; a system notice is a message.created', async () => {
    const rcv = await startReceiver();
    receivers.push(rcv);
    const server = await startServer({ args: ['--webhook-url', rcv.url, ...FAST] });
    try {
        const [tenant, owner] = [newUserId(), newUserId()];
        const context = { type: 'listing', id: 'L-1042', title: 'Flat 3B, 12 Baker Street' };
        const m = await send(server, tokenFor(server, tenant), { recipientId: owner, context, content: 'Is it free?' });
        const notice = await api(server, 'POST', '/api/server/messages', {
            token: tokenFor(server, 'platform', { scope: 'server' }),
            body: { conversationId: m.conversationId, senderId: 'system', type: 'system', content: 'Viewing confirmed' },
        });
        assert.equal(notice.status, 201, notice.text);
        await waitFor(() => rcv.of('message.created').length >= 2, 20000,
                      () => rcv.accepted.map((d) => d.json.type).join());
        const created = rcv.of('conversation.created')[0].json.data.conversation;
        assert.deepEqual(created.context, context);
        const [first, second] = rcv.of('message.created').map((d) => d.json.data);
        assert.equal(first.message._id, m._id);
        assert.deepEqual(first.conversation.context, context);
        assert.equal(second.message._id, notice.json.message._id);
        assert.equal(second.message.sender, 'system');
        assert.equal(second.message.type, 'system');
        for (const d of rcv.accepted) verify(d);
    } finally {
        await server.stop();
    }
});

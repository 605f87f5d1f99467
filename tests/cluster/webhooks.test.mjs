// message.unread in a cluster (issue 15, docs/webhooks.md): the node that claims a due
// message.unread row asks the cluster's presence whether the recipient is online on any node,
// not only on itself. Two nodes on one store; only node 0 sends webhooks (so it claims every
// row); bob is connected to node 1 only, carol nowhere. A message to each: carol's
// message.unread is sent, bob's is skipped (it was sent before: node 0 saw no socket of bob's).
// Needs PARLOR_TEST_PG_URL, PARLOR_TEST_REDIS_URL (the cluster stage of scripts/test.sh).
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
    HOST, api, closeAll, connectLogged, newSecret, newUserId, startServer, tokenFor, waitFor,
} from '../integration/chat_helpers.mjs';
import { PG_URL, metric, pgFreshStore } from '../integration/helpers.mjs';

const REDIS_URL = process.env.PARLOR_TEST_REDIS_URL || '';

async function startReceiver() {
    const r = { accepted: [] };
    r.server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            r.accepted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            res.writeHead(200).end('ok');
        });
    });
    await new Promise((resolve) => r.server.listen(0, HOST, resolve));
    r.url = `http://${HOST}:${r.server.address().port}/hooks`;
    r.of = (type) => r.accepted.filter((d) => d.type === type);
    return r;
}

// waitFor with an asynchronous condition (chat_helpers' waitFor takes a synchronous one).
async function waitAsync(cond, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

if (!PG_URL || !REDIS_URL) {
    test('cluster: webhooks', () => {
        assert.fail('PARLOR_TEST_PG_URL / PARLOR_TEST_REDIS_URL not set: tests/cluster/ runs in the ' +
                    'cluster stage of scripts/test.sh');
    });
} else {
    describe('message.unread across two nodes', () => {
        const secret = newSecret();
        const nodes = [];
        const sockets = [];
        let rcv;
        before(async () => {
            rcv = await startReceiver();
            const store = pgFreshStore();
            const hooks = ['--webhook-url', rcv.url, '--webhook-secret', 'whsec-cluster-test',
                '--webhook-unread-delay-s', '1', '--webhook-poll-ms', '20'];
            nodes.push(await startServer({ store, secret, args: ['--cluster', REDIS_URL, '--node-id', 'w0', ...hooks] }));
            nodes.push(await startServer({ store, secret, args: ['--cluster', REDIS_URL, '--node-id', 'w1'] }));
        });
        after(async () => {
            await closeAll(sockets);
            for (const n of nodes) await n.stop();
            rcv?.server.closeAllConnections?.();
            await new Promise((resolve) => rcv?.server.close(resolve));
        });

        test('a recipient connected to another node gets no message.unread; one offline does', async () => {
            const alice = newUserId(), bob = newUserId(), carol = newUserId();
            const tok = (u) => tokenFor(nodes[0], u);
            const sb = await connectLogged(nodes[1], tok(bob));
            sockets.push(sb);
            await waitAsync(async () => {
                const r = await api(nodes[0], 'GET', `/api/chat/users/${bob}/status`, { token: tok(bob) });
                return r.status === 200 && r.json.status === 'online';
            }, 5000, 'bob online as node 0 sees it');
            const sent = {};
            for (const to of [bob, carol]) {
                const r = await api(nodes[0], 'POST', '/api/chat/messages', {
                    token: tok(alice), body: { recipientId: to, content: `hello ${to}`, type: 'text' },
                });
                assert.equal(r.status, 201, r.text);
                sent[to] = r.json.message._id;
            }
            await waitFor(() => sb.received.some((m) => m._id === sent[bob]), 5000, 'bob got it live on node 1');
            await waitFor(() => rcv.of('message.unread').length >= 1, 20000, 'carol\'s message.unread');
            await waitAsync(async () => (await metric(nodes[0], 'parlor_webhook_skipped_total')) >= 1, 20000,
                          'bob\'s message.unread skipped');
            await waitAsync(async () => (await metric(nodes[0], 'parlor_webhook_pending')) === 0, 20000, 'outbox empty');
            const unread = rcv.of('message.unread').map((d) => d.data);
            assert.deepEqual(unread.map((u) => `${u.recipient.id}:${u.message._id}`), [`${carol}:${sent[carol]}`]);
        });
    });
}

// Group membership changes in a cluster (issue 15): the server API removes a member through one
// node; another node, which had the group's members cached (its recent history too), drops
// them when the conversation_updated delivery reaches it over the bus, so that the removed
// member, connected there, neither gets the group's next messages sent on that node nor reads
// its history from that node's memory. Needs PARLOR_TEST_PG_URL, PARLOR_TEST_REDIS_URL
// (the cluster stage of scripts/test.sh).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, connectLogged, emitAck, tokenFor, newUserId, newSecret, waitFor, closeAll, api,
} from '../integration/chat_helpers.mjs';
import { PG_URL, pgFreshStore } from '../integration/helpers.mjs';

const REDIS_URL = process.env.PARLOR_TEST_REDIS_URL || '';

if (!PG_URL || !REDIS_URL) {
    test('cluster: membership changes', () => {
        assert.fail('PARLOR_TEST_PG_URL / PARLOR_TEST_REDIS_URL not set: tests/cluster/ runs in the ' +
                    'cluster stage of scripts/test.sh');
    });
} else {
    describe('membership changes across two nodes', () => {
        const secret = newSecret();
        const nodes = [];
        const sockets = [];
        before(async () => {
            const store = pgFreshStore();
            for (let i = 0; i < 2; i++) {
                nodes.push(await startServer({ store, secret, args: ['--cluster', REDIS_URL, '--node-id', `p${i}`] }));
            }
        });
        after(async () => {
            await closeAll(sockets);
            for (const n of nodes) await n.stop();
        });

        test('a member removed through one node loses the group on the other', async () => {
            const person = () => {
                const id = newUserId();
                return { id, token: tokenFor(nodes[0], id) };
            };
            const a = person(), b = person(), c = person();
            const st = tokenFor(nodes[0], 'platform', { scope: 'server' });
            const g = await api(nodes[0], 'POST', '/api/server/conversations', {
                token: st, body: { participantIds: [a.id, b.id, c.id], type: 'group', title: 'G' },
            });
            assert.equal(g.status, 201, g.text);
            const conv = g.json._id;
            const sa = await connectLogged(nodes[0], a.token);
            const sb = await connectLogged(nodes[1], b.token);
            const sc = await connectLogged(nodes[1], c.token);
            sockets.push(sa, sb, sc);
            // node 1 learns the members (and the recent history) from c's send and b's read
            const first = await emitAck(sc, 'send_message', { conversationId: conv, content: 'from node 1' });
            assert.equal(first.ok, true, JSON.stringify(first));
            await waitFor(() => sb.received.length === 1 && sa.received.length === 1, 5000, 'first message');
            const h1 = await api(nodes[1], 'GET', `/api/chat/messages/${conv}`, { token: b.token });
            assert.equal(h1.status, 200, h1.text);
            // removed through node 0
            const rm = await api(nodes[0], 'DELETE', `/api/server/conversations/${conv}/members/${b.id}`, { token: st });
            assert.equal(rm.status, 200, rm.text);
            await waitFor(() => sb.events('conversation_updated').length === 1, 5000, 'b told on node 1');
            await waitFor(() => sc.events('conversation_updated').length === 1, 5000, 'c told on node 1');
            // c sends on node 1: b (on node 1) must not get it
            const second = await emitAck(sc, 'send_message', { conversationId: conv, content: 'after removal' });
            assert.equal(second.ok, true);
            await waitFor(() => sa.received.length === 2, 5000, 'a gets it on node 0');
            const fence = await emitAck(sc, 'send_message', { recipientId: b.id, content: 'fence' });
            await waitFor(() => sb.received.some((m) => m._id === fence.message._id), 5000, 'fence');
            assert.ok(!sb.received.some((m) => m._id === second.message._id), 'b got a message of the group it left');
            const h2 = await api(nodes[1], 'GET', `/api/chat/messages/${conv}`, { token: b.token });
            assert.equal(h2.status, 404, `history from node 1 after removal: ${h2.status} ${h2.text.slice(0, 200)}`);
        });
    });
}

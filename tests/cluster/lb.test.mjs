// Parlor behind a load balancer (issue 14): 3 nodes on one PostgreSQL schema and one Redis,
// every client through haproxy (deploy/haproxy.cfg.in, rendered and started by
// scripts/haproxy.sh in the cluster stage of scripts/test.sh). What is checked:
// - polling-only clients on different nodes talk both ways through haproxy: every long-poll
//   and POST of a session reaches the node that holds it (its sid starts with the node's id);
//   with plain leastconn (HAPROXY_STICKY=0) the sessions break at once;
// - WebSocket clients are spread over the 3 nodes;
// - kill -9 of a node during a burst both ways: its clients reconnect through haproxy to
//   another node and are recovered there (recovered === true) with every message they missed,
//   exactly once, in seq order; senders retry with the same clientMsgId (idempotent) and
//   nothing acknowledged is lost; the killed node comes back into rotation;
// - a node stopped with SIGTERM (one step of a rolling upgrade) during a burst: the same;
// - a session recovered on another node is not replayed the messages it sent itself (their
//   positions go to Redis with each ack: chat_recovery.c);
// - PostgreSQL stopped and started during traffic: refused sends say STORE_UNAVAILABLE with
//   retryAfterMs, retried with the same clientMsgId; nothing acknowledged is lost.
// Needs PARLOR_TEST_PG_URL, PARLOR_TEST_PG_DIR, PARLOR_TEST_REDIS_URL, PARLOR_TEST_HAPROXY_URL
// and PARLOR_TEST_HAPROXY_NODES ("n0=127.0.0.1:PORT,..."; the nodes are started here on those
// ports).
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
    startServer, connectLogged, emitAck, tokenFor, newUserId, newSecret, waitFor, closeAll, sleep,
} from '../integration/chat_helpers.mjs';
import { PG_URL, pgFreshStore } from '../integration/helpers.mjs';

const REDIS_URL = process.env.PARLOR_TEST_REDIS_URL || '';
const REDIS_PORT = REDIS_URL ? new URL(REDIS_URL).port : '';
const PG_DIR = process.env.PARLOR_TEST_PG_DIR || '';
const LB_URL = process.env.PARLOR_TEST_HAPROXY_URL || '';
const LB_NODES = (process.env.PARLOR_TEST_HAPROXY_NODES || '').split(',').filter(Boolean)
    .map((n) => { const [name, addr] = n.split('='); return { name, port: Number(addr.split(':')[1]) }; });

const nodeOf = (sock) => sock.io.engine?.id?.split('.')[0];
function subscribers(user) {
    const out = execFileSync('redis-cli', ['-p', REDIS_PORT, 'PUBSUB', 'NUMSUB', `parlor:0:u:${user}`],
                             { encoding: 'utf8' }).trim().split('\n');
    return Number(out[1] || 0);
}

// Every acked message once in sock.received, per conversation in seq order, offsets growing.
function assertExactlyOnce(sock, acked, what) {
    const ids = new Set(acked.map((m) => m._id));
    const seen = new Set();
    for (const m of sock.received.filter((x) => ids.has(x._id))) {
        assert.ok(!seen.has(m._id), `${what}: ${m._id} (seq ${m.seq}) delivered twice`);
        seen.add(m._id);
    }
    assert.equal(seen.size, ids.size, `${what}: ${ids.size - seen.size} acknowledged messages missing`);
    const last = new Map();
    for (const m of sock.received) {
        const prev = last.get(m.conversationId) ?? 0;
        assert.ok(m.seq > prev, `${what}: seq ${m.seq} after ${prev}`);
        last.set(m.conversationId, m.seq);
    }
    const offs = sock.offsets.map(Number);
    for (let i = 1; i < offs.length; i++)
        assert.ok(offs[i] > offs[i - 1], `${what}: offset ${offs[i]} after ${offs[i - 1]}`);
}

// send_message until acknowledged, with the same clientMsgId each time: through a node's
// death (no ack: the socket reconnects, the emit is retried) and a database outage
// (STORE_UNAVAILABLE + retryAfterMs). Counts the refusals it saw in stats.
async function sendRetry(sock, body, acked, stats = {}) {
    for (let attempt = 0; attempt < 200; attempt++) {
        if (!sock.connected) {
            await waitFor(() => sock.connected, 30000, 'reconnected');
        }
        let ack;
        try {
            ack = await sock.timeout(3000).emitWithAck('send_message', { type: 'text', ...body });
        } catch {
            stats.timeouts = (stats.timeouts ?? 0) + 1;
            continue; // no ack (node died, or reconnecting): the same clientMsgId again
        }
        if (ack.ok) {
            if (!acked.some((m) => m._id === ack.message._id)) acked.push(ack.message);
            return ack.message;
        }
        assert.ok(ack.error && typeof ack.error.retryAfterMs === 'number',
                  `a refused send that is not retryable: ${JSON.stringify(ack)}`);
        stats[ack.error.code] = (stats[ack.error.code] ?? 0) + 1;
        await sleep(Math.min(ack.error.retryAfterMs, 500));
    }
    throw new Error(`never acknowledged: ${JSON.stringify(body)}`);
}

if (!PG_URL || !REDIS_URL || !LB_URL || LB_NODES.length !== 3 || !PG_DIR) {
    test('load balancer', () => {
        assert.fail('PARLOR_TEST_PG_URL/_PG_DIR/_REDIS_URL/_HAPROXY_URL/_HAPROXY_NODES not set: ' +
                    'tests/cluster/ runs in the cluster stage of scripts/test.sh');
    });
} else {
    describe('three nodes behind haproxy', () => {
        const secret = newSecret();
        const nodes = [];
        const sockets = [];
        const lb = { url: LB_URL };
        let store;
        const start = (i) => startServer({
            store, secret, port: LB_NODES[i].port,
            args: ['--cluster', REDIS_URL, '--node-id', LB_NODES[i].name],
        });

        before(async () => {
            store = pgFreshStore();
            for (let i = 0; i < 3; i++) nodes.push(await start(i));
            // haproxy checks every second: wait until it sends handshakes to every node.
            await sleep(2500);
        });
        after(async () => {
            for (const n of nodes) if (!n.exited()) await n.stop();
        });
        // Each test's sockets go: leastconn then sees only the next test's connections.
        afterEach(async () => {
            await closeAll(sockets);
            sockets.length = 0;
        });

        const person = () => {
            const id = newUserId();
            return { id, token: tokenFor(nodes[0], id) };
        };
        async function connect(who, opts = {}) {
            const s = await connectLogged(lb, who.token, opts);
            sockets.push(s);
            return s;
        }
        // A socket through the balancer that is on another node than `other`.
        async function connectElsewhere(who, other, opts = {}) {
            const extra = [];
            try {
                for (let i = 0; i < 20; i++) {
                    const s = await connect(who, opts);
                    if (nodeOf(s) !== nodeOf(other)) return s;
                    extra.push(s); // kept open meanwhile: leastconn then picks another node
                }
                throw new Error('the balancer put every socket on one node');
            } finally {
                for (const s of extra) s.disconnect();
            }
        }
        async function subscribed(user, n = 1) {
            await waitFor(() => subscribers(user) >= n, 5000, `${n} node(s) subscribed to ${user}`);
        }

        test('polling-only clients on different nodes talk both ways through haproxy', async () => {
            const people = [person(), person(), person()];
            const socks = [];
            for (const p of people) socks.push(await connect(p, { transports: ['polling'] }));
            for (const s of socks) {
                assert.match(s.io.engine.id, /^n[0-2]\.[A-Za-z0-9_-]{20}$/, 'a sid carries its node');
                assert.equal(s.io.engine.transport.name, 'polling');
            }
            assert.ok(new Set(socks.map(nodeOf)).size >= 2, `all on one node: ${socks.map(nodeOf)}`);
            const [a, b] = socks[0] && nodeOf(socks[0]) !== nodeOf(socks[1]) ? [socks[0], socks[1]]
                : nodeOf(socks[0]) !== nodeOf(socks[2]) ? [socks[0], socks[2]] : [socks[1], socks[2]];
            const ua = people[socks.indexOf(a)], ub = people[socks.indexOf(b)];
            let broken = 0;
            for (const s of [a, b]) s.on('disconnect', () => broken++);
            await subscribed(ua.id);
            await subscribed(ub.id);
            // Many polling requests: every message is a POST from the sender and a long-poll
            // answer to the recipient; each one must reach the session's node.
            const N = 40, fromA = [], fromB = [];
            const run = async (s, to, tag, acked) => {
                for (let i = 0; i < N; i++) {
                    const ack = await emitAck(s, 'send_message',
                                              { type: 'text', recipientId: to, content: `${tag} ${i}`, clientMsgId: `${tag}-${i}` });
                    assert.equal(ack.ok, true, JSON.stringify(ack));
                    acked.push(ack.message);
                }
            };
            await Promise.all([run(a, ub.id, 'a', fromA), run(b, ua.id, 'b', fromB)]);
            await waitFor(() => a.received.length >= N && b.received.length >= N, 10000,
                          () => `delivered ${a.received.length}/${b.received.length} of ${N}`);
            assertExactlyOnce(b, fromA, 'a -> b');
            assertExactlyOnce(a, fromB, 'b -> a');
            assert.equal(broken, 0, 'a polling session was broken (a request reached another node)');
            assert.equal(a.io.engine.transport.name, 'polling');
        });

        test('WebSocket clients are spread over the 3 nodes', async () => {
            const per = new Map();
            for (let i = 0; i < 9; i++) {
                const s = await connect(person(), { transports: ['websocket'] });
                per.set(nodeOf(s), (per.get(nodeOf(s)) ?? 0) + 1);
            }
            console.log(`# 9 WebSocket clients through haproxy: ${JSON.stringify(Object.fromEntries(per))}`);
            for (const n of LB_NODES) assert.ok((per.get(n.name) ?? 0) >= 1, `no WebSocket client on ${n.name}`);
        });

        test('a session recovered on another node is not replayed its own messages', async () => {
            const alice = person(), bob = person();
            const a = await connect(alice, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
            const b = await connectElsewhere(bob, a);
            await subscribed(alice.id);
            await subscribed(bob.id);
            await sendRetry(b, { recipientId: alice.id, content: 'hello' }, []);
            await waitFor(() => a.received.length >= 1, 5000, 'alice got hello');
            // Alice's own messages come after her offset: on her node, the acked ring spares
            // her them at recovery; on another node only what went to Redis can.
            const own = [];
            for (let i = 0; i < 5; i++) await sendRetry(a, { recipientId: bob.id, content: `own ${i}`, clientMsgId: `own-${i}` }, own);
            const victim = nodes.findIndex((n) => n.port === LB_NODES.find((x) => x.name === nodeOf(a)).port);
            const before = a.received.length;
            nodes[victim].crash();
            await waitFor(() => a.connected && nodeOf(a) !== LB_NODES[victim].name, 20000, 'alice reconnected elsewhere');
            assert.equal(a.recovered, true, 'alice was not recovered on the other node');
            await subscribed(alice.id);
            const fence = await sendRetry(b, { recipientId: alice.id, content: 'fence' }, []);
            await waitFor(() => a.received.some((m) => m._id === fence._id), 10000, 'fence');
            const after = a.received.slice(before).map((m) => m.content);
            assert.deepEqual(after, ['fence'], 'alice was replayed her own messages on the other node');
            nodes[victim] = await start(victim);
        });

        test('kill -9 of a node during a burst: its clients recover elsewhere, nothing lost or doubled', async () => {
            await sleep(2500); // the restarted node back in rotation (checks every second)
            const alice = person(), bob = person(), carol = person();
            const ropts = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 };
            const a = await connect(alice, ropts); // polling, upgraded to WebSocket through haproxy
            const b = await connectElsewhere(bob, a, ropts);
            const c = await connectElsewhere(carol, a, { ...ropts, transports: ['polling'] });
            for (const u of [alice, bob, carol]) await subscribed(u.id);
            const doomed = nodeOf(a);
            const victim = nodes.findIndex((n) => n.port === LB_NODES.find((x) => x.name === doomed).port);
            const toA = [], toB = [], toC = [];
            const stats = {};
            const N = 60;
            let sent = 0;
            const burst = async (s, to, tag, acked) => {
                for (let i = 0; i < N; i++) {
                    await sendRetry(s, { recipientId: to, content: `${tag} ${i}`, clientMsgId: `${tag}-${i}` }, acked, stats);
                    sent++;
                }
            };
            const recoveredOnce = new Promise((resolve) => a.io.on('reconnect', () => resolve()));
            const bursts = Promise.all([
                burst(b, alice.id, 'b2a', toA), burst(c, alice.id, 'c2a', toA),
                burst(a, bob.id, 'a2b', toB), burst(a, carol.id, 'a2c', toC),
            ]);
            await waitFor(() => sent >= 60, 20000, 'the first half of the burst');
            nodes[victim].crash();
            await recoveredOnce;
            await bursts;
            assert.equal(a.recovered, true, 'alice was not recovered after her node died');
            assert.notEqual(nodeOf(a), doomed);
            await subscribed(alice.id);
            // Fences: the next message of each sender arrives after all the burst's.
            const fa = await sendRetry(b, { recipientId: alice.id, content: 'fence a' }, toA);
            const fb = await sendRetry(a, { recipientId: bob.id, content: 'fence b' }, toB);
            const fc = await sendRetry(a, { recipientId: carol.id, content: 'fence c' }, toC);
            await waitFor(() => a.received.some((m) => m._id === fa._id) && b.received.some((m) => m._id === fb._id) &&
                          c.received.some((m) => m._id === fc._id), 15000, 'fences');
            console.log(`# node ${doomed} killed during 4 x ${N} messages: retries ${JSON.stringify(stats)}`);
            assertExactlyOnce(a, toA, 'to alice (recovered on another node)');
            assertExactlyOnce(b, toB, 'alice -> bob');
            assertExactlyOnce(c, toC, 'alice -> carol (polling)');
            nodes[victim] = await start(victim);
        });

        test('a node stopped with SIGTERM (a rolling upgrade): its clients recover on the others', async () => {
            await sleep(2500); // the restarted node back in rotation
            const alice = person(), bob = person();
            const ropts = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 };
            const a = await connect(alice, ropts);
            const b = await connectElsewhere(bob, a, ropts);
            await subscribed(alice.id);
            await subscribed(bob.id);
            const stopped = nodeOf(a);
            const victim = nodes.findIndex((n) => n.port === LB_NODES.find((x) => x.name === stopped).port);
            const toA = [], toB = [], stats = {};
            const N = 40;
            let sent = 0;
            const burst = async (s, to, tag, acked) => {
                for (let i = 0; i < N; i++) {
                    await sendRetry(s, { recipientId: to, content: `${tag} ${i}`, clientMsgId: `${tag}-${i}` }, acked, stats);
                    sent++;
                }
            };
            const bursts = Promise.all([burst(a, bob.id, 'ua', toB), burst(b, alice.id, 'ub', toA)]);
            await waitFor(() => sent >= 20, 20000, 'the first part of the burst');
            const ackedBefore = new Set(toB.map((m) => m._id));
            await nodes[victim].stop();
            await bursts;
            assert.notEqual(nodeOf(a), stopped);
            assert.equal(a.recovered, true, 'alice was not recovered after her node stopped');
            await subscribed(alice.id);
            const fa = await sendRetry(b, { recipientId: alice.id, content: 'fence a' }, toA);
            const fb = await sendRetry(a, { recipientId: bob.id, content: 'fence b' }, toB);
            await waitFor(() => a.received.some((m) => m._id === fa._id) && b.received.some((m) => m._id === fb._id),
                          15000, 'fences');
            assertExactlyOnce(a, toA, 'to alice (moved to another node)');
            assertExactlyOnce(b, toB, 'to bob');
            // Her messages acknowledged before the stop are not replayed to her. (One in flight
            // at the stop, committed after her session was closed, may be: docs/cluster.md.)
            const own = a.received.filter((m) => ackedBefore.has(m._id));
            assert.equal(own.length, 0, `alice was replayed her own acknowledged messages: ${own.map((m) => m.content)}`);
            nodes[victim] = await start(victim);
        });

        test('PostgreSQL restart during traffic: refused sends are retryable, nothing acknowledged lost', async () => {
            await sleep(2500); // the restarted node back in rotation
            const alice = person(), bob = person();
            const ropts = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 1000 };
            const a = await connect(alice, ropts);
            const b = await connectElsewhere(bob, a, ropts);
            await subscribed(alice.id);
            await subscribed(bob.id);
            const toA = [], toB = [], stats = {};
            const N = 40;
            let sent = 0;
            const burst = async (s, to, tag, acked) => {
                for (let i = 0; i < N; i++) {
                    await sendRetry(s, { recipientId: to, content: `${tag} ${i}`, clientMsgId: `${tag}-${i}` }, acked, stats);
                    sent++;
                    await sleep(20);
                }
            };
            const bursts = Promise.all([burst(a, bob.id, 'pa', toB), burst(b, alice.id, 'pb', toA)]);
            await waitFor(() => sent >= 20, 20000, 'the first part of the burst');
            execFileSync('scripts/pg.sh', ['down', PG_DIR], { stdio: 'inherit' });
            await sleep(1500);
            execFileSync('scripts/pg.sh', ['up', PG_DIR], { stdio: 'inherit' });
            await bursts;
            console.log(`# PostgreSQL restarted during 2 x ${N} messages: refusals/retries ${JSON.stringify(stats)}`);
            assert.ok((stats.STORE_UNAVAILABLE ?? 0) + (stats.timeouts ?? 0) > 0, 'no send was refused while PostgreSQL was down');
            await waitFor(() => a.connected && b.connected, 20000, 'both connected');
            const fa = await sendRetry(b, { recipientId: alice.id, content: 'fence a' }, toA);
            const fb = await sendRetry(a, { recipientId: bob.id, content: 'fence b' }, toB);
            await waitFor(() => a.received.some((m) => m._id === fa._id) && b.received.some((m) => m._id === fb._id),
                          15000, 'fences');
            assertExactlyOnce(a, toA, 'to alice');
            assertExactlyOnce(b, toB, 'to bob');
        });
    });
}

// Several `parlor serve` nodes on one PostgreSQL database (one schema; their own --data; the
// same --jwt-secret): what the shared store promises across processes. Live delivery between
// nodes is not expected (that is the cluster's issue), only what goes through the store:
// - clients of the same conversations on two nodes sending at once: every send acked once,
//   seq gap-free and unique per conversation, the same history read from either node;
// - a send retried with the same clientMsgId on the other node answers the first message (the
//   identical ack over the socket, 200 instead of 201 over REST, docs/api.md "Idempotency");
// - a client of a third node that reconnects with connection state recovery after missing
//   messages written on both nodes gets every one of them exactly once.
//
// Runs in the PostgreSQL stage of scripts/test.sh (tests/pg/, with PARLOR_TEST_PG_URL set);
// without the URL it fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, connectLogged, emitAck, api, tokenFor, newUserId, newSecret, fetchHistory,
    assertMessage, waitFor, closeAll, once,
} from '../integration/chat_helpers.mjs';
import { PG_URL, pgFreshStore } from '../integration/helpers.mjs';

if (!PG_URL) {
    test('several nodes on one PostgreSQL database', () => {
        assert.fail('PARLOR_TEST_PG_URL is not set: tests/pg/ runs in the PostgreSQL stage (make test-pg)');
    });
} else {
    describe('several nodes on one PostgreSQL database', () => {
        let store;
        const secret = newSecret();
        const nodes = [];
        const sockets = [];

        before(async () => {
            store = pgFreshStore();
            for (let i = 0; i < 2; i++) nodes.push(await startServer({ store, secret }));
        });
        after(async () => {
            await closeAll(sockets);
            for (const n of nodes) await n.stop();
        });

        const person = () => {
            const id = newUserId();
            return { id, token: tokenFor(nodes[0], id) };
        };
        async function connect(node, who) {
            const s = await connectLogged(node, who.token);
            sockets.push(s);
            return s;
        }
        async function restSend(node, who, body) {
            const r = await api(node, 'POST', '/api/chat/messages', { token: who.token, body: { type: 'text', ...body } });
            assert.equal(r.status, 201, r.text);
            return r.json.message;
        }
        // Sends `n` messages from each sender (a socket, and the bodies it sends) with at most
        // `window` in flight per socket, all senders at once; returns every ack's message (also
        // pushed into `acked` as they come).
        async function burst(senders, n, window = 8, acked = []) {
            await Promise.all(senders.map(({ sock, body, tag }) => {
                let next = 0;
                const worker = async () => {
                    while (next < n) {
                        const i = next++;
                        const clientMsgId = `${tag}-${i}`;
                        const ack = await emitAck(sock, 'send_message',
                                                  { type: 'text', content: `${tag} ${i}`, clientMsgId, ...body(i) });
                        assert.equal(ack.ok, true, `${clientMsgId}: ${JSON.stringify(ack)}`);
                        assert.equal(ack.message.clientMsgId, clientMsgId);
                        acked.push(ack.message);
                    }
                };
                return Promise.all(Array.from({ length: window }, worker));
            }));
            return acked;
        }
        // The conversation's history as both nodes read it: identical, seq 1..N, and holding
        // exactly the acknowledged messages.
        async function checkHistory(cid, reader, acked, what) {
            const views = [];
            for (const node of nodes.slice(0, 2)) views.push((await fetchHistory(node, reader.token, cid, 200)).messages);
            assert.deepEqual(views[1], views[0], `${what}: the two nodes read different histories`);
            const msgs = views[0];
            assert.deepEqual(msgs.map((m) => m.seq), Array.from({ length: msgs.length }, (_, i) => i + 1),
                             `${what}: seq is not 1..N`);
            assert.equal(new Set(msgs.map((m) => m._id)).size, msgs.length, `${what}: an _id twice`);
            const byId = new Map(msgs.map((m) => [m._id, m]));
            for (const m of acked) {
                const stored = byId.get(m._id);
                assert.ok(stored, `${what}: acknowledged ${m.clientMsgId} (seq ${m.seq}) is not in the history`);
                assert.equal(stored.seq, m.seq, `${what}: ${m.clientMsgId} stored under another seq`);
                assert.equal(stored.content, m.content, `${what}: ${m.clientMsgId} content`);
            }
            assert.equal(msgs.length, acked.length, `${what}: the history holds messages nobody acknowledged`);
            return msgs;
        }

        test('two nodes sending into the same conversations: acked once each, seq gap-free and unique', async () => {
            const [A, B] = nodes;
            const alice = person();
            const bob = person();
            const carol = person();
            const aliceA = await connect(A, alice);
            const aliceB = await connect(B, alice);
            const bobA = await connect(A, bob);
            const bobB = await connect(B, bob);
            const carolB = await connect(B, carol);
            // The direct conversation is opened by two first sends racing on the two nodes.
            const [first1, first2] = await Promise.all([
                emitAck(aliceA, 'send_message', { recipientId: bob.id, content: 'hi from A', type: 'text' }),
                emitAck(bobB, 'send_message', { recipientId: alice.id, content: 'hi from B', type: 'text' }),
            ]);
            assert.equal(first1.ok, true, JSON.stringify(first1));
            assert.equal(first2.ok, true, JSON.stringify(first2));
            const direct = first1.message.conversationId;
            assert.equal(first2.message.conversationId, direct, 'two direct conversations for one pair');
            assert.deepEqual([first1.message.seq, first2.message.seq].sort(), [1, 2]);
            const g = await api(B, 'POST', '/api/chat/conversations',
                                { token: alice.token, body: { participantIds: [bob.id, carol.id], title: 'two nodes' } });
            assert.equal(g.status, 201, g.text);
            const group = g.json._id;

            const N = 60;
            const acked = await burst([
                { sock: aliceA, tag: 'aA', body: (i) => ({ conversationId: i % 2 ? direct : group }) },
                { sock: aliceB, tag: 'aB', body: (i) => (i % 2 ? { recipientId: bob.id } : { conversationId: group }) },
                { sock: bobA, tag: 'bA', body: (i) => ({ conversationId: i % 3 ? direct : group }) },
                { sock: bobB, tag: 'bB', body: (i) => ({ conversationId: i % 3 ? group : direct }) },
                { sock: carolB, tag: 'cB', body: () => ({ conversationId: group }) },
            ], N);
            assert.equal(acked.length, 5 * N);
            assert.equal(new Set(acked.map((m) => m._id)).size, acked.length, 'two acks carry one _id');
            for (const m of acked) assertMessage(m, { clientMsgId: m.clientMsgId, content: m.content });
            const inDirect = [first1.message, first2.message, ...acked.filter((m) => m.conversationId === direct)];
            const inGroup = acked.filter((m) => m.conversationId === group);
            assert.equal(inDirect.length + inGroup.length, acked.length + 2, 'a send went to a third conversation');
            // Per conversation, two acks never carry one seq.
            for (const [list, what] of [[inDirect, 'direct'], [inGroup, 'group']]) {
                assert.equal(new Set(list.map((m) => m.seq)).size, list.length, `${what}: one seq acked twice`);
            }
            await checkHistory(direct, bob, inDirect, 'direct');
            await checkHistory(group, carol, inGroup, 'group');
            await closeAll([aliceA, aliceB, bobA, bobB, carolB]);
        });

        test('a send retried on the other node answers the first message; racing retries store one', async () => {
            const [A, B] = nodes;
            const alice = person();
            const bob = person();
            const onA = await connect(A, alice);
            const onB = await connect(B, alice);
            const first = await emitAck(onA, 'send_message',
                                        { recipientId: bob.id, content: 'once', type: 'text', clientMsgId: 'retry-1' });
            assert.equal(first.ok, true, JSON.stringify(first));
            // Over the socket of the other node: the identical ack (content and target ignored).
            const again = await emitAck(onB, 'send_message',
                                        { recipientId: newUserId(), content: 'twice?', type: 'text', clientMsgId: 'retry-1' });
            assert.deepEqual(again, first, 'the retry on the other node is not the first ack');
            // Over REST of either node: 200 (not 201) and the first message.
            for (const node of [B, A]) {
                const r = await api(node, 'POST', '/api/chat/messages', {
                    token: alice.token, body: { conversationId: first.message.conversationId, content: 'thrice?', clientMsgId: 'retry-1' },
                });
                assert.equal(r.status, 200, `REST retry: ${r.status} ${r.text}`);
                assert.deepEqual(r.json.message, first.message);
            }
            // The same new clientMsgId sent on both nodes at once: one message, both answers it.
            const racing = [];
            for (let k = 0; k < 20; k++) {
                const body = { conversationId: first.message.conversationId, type: 'text', clientMsgId: `race-${k}` };
                racing.push(Promise.all([
                    emitAck(onA, 'send_message', { ...body, content: `race ${k} on A` }),
                    emitAck(onB, 'send_message', { ...body, content: `race ${k} on B` }),
                ]));
            }
            const pairs = await Promise.all(racing);
            const stored = [first.message];
            for (const [x, y] of pairs) {
                assert.equal(x.ok, true, JSON.stringify(x));
                assert.equal(y.ok, true, JSON.stringify(y));
                assert.deepEqual(y.message, x.message, 'the racing sends answered two different messages');
                stored.push(x.message);
            }
            await checkHistory(first.message.conversationId, bob, stored, 'racing retries');
            await closeAll([onA, onB]);
        });

        test('a third node\'s client recovers every message written on both nodes while it was away, once', async () => {
            const [A, B] = nodes;
            const C = await startServer({ store, secret });
            nodes.push(C);
            const dave = person();
            const alice = person();
            // dave's client reconnects by itself, as socket.io-client does (with its pid and the
            // offset of the last message it got), but its CONNECT waits for the gate.
            let release = () => {};
            let held = Promise.resolve();
            let waiting = false;
            const d = await connectLogged(C, dave.token, {
                reconnection: true,
                reconnectionDelay: 50,
                reconnectionDelayMax: 200,
                randomizationFactor: 0,
                auth: (cb) => {
                    waiting = true;
                    held.then(() => cb({ token: dave.token }));
                },
            });
            sockets.push(d);
            const pid = d._pid;
            assert.equal(typeof pid, 'string', 'no pid: recovery is off');
            const seen = await restSend(C, alice, { recipientId: dave.id, content: 'seen on C' });
            await waitFor(() => d.received.some((m) => m._id === seen._id), 3000, 'dave did not get the first message');
            const base = d.received.length;
            async function drop() { // a network drop, no goodbye; the gate holds the reconnection
                held = new Promise((r) => {
                    release = r;
                });
                waiting = false;
                const gone = once(d, 'disconnect', 5000);
                d.io.engine.transport.ws.terminate();
                await gone;
            }
            async function comeBack(what) {
                assert.equal(d.connected, false, `${what}: reconnected before the gate opened`);
                await waitFor(() => waiting, 5000, `${what}: the client did not get its transport back`);
                release();
                await waitFor(() => d.connected, 5000, `${what}: the client did not reconnect`);
                assert.equal(d.recovered, true, `${what}: dave's session was not recovered`);
                assert.equal(d._pid, pid);
            }
            await drop();

            // While dave is away, four users write to him on A and B: directly (conversations
            // that do not wait for each other's locks) and in a group. He comes back while they
            // write, a few times (replays racing commits on both nodes: positions must not let
            // one skip anything) and drops again, then once after.
            const writers = [];
            for (const [node, tag] of [[A, 'A1'], [B, 'B1'], [A, 'A2'], [B, 'B2']]) {
                const who = person();
                writers.push({ who, tag, sock: await connect(node, who) });
            }
            const g = await api(A, 'POST', '/api/chat/conversations', {
                token: writers[0].who.token,
                body: { participantIds: [writers[1].who.id, dave.id], title: 'away' },
            });
            assert.equal(g.status, 201, g.text);
            const missed = [];
            let done = false;
            const writing = burst(writers.map(({ sock, tag }, k) => ({
                sock, tag: `toDave${tag}`,
                body: (i) => (k < 2 && i % 5 === 0 ? { conversationId: g.json._id } : { recipientId: dave.id }),
            })), 150, 8, missed).finally(() => {
                done = true;
            });
            let cycles = 0;
            for (; cycles < 4 && !done; cycles++) {
                await waitFor(() => missed.length >= 50 * (cycles + 1) || done, 20000, 'the burst stalled');
                if (done) break;
                const had = d.received.length;
                await comeBack(`during the burst (${cycles})`);
                await waitFor(() => d.received.length > had, 5000, 'nothing replayed during the burst');
                await drop();
            }
            const during = d.received.length - base;
            await writing;
            await comeBack('after the burst');
            // A fence sent on C now arrives after the whole replay.
            const fence = await restSend(C, person(), { recipientId: dave.id, content: 'fence' });
            await waitFor(() => d.received.some((m) => m._id === fence._id), 10000,
                          () => `the fence did not arrive; got ${d.received.length} messages`);
            const fenceAt = d.received.findIndex((m) => m._id === fence._id);
            const replayed = d.received.slice(base, fenceAt);
            const offsets = d.offsets.slice(base, fenceAt);
            const want = new Map(missed.map((m) => [m._id, m]));
            const counts = new Map();
            for (const m of replayed) counts.set(m._id, (counts.get(m._id) ?? 0) + 1);
            const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
            const lost = missed.filter((m) => !counts.has(m._id)).map((m) => `${m.clientMsgId} (seq ${m.seq})`);
            const extra = replayed.filter((m) => !want.has(m._id)).map((m) => m.content);
            assert.deepEqual(lost, [], `missed messages not replayed (${lost.length} of ${missed.length}; ${during} came in ${cycles} reconnections during the burst)`);
            assert.deepEqual(twice, [], 'messages replayed twice');
            assert.deepEqual(extra, [], 'replayed messages that were not missed');
            // In commit order: offsets grow, and so does seq within each conversation.
            for (let i = 1; i < offsets.length; i++) {
                assert.ok(BigInt(offsets[i]) > BigInt(offsets[i - 1]), `offsets not increasing at ${i}: ${offsets[i - 1]}, ${offsets[i]}`);
            }
            const lastSeq = new Map();
            for (const m of replayed) {
                assert.ok(m.seq > (lastSeq.get(m.conversationId) ?? 0), `seq out of order in ${m.conversationId}`);
                lastSeq.set(m.conversationId, m.seq);
                assert.deepEqual(m, want.get(m._id), 'a replayed document differs from its ack');
            }
            await closeAll([...writers.map((w) => w.sock), d]);
        });
    });
}

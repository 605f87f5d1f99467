// Chaos: every kind of operation a client can start, broken off (FIN or RST) at a random
// point, many at once, against one `parlor serve`. make test runs it on the ASan+UBSan build
// for CHAOS_SECONDS (default 40); `make chaos` runs it longer. It passes when the server never
// died, the sanitizers said nothing, every operation kind ran many times (and each completed
// at least once, so the limits did not refuse them all), every connection and session the
// rounds opened is gone again afterwards, a real socket.io client still chats, and SIGTERM
// still exits 0 (with LeakSanitizer on, a leak fails that).
//
// The rule under test is docs/architecture.md "Lifetimes": the peer may vanish at any byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import {
    HOST, api, closeAll, connectUser, emitAck, newUserId, sleep, startServer, tokenFor, waitFor,
} from '../integration/chat_helpers.mjs';
import { metric, wsEncodeFrame } from '../integration/helpers.mjs';

const SECONDS = Number(process.env.CHAOS_SECONDS || 40);
const WORKERS = Number(process.env.CHAOS_WORKERS || 24);
const SEED = Number(process.env.CHAOS_SEED || Date.now() % 1e9);

// A small seeded PRNG (mulberry32), so a failing run can be repeated with CHAOS_SEED.
let rngState = SEED >>> 0;
function rand() {
    rngState = (rngState + 0x6d2b79f5) >>> 0;
    let t = rngState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (n) => Math.floor(rand() * n);
const pick = (a) => a[randInt(a.length)];

// ---------------------------------------------------------------- one scripted connection

// A script is a list of steps on one TCP connection: {send: Buffer} or {wait: string} (wait
// until the bytes received so far contain the string). The run is broken off at `cut`, a
// position in the script: {step, bytes} (send only `bytes` of that send step) or the end
// (then after `delayMs`). `how` is 'fin' (end) or 'rst' (reset). Resolves
// {completed: bool} - whether the whole script ran before the cut.
function runScript(port, steps, { cut, how, delayMs }) {
    return new Promise((resolve) => {
        const sock = net.connect(port, HOST);
        let received = '';
        let waiter = null;
        let finished = false;
        const finish = (completed) => {
            if (finished) return;
            finished = true;
            clearTimeout(guard);
            if (how === 'rst' && !sock.destroyed) sock.resetAndDestroy();
            else if (!sock.destroyed) {
                sock.end();
                // A peer that keeps its half open would keep us here: drop it soon.
                setTimeout(() => sock.destroy(), 200).unref();
            }
            resolve({ completed });
        };
        // No step may hang a worker: a wait that never ends is broken off like any other.
        const guard = setTimeout(() => finish(false), 4000);
        sock.on('error', () => finish(false));
        sock.on('close', () => {
            if (waiter) waiter();
            finish(false);
        });
        sock.on('data', (d) => {
            received += d.toString('latin1');
            if (received.length > 1 << 20) received = received.slice(-4096);
            if (waiter) waiter();
        });
        sock.on('connect', async () => {
            for (let i = 0; i < steps.length; i++) {
                if (finished) return;
                const s = steps[i];
                if (s.send) {
                    if (cut.step === i) {
                        sock.write(s.send.subarray(0, cut.bytes));
                        await sleep(randInt(3));
                        return finish(false);
                    }
                    sock.write(s.send);
                } else {
                    if (cut.step === i) return finish(false);
                    const ok = await new Promise((res) => {
                        const check = () => {
                            if (received.includes(s.wait)) res(true);
                            else if (finished || sock.destroyed) res(false);
                            else return;
                            waiter = null;
                        };
                        waiter = check;
                        check();
                    });
                    if (!ok) return finish(false);
                }
            }
            if (delayMs) await sleep(delayMs);
            finish(true);
        });
    });
}

// Where to break off a script: anywhere in any send (most often), at a wait, or after the end.
function randomCut(steps) {
    const r = rand();
    if (r < 0.3) return { step: -1 }; // the whole script, then a short delay
    const i = randInt(steps.length);
    const s = steps[i];
    return s.send ? { step: i, bytes: randInt(s.send.length + 1) } : { step: i };
}

// ---------------------------------------------------------------- request builders

const enc = (s) => Buffer.from(s, 'utf8');
function httpReq(method, path, { token, body, headers = {} } = {}) {
    const b = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : enc(body);
    let h = `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\n`;
    if (token) h += `Authorization: Bearer ${token}\r\n`;
    for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
    if (body !== undefined) h += `Content-Length: ${b.length}\r\n`;
    return Buffer.concat([enc(h + '\r\n'), b]);
}
const jsonReq = (method, path, token, obj) =>
    httpReq(method, path, { token, body: JSON.stringify(obj), headers: { 'Content-Type': 'application/json' } });

function wsUpgrade(query) {
    const key = randomBytes(16).toString('base64');
    return enc(`GET /socket.io/?EIO=4&${query} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\n` +
               `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
}
const wsText = (s) => wsEncodeFrame(1, enc(s));
const wsBin = (b) => wsEncodeFrame(2, b);

// An Engine.IO polling handshake on its own connection; resolves the sid (or null).
async function pollingSid(port) {
    try {
        const res = await fetch(`http://${HOST}:${port}/socket.io/?EIO=4&transport=polling`,
                                { signal: AbortSignal.timeout(4000) });
        const text = await res.text();
        return JSON.parse(text.slice(1)).sid;
    } catch {
        return null;
    }
}

// ---------------------------------------------------------------- the operations

// Each returns {conns: [steps, ...]} - one or more scripts run at once, each cut at random.
function operations(ctx) {
    const { port } = ctx;
    const tok = () => pick(ctx.tokens);
    const connectWs = (auth) => [
        { send: wsUpgrade('transport=websocket') },
        { wait: '\r\n\r\n' },
        { wait: '"sid"' },
        { send: wsText(`40${JSON.stringify(auth)}`) },
        { wait: '40{"sid"' },
    ];
    const event = (name, args) => {
        const id = randInt(1000);
        return [{ send: wsText(`42${id}${JSON.stringify([name, ...args])}`) }, { wait: `43${id}` }];
    };
    const sendArgs = () => ({
        recipientId: pick(ctx.users.filter((u) => u !== ctx.users[0])),
        content: `chaos ${randInt(1e6)}`,
        clientMsgId: `c-${randInt(1e9)}`,
    });
    const pollQuery = (sid) => `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    return {
        async handshake() {
            return { conns: [[{ send: httpReq('GET', '/socket.io/?EIO=4&transport=polling') }, { wait: '"sid"' }]] };
        },
        // A pending long poll and a POST on the same session, both broken off at random
        // (issue 11, finding 1).
        async poll_get_post() {
            const sid = await pollingSid(port);
            if (!sid) return null;
            const auth = `40${JSON.stringify({ token: tok() })}`;
            return {
                conns: [
                    [{ send: httpReq('GET', pollQuery(sid)) }, { wait: '\r\n\r\n' }],
                    [{ send: httpReq('POST', pollQuery(sid), { body: auth }) }, { wait: 'ok' }],
                ],
            };
        },
        // A polling client that joins and sends a message, cut anywhere.
        async poll_send() {
            const sid = await pollingSid(port);
            if (!sid) return null;
            const body = `40${JSON.stringify({ token: tok() })}\x1e42${JSON.stringify(['send_message', sendArgs()])}`;
            return {
                conns: [[
                    { send: httpReq('POST', pollQuery(sid), { body }) }, { wait: 'ok' },
                    { send: httpReq('GET', pollQuery(sid)) }, { wait: '40{' },
                ]],
            };
        },
        // The upgrade: a probe WebSocket and a long poll on one session, both cut.
        async upgrade() {
            const sid = await pollingSid(port);
            if (!sid) return null;
            return {
                conns: [
                    [
                        { send: wsUpgrade(`transport=websocket&sid=${sid}`) }, { wait: '\r\n\r\n' },
                        { send: wsText('2probe') }, { wait: '3probe' }, { send: wsText('5') },
                        { send: wsText(`40${JSON.stringify({ token: tok() })}`) }, { wait: '40{' },
                    ],
                    [{ send: httpReq('GET', pollQuery(sid)) }, { wait: '\r\n\r\n' }],
                ],
            };
        },
        async ws_connect() {
            return { conns: [connectWs({ token: tok() })] };
        },
        async send_message() {
            return { conns: [[...connectWs({ token: ctx.tokens[0] }), ...event('send_message', [sendArgs()])]] };
        },
        async mark_read() {
            const b = randInt(ctx.tokens.length - 1) + 1;
            return {
                conns: [[...connectWs({ token: ctx.tokens[b] }),
                         ...event('mark_read', [{ conversationId: ctx.conv, seq: 1 + randInt(50) }])]],
            };
        },
        async typing() {
            return {
                conns: [[...connectWs({ token: tok() }),
                         { send: wsText(`42${JSON.stringify(['typing', { conversationId: ctx.group, isTyping: rand() < 0.5 }])}`) },
                         ...event('get_status', [{ userIds: ctx.users }])]],
            };
        },
        async get_status() {
            return { conns: [[...connectWs({ token: tok() }), ...event('get_status', [{ userIds: ctx.users }])]] };
        },
        // A binary event: attachments broken off mid-way.
        async binary_event() {
            const att = randomBytes(1 + randInt(3000));
            return {
                conns: [[...connectWs({ token: tok() }),
                         { send: wsText(`451-["send_message",{"_placeholder":true,"num":0}]`) },
                         { send: wsBin(att) }, { wait: '4' }]],
            };
        },
        // Connection state recovery from offset 0: a long replay, cut while it streams.
        async recovery() {
            return { conns: [connectWs({ token: ctx.tokens[1], pid: ctx.pid, offset: '0' }).concat([{ wait: 'chaos' }])] };
        },
        async rest() {
            const t = tok();
            const reqs = [
                () => httpReq('GET', '/api/chat/conversations?limit=5', { token: t }),
                () => jsonReq('POST', '/api/chat/conversations', t, { participantIds: [pick(ctx.users)] }),
                () => httpReq('GET', `/api/chat/messages/${ctx.conv}?limit=${1 + randInt(200)}`, { token: ctx.tokens[0] }),
                () => jsonReq('POST', '/api/chat/messages', ctx.tokens[0], sendArgs()),
                () => httpReq('PUT', `/api/chat/messages/${ctx.msgId}/read`, { token: ctx.tokens[1] }),
                () => httpReq('GET', `/api/chat/users/${pick(ctx.users)}/status`, { token: t }),
                () => httpReq('GET', `/api/chat/users?q=${ctx.users[0].slice(0, 3)}`, { token: t }),
                () => httpReq('GET', `/api/chat/users?ids=${ctx.users.join(',')}`, { token: t }),
                () => jsonReq('POST', '/api/auth/register', undefined,
                              { username: `u${randInt(1e9)}`, password: 'correct horse battery' }),
                () => jsonReq('POST', '/api/auth/login', undefined, { username: 'chaosuser', password: 'correct horse battery' }),
                () => httpReq('GET', '/healthz'),
                () => httpReq('GET', '/metrics'),
                () => httpReq('GET', '/'),
                () => httpReq('OPTIONS', '/api/chat/conversations', { headers: { Origin: 'http://x' } }),
                () => httpReq('POST', '/api/chat/messages', { token: ctx.tokens[0], body: 'x'.repeat(randInt(5000)) }),
            ];
            // Pipelined: a second request behind the first, both cut together.
            const steps = [{ send: pick(reqs)() }];
            if (rand() < 0.3) steps.push({ send: pick(reqs)() });
            steps.push({ wait: 'HTTP/1.1' });
            return { conns: [steps] };
        },
        async upload() {
            const content = enc(`chaos upload ${randInt(1e9)}\n`.repeat(1 + randInt(2000)));
            const body = Buffer.concat([
                enc('--XyZ\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n' +
                    'Content-Type: text/plain\r\n\r\n'),
                content, enc('\r\n--XyZ--\r\n'),
            ]);
            return {
                conns: [[{ send: httpReq('POST', '/api/chat/files', {
                    token: ctx.tokens[0], body, headers: { 'Content-Type': 'multipart/form-data; boundary=XyZ' },
                }) }, { wait: 'HTTP/1.1' }]],
            };
        },
        async download() {
            const headers = rand() < 0.5 ? { Range: `bytes=${randInt(1000)}-` } : {};
            return {
                conns: [[{ send: httpReq('GET', `/api/chat/files/${ctx.fileId}`, { token: ctx.tokens[1], headers }) },
                         { wait: 'HTTP/1.1' }, { wait: 'chaos' }]],
            };
        },
    };
}

// ---------------------------------------------------------------- the run

test(`chaos: every operation broken off at random points (${SECONDS} s, seed ${SEED})`, { timeout: (SECONDS + 180) * 1000 }, async () => {
    const server = await startServer({
        args: ['--ping-interval-ms', '1000', '--ping-timeout-ms', '1000', '--connect-timeout-ms', '2000',
               '--header-timeout-ms', '2000', '--idle-timeout-ms', '2000', '--rate-uploads-per-min', '0'],
    });
    const users = [newUserId(), newUserId(), newUserId()];
    const tokens = users.map((u) => tokenFor(server, u));
    // Groundwork: a direct conversation with history, a group, a file, a recovery pid.
    const a = await connectUser(server, tokens[0]);
    const b = await connectUser(server, tokens[1]);
    const first = await emitAck(a, 'send_message', { recipientId: users[1], content: 'chaos hello' });
    assert.equal(first.ok, true, JSON.stringify(first));
    for (let i = 0; i < 200; i++) {
        await emitAck(a, 'send_message', { conversationId: first.message.conversationId, content: `chaos ${i}` });
    }
    const group = await api(server, 'POST', '/api/chat/conversations', {
        token: tokens[0], body: { participantIds: [users[1], users[2]], title: 'chaos' },
    });
    assert.equal(group.status, 201, group.text);
    const fd = new FormData();
    fd.append('file', new Blob(['chaos file\n'.repeat(3000)], { type: 'text/plain' }), 'c.txt');
    const up = await fetch(`${server.url}/api/chat/files`, {
        method: 'POST', body: fd, headers: { authorization: `Bearer ${tokens[0]}` },
    });
    assert.equal(up.status, 201);
    const fileId = (await up.json()).file.id;
    await emitAck(a, 'send_message', { conversationId: first.message.conversationId, type: 'file', fileId, content: 'f' });
    const reg = await api(server, 'POST', '/api/auth/register', { body: { username: 'chaosuser', password: 'correct horse battery' } });
    assert.equal(reg.status, 201, reg.text);
    const pid = b._pid;
    assert.ok(pid, 'socket.io-client keeps the pid the server gave');
    await closeAll([a, b]);

    const ctx = {
        port: server.port, users, tokens, pid, fileId,
        conv: first.message.conversationId, msgId: first.message._id, group: group.json._id,
    };
    const ops = operations(ctx);
    const stats = Object.fromEntries(Object.keys(ops).map((k) => [k, { rounds: 0, completed: 0 }]));
    const deadline = Date.now() + SECONDS * 1000;
    let rounds = 0;
    async function worker() {
        while (Date.now() < deadline) {
            const kind = pick(Object.keys(ops));
            const plan = await ops[kind]();
            if (!plan) continue;
            const results = await Promise.all(plan.conns.map((steps) => runScript(server.port, steps, {
                cut: randomCut(steps), how: rand() < 0.5 ? 'fin' : 'rst', delayMs: randInt(4),
            })));
            stats[kind].rounds++;
            if (results.some((r) => r.completed)) stats[kind].completed++;
            rounds++;
            server.assertAlive();
        }
    }
    await Promise.all(Array.from({ length: WORKERS }, worker));
    console.log(`chaos: ${rounds} rounds in ${SECONDS} s, seed ${SEED}`);
    for (const [k, s] of Object.entries(stats)) console.log(`  ${k.padEnd(14)} ${String(s.rounds).padStart(6)} rounds, ${s.completed} ran to the end`);
    server.assertAlive();

    // Every kind ran, and none was refused every time (the limits are lifted for this run).
    for (const [k, s] of Object.entries(stats)) {
        assert.ok(s.rounds >= 5, `${k} ran only ${s.rounds} times`);
        assert.ok(s.completed >= 1, `${k} never ran to the end in ${s.rounds} rounds`);
    }

    // Nothing the rounds opened is left behind: connections close, abandoned sessions expire
    // (ping 1 s + 1 s, connect timeout 2 s).
    let conns = NaN;
    let sessions = NaN;
    const until = Date.now() + 30000;
    for (;;) {
        conns = await metric(server, 'parlor_connections');
        sessions = await metric(server, 'parlor_engineio_sessions');
        // The /metrics request itself is one connection.
        if (conns <= 1 && sessions === 0) break;
        assert.ok(Date.now() < until, `left behind: ${conns} connections, ${sessions} sessions`);
        await sleep(250);
    }

    // It still chats.
    const a2 = await connectUser(server, tokens[0]);
    const b2 = await connectUser(server, tokens[1]);
    const sent = await emitAck(a2, 'send_message', { recipientId: users[1], content: 'after the storm' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    await waitFor(() => b2.received.some((m) => m.content === 'after the storm'), 10000, 'delivery after chaos');
    await closeAll([a2, b2]);
    await server.stop(); // exit 0, and no leak report under LeakSanitizer
});

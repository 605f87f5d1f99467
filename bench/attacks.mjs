// The attacks of issue 11, each against a fresh `parlor serve` with its default limits, printing
// what they cost the server: peak RSS growth, whether it survived, and how long a bystander
// waited meanwhile. A measurement, not a test (the regression tests live in tests/): run it
// against two builds side by side to compare.
//
//   node bench/attacks.mjs [--bin build/parlor] [--only name,name]
//
// Figures go to docs/security.md.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { io } from 'socket.io-client';

const args = process.argv.slice(2);
const opt = (name, def) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
};
process.env.PARLOR_BIN = opt('bin', process.env.PARLOR_BIN || 'build/parlor');
const only = opt('only', '') ? opt('only', '').split(',') : null;
const { startServer, tokenFor, newUserId, HOST, sleep } = await import('../tests/integration/chat_helpers.mjs');
const { wsEncodeFrame } = await import('../tests/integration/helpers.mjs');

const rssKiB = (pid) => {
    try {
        return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    } catch {
        return NaN;
    }
};

// Samples the server's RSS every 50 ms while fn runs; returns {base, peak} in MiB.
async function measure(server, fn) {
    const pid = server.proc.pid;
    const base = rssKiB(pid);
    let peak = base;
    const timer = setInterval(() => {
        const r = rssKiB(pid);
        if (r > peak) peak = r;
    }, 50);
    let result;
    try {
        result = await fn();
    } finally {
        clearInterval(timer);
    }
    const r = rssKiB(pid);
    if (r > peak) peak = r;
    return { baseMiB: base / 1024, peakMiB: peak / 1024, result };
}

function connect(port) {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, HOST, () => resolve(s));
        s.on('error', reject);
    });
}

async function timed(fn) {
    const t0 = performance.now();
    try {
        await fn();
        return performance.now() - t0;
    } catch (e) {
        return `failed (${e.message.slice(0, 60)})`;
    }
}
const healthz = (server) => timed(async () => {
    const res = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(20000) });
    await res.text();
});

async function pollingSid(server) {
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    return JSON.parse((await res.text()).slice(1)).sid;
}

// A socket.io client of a bystander, and the time its send_message ack takes.
async function bystander(server) {
    const a = newUserId();
    const b = newUserId();
    const sock = io(server.url, { transports: ['websocket'], auth: { token: tokenFor(server, a) }, reconnection: false, forceNew: true });
    await new Promise((res, rej) => { sock.once('connect', res); sock.once('connect_error', rej); });
    return {
        async ackMs() {
            return timed(async () => {
                const r = await sock.timeout(60000).emitWithAck('send_message', { recipientId: b, content: 'bystander' });
                if (!r.ok) throw new Error(JSON.stringify(r));
            });
        },
        close: () => sock.disconnect(),
    };
}

const attacks = {
    // 1: a long poll reset while a POST lands on its session (killed the release build).
    async poll_reset_race(server) {
        for (let i = 0; i < 300; i++) {
            const sid = await pollingSid(server);
            const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
            const g = await connect(server.port);
            g.on('error', () => {});
            g.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
            const p = await connect(server.port);
            p.on('error', () => {});
            p.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n40`);
            g.resetAndDestroy();
            await sleep(5);
            p.destroy();
            if (server.exited()) return `died after ${i + 1} rounds`;
        }
        return '300 rounds';
    },
    // 2: uploads reset right after their last byte (killed the release build).
    async upload_reset(server) {
        const token = tokenFor(server, newUserId());
        const body = '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n' +
            `Content-Type: text/plain\r\n\r\n${'hello, text\n'.repeat(200)}\r\n--XyZ--\r\n`;
        const req = `POST /api/chat/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
            `Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
        for (let i = 0; i < 30; i++) {
            const s = await connect(server.port);
            s.on('error', () => {});
            s.write(req);
            await sleep(1 + (i % 3));
            s.resetAndDestroy();
            await sleep(20);
            if (server.exited()) return `died after ${i + 1} uploads`;
        }
        return '30 uploads reset (the upload limit allows 30 a minute)';
    },
    // 3: pings posted to a session that never reads its answers.
    async polling_pings(server) {
        const sid = await pollingSid(server);
        const body = Array(330000).fill('2').join('\x1e'); // ~660 KB of ping packets
        let posted = 0;
        let refused = null;
        for (let i = 0; i < 120 && !refused; i++) {
            try {
                const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
                                        { method: 'POST', body, signal: AbortSignal.timeout(10000) });
                await res.text();
                if (res.status !== 200) refused = `HTTP ${res.status} after ${(posted / 1e6).toFixed(0)} MB`;
                else posted += body.length;
            } catch (e) {
                refused = `${e.cause?.code || e.message} after ${(posted / 1e6).toFixed(0)} MB`;
            }
        }
        return `posted ${(posted / 1e6).toFixed(0)} MB; ${refused || 'never refused'}`;
    },
    // 4: unauthenticated bodies.
    async unauth_bodies(server) {
        const socks = [];
        const chunk = Buffer.alloc(64 * 1024, 'x');
        const answers = {};
        let refused = 0;
        for (let i = 0; i < 2000; i++) {
            let s;
            try {
                s = await connect(server.port);
            } catch {
                refused++;
                continue;
            }
            let first = true;
            s.on('error', () => {});
            s.on('data', (d) => {
                if (!first) return;
                first = false;
                const st = /^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'))?.[1] || '?';
                answers[st] = (answers[st] || 0) + 1;
            });
            s.write('POST /api/chat/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n');
            socks.push(s);
        }
        for (let k = 0; k < 15; k++) for (const s of socks) if (!s.destroyed) s.write(chunk);
        await sleep(1000);
        const h = await healthz(server);
        for (const s of socks) s.destroy();
        const got = Object.entries(answers).map(([k, v]) => `${v} x ${k}`).join(', ') || 'no answer';
        return `2,000 connections from one address, 960 KB each of a 1 MB body, no token: ${got}; /healthz meanwhile ${typeof h === 'number' ? `${h.toFixed(0)} ms` : h}`;
    },
    // The worst case of one address: 500 connections (the per-IP cap) that ask for large answers
    // and never read them. Each is bounded by --max-outbound-bytes (8 MiB), all of them
    // together by --max-outbound-total-bytes (512 MiB).
    async slow_readers_one_ip(server) {
        const a = newUserId();
        const sa = io(server.url, { transports: ['websocket'], auth: { token: tokenFor(server, a) }, reconnection: false, forceNew: true });
        await new Promise((res) => sa.once('connect', res));
        const first = await sa.emitWithAck('send_message', { recipientId: newUserId(), content: 'x'.repeat(4000) });
        const conv = first.message.conversationId;
        for (let i = 0; i < 199; i += 20) {
            await Promise.all(Array.from({ length: 20 }, (_, k) => sa.timeout(30000).emitWithAck('send_message', { conversationId: conv, content: `${i + k} ${'y'.repeat(3990)}` })));
        }
        sa.disconnect();
        const page = `GET /api/chat/messages/${conv}?limit=200 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokenFor(server, a)}\r\n\r\n`;
        const socks = [];
        for (let i = 0; i < 500; i++) {
            const s = await connect(server.port).catch(() => null);
            if (!s) continue;
            s.on('error', () => {});
            s.pause();
            s.write(page.repeat(12)); // 12 pages of ~800 KB: 9.6 MB of answers each
            socks.push(s);
        }
        await sleep(8000);
        // From another address: this one is at its connection cap.
        const other = (path) => new Promise((resolve) => {
            const t0 = performance.now();
            const s = net.connect({ port: server.port, host: HOST, localAddress: '127.0.0.2' });
            let text = '';
            s.on('data', (d) => { text += d; });
            s.on('error', () => resolve({ text, ms: performance.now() - t0 }));
            s.on('close', () => resolve({ text, ms: performance.now() - t0 }));
            s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        });
        const hz = await other('/healthz');
        const h = hz.text.startsWith('HTTP/1.1 200') ? hz.ms : `failed (${hz.text.slice(0, 30)})`;
        const m = (await other('/metrics')).text;
        const cuts = /parlor_outbound_cuts_total (\d+)/.exec(m)?.[1] ?? 'n/a';
        const queued = /parlor_outbound_bytes (\d+)/.exec(m)?.[1];
        for (const s of socks) s.destroy();
        return `500 connections x 12 pipelined 800 KB pages, never read: ${queued ? `${(queued / 1048576).toFixed(0)} MiB queued` : 'no gauge'}, ${cuts} cut by the total budget; /healthz ${typeof h === 'number' ? `${h.toFixed(0)} ms` : h}`;
    },
    // 5: attachments on a socket that never joined a namespace.
    async attachments_before_connect(server) {
        const socks = [];
        let closed = 0;
        const att = randomBytes(990 * 1000);
        for (let i = 0; i < 100; i++) {
            const s = await connect(server.port);
            s.on('error', () => {});
            s.on('close', () => { closed++; });
            s.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
            socks.push(s);
        }
        await sleep(300);
        const ph = Array.from({ length: 10 }, (_, i) => `{"_placeholder":true,"num":${i}}`).join(',');
        const head = wsEncodeFrame(1, Buffer.from(`4510-["send_message",${ph}]`));
        for (const s of socks) if (!s.destroyed) s.write(head);
        for (let k = 0; k < 9; k++) {
            for (const s of socks) if (!s.destroyed) s.write(wsEncodeFrame(2, att));
            await sleep(50);
        }
        await sleep(1000);
        for (const s of socks) s.destroy();
        return `100 sockets x 9 attachments of 990 KB; ${closed} closed by the server`;
    },
    // 7: recovery replays from offset 0 for a user with many messages, beside a bystander.
    async recovery_replay(server) {
        const a = newUserId();
        const b = newUserId();
        const N = Number(process.env.ATTACK_REPLAY_MESSAGES || 30000);
        const sa = io(server.url, { transports: ['websocket'], auth: { token: tokenFor(server, a) }, reconnection: false, forceNew: true });
        await new Promise((res) => sa.once('connect', res));
        const first = await sa.emitWithAck('send_message', { recipientId: b, content: 'm' });
        const conv = first.message.conversationId;
        // Fill quickly, 200 in flight (rate limits lifted for the fill only by a second server
        // would change the data dir; instead use REST too? keep it simple: socket sends).
        let sent = 1;
        while (sent < N) {
            const batch = [];
            for (let i = 0; i < 200 && sent < N; i++, sent++) {
                batch.push(sa.timeout(60000).emitWithAck('send_message', { conversationId: conv, content: `m${sent} ${'x'.repeat(100)}` }));
            }
            const rs = await Promise.all(batch);
            if (rs.some((r) => !r.ok)) return `filling refused: ${JSON.stringify(rs.find((r) => !r.ok))} (raise the message rate for this attack)`;
        }
        sa.disconnect();
        const by = await bystander(server);
        const pid = sa._pid;
        const replayers = [];
        for (let i = 0; i < 20; i++) {
            const s = net.connect(server.port, HOST);
            s.on('error', () => {});
            s.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
            s.write(wsEncodeFrame(1, Buffer.from(`40${JSON.stringify({ token: tokenFor(server, b), pid, offset: '0' })}`)));
            replayers.push(s);
        }
        await sleep(200);
        const acks = [];
        for (let i = 0; i < 10; i++) acks.push(await by.ackMs());
        for (const s of replayers) s.destroy();
        by.close();
        const worst = Math.max(...acks.filter((x) => typeof x === 'number'));
        return `${N} messages, 20 replays from offset 0; bystander ack worst ${worst.toFixed(0)} ms of 10`;
    },
    // 8: one socket streams mark_read as fast as it can, beside a bystander.
    async event_flood(server) {
        const a = newUserId();
        const b = newUserId();
        const sa = io(server.url, { transports: ['websocket'], auth: { token: tokenFor(server, a) }, reconnection: false, forceNew: true });
        await new Promise((res) => sa.once('connect', res));
        const first = await sa.emitWithAck('send_message', { recipientId: b, content: 'm' });
        const conv = first.message.conversationId;
        const s = await connect(server.port);
        s.on('error', () => {});
        let closed = false;
        s.on('close', () => { closed = true; });
        s.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        s.write(wsEncodeFrame(1, Buffer.from(`40${JSON.stringify({ token: tokenFor(server, b) })}`)));
        await sleep(300);
        const frame = wsEncodeFrame(1, Buffer.from(`42["mark_read",{"conversationId":"${conv}","seq":1}]`));
        const burst = Buffer.concat(Array(1000).fill(frame));
        const by = await bystander(server);
        let sentEvents = 0;
        const until = Date.now() + 10000;
        const acks = [];
        const flood = (async () => {
            while (Date.now() < until && !closed) {
                if (s.write(burst)) sentEvents += 1000;
                else await new Promise((r) => { s.once('drain', r); setTimeout(r, 200); });
                await new Promise((r) => setImmediate(r));
            }
        })();
        while (Date.now() < until) {
            acks.push(await by.ackMs());
            await sleep(100);
        }
        await flood;
        s.destroy();
        by.close();
        sa.disconnect();
        const nums = acks.filter((x) => typeof x === 'number').sort((x, y) => x - y);
        return `${sentEvents} mark_read written by the flooder in 10 s${closed ? ' (disconnected by the server)' : ''}; bystander ack p50 ${nums[nums.length >> 1]?.toFixed(1)} ms, max ${nums[nums.length - 1]?.toFixed(1)} ms`;
    },
};

console.log(`binary: ${process.env.PARLOR_BIN}`);
console.log('| attack | RSS before (MiB) | peak (MiB) | alive | what happened |');
console.log('|---|---:|---:|---|---|');
for (const [name, fn] of Object.entries(attacks)) {
    if (only && !only.includes(name)) continue;
    // The attacks as the issue ran them: limits that would only slow the attacker down are
    // lifted where the attack needs many rounds.
    const extra = {
        recovery_replay: ['--rate-messages-per-s', '0', '--rate-events-per-s', '0'],
        poll_reset_race: ['--rate-connections-per-ip', '0'],
        slow_readers_one_ip: ['--rate-rest-per-s', '0', '--rate-messages-per-s', '0'],
    }[name] || [];
    const server = await startServer({ limits: true, args: extra });
    const m = await measure(server, () => fn(server).catch((e) => `error: ${e.message}`));
    await sleep(200); // an exit is reported asynchronously
    const alive = !server.exited();
    console.log(`| ${name} | ${m.baseMiB.toFixed(1)} | ${m.peakMiB.toFixed(1)} | ${alive ? 'yes' : `no (${JSON.stringify(server.exited())})`} | ${m.result} |`);
    if (alive) server.proc.kill('SIGKILL');
    await sleep(300);
}
process.exit(0);

// The group scenario (issue 17): G groups of M members, every member sends R messages/s to its
// group (open loop, staggered), every other member receives it. Against one server (Parlor or
// bench/reference); bench/groups.sh runs it against each, side by side.
//
//   node bench/groups.mjs --port P --jwt-secret S --server-pid PID [--groups 20] [--members 20]
//        [--rate 1] [--seconds 10] [--warmup 2] [--size 64]
// Prints key=value lines: messages/s, deliveries/s, server CPU µs per message and per
// delivery (utime+stime of PID over the measured window), delivery latency p50/p99 (from the
// scheduled send time, so a stalled server is not hidden), sends refused or lost.
//
// The client is socket.io-client in one Node process: it kept up with the full 200 x 20
// (76,000 deliveries/s) from Parlor on the 2-core machine, with little to spare; compare
// expected_deliveries_per_s with deliveries_per_s.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { io } from 'socket.io-client';

const { values: o } = parseArgs({
    options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        'jwt-secret': { type: 'string' },
        'server-pid': { type: 'string' },
        groups: { type: 'string', default: '20' },
        members: { type: 'string', default: '20' },
        rate: { type: 'string', default: '1' },
        seconds: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '2' },
        size: { type: 'string', default: '64' },
    },
});
const G = Number(o.groups), M = Number(o.members), R = Number(o.rate);
const base = `http://${o.host}:${o.port}`;
const run = Math.random().toString(36).slice(2, 8);

const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
function token(sub) {
    const now = Math.floor(Date.now() / 1000);
    const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + 86400 })}`;
    return `${head}.${createHmac('sha256', o['jwt-secret']).update(head).digest('base64url')}`;
}
function cpuNs() { // utime + stime of the server, ns
    const f = readFileSync(`/proc/${o['server-pid']}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 1e7; // clock ticks of 10 ms
}
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

// Users, groups, sockets.
const groups = [];
for (let g = 0; g < G; g++) {
    const users = Array.from({ length: M }, (_, m) => `g${run}x${g}m${m}`);
    const r = await fetch(`${base}/api/chat/conversations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token(users[0])}`, 'content-type': 'application/json' },
        body: JSON.stringify({ participantIds: users.slice(1) }),
    });
    if (r.status !== 201) throw new Error(`group ${g}: ${r.status} ${await r.text()}`);
    groups.push({ id: (await r.json())._id, users });
}
let measuring = false, delivered = 0, sentIn = 0, ackedIn = 0, refused = 0;
const lat = [];
const sockets = [];
await Promise.all(groups.flatMap((gr) => gr.users.map((u) => new Promise((resolve, reject) => {
    const s = io(base, { transports: ['websocket'], auth: { token: token(u) }, reconnection: false });
    s.on('connect', resolve);
    s.on('connect_error', reject);
    s.on('receive_message', (m) => {
        if (!measuring) return;
        delivered++;
        lat.push(nowUs() - Number(m.content.slice(0, m.content.indexOf('|'))));
    });
    sockets.push({ s, conv: gr.id });
}))));

// Open loop: each member every 1/R s, staggered over the period.
const pad = 'x'.repeat(Math.max(0, Number(o.size) - 17));
const periodUs = 1e6 / R;
const t0 = nowUs() + 100000;
const next = sockets.map((_, i) => t0 + (periodUs * i) / sockets.length);
let n = 0;
function tick() {
    const now = nowUs();
    for (let i = 0; i < sockets.length; i++) {
        while (next[i] <= now) {
            const at = next[i];
            next[i] += periodUs;
            const inWindow = measuring;
            if (inWindow) sentIn++;
            sockets[i].s.emit('send_message', { conversationId: sockets[i].conv, content: `${at}|${pad}`,
                clientMsgId: String(++n) }, (ack) => {
                if (!ack?.ok) refused++;
                else if (inWindow) ackedIn++;
            });
        }
    }
}
const timer = setInterval(tick, 2);
await new Promise((r) => setTimeout(r, Number(o.warmup) * 1000));
const c0 = cpuNs(), w0 = nowUs();
measuring = true;
await new Promise((r) => setTimeout(r, Number(o.seconds) * 1000));
measuring = false;
const c1 = cpuNs(), w1 = nowUs();
clearInterval(timer);
await new Promise((r) => setTimeout(r, 500));
for (const { s } of sockets) s.close();
lat.sort((a, b) => a - b);
const secs = (w1 - w0) / 1e6, cpuUs = (c1 - c0) / 1000;
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
console.log(`groups=${G}\nmembers=${M}\nsockets=${sockets.length}\nmsgs_per_s=${(sentIn / secs).toFixed(0)}`);
console.log(`deliveries_per_s=${(delivered / secs).toFixed(0)}\nexpected_deliveries_per_s=${((sentIn * (M - 1)) / secs).toFixed(0)}`);
console.log(`cpu_us_per_msg=${(cpuUs / Math.max(1, sentIn)).toFixed(1)}\ncpu_us_per_delivery=${(cpuUs / Math.max(1, delivered)).toFixed(2)}`);
console.log(`server_cpu_pct=${((cpuUs / 1e6 / secs) * 100).toFixed(1)}`);
console.log(`lat_p50_ms=${(q(0.5) / 1000).toFixed(2)}\nlat_p99_ms=${(q(0.99) / 1000).toFixed(2)}\nrefused=${refused}`);
process.exit(0);

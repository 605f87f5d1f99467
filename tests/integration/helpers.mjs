// Shared helpers for the integration suite: start/stop `parlor echo`, raw HTTP and WebSocket
// clients over node:net (so tests control every byte), and small async utilities.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import assert from 'node:assert/strict';

export const HOST = '127.0.0.1';
const BIN = process.env.PARLOR_BIN || 'build/parlor';
const START_TIMEOUT_MS = Number(process.env.PARLOR_START_TIMEOUT_MS || 15000);
const STOP_TIMEOUT_MS = Number(process.env.PARLOR_STOP_TIMEOUT_MS || 10000);

// Every server this process started (echo or serve): their stderr is dumped when a test
// failed (or PARLOR_SHOW_STDERR is set), and any still running when the test file ends (a
// test failed before stop()) is killed.
const started = [];
process.on('exit', (code) => {
    for (const s of started) {
        if (!s.exited()) s.proc.kill('SIGKILL');
    }
    pgDropAll(code || process.exitCode);
    if (!code && !process.exitCode && !process.env.PARLOR_SHOW_STDERR) return;
    for (const s of started) {
        process.stderr.write(`\n----- stderr of ${s.describe} -----\n${s.stderr()}\n-----\n`);
    }
});

// ---------------------------------------------------------------- PostgreSQL runs

// With PARLOR_TEST_PG_URL set (a postgres:// URL of a database the tests may create schemas
// in: the PostgreSQL stage of scripts/test.sh), every `parlor serve` the chat helpers start
// gets `--store <that URL with search_path = a fresh schema>`. The schema belongs to a key,
// the server's data directory: a server restarted on the same --data finds its data again, and
// a new directory is a new, empty database, as with SQLite. The schemas are dropped when the
// test file passed (kept for a look, like the data directories, when it failed).
export const PG_URL = process.env.PARLOR_TEST_PG_URL || '';
const pgStores = new Map(); // key -> {schema, url}
let pgCount = 0;

// Runs SQL through psql on PG_URL; returns its unaligned output.
export function psql(sql) {
    return execFileSync('psql', [PG_URL, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', sql],
                        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// The store URL of a fresh, empty schema.
export function pgFreshStore(key = Symbol('fresh')) {
    assert.ok(PG_URL, 'PARLOR_TEST_PG_URL is not set');
    const schema = `t${process.pid}_${++pgCount}`;
    psql(`CREATE SCHEMA ${schema}`);
    const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=-csearch_path%3D${schema}`;
    pgStores.set(key, { schema, url });
    return url;
}

// The store URL of key's schema (made on first use).
export function pgStoreFor(key) {
    const k = typeof key === 'string' ? path.resolve(key) : key;
    return pgStores.get(k)?.url ?? pgFreshStore(k);
}

// The schema a store URL of pgFreshStore names, or null.
export function pgSchemaOf(url) {
    for (const v of pgStores.values()) if (v.url === url) return v.schema;
    return null;
}

function pgDropAll(failed) {
    if (!PG_URL || pgStores.size === 0 || failed || process.env.PARLOR_KEEP_DATA) return;
    const names = [...pgStores.values()].map((v) => v.schema).join(', ');
    try {
        // A killed server's connection may still hold a lock for a moment: wait for it, boundedly.
        psql(`SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS ${names} CASCADE`);
    } catch (e) {
        process.stderr.write(`could not drop the test schemas ${names}: ${e.stderr || e.message}\n`);
    }
}

// Starts `parlor <argv>` and resolves, once it prints "listening on", with a server object:
// fields (port, url, ...) plus proc, describe, stderr(), exited(), stop() (SIGTERM, asserts
// exit 0), crash() (kill -9, never throws) and assertAlive().
export function spawnParlor(argv, fields, { env = {}, stdout = 'pipe' } = {}) {
    const proc = spawn(path.resolve(BIN), argv, {
        stdio: ['ignore', stdout, 'pipe'],
        env: { ...process.env, ...env },
    });
    // A server left running by a failed test must not keep this test file alive.
    proc.unref();
    proc.stderr.unref();
    if (proc.stdout) {
        proc.stdout.unref();
        proc.stdout.on('data', () => {});
    }
    let err = '';
    let exited = null;
    const tail = () => err.slice(-4000);
    const exitPromise = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
            exited = { code, signal };
            resolve(exited);
        });
    });
    const server = {
        ...fields,
        proc,
        describe: `${BIN} ${argv.join(' ')}`,
        stderr: () => err,
        exited: () => exited,
        // Graceful shutdown is part of the contract: SIGTERM must lead to exit code 0.
        async stop() {
            if (exited) assert.fail(`server exited early (${JSON.stringify(exited)})\n${tail()}`);
            proc.kill('SIGTERM');
            let res;
            try {
                res = await withTimeout(exitPromise, STOP_TIMEOUT_MS, 'server exit after SIGTERM');
            } catch (e) {
                proc.kill('SIGKILL');
                throw new Error(`${e.message}\n--- server stderr ---\n${tail()}`);
            }
            assert.deepEqual(res, { code: 0, signal: null },
                             `server did not exit cleanly on SIGTERM\n--- server stderr ---\n${tail()}`);
        },
        // kill -9: for crash tests and teardown after a failure. Never throws.
        async crash() {
            if (exited) return exited;
            proc.kill('SIGKILL');
            // The child is unref'd: keep the loop alive until its exit is seen.
            const keep = setInterval(() => {}, 1000);
            try {
                return await exitPromise;
            } finally {
                clearInterval(keep);
            }
        },
        assertAlive() {
            assert.equal(exited, null, `server died: ${JSON.stringify(exited)}\n${tail()}`);
        },
    };
    started.push(server);
    return waitListening(proc, exitPromise, server, (chunk) => {
        err += chunk;
    });
}

// Runs start(port) on `port`, or on a free port, retried when another process took the free
// port between freePort() and bind() (the error says maybePortRace). A given port (a restart on
// the port clients reconnect to) is retried for up to 5 s while it is in use: the old server's
// port is in the ephemeral range, so a reconnecting client's own socket may hold it for a moment.
export async function onFreePort(port, start) {
    for (let attempt = 0; ; attempt++) {
        try {
            return await start(port ?? (await freePort()));
        } catch (err) {
            if (port !== undefined && err.addressInUse && attempt < 20) {
                await sleep(250);
                continue;
            }
            if (port !== undefined || attempt >= 2 || !err.maybePortRace) throw err;
        }
    }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolve with the first `event` of `emitter` (its arguments as an array), reject on timeout.
export function once(emitter, event, timeoutMs = 5000, what = event) {
    return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
            emitter.off(event, on);
            reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        const on = (...args) => {
            clearTimeout(t);
            resolve(args);
        };
        emitter.once(event, on);
    });
}

export function withTimeout(promise, ms, what) {
    let t;
    return Promise.race([
        promise,
        new Promise((_, reject) => {
            t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
        }),
    ]).finally(() => clearTimeout(t));
}

// A port that was free a moment ago: bind port 0, read it, close (Parlor does not take 0).
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, HOST, () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

// Spawn `parlor echo` and wait until it prints "listening on". `opts.port` reuses a port
// (restart tests); otherwise a free one is picked.
export async function startEcho(extraArgs = [], opts = {}) {
    return onFreePort(opts.port, (port) =>
        spawnParlor(['echo', '--port', String(port), '--host', HOST, ...extraArgs],
                    { port, url: `http://${HOST}:${port}` }, { stdout: 'inherit' }));
}

// Resolves with `value` once proc prints "listening on" on stderr; rejects, with the stderr so
// far, when it exits first (maybePortRace tells a lost race for a free port) or takes longer
// than START_TIMEOUT_MS. onStderr gets every chunk, for the caller's own log.
function waitListening(proc, exitPromise, value, onStderr) {
    let err = '';
    return new Promise((resolve, reject) => {
        let done = false;
        const timer = setTimeout(() => {
            finish(new Error(`server did not print "listening on" within ${START_TIMEOUT_MS} ms`));
            proc.kill('SIGKILL');
        }, START_TIMEOUT_MS);
        function finish(e) {
            if (done) return;
            done = true;
            clearTimeout(timer);
            if (e) {
                e.message += `\n--- server stderr ---\n${err}`;
                reject(e);
            } else {
                resolve(value);
            }
        }
        proc.on('error', (e) => finish(e));
        proc.stderr.setEncoding('utf8');
        proc.stderr.on('data', (chunk) => {
            err += chunk;
            onStderr(chunk);
            if (err.includes('listening on')) finish(null);
        });
        exitPromise.then(({ code, signal }) => {
            const e = new Error(`server exited before listening (code ${code}, signal ${signal})`);
            e.maybePortRace = /in use|EADDRINUSE/i.test(err);
            e.addressInUse = /address already in use|EADDRINUSE/i.test(err);
            finish(e);
        });
    });
}

// An engine.io-client's own check (no ping within pingInterval + pingTimeout) fires falsely
// when a busy test process stalls: libuv runs expired timers before it reads the ping already
// waiting in the socket. What the suite tests is the server's side of the heartbeat, so give
// the client slack. Call on an open engine.io-client Socket (socket.io-client:
// socket.io.engine); uses engine.io-client 6.6 internals, pinned in package.json.
export function relaxClientPingCheck(engine) {
    engine._pingTimeout = 5000;
    engine._resetPingTimeout();
}

// ---------------------------------------------------------------- raw TCP

export function connectTcp(port, host = HOST) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host });
        sock.once('connect', () => {
            sock.off('error', reject);
            resolve(sock);
        });
        sock.once('error', reject);
    });
}

// Collects everything a socket receives and remembers when and how it ended.
export function recorder(sock) {
    const rec = {
        data: Buffer.alloc(0),
        closedAt: null,
        error: null,
        closed: null,
        text() {
            return this.data.toString('latin1');
        },
    };
    rec.closed = new Promise((resolve) => {
        sock.on('data', (d) => {
            rec.data = Buffer.concat([rec.data, d]);
        });
        sock.on('error', (e) => {
            rec.error = e;
        });
        sock.on('close', () => {
            rec.closedAt = Date.now();
            resolve(rec);
        });
    });
    return rec;
}

// Parse as many complete HTTP/1.1 responses as `buf` holds. Returns {responses, rest}.
export function parseHttpResponses(buf) {
    const responses = [];
    let off = 0;
    for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n', off);
        if (headEnd < 0) break;
        const head = buf.subarray(off, headEnd).toString('latin1');
        const [statusLine, ...lines] = head.split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
        if (!m) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
        const headers = {};
        for (const l of lines) {
            const i = l.indexOf(':');
            headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        let p = headEnd + 4;
        let body;
        if (/chunked/i.test(headers['transfer-encoding'] || '')) {
            const parts = [];
            let complete = false;
            for (;;) {
                const le = buf.indexOf('\r\n', p);
                if (le < 0) break;
                const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
                if (buf.length < le + 2 + size + 2) break;
                parts.push(buf.subarray(le + 2, le + 2 + size));
                p = le + 2 + size + 2;
                if (size === 0) {
                    complete = true;
                    break;
                }
            }
            if (!complete) break;
            body = Buffer.concat(parts);
        } else {
            const len = Number(headers['content-length'] || 0);
            if (buf.length < p + len) break;
            body = buf.subarray(p, p + len);
            p += len;
        }
        responses.push({ status: Number(m[1]), statusLine, headers, body });
        off = p;
    }
    return { responses, rest: buf.subarray(off) };
}

// Wait until `rec` holds `n` complete HTTP responses (or the socket closes).
export async function readHttpResponses(rec, n, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const { responses } = parseHttpResponses(rec.data);
        if (responses.length >= n) return responses;
        if (rec.closedAt !== null || Date.now() > deadline) {
            throw new Error(`expected ${n} HTTP responses, got ${responses.length}; ` +
                            `received ${JSON.stringify(rec.text().slice(0, 500))}`);
        }
        await sleep(5);
    }
}

// ---------------------------------------------------------------- Engine.IO over HTTP

export function eioUrl(server, query = '') {
    return `${server.url}/engine.io/?EIO=4&transport=polling${query ? '&' + query : ''}`;
}

// fetch() with an abort deadline so a hung long-poll fails the test instead of hanging it.
export async function httpRequest(url, init = {}, timeoutMs = 3000) {
    const started = Date.now();
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = Buffer.from(await res.arrayBuffer());
    return {
        status: res.status,
        headers: res.headers,
        body,
        text: body.toString('utf8'),
        ms: Date.now() - started,
    };
}

// One long-poll GET / one POST of a polling payload on session `sid`.
export function eioGet(server, sid, timeoutMs) {
    return httpRequest(eioUrl(server, `sid=${sid}`), {}, timeoutMs);
}
export function eioPost(server, sid, body) {
    return httpRequest(eioUrl(server, `sid=${sid}`), { method: 'POST', body });
}

// Polling handshake: returns the parsed open packet (sid, upgrades, ...).
export async function eioHandshake(server) {
    const r = await httpRequest(eioUrl(server));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text[0], '0', `open packet expected, got ${r.text}`);
    return JSON.parse(r.text.slice(1));
}

// ---------------------------------------------------------------- raw WebSocket client

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function wsEncodeFrame(opcode, payload, { fin = true, mask = true } = {}) {
    payload = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const len = payload.length;
    let hdrLen = 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8);
    const hdr = Buffer.alloc(hdrLen + (mask ? 4 : 0));
    hdr[0] = (fin ? 0x80 : 0) | opcode;
    if (len < 126) {
        hdr[1] = len;
    } else if (len < 65536) {
        hdr[1] = 126;
        hdr.writeUInt16BE(len, 2);
    } else {
        hdr[1] = 127;
        hdr.writeBigUInt64BE(BigInt(len), 2);
    }
    if (!mask) return Buffer.concat([hdr, payload]);
    hdr[1] |= 0x80;
    const key = randomBytes(4);
    key.copy(hdr, hdrLen);
    const out = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) out[i] = payload[i] ^ key[i & 3];
    return Buffer.concat([hdr, out]);
}

// A WebSocket client over node:net that exposes frames, close codes and the raw socket.
export class RawWs {
    constructor(sock, leftover) {
        this.sock = sock;
        this.buf = leftover;
        this.messages = []; // {opcode: 1|2, data: Buffer}
        this.waiters = [];
        this.fragments = null;
        this.closeFrame = null; // {code, reason}
        this.closedAt = null;
        this.error = null;
        // Answer Engine.IO pings ("2") as they arrive; tests of the heartbeat turn this off
        // and then see the pings as messages.
        this.autoPong = true;
        this.closed = new Promise((resolve) => {
            sock.on('close', () => {
                this.closedAt = Date.now();
                this._wake();
                resolve(this);
            });
        });
        sock.on('error', (e) => {
            this.error = e;
        });
        sock.on('data', (d) => {
            this.buf = Buffer.concat([this.buf, d]);
            this._parse();
        });
        this._parse();
    }

    static async connect(port, pathAndQuery, { headers = {}, timeoutMs = 3000 } = {}) {
        const sock = await connectTcp(port);
        const key = randomBytes(16).toString('base64');
        const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        sock.write(`GET ${pathAndQuery} HTTP/1.1\r\nHost: ${HOST}:${port}\r\n` +
                   'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
                   `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
        let buf = Buffer.alloc(0);
        const head = await withTimeout(new Promise((resolve, reject) => {
            const onData = (d) => {
                buf = Buffer.concat([buf, d]);
                const i = buf.indexOf('\r\n\r\n');
                if (i >= 0) {
                    sock.off('data', onData);
                    sock.off('close', onClose);
                    resolve(i);
                }
            };
            const onClose = () => reject(new Error(
                `closed during WebSocket handshake: ${JSON.stringify(buf.toString('latin1'))}`));
            sock.on('data', onData);
            sock.on('close', onClose);
        }), timeoutMs, 'WebSocket handshake');
        const headText = buf.subarray(0, head).toString('latin1');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(headText)?.[1]);
        if (status !== 101) {
            sock.destroy();
            const e = new Error(`WebSocket handshake refused: ${headText}`);
            e.status = status;
            e.response = buf.toString('latin1');
            throw e;
        }
        const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(headText)?.[1];
        const want = createHash('sha1').update(key + WS_GUID).digest('base64');
        assert.equal(accept, want, 'Sec-WebSocket-Accept');
        return new RawWs(sock, buf.subarray(head + 4));
    }

    _wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    _parse() {
        for (;;) {
            const b = this.buf;
            if (b.length < 2) return;
            const fin = (b[0] & 0x80) !== 0;
            const opcode = b[0] & 0x0f;
            const masked = (b[1] & 0x80) !== 0;
            let len = b[1] & 0x7f;
            let p = 2;
            if (len === 126) {
                if (b.length < 4) return;
                len = b.readUInt16BE(2);
                p = 4;
            } else if (len === 127) {
                if (b.length < 10) return;
                len = Number(b.readBigUInt64BE(2));
                p = 10;
            }
            if (masked) throw new Error('server sent a masked frame');
            if (b.length < p + len) return;
            const payload = Buffer.from(b.subarray(p, p + len));
            this.buf = b.subarray(p + len);
            if (opcode === 0x8) {
                this.closeFrame = {
                    code: payload.length >= 2 ? payload.readUInt16BE(0) : null,
                    reason: payload.subarray(2).toString('utf8'),
                };
                // answer a close frame with one (echoing its code) unless we started the close
                if (this.sentClose) {
                    this.sock.end();
                } else if (!this.sock.destroyed) {
                    this.sock.end(wsEncodeFrame(0x8, payload.subarray(0, 2)));
                }
            } else if (opcode === 0x9) {
                this.sock.write(wsEncodeFrame(0xa, payload));
            } else if (opcode === 0xa) {
                // unsolicited pong: ignore
            } else if (opcode === 0x0) {
                this.fragments.parts.push(payload);
                if (fin) {
                    this.messages.push({ opcode: this.fragments.opcode,
                                         data: Buffer.concat(this.fragments.parts) });
                    this.fragments = null;
                }
            } else if (fin && this.autoPong && opcode === 1 && payload.length === 1 &&
                       payload[0] === 0x32) {
                this.sendText('3');
            } else if (fin) {
                this.messages.push({ opcode, data: payload });
            } else {
                this.fragments = { opcode, parts: [payload] };
            }
            this._wake();
        }
    }

    sendText(s) {
        this.sock.write(wsEncodeFrame(0x1, Buffer.from(s, 'utf8')));
    }

    sendBinary(b) {
        this.sock.write(wsEncodeFrame(0x2, b));
    }

    // Next data message as {opcode, data} (pings only when autoPong is off).
    async next(timeoutMs = 3000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            if (this.messages.length) return this.messages.shift();
            if (this.closedAt !== null) throw new Error('WebSocket closed while waiting');
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`no WebSocket message within ${timeoutMs} ms`);
            await new Promise((resolve) => {
                const t = setTimeout(resolve, left);
                this.waiters.push(() => {
                    clearTimeout(t);
                    resolve();
                });
            });
        }
    }

    async nextText(timeoutMs) {
        const m = await this.next(timeoutMs);
        assert.equal(m.opcode, 1, 'expected a text frame');
        return m.data.toString('utf8');
    }

    close(code = 1000) {
        const p = Buffer.alloc(2);
        p.writeUInt16BE(code);
        this.sentClose = true;
        if (!this.sock.destroyed) this.sock.write(wsEncodeFrame(0x8, p));
    }

    destroy() {
        this.sock.destroy();
    }
}

// ---------------------------------------------------------------- value comparison

// Binary arrives as Buffer whatever was sent (Uint8Array, ArrayBuffer, Buffer): normalise
// before deepStrictEqual.
export function normalizeBinary(v) {
    if (v instanceof ArrayBuffer) return Buffer.from(v);
    if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    if (Array.isArray(v)) return v.map(normalizeBinary);
    if (v && typeof v === 'object') {
        const o = {};
        for (const [k, x] of Object.entries(v)) o[k] = normalizeBinary(x);
        return o;
    }
    return v;
}

// A short, diff-friendly description of a message: small strings as they are, anything
// long or binary as kind, length and a hash (so a failing deepEqual stays readable).
export function summarize(v) {
    if (typeof v === 'string') {
        if (v.length <= 80) return v;
        return `text(${v.length}) sha1:${createHash('sha1').update(v, 'utf8').digest('hex')}`;
    }
    const b = normalizeBinary(v);
    if (Buffer.isBuffer(b)) {
        if (b.length <= 16) return `bin(${b.length}) ${b.toString('hex')}`;
        return `bin(${b.length}) sha1:${createHash('sha1').update(b).digest('hex')}`;
    }
    return v;
}

// One gauge or counter of the server's /metrics, asked on a connection of its own that closes
// after the answer (a pooled keep-alive connection would count itself in parlor_connections).
export function metric(server, name) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(server.port, HOST);
        let text = '';
        sock.on('data', (d) => { text += d; });
        sock.on('error', reject);
        sock.on('close', () => {
            const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
            resolve(m ? Number(m[1]) : NaN);
        });
        sock.write(`GET /metrics HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    });
}

// A field of a server's /proc/<pid>/status in KiB (VmRSS, or VmHWM for the peak).
export function procKiB(server, field = 'VmRSS') {
    const st = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
    return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(st)[1]);
}

// Samples a server's RSS every 50 ms from now on; stop() returns the largest growth in MiB.
export function watchRss(server) {
    const base = procKiB(server);
    let peak = base;
    const sample = () => {
        peak = Math.max(peak, procKiB(server));
    };
    const timer = setInterval(sample, 50);
    return {
        sample,
        stop() {
            clearInterval(timer);
            sample();
            return (peak - base) / 1024;
        },
    };
}

// Shared helpers of the browser tests: start/stop `parlor serve` on a temporary data directory
// with the built web client, launch Debian's chromium through playwright-core, talk REST from
// node, and keep screenshots of every open page when a step fails.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HOST = '127.0.0.1';
export const BIN = path.resolve(ROOT, process.env.PARLOR_BIN || 'build/parlor');
export const WEB_ROOT = path.resolve(ROOT, process.env.PARLOR_WEB_ROOT || 'web/dist');
export const ARTIFACTS = path.join(ROOT, 'tests/e2e/artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SECRET = 'e2e-secret-0123456789abcdef0123456789abcdef';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

// Small enough that the "too large" test sends little, large enough for the test images.
export const MAX_FILE_SIZE = 512 * 1024;

// Options that make the run fast and deterministic, passed only when this build of the server
// knows them (features land at different times; `parlor serve --help` says which exist).
const WANTED_OPTIONS = [
    ['--rate-messages-per-s', '0'],
    ['--rate-rest-per-s', '0'],
    ['--rate-connections-per-ip', '0'],
    ['--max-connections-per-ip', '0'],
    ['--presence-grace-ms', '1000'],
    ['--rate-uploads-per-min', '0'],
    ['--max-file-size', String(MAX_FILE_SIZE)],
];
let helpText = null;
function supportedOptions() {
    if (helpText === null) {
        try {
            helpText = execFileSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
        } catch {
            helpText = '';
        }
    }
    const out = [];
    for (const [flag, value] of WANTED_OPTIONS) {
        if (new RegExp(`^\\s*${flag}\\s`, 'm').test(helpText)) out.push(flag, value);
    }
    return out;
}

export function serverSupports(flag) {
    supportedOptions();
    return new RegExp(`^\\s*${flag}\\s`, 'm').test(helpText);
}

const servers = new Set();
process.on('exit', () => {
    for (const s of servers) if (!s.exited) s.proc.kill('SIGKILL');
});

// Starts `parlor serve`; `opts.port` and `opts.data` reuse them (restart), otherwise fresh ones.
// cleanup() removes a data directory it made, or one given with `removeData: true`.
export async function startServer(opts = {}) {
    const data = opts.data || mkdtempSync(path.join(os.tmpdir(), 'parlor-e2e-'));
    const port = opts.port || (await freePort());
    const args = ['serve', '--port', String(port), '--host', HOST, '--data', data,
                  '--jwt-secret', SECRET, '--web-root', WEB_ROOT, '--log-level', 'info',
                  ...supportedOptions(), ...(opts.args || [])];
    const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const server = {
        port, data, proc, url: `http://${HOST}:${port}/`, stderr: '', exited: null,
        async stop() {
            if (server.exited) return;
            const done = new Promise((r) => proc.once('exit', r));
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
            await done;
            clearTimeout(t);
        },
        async cleanup() {
            await server.stop();
            servers.delete(server);
            if (opts.removeData ?? !opts.data) rmSync(data, { recursive: true, force: true });
        },
    };
    servers.add(server);
    proc.stderr.setEncoding('utf8');
    proc.on('exit', (code, signal) => {
        server.exited = { code, signal };
    });
    await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`server did not start:\n${server.stderr}`)), 15000);
        proc.stderr.on('data', (d) => {
            server.stderr += d;
            if (/listening on/.test(server.stderr)) {
                clearTimeout(timer);
                resolve();
            }
        });
        proc.once('exit', () => {
            clearTimeout(timer);
            reject(new Error(`server exited at start:\n${server.stderr}`));
        });
    });
    return server;
}

// ---- REST from node ----

export async function rest(server, method, p, { token, body, headers = {} } = {}) {
    for (let attempt = 0; ; attempt++) {
        const res = await fetch(new URL(p, server.url), {
            method,
            headers: {
                ...(token ? { Authorization: `Bearer ${token}` } : {}),
                ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
                ...headers,
            },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        // Rate limits are off when the server has the options; honour them when it does not.
        if (res.status === 429 && attempt < 50) {
            const j = await res.json().catch(() => ({}));
            await sleep(Math.min(j.error?.retryAfterMs || 500, 5000));
            continue;
        }
        const text = await res.text();
        let json = null;
        try {
            json = JSON.parse(text);
        } catch {
            /* not JSON */
        }
        return { status: res.status, headers: res.headers, json, text };
    }
}

export async function registerRest(server, user) {
    const r = await rest(server, 'POST', 'api/auth/register', { body: { role: 'tenant', ...user } });
    if (r.status !== 201) throw new Error(`register ${user.username}: ${r.status} ${r.text}`);
    return r.json;
}

// ---- browser ----

export async function launchBrowser() {
    return chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync',
               '--disable-dev-shm-usage'],
    });
}

// A person: one browser context (own storage) with one page, recording console errors, uncaught
// page exceptions and CSP violations so a test can assert there were none (ui.mjs:
// assertNoErrors, assertNoCsp). Errors a test provokes on purpose are allowed one pattern at a
// time with allowErrors(), as narrowly as the browser's wording permits.
export async function openPerson(browser, label, baseUrl, viewport = { width: 1000, height: 700 }) {
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    const page = await context.newPage();
    const person = { label, context, page, errors: [], allowed: [], cspViolations: [] };
    page.on('console', (msg) => {
        const text = msg.text();
        if (/Content Security Policy|Refused to/.test(text)) person.cspViolations.push(text);
        // "Failed to load resource" does not name the resource; its location does.
        const where = msg.location()?.url;
        if (msg.type() === 'error') person.errors.push(where ? `${text} @ ${where}` : text);
    });
    page.on('pageerror', (err) => person.errors.push(`uncaught: ${err.stack || err}`));
    await page.goto(baseUrl);
    return person;
}

// From now on, console errors of this person that match one of the patterns are expected.
export function allowErrors(person, ...patterns) {
    person.allowed.push(...patterns);
}

// The console errors and page exceptions no allowErrors() pattern expected.
export function unexpectedErrors(person) {
    return person.errors.filter((e) => !person.allowed.some((re) => re.test(e)));
}

// The steps of a story (a describe block whose tests build on each other): step(name, needs,
// fn) is a test that fails at once when a step it needs failed (never reported as skipped),
// and saves screenshots of people() when it fails. Returns {step, done}.
export function storySteps(people) {
    const done = new Set();
    function step(name, needs, fn, timeout = 45000) {
        it(name, { timeout }, async () => {
            const missing = needs.filter((n) => !done.has(n));
            if (missing.length) assert.fail(`not run: an earlier step it needs failed: ${missing.join(', ')}`);
            await withScreenshots(name, people(), fn);
            done.add(name);
        });
    }
    return { step, done };
}

// Runs fn; on failure saves a screenshot of every page that is still open, then rethrows.
export async function withScreenshots(name, people, fn) {
    try {
        return await fn();
    } catch (err) {
        mkdirSync(ARTIFACTS, { recursive: true });
        const safe = name.replace(/[^A-Za-z0-9_-]+/g, '-');
        for (const p of people) {
            if (!p || p.page.isClosed()) continue;
            const file = path.join(ARTIFACTS, `${safe}-${p.label}.png`);
            await p.page.screenshot({ path: file, fullPage: true }).catch(() => {});
            err.message += `\n  screenshot: ${path.relative(ROOT, file)}`;
        }
        throw err;
    }
}

// ---- test data ----

const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c >>> 0;
    }
    return t;
})();

function crc32(buf) {
    let c = 0xffffffff;
    for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
}

// A real PNG (RGB, 8 bit) of width x height with a gradient and a "boiler" shape, so it is
// recognisable in screenshots and sniffed as image/png by the server.
export function makePng(width = 160, height = 120) {
    const raw = Buffer.alloc((width * 3 + 1) * height);
    for (let y = 0; y < height; y++) {
        const row = y * (width * 3 + 1);
        raw[row] = 0;
        for (let x = 0; x < width; x++) {
            const i = row + 1 + x * 3;
            const inBox = x > width * 0.3 && x < width * 0.7 && y > height * 0.2 && y < height * 0.85;
            const flame = inBox && y > height * 0.6 && Math.abs(x - width / 2) < (height * 0.85 - y) * 0.5;
            raw[i] = flame ? 250 : inBox ? 200 : 40 + Math.round((x / width) * 80);
            raw[i + 1] = flame ? 140 : inBox ? 205 : 90 + Math.round((y / height) * 100);
            raw[i + 2] = flame ? 20 : inBox ? 215 : 170;
        }
    }
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk('IHDR', ihdr),
        chunk('IDAT', deflateSync(raw)),
        chunk('IEND', Buffer.alloc(0)),
    ]);
}

export function uniqueName(prefix) {
    return `${prefix}_${Math.random().toString(36).slice(2, 8)}`;
}

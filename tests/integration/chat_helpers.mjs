// Shared helpers for the chat integration suite: start/stop `parlor serve` on a fresh data
// directory, sign JWTs in JS, connect authenticated socket.io clients, call the REST API, and
// check documents against CONTRACT.md.
import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, afterEach, before } from 'node:test';
import { io } from 'socket.io-client';
import {
    HOST, PG_URL, freePort, onFreePort, once, pgStoreFor, sleep, spawnParlor, withTimeout,
} from './helpers.mjs';

// The generic helpers live in helpers.mjs; the chat tests import them from here too.
export { HOST, PG_URL, freePort, once, sleep, withTimeout };

export const BIN = path.resolve(process.env.PARLOR_BIN || 'build/parlor');

// Data directories made by mkDataDir: removed when the file passed (helpers.mjs reports and
// kills the servers themselves).
const dataDirs = [];
process.on('exit', (code) => {
    const failed = code || process.exitCode;
    if (!failed && !process.env.PARLOR_KEEP_DATA) {
        for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
    }
});

// Poll `cond` until it returns truthy; fail with `what()` (a description of the state).
export async function waitFor(cond, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = cond();
        if (v) return v;
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeoutMs} ms: ${typeof what === 'function' ? what() : what}`);
        }
        await sleep(5);
    }
}

export function mkDataDir() {
    const d = mkdtempSync(path.join(os.tmpdir(), 'parlor-chat-'));
    dataDirs.push(d);
    return d;
}

export const newSecret = () => randomBytes(32).toString('hex'); // 64 ASCII bytes

// A fresh user id (24 hex, like a platform's ObjectId) so tests never share state by accident.
export const newUserId = () => randomBytes(12).toString('hex');

// Spawn `parlor serve`. opts: dataDir, secret (null = pass no --jwt-secret), port, args
// (extra), env (extra environment), store (a --store URL; by default none, which is SQLite in
// the data directory, or with PARLOR_TEST_PG_URL the data directory's PostgreSQL schema, see
// helpers.mjs). Resolves once stderr says "listening on"; server.store is the URL given.
export async function startServer(opts = {}) {
    const dataDir = opts.dataDir ?? mkDataDir();
    const secret = opts.secret === undefined ? newSecret() : opts.secret;
    return onFreePort(opts.port, (port) => spawnServer({ ...opts, dataDir, secret, port }));
}

// Rate limits are lifted unless a test asks for them (opts.limits = true): most tests send
// bursts far above the per-user defaults. Later flags win, so tests can also set one limit.
export const NO_LIMITS = [
    '--rate-messages-per-s', '0', '--rate-rest-per-s', '0', '--rate-connections-per-ip', '0',
    '--max-connections-per-ip', '0', '--max-connections-per-user', '0', '--rate-auth-per-min', '0',
    '--rate-events-per-s', '0',
];

function spawnServer({ dataDir, secret, port, args = [], env = {}, limits = false, store }) {
    const argv = ['serve', '--port', String(port), '--host', HOST, '--data', dataDir];
    store ??= PG_URL ? pgStoreFor(dataDir) : null;
    if (store) argv.push('--store', store);
    if (secret !== null) argv.push('--jwt-secret', secret);
    if (!limits) argv.push(...NO_LIMITS);
    argv.push(...args);
    return spawnParlor(argv, { port, dataDir, secret, store, url: `http://${HOST}:${port}` }, { env });
}

// Run the binary to completion: {code, signal, stdout, stderr}. With PARLOR_TEST_PG_URL, a
// `parlor serve` given no store gets its data directory's schema (PARLOR_STORE), as startServer.
export function runParlor(args, { env = {}, timeoutMs = 10000 } = {}) {
    if (PG_URL && args[0] === 'serve' && !args.includes('--store') && !args.includes('--help') &&
        env.PARLOR_STORE === undefined) {
        const d = args.indexOf('--data');
        env = { ...env, PARLOR_STORE: pgStoreFor(d > 0 ? args[d + 1] : Symbol('no --data')) };
    }
    return new Promise((resolve) => {
        execFile(BIN, args, { env: { ...process.env, ...env }, timeout: timeoutMs },
                 (error, stdout, stderr) => {
                     resolve({
                         code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
                         signal: error?.signal ?? null,
                         stdout,
                         stderr,
                         error: error && typeof error.code !== 'number' ? error : null,
                     });
                 });
    });
}

// ---------------------------------------------------------------- JWT

export const b64url = (buf) => Buffer.from(buf).toString('base64url');

// Sign a compact JWS with HS256 (or any header you give: alg none tests pass sign: false).
export function signJwt(payload, secret, { header = { alg: 'HS256', typ: 'JWT' }, sign = true } = {}) {
    const h = b64url(JSON.stringify(header));
    const p = b64url(JSON.stringify(payload));
    const sig = sign ? createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url') : '';
    return `${h}.${p}.${sig}`;
}

export const nowS = () => Math.floor(Date.now() / 1000);

// A valid token for `sub` on `server` (claims override the defaults).
export function tokenFor(server, sub, claims = {}) {
    const iat = nowS();
    return signJwt({ sub, iat, exp: iat + 3600, ...claims }, server.secret);
}

// ---------------------------------------------------------------- Socket.IO

// Every client connectUser opened, for teardown (closeAll).
export const clients = [];

// A connected, authenticated client that records every receive_message and message_error.
// Resolves the socket, with socket.received / socket.errors arrays.
export async function connectUser(server, token, opts = {}) {
    const socket = io(server.url, {
        forceNew: true,
        reconnection: false,
        transports: ['websocket'],
        auth: { token },
        ...opts,
    });
    clients.push(socket);
    socket.received = [];
    socket.errors = [];
    socket.on('receive_message', (m) => socket.received.push(m));
    socket.on('message_error', (e) => socket.errors.push(e));
    await withTimeout(new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', (e) => {
            reject(new Error(`connect_error: ${e.message} ${JSON.stringify(e.data)}`));
        });
    }), 5000, 'socket connect');
    return socket;
}

// Connect expecting a refusal; resolves the connect_error Error (message, data).
export async function connectRefused(server, opts = {}) {
    const socket = io(server.url, {
        forceNew: true,
        reconnection: false,
        transports: ['websocket'],
        ...opts,
    });
    try {
        return await withTimeout(new Promise((resolve, reject) => {
            socket.once('connect', () => reject(new Error('connected but should have been refused')));
            socket.once('connect_error', resolve);
        }), 5000, 'connect_error');
    } finally {
        socket.disconnect();
    }
}

// emit with an acknowledgement and a deadline; resolves the ack's first argument.
export function emitAck(socket, event, ...args) {
    return socket.timeout(5000).emitWithAck(event, ...args);
}

// ---------------------------------------------------------------- REST

// {status, headers, text, json} of one request. body is JSON-encoded unless rawBody given.
export async function api(server, method, urlPath, { token, body, rawBody, headers = {} } = {}) {
    const h = { ...headers };
    if (token !== undefined) h.authorization = `Bearer ${token}`;
    let payload;
    if (rawBody !== undefined) {
        payload = rawBody;
    } else if (body !== undefined) {
        payload = JSON.stringify(body);
        if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) {
            h['content-type'] = 'application/json';
        }
    }
    const res = await fetch(server.url + urlPath, {
        method, headers: h, body: payload, signal: AbortSignal.timeout(10000),
    });
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
}

// Assert an error response: status (a number or a list of allowed ones) and error JSON whose
// code is `code` (or one of a list). Returns the response.
export function assertApiError(res, status, code, what = '') {
    const statuses = Array.isArray(status) ? status : [status];
    const ctx = `${what}: ${res.status} ${res.text.slice(0, 300)}`;
    assert.ok(statuses.includes(res.status), `status ${res.status} not in ${statuses} (${ctx})`);
    assert.ok(res.json && typeof res.json === 'object', `error body is not JSON (${ctx})`);
    assert.ok(res.json.error && typeof res.json.error === 'object', `no error object (${ctx})`);
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(codes.includes(res.json.error.code), `error code ${res.json.error.code} not in ${codes} (${ctx})`);
    assert.equal(typeof res.json.error.message, 'string', `error.message (${ctx})`);
    assert.ok(res.json.error.message.length > 0, `empty error.message (${ctx})`);
    assert.match(res.headers.get('content-type') || '', /^application\/json/, `content-type (${ctx})`);
    return res;
}

// ---------------------------------------------------------------- documents

export const MESSAGE_FIELDS = ['_id', 'conversationId', 'seq', 'sender', 'recipient', 'content',
    'type', 'file', 'read', 'readAt', 'clientMsgId', 'createdAt', 'updatedAt', 'editedAt',
    'deleted'].sort();
export const CONVERSATION_FIELDS = ['_id', 'participants', 'title', 'context', 'lastMessage',
    'unreadCount', 'createdAt', 'updatedAt'].sort();
export const OBJECT_ID = /^[0-9a-f]{24}$/;
export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function assertIsoTime(s, what) {
    assert.equal(typeof s, 'string', `${what} is not a string: ${JSON.stringify(s)}`);
    assert.match(s, ISO_MS, `${what} shape`);
    assert.equal(new Date(s).toJSON(), s, `${what} is not a real instant`);
    const skew = Math.abs(Date.parse(s) - Date.now());
    assert.ok(skew < 10 * 60 * 1000, `${what} ${s} is ${skew} ms away from now`);
}

export function assertObjectId(s, what) {
    assert.equal(typeof s, 'string', `${what}: ${JSON.stringify(s)}`);
    assert.match(s, OBJECT_ID, `${what} is not 24 lowercase hex`);
    // ObjectId-style: the first 4 bytes are seconds since the epoch.
    const t = parseInt(s.slice(0, 8), 16) * 1000;
    assert.ok(Math.abs(t - Date.now()) < 10 * 60 * 1000, `${what} ${s}: timestamp ${new Date(t).toJSON()} is not now`);
}

// Check every field of a message document; `expect` gives the values known in advance.
export function assertMessage(m, expect = {}) {
    assert.ok(m && typeof m === 'object', `message is ${JSON.stringify(m)}`);
    assert.deepEqual(Object.keys(m).sort(), MESSAGE_FIELDS, `message fields of ${JSON.stringify(m)}`);
    assertObjectId(m._id, 'message._id');
    assertObjectId(m.conversationId, 'message.conversationId');
    assert.ok(Number.isInteger(m.seq) && m.seq >= 1, `seq ${m.seq}`);
    assert.equal(typeof m.sender, 'string');
    assert.ok(m.recipient === null || typeof m.recipient === 'string', `recipient ${m.recipient}`);
    assert.equal(typeof m.content, 'string');
    assert.ok(['text', 'image', 'file', 'system'].includes(m.type), `type ${m.type}`);
    assert.equal(typeof m.read, 'boolean');
    if (m.read) assertIsoTime(m.readAt, 'readAt');
    else assert.equal(m.readAt, null, 'readAt of an unread message');
    assert.ok(m.clientMsgId === null || typeof m.clientMsgId === 'string');
    assertIsoTime(m.createdAt, 'createdAt');
    assertIsoTime(m.updatedAt, 'updatedAt');
    assert.ok(m.updatedAt >= m.createdAt, 'updatedAt before createdAt');
    if (m.editedAt !== null) assertIsoTime(m.editedAt, 'editedAt');
    assert.equal(typeof m.deleted, 'boolean', 'deleted');
    const defaults = { type: 'text', file: null, read: false, readAt: null, clientMsgId: null,
                       editedAt: null, deleted: false };
    for (const [k, v] of Object.entries({ ...defaults, ...expect })) {
        assert.deepEqual(m[k], v, `message.${k}`);
    }
}

export function assertConversation(c, expect = {}) {
    assert.ok(c && typeof c === 'object', `conversation is ${JSON.stringify(c)}`);
    // Every contract field must be there; extra fields are checked (and reported) once, by
    // assertConversationExact, so that they do not hide every other check.
    for (const k of CONVERSATION_FIELDS) {
        assert.ok(Object.hasOwn(c, k), `conversation lacks ${k}: ${JSON.stringify(c).slice(0, 500)}`);
    }
    assertObjectId(c._id, 'conversation._id');
    assert.ok(Array.isArray(c.participants), 'participants');
    assert.ok(c.participants.every((p) => typeof p === 'string'));
    assert.equal(new Set(c.participants).size, c.participants.length, 'duplicate participants');
    assert.ok(c.title === null || typeof c.title === 'string', `title ${c.title}`);
    assert.ok(Number.isInteger(c.unreadCount) && c.unreadCount >= 0, `unreadCount ${c.unreadCount}`);
    assertIsoTime(c.createdAt, 'conversation.createdAt');
    assertIsoTime(c.updatedAt, 'conversation.updatedAt');
    if (c.lastMessage !== null) assertMessage(c.lastMessage, {});
    for (const [k, v] of Object.entries(expect)) {
        if (k === 'participants') {
            assert.deepEqual([...c.participants].sort(), [...v].sort(), 'participants');
        } else {
            assert.deepEqual(c[k], v, `conversation.${k}`);
        }
    }
}

// Assert the ack of a refused client event and the matching message_error on the socket.
export async function assertRefused(socket, ack, codes, clientMsgId, what) {
    const allowed = Array.isArray(codes) ? codes : [codes];
    const ctx = `${what}: ack ${JSON.stringify(ack)}`;
    assert.ok(ack && typeof ack === 'object', ctx);
    assert.equal(ack.ok, false, ctx);
    assert.ok(ack.error && typeof ack.error === 'object', ctx);
    assert.ok(allowed.includes(ack.error.code), `code not in ${allowed}: ${ctx}`);
    assert.equal(typeof ack.error.message, 'string', ctx);
    assert.ok(ack.error.message.length > 0, ctx);
    assert.equal(ack.message, undefined, `a refused send carries no message (${ctx})`);
    // Each refusal consumes its message_error, so a later check cannot match an older one.
    const idx = await waitFor(
        () => 1 + socket.errors.findIndex((e) => e && e.code === ack.error.code &&
                                          (clientMsgId === undefined || e.clientMsgId === clientMsgId)),
        3000, () => `message_error for ${what} (${clientMsgId}); got ${JSON.stringify(socket.errors)}`);
    const [err] = socket.errors.splice(idx - 1, 1);
    assert.equal(typeof err.message, 'string', `message_error.message (${what})`);
    if (clientMsgId !== undefined) assert.equal(err.clientMsgId, clientMsgId, `message_error.clientMsgId (${what})`);
    return err;
}

// Fetch every page of a conversation's history (newest page first, each ascending): returns
// {pages: [[seq...]...], messages: oldest-first}.
export async function fetchHistory(server, token, conversationId, limit = 50) {
    const pages = [];
    const all = [];
    let before = null;
    for (let i = 0; i < 10000; i++) {
        const q = new URLSearchParams({ limit: String(limit) });
        if (before !== null) q.set('before', before);
        const r = await api(server, 'GET', `/api/chat/messages/${conversationId}?${q}`, { token });
        assert.equal(r.status, 200, `history page ${i}: ${r.text.slice(0, 300)}`);
        assert.deepEqual(Object.keys(r.json).sort(), ['messages', 'nextCursor'], `history keys: ${r.text.slice(0, 200)}`);
        const { messages, nextCursor } = r.json;
        assert.ok(Array.isArray(messages));
        assert.ok(messages.length <= limit, `page of ${messages.length} > limit ${limit}`);
        pages.push(messages.map((m) => m.seq));
        all.unshift(...messages);
        if (nextCursor === null) break;
        assert.equal(typeof nextCursor, 'string', `nextCursor ${JSON.stringify(nextCursor)}`);
        assert.ok(messages.length > 0, 'an empty page with a non-null nextCursor');
        assert.notEqual(nextCursor, before, 'nextCursor did not move');
        before = nextCursor;
    }
    return { pages, messages: all };
}

// The conversation document has exactly the contract's fields, nothing more.
export function assertConversationExact(c) {
    assert.deepEqual(Object.keys(c).sort(), CONVERSATION_FIELDS,
                     `conversation fields of ${JSON.stringify(c).slice(0, 500)}`);
}

// Teardown: close clients and give the server a moment to see them go before SIGTERM
// (SIGTERM with clients still connected has its own test in chat_cli.test.mjs).
export async function closeAll(sockets = clients) {
    for (const s of sockets) s.disconnect();
    if (sockets.length) await sleep(200);
}

// The usual frame of a test file: one `parlor serve` (startServer(opts)) started before the
// first test and handed to setServer, every client closed and the server stopped (SIGTERM,
// exit 0) after the last. Returns an array whose sockets are disconnected after each test.
export function serverPerFile(opts, setServer) {
    let server;
    const open = [];
    before(async () => {
        server = await startServer(opts);
        setServer(server);
    });
    after(async () => {
        await closeAll();
        await server.stop();
    });
    afterEach(() => {
        for (const s of open) s.disconnect();
        open.length = 0;
    });
    return open;
}

// ---------------------------------------------------------------- live events (issue 4)

// Like connectUser, but every incoming event is logged from before the CONNECT packet is sent
// (so nothing that arrives right after it is missed): socket.log = [{event, args, at}], and
// socket.events(name) = the first argument of each `name` event so far. Also records
// receive_message offsets: socket.offsets (the last, string, argument of each receive_message).
export async function connectLogged(server, token, opts = {}) {
    const socket = io(server.url, {
        forceNew: true,
        reconnection: false,
        transports: ['websocket'],
        auth: { token },
        ...opts,
    });
    clients.push(socket);
    socket.log = [];
    socket.received = [];
    socket.offsets = [];
    socket.errors = [];
    socket.events = (name) => socket.log.filter((e) => e.event === name).map((e) => e.args[0]);
    socket.onAny((event, ...args) => {
        socket.log.push({ event, args, at: Date.now() });
        if (event === 'receive_message') {
            socket.received.push(args[0]);
            socket.offsets.push(args.length > 1 ? args[args.length - 1] : undefined);
        } else if (event === 'message_error') {
            socket.errors.push(args[0]);
        }
    });
    await withTimeout(new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', (e) => {
            reject(new Error(`connect_error: ${e.message} ${JSON.stringify(e.data)}`));
        });
    }), 5000, 'socket connect');
    return socket;
}

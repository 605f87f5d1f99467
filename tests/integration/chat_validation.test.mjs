// Bad input: every refused send_message gets an ack error and a message_error, nothing is
// stored or delivered, no seq is used up; REST errors (404/405/400), and the server survives.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, connectUser, emitAck, api, assertApiError, tokenFor, newUserId, assertMessage,
    assertRefused, waitFor, sleep, HOST,
    closeAll,
} from './chat_helpers.mjs';
import net from 'node:net';

let server;
async function startAll() {
    server = await startServer({ args: ['--max-message-length', '4000'] });
}
after(async () => {
    await closeAll();
    await server.stop();
});
let open = [];
afterEach(() => {
    for (const s of open) s.disconnect();
    open = [];
});
async function user() {
    const id = newUserId();
    const token = tokenFor(server, id);
    const s = await connectUser(server, token);
    open.push(s);
    return { id, token, s };
}

let A;
let B;
let cid;
let lastSeq = 0;
before(async () => {
    await startAll();
    A = await user();
    B = await user();
    const ack = await emitAck(A.s, 'send_message', { recipientId: B.id, content: 'start', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    cid = ack.message.conversationId;
    lastSeq = 1;
    await waitFor(() => B.s.received.length === 1, 3000, 'first delivery');
    open = [];
});

// Expect a refusal with BAD_REQUEST (or `codes`), a message_error echoing clientMsgId, and
// no delivery to B.
let n = 0;
async function refused(payload, what, codes = 'BAD_REQUEST') {
    const clientMsgId = `bad-${++n}`;
    const p = { recipientId: B.id, content: 'ok', type: 'text', ...payload, clientMsgId };
    for (const k of Object.keys(p)) if (p[k] === undefined) delete p[k];
    const ack = await emitAck(A.s, 'send_message', p);
    await assertRefused(A.s, ack, codes, clientMsgId, what);
    return ack;
}
async function accepted(payload, what) {
    const ack = await emitAck(A.s, 'send_message', { recipientId: B.id, type: 'text', ...payload });
    assert.equal(ack.ok, true, `${what}: ${JSON.stringify(ack).slice(0, 300)}`);
    lastSeq++;
    assert.equal(ack.message.seq, lastSeq, `${what}: seq (a refused send used one up?)`);
    assert.equal(ack.message.content, payload.content, `${what}: content changed`);
    await waitFor(() => B.s.received.some((m) => m._id === ack.message._id), 3000, `${what}: delivery`);
    return ack;
}

test('empty content', () => refused({ content: '' }, 'empty'));
test('whitespace-only content', () => refused({ content: ' \t\n \r\n ' }, 'whitespace'));
test('missing content', () => refused({ content: undefined }, 'missing content'));
for (const [v, what] of [[42, 'number'], [null, 'null'], [true, 'boolean'], [{ text: 'x' }, 'object'],
                         [['x'], 'array']]) {
    test(`content not a string (${what})`, () => refused({ content: v }, `content ${what}`));
}

test('exactly 4000 chars accepted, 4001 refused', async (t) => {
    await accepted({ content: 'x'.repeat(4000) }, '4000 x');
    const ack = await refused({ content: 'x'.repeat(4001) }, '4001 x', ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE']);
    t.diagnostic(`RECORD: over max-message-length -> ${ack.error.code}`);
});

test('length counts characters, not bytes (é = 2 bytes, € = 3 bytes)', async () => {
    await accepted({ content: 'é'.repeat(4000) }, '4000 é (8000 bytes)');
    await accepted({ content: '€'.repeat(4000) }, '4000 € (12000 bytes)');
    await refused({ content: 'é'.repeat(4001) }, '4001 é', ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE']);
    await accepted({ content: '😀'.repeat(2000) }, '2000 emoji (2000 code points, 4000 UTF-16 units)');
});

// docs/api.md: "Characters means Unicode code points" - 4000 emoji are 4000 characters.
test('4000 emoji (4000 code points, 8000 UTF-16 units) are accepted, 4001 refused', async () => {
    await accepted({ content: '😀'.repeat(4000) }, '4000 emoji');
    await refused({ content: '😀'.repeat(4001) }, '4001 emoji');
});

for (const [c, what] of [['a\u0000b', 'NUL'], ['a\u0001b', 'SOH'], ['a\u0007b', 'BEL'], ['a\u001bb', 'ESC'],
                         ['\u0000', 'only NUL'], ['a\u001fb', 'US']]) {
    test(`control character refused (${what})`, () => refused({ content: c }, what));
}

test('newline, tab, CR are accepted and kept', async () => {
    await accepted({ content: 'line 1\nline 2\r\n\ttabbed' }, 'newlines');
});

// docs/api.md: content is checked trimmed (not blank) but stored as sent.
test('content is stored untrimmed', async () => {
    const ack = await accepted({ content: '  padded \n\t' }, 'padded');
    const h = await api(server, 'GET', `/api/chat/messages/${cid}?limit=1`, { token: B.token });
    assert.equal(h.json.messages[0]._id, ack.message._id);
    assert.equal(h.json.messages[0].content, '  padded \n\t');
});

// docs/api.md: "NUL, the other C0 control characters and DEL are refused"; C1 controls,
// zero-width and bidi marks are ordinary characters and are stored unchanged.
test('DEL (U+007F) is refused; C1 (U+0085), zero-width and RTL marks are kept', async () => {
    const err = await refused({ content: 'a\u007fb' }, 'DEL');
    assert.equal(err.error.message, 'content must not contain control characters');
    for (const [c, what] of [['a\u0085b', 'NEL'], ['a\u200bb', 'ZWSP'], ['a\u202eb', 'RLO']]) {
        await accepted({ content: c }, what);
    }
});

test('neither recipientId nor conversationId', () => refused({ recipientId: undefined }, 'no target'));
test('recipientId with a bad charset', () => refused({ recipientId: 'bad id!' }, 'bad charset'));
test('recipientId empty', () => refused({ recipientId: '' }, 'empty recipient'));
test('recipientId of 65 chars', () => refused({ recipientId: 'a'.repeat(65) }, '65 chars'));
test('recipientId not a string', () => refused({ recipientId: 12345 }, 'number recipient'));
test('recipientId with a NUL', () => refused({ recipientId: `${'a'.repeat(10)}\u0000x` }, 'NUL recipient'));
test('conversationId not an id', () => refused({ recipientId: undefined, conversationId: 'zzz' }, 'bad cid'));
test('conversationId uppercase hex', () =>
    refused({ recipientId: undefined, conversationId: 'ABCDEF0123456789ABCDEF01' }, 'uppercase cid'));
test('conversationId not a string', () => refused({ recipientId: undefined, conversationId: 7 }, 'number cid'));
test('recipientId and a conversationId of another conversation', async () => {
    const C = await user();
    const other = await emitAck(A.s, 'send_message', { recipientId: C.id, content: 'to C', type: 'text' });
    assert.equal(other.ok, true);
    await refused({ recipientId: B.id, conversationId: other.message.conversationId }, 'both, inconsistent');
});
// docs/api.md: "Exactly one of recipientId and conversationId is required", even when they agree.
test('recipientId and its own conversationId together are refused', async () => {
    const ack = await refused({ recipientId: B.id, conversationId: cid }, 'both');
    assert.equal(ack.error.message, 'give recipientId or conversationId, not both');
});
test('a recipientId of exactly 64 chars is accepted', async () => {
    const r = 'Z'.repeat(63) + '_';
    const ack = await emitAck(A.s, 'send_message', { recipientId: r, content: 'long id', type: 'text' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assertMessage(ack.message, { recipient: r, sender: A.id, seq: 1, content: 'long id' });
});
// docs/api.md (conventions): fields a request does not define are ignored, so the server's own
// values for sender, seq, _id, times and read always win.
test('spoofed fields (sender, seq, _id, times, read) are ignored', async () => {
    const spoof = { sender: B.id, seq: 999, _id: 'ffffffffffffffffffffffff', createdAt: '2000-01-01T00:00:00.000Z',
                    updatedAt: '2000-01-01T00:00:00.000Z', read: true, readAt: '2000-01-01T00:00:00.000Z', recipient: A.id };
    const ack = await emitAck(A.s, 'send_message', { recipientId: B.id, content: 'spoof', type: 'text', ...spoof });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    lastSeq++;
    assertMessage(ack.message, { sender: A.id, recipient: B.id, seq: lastSeq, read: false, readAt: null, content: 'spoof' });
    assert.notEqual(ack.message._id, spoof._id);
    assert.notEqual(ack.message.createdAt, spoof.createdAt);
    const r = await api(server, 'POST', '/api/chat/messages',
                        { token: A.token, body: { recipientId: B.id, content: 'spoof rest', type: 'text', ...spoof } });
    assert.equal(r.status, 201, r.text);
    lastSeq++;
    assertMessage(r.json.message, { sender: A.id, recipient: B.id, seq: lastSeq, content: 'spoof rest' });
    assert.notEqual(r.json.message._id, spoof._id);
});
test('invalid type', () => refused({ type: 'video' }, 'type video'));
test('type not a string', () => refused({ type: 1 }, 'type number'));
// docs/api.md: type is "'text' (default), 'image' or 'file'".
test('type missing: stored as text', async () => {
    const ack = await accepted({ content: 'no type', type: undefined }, 'no type');
    assert.equal(ack.message.type, 'text');
});
test('type image without a file', () => refused({ type: 'image', content: 'pic' }, 'image without file',
                                                ['BAD_REQUEST', 'NOT_FOUND']));
test('fileId that does not exist', () => refused({ type: 'file', fileId: '0123456789abcdef01234567' },
                                                 'unknown file', ['BAD_REQUEST', 'NOT_FOUND', 'FORBIDDEN']));
test('clientMsgId not a string', async () => {
    const ack = await emitAck(A.s, 'send_message', { recipientId: B.id, content: 'x', type: 'text', clientMsgId: 5 });
    await assertRefused(A.s, ack, 'BAD_REQUEST', undefined, 'clientMsgId number');
});
// docs/api.md: clientMsgId follows the content rule: tab, LF and CR are kept, DEL and other
// controls are refused.
test('clientMsgId: tab, LF and CR kept; DEL and C0 controls refused', async () => {
    const ack = await accepted({ content: 'keyed', clientMsgId: 'k\tey\r\n1' }, 'clientMsgId with tab/CR/LF');
    assert.equal(ack.message.clientMsgId, 'k\tey\r\n1');
    for (const k of ['k\u007fey', 'k\u0001ey', 'k\u0000ey']) {
        const r = await emitAck(A.s, 'send_message', { recipientId: B.id, content: 'x', type: 'text', clientMsgId: k });
        await assertRefused(A.s, r, 'BAD_REQUEST', k, `clientMsgId ${JSON.stringify(k)}`);
        assert.equal(r.error.message, 'clientMsgId must not contain control characters');
    }
});
test('clientMsgId too long (1000 chars)', async () => {
    const ack = await emitAck(A.s, 'send_message',
                              { recipientId: B.id, content: 'x', type: 'text', clientMsgId: 'k'.repeat(1000) });
    await assertRefused(A.s, ack, 'BAD_REQUEST', undefined, 'clientMsgId 1000');
});

// docs/api.md: "You cannot message yourself" (`cannot send a message to yourself`).
test('sending to yourself is refused', async () => {
    const ack = await refused({ recipientId: A.id }, 'self');
    assert.equal(ack.error.message, 'cannot send a message to yourself');
});

test('malformed payloads: not an object', async () => {
    for (const [payload, what] of [[42, 'number'], ['send', 'string'], [null, 'null'], [[1, 2], 'array'],
                                   [true, 'boolean']]) {
        const ack = await emitAck(A.s, 'send_message', payload);
        await assertRefused(A.s, ack, 'BAD_REQUEST', undefined, `payload ${what}`);
    }
});

test('no payload and no ack: message_error only, socket stays connected', async () => {
    const before = A.s.errors.length;
    A.s.emit('send_message');
    await waitFor(() => A.s.errors.length > before, 3000, 'message_error');
    assert.equal(A.s.errors[A.s.errors.length - 1].code, 'BAD_REQUEST');
    assert.equal(A.s.connected, true);
    A.s.errors.length = 0;
});

test('the ack callback as the only argument: refused', async () => {
    const ack = await A.s.timeout(3000).emitWithAck('send_message');
    await assertRefused(A.s, ack, 'BAD_REQUEST', undefined, 'empty send');
    assert.equal(ack.error.message, 'the message must be an object');
});

// docs/api.md: "An event name not listed here is refused with BAD_REQUEST / "unknown event"",
// with the ack and a message_error (also without an ack).
test('unknown client event: BAD_REQUEST "unknown event", with and without an ack', async () => {
    const before = A.s.errors.length;
    A.s.emit('no_such_event', { x: 1 });
    await waitFor(() => A.s.errors.length > before, 3000, 'message_error for an unknown event without an ack');
    assert.deepEqual(A.s.errors.splice(before), [{ code: 'BAD_REQUEST', message: 'unknown event' }]);
    const ack = await emitAck(A.s, 'no_such_event', { x: 1 });
    const err = await assertRefused(A.s, ack, 'BAD_REQUEST', undefined, 'unknown event');
    assert.equal(ack.error.message, 'unknown event');
    assert.equal(err.message, 'unknown event');
    assert.equal(A.s.connected, true);
});

// docs/api.md: arguments that are not valid UTF-8 JSON (a lone surrogate) are refused with
// BAD_REQUEST; nothing is stored (the final test checks history for every bad-* clientMsgId).
test('lone surrogate in content (invalid UTF-16) is refused, the socket stays', async () => {
    // The arguments cannot be decoded, so the message_error cannot echo the clientMsgId.
    for (const content of ['x\ud800y', '\udc00', 'ok \ud83d']) {
        const ack = await emitAck(A.s, 'send_message',
                                  { recipientId: B.id, content, type: 'text', clientMsgId: `bad-${++n}` });
        const err = await assertRefused(A.s, ack, 'BAD_REQUEST', undefined, `lone surrogate ${JSON.stringify(content)}`);
        assert.equal(ack.error.message, 'the arguments are not valid UTF-8 JSON (a lone surrogate?)');
        assert.equal(err.clientMsgId, undefined);
    }
    assert.equal(A.s.connected, true);
    server.assertAlive();
});

test('after all of it: server up, nothing stored or delivered, seq contiguous', async () => {
    server.assertAlive();
    const h = await api(server, 'GET', '/healthz');
    assert.equal(h.status, 200);
    if (!A.s.connected) {
        A.s = await connectUser(server, A.token);
    }
    const last = await accepted({ content: 'final' }, 'final');
    const hist = await api(server, 'GET', `/api/chat/messages/${cid}?limit=200`, { token: B.token });
    assert.equal(hist.status, 200, hist.text);
    const seqs = hist.json.messages.map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: last.message.seq }, (_, i) => i + 1));
    assert.ok(!hist.json.messages.some((m) => (m.clientMsgId || '').startsWith('bad-')), 'a refused message was stored');
    assert.ok(!B.s.received.some((m) => (m.clientMsgId || '').startsWith('bad-')), 'a refused message was delivered');
});

// ---------------------------------------------------------------- REST

test('REST send: bad input -> 400 BAD_REQUEST with error JSON', async () => {
    const cases = [
        [{ recipientId: B.id, content: '', type: 'text' }, 'empty'],
        [{ recipientId: B.id, content: '   ', type: 'text' }, 'whitespace'],
        [{ recipientId: B.id, content: 'x'.repeat(4001), type: 'text' }, '4001', [400, 413]],
        [{ recipientId: B.id, content: 'a\u0000b', type: 'text' }, 'NUL'],
        [{ recipientId: B.id, content: 5, type: 'text' }, 'number'],
        [{ content: 'x', type: 'text' }, 'no target'],
        [{ recipientId: 'bad id!', content: 'x', type: 'text' }, 'bad recipient'],
        [{ recipientId: B.id, content: 'x', type: 'video' }, 'bad type'],
    ];
    for (const [body, what, st = 400] of cases) {
        const r = await api(server, 'POST', '/api/chat/messages', { token: A.token, body });
        assertApiError(r, st, st === 400 ? 'BAD_REQUEST' : ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE'], `REST ${what}`);
    }
});

test('unknown path -> 404 with error JSON', async () => {
    const t = tokenFor(server, newUserId());
    assertApiError(await api(server, 'GET', '/api/nope', { token: t }), 404, 'NOT_FOUND', '/api/nope');
    assertApiError(await api(server, 'GET', '/api/chat/nope', { token: t }), 404, 'NOT_FOUND', '/api/chat/nope');
    assertApiError(await api(server, 'GET', '/definitely/not/here'), 404, 'NOT_FOUND', '/definitely/not/here');
});

test('wrong method -> 405 with error JSON and Allow', async (t) => {
    const tok = tokenFor(server, newUserId());
    for (const [method, path, allow] of [['DELETE', '/api/chat/conversations', ['GET', 'POST']],
                                         ['PUT', '/api/chat/conversations', ['GET', 'POST']],
                                         ['GET', '/api/chat/messages', ['POST']],
                                         ['GET', '/api/auth/login', ['POST']]]) {
        const r = await api(server, method, path, { token: tok });
        assert.equal(r.status, 405, `${method} ${path}: ${r.status} ${r.text}`);
        assert.ok(r.json?.error && typeof r.json.error.code === 'string', `${method} ${path}: ${r.text}`);
        t.diagnostic(`RECORD: 405 code ${r.json.error.code}`);
        const got = (r.headers.get('allow') || '').split(',').map((s) => s.trim());
        for (const m of allow) assert.ok(got.includes(m), `${method} ${path}: Allow "${r.headers.get('allow')}" lacks ${m}`);
    }
    // docs/api.md: without --cors-origins an OPTIONS preflight is a wrong method too, with no
    // CORS headers.
    const o = await api(server, 'OPTIONS', '/api/chat/conversations', {
        headers: { origin: 'http://elsewhere.example', 'access-control-request-method': 'GET' },
    });
    assertApiError(o, 405, 'METHOD_NOT_ALLOWED', 'OPTIONS');
    assert.equal(o.headers.get('allow'), 'GET, POST');
    assert.equal(o.headers.get('access-control-allow-origin'), null);
});

test('malformed JSON body -> 400 BAD_REQUEST', async () => {
    const tok = tokenFor(server, newUserId());
    for (const raw of ['{"recipientId":', 'not json', '', '[1,2]', '42', '"str"', 'null', '{"a":1} x',
                       '{"recipientId":"abc","content":"x","type":"text"', '\ufeff{}']) {
        const r = await api(server, 'POST', '/api/chat/messages',
                            { token: tok, rawBody: raw, headers: { 'content-type': 'application/json' } });
        assertApiError(r, 400, 'BAD_REQUEST', `body ${JSON.stringify(raw)}`);
    }
    const inv = await api(server, 'POST', '/api/chat/messages', {
        token: tok, rawBody: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
        headers: { 'content-type': 'application/json' },
    });
    assertApiError(inv, 400, 'BAD_REQUEST', 'invalid UTF-8');
    const g = await api(server, 'POST', '/api/chat/conversations',
                        { token: tok, rawBody: '{', headers: { 'content-type': 'application/json' } });
    assertApiError(g, 400, 'BAD_REQUEST', 'conversations malformed');
});

// docs/api.md (conventions): a repeated key keeps its last value, as JSON.parse does.
test('duplicate keys in a JSON body: the last value is stored', async () => {
    const tok = tokenFor(server, newUserId());
    const r = await api(server, 'POST', '/api/chat/messages', {
        token: tok,
        rawBody: JSON.stringify({ recipientId: B.id, type: 'text' }).replace('}', ',"content":"x","content":"y"}'),
        headers: { 'content-type': 'application/json' },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.message.content, 'y');
    const h = await api(server, 'GET', `/api/chat/messages/${r.json.message.conversationId}`, { token: tok });
    assert.deepEqual(h.json.messages.map((m) => m.content), ['y']);
});

// docs/api.md (conventions): "The Content-Type header is not checked."
test('a JSON body sent as text/plain is accepted', async () => {
    const r = await api(server, 'POST', '/api/chat/messages', {
        token: tokenFor(server, newUserId()),
        rawBody: JSON.stringify({ recipientId: B.id, content: 'plain', type: 'text' }),
        headers: { 'content-type': 'text/plain' },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.message.content, 'plain');
});

test('a REST body over the payload limit (2 MB) -> 413 PAYLOAD_TOO_LARGE', async () => {
    const r = await api(server, 'POST', '/api/chat/messages', {
        token: A.token, body: { recipientId: B.id, content: 'x'.repeat(2 * 1024 * 1024), type: 'text' },
    });
    assertApiError(r, 413, 'PAYLOAD_TOO_LARGE', '2 MB body');
    server.assertAlive();
});

// docs/api.md: a WebSocket message over maxPayload (1,000,000 bytes) is closed with 1009, so a
// 2 MB send gets no ack: the socket is disconnected and nothing is stored or delivered.
test('a 2 MB send_message over the socket closes that socket, nothing stored', async () => {
    const s = await connectUser(server, A.token);
    const closed = new Promise((resolve) => s.io.engine.on('close', (reason, desc) => resolve({ reason, desc })));
    const res = await s.timeout(10000).emitWithAck('send_message', {
        recipientId: B.id, content: 'x'.repeat(2 * 1024 * 1024), type: 'text', clientMsgId: 'bad-2mb',
    }).then((ack) => ({ ack }), (e) => ({ error: e.message }));
    assert.deepEqual(res, { error: 'socket has been disconnected' });
    const { reason, desc } = await closed;
    assert.equal(reason, 'transport close');
    assert.equal(desc?.context?.code, 1009, `close code ${desc?.context?.code}`);
    server.assertAlive();
    assert.equal((await api(server, 'GET', '/healthz')).status, 200);
    assert.equal(A.s.connected, true, 'another socket of the same user was closed too');
});

test('GET /healthz -> 200 without a token, after a read through the store', async () => {
    const r = await api(server, 'GET', '/healthz');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(r.text), { status: 'ok', store: 'ok' });
    // Many at once share one store read and all get the answer.
    const all = await Promise.all(Array.from({ length: 50 }, () => api(server, 'GET', '/healthz')));
    assert.deepEqual(all.map((x) => x.status), Array(50).fill(200));
    assert.equal((await api(server, 'POST', '/healthz', {})).status, 405);
});

test('raw garbage on a TCP connection and a half request do not hurt the server', async () => {
    for (const bytes of ['\x00\x01\x02garbage\r\n\r\n', 'POST /api/chat/messages HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"a"']) {
        await new Promise((resolve) => {
            const s = net.connect(server.port, HOST, () => {
                s.end(bytes);
            });
            s.on('error', () => {});
            s.on('close', resolve);
            setTimeout(() => s.destroy(), 1000);
        });
    }
    server.assertAlive();
    assert.equal((await api(server, 'GET', '/healthz')).status, 200);
});

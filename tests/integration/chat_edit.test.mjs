// Editing and deleting messages (issue 16): edit_message / PATCH /api/chat/messages/:id and
// delete_message / DELETE /api/chat/messages/:id. Two users' sockets see message_updated and
// message_deleted live; history shows the current state (edited content, tombstones in place
// with their seq); a client offline through an edit and a delete learns both from the recovery
// replay; a deleted file is gone (404); hostile cases are refused with nothing changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import {
    startServer, connectLogged, emitAck, api, tokenFor, newUserId, assertMessage, assertApiError,
    waitFor, serverPerFile, fetchHistory,
} from './chat_helpers.mjs';

let server;
const open = serverPerFile({}, (s) => (server = s));

// A valid 1x1 RGB PNG (the upload's type is decided from its content).
function pngChunk(type, data) {
    const table = Array.from({ length: 256 }, (_, n) => {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        return c >>> 0;
    });
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    let c = 0xffffffff;
    for (const b of td) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE((c ^ 0xffffffff) >>> 0);
    return Buffer.concat([len, td, crc]);
}
function png(seed) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(1, 0);
    ihdr.writeUInt32BE(1, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const raw = Buffer.from([0, seed & 0xff, 2, 3]);
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}
async function upload(srv, who, seed = 1) {
    const fd = new FormData();
    fd.append('file', new Blob([png(seed)], { type: 'image/png' }), 'leak.png');
    const r = await fetch(`${srv.url}/api/chat/files`, {
        method: 'POST', headers: { authorization: `Bearer ${who.token}` }, body: fd,
    });
    const text = await r.text();
    assert.equal(r.status, 201, text);
    return JSON.parse(text).file;
}

// Paths under dir whose last component is name.
function findFile(dir, name) {
    const out = [];
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
        if (e.isFile() && e.name === name) out.push(path.join(e.parentPath ?? e.path, e.name));
    }
    return out;
}

function person(srv = server) {
    const id = newUserId();
    return { id, token: tokenFor(srv, id) };
}

async function sock(who, srv = server, opts = {}) {
    const s = await connectLogged(srv, who.token, opts);
    open.push(s);
    return s;
}

async function send(s, body) {
    const ack = await emitAck(s, 'send_message', { type: 'text', ...body });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return ack.message;
}

function refused(ack, code, what) {
    assert.equal(ack.ok, false, `${what}: ${JSON.stringify(ack)}`);
    assert.equal(ack.error.code, code, `${what}: ${JSON.stringify(ack)}`);
    assert.equal(typeof ack.error.message, 'string');
    return ack.error;
}

// The events of `name` whose first argument concerns message id.
const eventsFor = (s, name, id) => s.log.filter((e) => e.event === name &&
    (e.args[0]._id === id || e.args[0].messageId === id));

test('an edit over the socket reaches both users live and history shows it', async () => {
    const a = person();
    const b = person();
    const sa = await sock(a);
    const sb = await sock(b);
    const m = await send(sa, { recipientId: b.id, content: 'helo' });
    assertMessage(m, { content: 'helo', editedAt: null, deleted: false });
    await waitFor(() => sb.offsets.length === 1, 3000, 'b received the message');
    const ack = await emitAck(sa, 'edit_message', { messageId: m._id, content: 'hello' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assertMessage(ack.message, { content: 'hello', sender: a.id, recipient: b.id, editedAt: ack.message.editedAt });
    assert.equal(ack.message._id, m._id);
    assert.equal(ack.message.seq, m.seq);
    assert.equal(typeof ack.message.editedAt, 'string');
    assert.equal(ack.message.updatedAt, ack.message.editedAt);
    assert.equal(ack.message.createdAt, m.createdAt);
    for (const s of [sa, sb]) {
        const [ev] = await waitFor(() => eventsFor(s, 'message_updated', m._id).length && eventsFor(s, 'message_updated', m._id), 3000,
                                   'message_updated');
        assert.deepEqual(ev.args[0], ack.message);
        assert.equal(typeof ev.args[1], 'string', 'the recovery offset');
        assert.ok(BigInt(ev.args[1]) > BigInt(sb.offsets[0]), 'the edit has a newer offset');
    }
    const h = await fetchHistory(server, b.token, m.conversationId);
    assert.deepEqual(h.messages.map((x) => [x.seq, x.content]), [[1, 'hello']]);
    assert.equal(h.messages[0].editedAt, ack.message.editedAt);
});

test('REST PATCH and DELETE; a tombstone keeps its place, seq and _id; unread and lastMessage stay right', async () => {
    const a = person();
    const b = person();
    const sb = await sock(b);
    const post = async (content) => {
        const r = await api(server, 'POST', '/api/chat/messages', { token: a.token, body: { recipientId: b.id, content } });
        assert.equal(r.status, 201, r.text);
        return r.json.message;
    };
    const m1 = await post('one');
    const m2 = await post('two');
    const m3 = await post('three');
    let r = await api(server, 'PATCH', `/api/chat/messages/${m1._id}`, { token: a.token, body: { content: 'uno' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.ok, true);
    assertMessage(r.json.message, { content: 'uno', editedAt: r.json.message.editedAt });
    assert.equal(typeof r.json.message.editedAt, 'string');
    r = await api(server, 'DELETE', `/api/chat/messages/${m2._id}`, { token: a.token });
    assert.equal(r.status, 200, r.text);
    assertMessage(r.json.message, { content: '', deleted: true, file: null });
    assert.equal(r.json.message.seq, 2);
    assert.equal(r.json.message._id, m2._id);
    const del = await waitFor(() => eventsFor(sb, 'message_deleted', m2._id)[0], 3000, 'message_deleted');
    assert.deepEqual(del.args[0], { conversationId: m2.conversationId, messageId: m2._id, seq: 2 });
    assert.equal(typeof del.args[1], 'string');
    // A second delete changes nothing and tells nobody.
    r = await api(server, 'DELETE', `/api/chat/messages/${m2._id}`, { token: a.token });
    assert.equal(r.status, 200, r.text);
    // History: gap-free, in place.
    const h = await fetchHistory(server, b.token, m1.conversationId, 2);
    assert.deepEqual(h.messages.map((x) => [x.seq, x.content, x.deleted]),
                     [[1, 'uno', false], [2, '', true], [3, 'three', false]]);
    // b has two unread (the deleted one does not count), and the last message is m3.
    r = await api(server, 'GET', '/api/chat/conversations', { token: b.token });
    const conv = r.json.conversations.find((c) => c._id === m1.conversationId);
    assert.equal(conv.unreadCount, 2);
    assert.equal(conv.lastMessage._id, m3._id);
    r = await api(server, 'DELETE', `/api/chat/messages/${m3._id}`, { token: a.token });
    assert.equal(r.status, 200, r.text);
    r = await api(server, 'GET', '/api/chat/conversations', { token: b.token });
    const conv2 = r.json.conversations.find((c) => c._id === m1.conversationId);
    assert.equal(conv2.unreadCount, 1);
    assert.equal(conv2.lastMessage._id, m3._id);
    assert.equal(conv2.lastMessage.deleted, true);
    // The seq goes on after the tombstones.
    const m4 = await post('four');
    assert.equal(m4.seq, 4);
    // exactly one message_deleted per deletion reached b
    await waitFor(() => sb.received.some((x) => x._id === m4._id), 3000, 'm4');
    assert.equal(eventsFor(sb, 'message_deleted', m2._id).length, 1);
});

test('hostile edits and deletes are refused and change nothing', async () => {
    const a = person();
    const b = person();
    const c = person();
    const sa = await sock(a);
    const sb = await sock(b);
    const sc = await sock(c);
    const m = await send(sa, { recipientId: b.id, content: 'mine' });
    refused(await emitAck(sb, 'edit_message', { messageId: m._id, content: 'yours now' }), 'FORBIDDEN', 'edit of another\'s message');
    refused(await emitAck(sb, 'delete_message', { messageId: m._id }), 'FORBIDDEN', 'delete of another\'s message');
    refused(await emitAck(sc, 'edit_message', { messageId: m._id, content: 'x' }), 'NOT_FOUND', 'a non-member');
    refused(await emitAck(sc, 'delete_message', { messageId: m._id }), 'NOT_FOUND', 'a non-member');
    refused(await emitAck(sa, 'edit_message', { messageId: 'ffffffffffffffffffffffff', content: 'x' }), 'NOT_FOUND', 'unknown id');
    refused(await emitAck(sa, 'edit_message', { messageId: 'nope', content: 'x' }), 'BAD_REQUEST', 'bad id');
    refused(await emitAck(sa, 'edit_message', { messageId: m._id }), 'BAD_REQUEST', 'no content');
    refused(await emitAck(sa, 'edit_message', { messageId: m._id, content: 5 }), 'BAD_REQUEST', 'content not a string');
    refused(await emitAck(sa, 'edit_message', { messageId: m._id, content: '   ' }), 'BAD_REQUEST', 'blank content');
    refused(await emitAck(sa, 'edit_message', { messageId: m._id, content: 'a\u0000b' }), 'BAD_REQUEST', 'NUL');
    refused(await emitAck(sa, 'edit_message', { messageId: m._id, content: 'x'.repeat(5001) }), 'BAD_REQUEST', 'over-long content');
    refused(await emitAck(sa, 'delete_message', {}), 'BAD_REQUEST', 'delete without id');
    // REST: the same refusals, as HTTP.
    assertApiError(await api(server, 'PATCH', `/api/chat/messages/${m._id}`, { token: b.token, body: { content: 'x' } }), 403, 'FORBIDDEN');
    assertApiError(await api(server, 'DELETE', `/api/chat/messages/${m._id}`, { token: b.token }), 403, 'FORBIDDEN');
    assertApiError(await api(server, 'DELETE', `/api/chat/messages/${m._id}`, { token: c.token }), 404, 'NOT_FOUND');
    assertApiError(await api(server, 'PATCH', `/api/chat/messages/${m._id}`, { token: a.token, rawBody: 'nope', headers: { 'content-type': 'application/json' } }), 400, 'BAD_REQUEST');
    assertApiError(await api(server, 'PATCH', '/api/chat/messages/xyz', { token: a.token, body: { content: 'x' } }), 400, 'BAD_REQUEST');
    assertApiError(await api(server, 'PATCH', `/api/chat/messages/${m._id}`, { body: { content: 'x' } }), 401, 'UNAUTHORIZED');
    // A file message's content cannot be edited.
    const f = await upload(server, a, 7);
    const fm = await send(sa, { recipientId: b.id, type: 'image', fileId: f.id, content: 'the leak' });
    refused(await emitAck(sa, 'edit_message', { messageId: fm._id, content: 'x' }), 'BAD_REQUEST', 'a file message');
    // Nothing changed, nobody was told.
    const h = await fetchHistory(server, a.token, m.conversationId);
    assert.equal(h.messages[0].content, 'mine');
    assert.equal(h.messages[0].editedAt, null);
    assert.equal(eventsFor(sb, 'message_updated', m._id).length, 0);
    assert.equal(eventsFor(sb, 'message_deleted', m._id).length, 0);
});

test('a deleted message\'s file is removed and no longer served; a shared file stays until its last message goes', async () => {
    const a = person();
    const b = person();
    const sa = await sock(a);
    const f = await upload(server, a, 9);
    const m1 = await send(sa, { recipientId: b.id, type: 'image', fileId: f.id, content: '' });
    const m2 = await send(sa, { recipientId: b.id, type: 'file', fileId: f.id, content: '' });
    const get = (who) => api(server, 'GET', `/api/chat/files/${f.id}`, { token: who.token });
    assert.equal((await get(b)).status, 200);
    assert.equal(findFile(server.dataDir, f.id).length, 1, 'the upload is on disk');
    let ack = await emitAck(sa, 'delete_message', { messageId: m1._id });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.message.file, null);
    assert.equal((await get(b)).status, 200, 'still referenced by m2');
    ack = await emitAck(sa, 'delete_message', { messageId: m2._id });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assertApiError(await get(b), 404, 'NOT_FOUND', 'the file after its last message was deleted');
    assertApiError(await get(a), 404, 'NOT_FOUND', 'even for its owner');
    await waitFor(() => findFile(server.dataDir, f.id).length === 0, 3000, 'the bytes are removed from disk');
});

test('a short --edit-window-s: an edit after it is refused, a delete is not', async () => {
    const srv = await startServer({ args: ['--edit-window-s', '1'] });
    try {
        const a = person(srv);
        const b = person(srv);
        const sa = await sock(a, srv);
        const m = await send(sa, { recipientId: b.id, content: 'quick' });
        // Wait for the window to pass: the server's clock decides, so ask until it refuses.
        let err;
        const deadline = Date.now() + 10000;
        for (;;) {
            assert.ok(Date.now() < deadline, 'the window never passed');
            const ack = await emitAck(sa, 'edit_message', { messageId: m._id, content: 'fix' });
            if (!ack.ok) {
                err = refused(ack, 'FORBIDDEN', 'edit after the window');
                break;
            }
            await new Promise((r) => setTimeout(r, 200));
        }
        assert.match(err.message, /time to edit/);
        const ack = await emitAck(sa, 'delete_message', { messageId: m._id });
        assert.equal(ack.ok, true, JSON.stringify(ack));
    } finally {
        await srv.stop();
    }
});

test('a client offline through an edit and a delete learns both when it is recovered', async () => {
    const a = person();
    const b = person();
    const sa = await sock(a);
    let release = null;
    let held = Promise.resolve();
    const sb = await sock(b, server, {
        reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 200, randomizationFactor: 0,
        auth: (cb) => held.then(() => cb({ token: b.token })),
    });
    const m1 = await send(sa, { recipientId: b.id, content: 'first' });
    const m2 = await send(sa, { recipientId: b.id, content: 'second' });
    await waitFor(() => sb.received.length === 2, 3000, 'b got both');
    // b drops off; its reconnection waits until after the changes.
    held = new Promise((r) => (release = r));
    const t = sb.io.engine.transport;
    if (t.ws && typeof t.ws.terminate === 'function') t.ws.terminate();
    else sb.io.engine.close();
    await waitFor(() => !sb.connected, 3000, 'b disconnected');
    const edited = await emitAck(sa, 'edit_message', { messageId: m1._id, content: 'first, fixed' });
    assert.equal(edited.ok, true);
    const deleted = await emitAck(sa, 'delete_message', { messageId: m2._id });
    assert.equal(deleted.ok, true);
    const m3 = await send(sa, { recipientId: b.id, content: 'third' });
    const logFrom = sb.log.length;
    release();
    await waitFor(() => sb.connected, 5000, 'b reconnected');
    assert.equal(sb.recovered, true, 'recovered');
    await waitFor(() => sb.received.some((x) => x._id === m3._id), 3000, 'm3 replayed');
    const replay = sb.log.slice(logFrom).filter((e) => e.event !== 'user_status');
    const seen = replay.map((e) => [e.event, e.args[0]._id || e.args[0].messageId]);
    assert.deepEqual(seen, [['message_updated', m1._id], ['message_deleted', m2._id], ['receive_message', m3._id]],
                     JSON.stringify(seen));
    assert.deepEqual(replay[0].args[0], edited.message);
    assert.deepEqual(replay[1].args[0], { conversationId: m2.conversationId, messageId: m2._id, seq: 2 });
    for (const e of replay) assert.equal(typeof e.args[1], 'string', 'each replayed event carries its offset');
    assert.equal(sb._lastOffset, replay[2].args[1]);
});

test('edits and deletes spend the sender\'s message rate', async () => {
    // A burst of 2 then 1/s: of 10 edits sent at once, most are refused whatever the timing.
    const srv = await startServer({ args: ['--rate-messages-per-s', '1', '--rate-messages-burst', '2'] });
    try {
        const a = person(srv);
        const b = person(srv);
        const sa = await sock(a, srv);
        const m = await send(sa, { recipientId: b.id, content: 'one' });
        const acks = await Promise.all(Array.from({ length: 10 }, (_, i) =>
            emitAck(sa, 'edit_message', { messageId: m._id, content: `edit ${i}` })));
        const limited = acks.filter((x) => !x.ok && x.error.code === 'RATE_LIMITED');
        const done = acks.filter((x) => x.ok);
        assert.equal(limited.length + done.length, 10, JSON.stringify(acks));
        assert.ok(limited.length >= 5, `only ${limited.length} of 10 edits were limited`);
        assert.ok(limited.every((x) => x.error.retryAfterMs > 0));
        const rs = await Promise.all(Array.from({ length: 5 }, () =>
            api(srv, 'DELETE', `/api/chat/messages/${m._id}`, { token: a.token })));
        assert.ok(rs.some((r) => r.status === 429 && r.json.error.code === 'RATE_LIMITED'),
                  `no REST delete was limited: ${rs.map((r) => r.status)}`);
        // Nothing refused took effect: the content is that of an accepted edit (or none).
        const h = await fetchHistory(srv, b.token, m.conversationId);
        const last = h.messages[0];
        if (!last.deleted) {
            assert.ok(['one', ...done.map((x) => x.message.content)].includes(last.content), last.content);
        }
    } finally {
        await srv.stop();
    }
});

// Search (issue 16): GET /api/chat/search over the caller's conversations only, newest first,
// with the message, its conversation and a highlighted snippet; hostile queries refused; and a
// property test: random users, conversations and words, every result is in a conversation of
// the caller, and every message of the caller's conversations with the word is found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import {
    connectUser, emitAck, api, tokenFor, newUserId, serverPerFile, assertApiError, assertMessage,
} from './chat_helpers.mjs';

let server;
const open = serverPerFile({}, (s) => (server = s));

function user() {
    const id = newUserId();
    return { id, token: tokenFor(server, id) };
}

const send = async (u, body) => {
    const r = await api(server, 'POST', '/api/chat/messages', { token: u.token, body: { type: 'text', ...body } });
    assert.equal(r.status, 201, r.text);
    return r.json.message ?? r.json;
};
const search = (u, qs) => api(server, 'GET', `/api/chat/search?${new URLSearchParams(qs)}`, { token: u.token });

test('search: hits newest first with conversation and snippet; one conversation; paging; refusals', async () => {
    const A = user(), B = user(), C = user();
    const m1 = await send(A, { recipientId: B.id, content: 'The door code is 4711' });
    await send(B, { recipientId: A.id, content: 'unrelated' });
    const m3 = await send(B, { recipientId: A.id, content: 'Door <b>code</b> changed to 1234 & more' });
    await send(C, { recipientId: B.id, content: 'door code for C only' });
    const g = await api(server, 'POST', '/api/chat/conversations', { token: A.token, body: { participantIds: [B.id, C.id] } });
    const m5 = await send(C, { conversationId: g.json._id, content: 'doormat delivered' });

    let r = await search(A, { q: 'door cod' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['nextCursor', 'results']);
    assert.deepEqual(r.json.results.map((x) => x.message._id), [m3._id, m1._id]);
    const hit = r.json.results[0];
    assert.deepEqual(Object.keys(hit).sort(), ['conversationId', 'message', 'snippet']);
    assert.equal(hit.conversationId, m3.conversationId);
    assertMessage(hit.message, { content: m3.content, sender: B.id });
    assert.equal(hit.snippet, '<mark>Door</mark> &lt;b&gt;<mark>code</mark>&lt;/b&gt; changed to 1234 &amp; more');
    assert.equal(r.json.nextCursor, null);

    r = await search(A, { q: 'door' }); // the last word is a prefix: doormat too
    assert.deepEqual(r.json.results.map((x) => x.message._id), [m5._id, m3._id, m1._id]);
    r = await search(A, { q: 'door', conversationId: g.json._id });
    assert.deepEqual(r.json.results.map((x) => x.message._id), [m5._id]);
    // Paging with limit 1: the same hits, one a page.
    const seen = [];
    let cursor;
    for (let i = 0; i < 10; i++) {
        r = await search(A, { q: 'door', limit: '1', ...(cursor ? { cursor } : {}) });
        assert.equal(r.status, 200, r.text);
        seen.push(...r.json.results.map((x) => x.message._id));
        cursor = r.json.nextCursor;
        if (!cursor) break;
    }
    assert.deepEqual(seen, [m5._id, m3._id, m1._id]);

    // C's direct conversation with B is never A's; a conversation A is not in is 404.
    const cb = (await search(C, { q: 'only' })).json.results[0].conversationId;
    assert.deepEqual((await search(A, { q: 'only' })).json.results, []);
    assertApiError(await search(A, { q: 'door', conversationId: cb }), 404, 'NOT_FOUND', 'not a member');

    for (const q of ['', '   ', 'door*', '"door"', 'door -code', 'a:b', 'x(y', 'a b c d e f g h i', 'é'.repeat(101), '\u0000a']) {
        assertApiError(await search(A, { q }), 400, 'BAD_REQUEST', `q ${JSON.stringify(q)}`);
    }
    assertApiError(await search(A, { q: 'door', conversationId: 'nope' }), 400, 'BAD_REQUEST');
    assertApiError(await search(A, { q: 'door', cursor: 'x' }), 400, 'BAD_REQUEST');
    assertApiError(await search(A, { q: 'door', cursor: '-5' }), 400, 'BAD_REQUEST');
    assertApiError(await search(A, { q: 'door', limit: '0' }), 400, 'BAD_REQUEST');
    r = await search(A, { q: 'door', limit: '5000' });
    assert.equal(r.status, 200, 'a large limit is clamped');
    assertApiError(await api(server, 'GET', '/api/chat/search?q=door'), 401, 'UNAUTHORIZED');
    assertApiError(await api(server, 'POST', '/api/chat/search?q=door', { token: A.token }), 405, 'METHOD_NOT_ALLOWED');
});

test('search: a last word under three characters matches whole words only, not as a prefix', async () => {
    const A = user(), B = user();
    const ok = await send(A, { recipientId: B.id, content: 'ok see you' });
    const okay = await send(B, { recipientId: A.id, content: 'okay then' });
    const hi = await send(A, { recipientId: B.id, content: 'Hi there, hint: the door code is 12' });
    const ids = async (q) => {
        const r = await search(A, { q });
        assert.equal(r.status, 200, r.text);
        return r.json.results.map((x) => x.message._id);
    };
    assert.deepEqual(await ids('ok'), [ok._id], 'a two-letter word is a whole word: not "okay"');
    assert.deepEqual(await ids('o'), []);
    assert.deepEqual(await ids('oka'), [okay._id], 'three letters are a prefix');
    assert.deepEqual(await ids('hin'), [hi._id]);
    assert.deepEqual(await ids('door co'), [], '"co" is not a word of it');
    assert.deepEqual(await ids('door cod'), [hi._id]);
    assert.deepEqual(await ids('12'), [hi._id], 'a short number is found as a whole word');
    const r = await search(A, { q: 'hi' });
    assert.deepEqual(r.json.results.map((x) => x.snippet), ['<mark>Hi</mark> there, hint: the door code is 12']);
});

test('property: results are only from the caller\'s conversations, and every message with the word is found', async () => {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const vocab = new Set();
    while (vocab.size < 10) vocab.add(Array.from({ length: 5 }, () => letters[randomInt(26)]).join(''));
    const words = [...vocab]; // same length, distinct: none is a prefix of another
    const users = Array.from({ length: 6 }, user);
    const convs = []; // {id, members: Set}
    for (let i = 0; i < 8; i++) {
        const a = users[randomInt(users.length)];
        let b = users[randomInt(users.length)];
        if (b === a) b = users[(users.indexOf(a) + 1) % users.length];
        if (i % 2) {
            const m = await send(a, { recipientId: b.id, content: 'hi' });
            if (!convs.find((c) => c.id === m.conversationId)) convs.push({ id: m.conversationId, members: new Set([a.id, b.id]) });
        } else {
            const others = users.filter((u) => u !== a && randomInt(2));
            if (!others.length) others.push(b);
            const g = await api(server, 'POST', '/api/chat/conversations', { token: a.token, body: { participantIds: others.map((u) => u.id) } });
            assert.equal(g.status, 201, g.text);
            convs.push({ id: g.json._id, members: new Set([a.id, ...others.map((u) => u.id)]) });
        }
    }
    const messages = [];
    for (let i = 0; i < 150; i++) {
        const c = convs[randomInt(convs.length)];
        const members = users.filter((u) => c.members.has(u.id));
        const from = members[randomInt(members.length)];
        const n = 1 + randomInt(4);
        const content = Array.from({ length: n }, () => {
            const w = words[randomInt(words.length)];
            return randomInt(3) ? w : w.toUpperCase() + (randomInt(2) ? ',' : '.');
        }).join(' ');
        const m = await send(from, { conversationId: c.id, content });
        messages.push(m);
    }
    for (const u of users) {
        const mine = new Set(convs.filter((c) => c.members.has(u.id)).map((c) => c.id));
        for (const w of words) {
            const found = [];
            let cursor;
            for (let page = 0; page < 50; page++) {
                const r = await search(u, { q: w, limit: '50', ...(cursor ? { cursor } : {}) });
                assert.equal(r.status, 200, r.text);
                for (const x of r.json.results) {
                    assert.ok(mine.has(x.conversationId), `a result from a conversation ${u.id} is not in`);
                    assert.equal(x.message.conversationId, x.conversationId);
                    found.push(x.message._id);
                }
                cursor = r.json.nextCursor;
                if (!cursor) break;
            }
            const expected = messages
                .filter((m) => mine.has(m.conversationId) && m.content.toLowerCase().split(/[^a-z]+/).includes(w))
                .map((m) => m._id).reverse();
            assert.deepEqual(found, expected, `${u.id} searching ${w}`);
        }
    }
});

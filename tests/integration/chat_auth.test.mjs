// Authentication of `parlor serve`: JWTs on the Socket.IO handshake and on REST, `parlor token`,
// issuer/audience checks, and standalone accounts (register/login).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
    startServer, connectUser, connectRefused, api, assertApiError, signJwt, tokenFor, nowS,
    newUserId, runParlor, emitAck, assertMessage, waitFor, serverPerFile,
} from './chat_helpers.mjs';
import { PG_URL, pgSchemaOf } from './helpers.mjs';

let server;
const open = serverPerFile({}, (s) => (server = s));
async function connect(token, opts) {
    const s = await connectUser(server, token, opts);
    open.push(s);
    return s;
}

async function refusedWith(auth, code, what) {
    const err = await connectRefused(server, auth === undefined ? {} : { auth });
    assert.equal(err.message, 'unauthorized', `${what}: connect_error message`);
    assert.ok(err.data && typeof err.data === 'object', `${what}: connect_error data ${JSON.stringify(err.data)}`);
    assert.equal(err.data.code, code, `${what}: data.code`);
    server.assertAlive();
}

describe('socket handshake', () => {
    test('a valid HS256 token connects', async () => {
        const s = await connect(tokenFor(server, newUserId(), { name: 'Ann', role: 'tenant' }));
        assert.equal(s.connected, true);
    });

    test('a token from `parlor token` (same secret) connects and is the user it names', async () => {
        const a = newUserId();
        const b = newUserId();
        const r = await runParlor(['token', a, '--name', 'Alice', '--role', 'owner', '--ttl', '1h',
                                   '--jwt-secret', server.secret, '--data', server.dataDir]);
        assert.equal(r.code, 0, `parlor token failed: ${r.stderr}`);
        const tok = r.stdout.trim();
        assert.match(tok, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, `token output ${JSON.stringify(r.stdout)}`);
        const header = JSON.parse(Buffer.from(tok.split('.')[0], 'base64url'));
        assert.equal(header.alg, 'HS256');
        const claims = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url'));
        assert.equal(claims.sub, a);
        assert.equal(claims.name, 'Alice');
        assert.equal(claims.role, 'owner');
        assert.ok(Math.abs(claims.exp - nowS() - 3600) <= 5, `exp ${claims.exp} is not now+1h`);
        const sa = await connect(tok);
        const sb = await connect(tokenFor(server, b));
        const ack = await emitAck(sa, 'send_message', { recipientId: b, content: 'hi', type: 'text' });
        assert.equal(ack.ok, true, JSON.stringify(ack));
        assertMessage(ack.message, { sender: a, recipient: b, content: 'hi' });
        await waitFor(() => sb.received.length === 1, 3000, 'delivery to b');
    });

    test('no auth at all -> AUTH_MISSING', () => refusedWith(undefined, 'AUTH_MISSING', 'no auth'));
    test('auth without token -> AUTH_MISSING', () => refusedWith({}, 'AUTH_MISSING', 'auth {}'));
    test('empty token -> AUTH_MISSING', () => refusedWith({ token: '' }, 'AUTH_MISSING', 'token ""'));
    test('garbage token -> AUTH_INVALID', () => refusedWith({ token: 'not-a-jwt' }, 'AUTH_INVALID', 'garbage'));
    test('three garbage segments -> AUTH_INVALID',
         () => refusedWith({ token: 'aaa.bbb.ccc' }, 'AUTH_INVALID', 'aaa.bbb.ccc'));
    test('a token that is not a string -> AUTH_INVALID or AUTH_MISSING', async () => {
        const err = await connectRefused(server, { auth: { token: 12345 } });
        assert.equal(err.message, 'unauthorized');
        assert.ok(['AUTH_INVALID', 'AUTH_MISSING'].includes(err.data?.code), JSON.stringify(err.data));
    });
    test('wrong signature -> AUTH_INVALID', () => {
        const t = signJwt({ sub: newUserId(), exp: nowS() + 3600 }, 'another-secret-of-at-least-32-bytes!!');
        return refusedWith({ token: t }, 'AUTH_INVALID', 'wrong secret');
    });
    test('payload tampered after signing -> AUTH_INVALID', () => {
        const good = tokenFor(server, 'alice');
        const [h, , s] = good.split('.');
        const p = Buffer.from(JSON.stringify({ sub: 'mallory', iat: nowS(), exp: nowS() + 3600 })).toString('base64url');
        return refusedWith({ token: `${h}.${p}.${s}` }, 'AUTH_INVALID', 'tampered');
    });
    test('alg none -> AUTH_INVALID', () => {
        const t = signJwt({ sub: newUserId(), exp: nowS() + 3600 }, null,
                          { header: { alg: 'none', typ: 'JWT' }, sign: false });
        return refusedWith({ token: t }, 'AUTH_INVALID', 'alg none');
    });
    test('alg none with a (valid HS256) signature kept -> AUTH_INVALID', () => {
        const sub = newUserId();
        const good = tokenFor(server, sub);
        const h = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
        const [, p, s] = good.split('.');
        return refusedWith({ token: `${h}.${p}.${s}` }, 'AUTH_INVALID', 'alg none + sig');
    });
    test('HS512 signed with the right secret -> AUTH_INVALID (alg is pinned)', () => {
        const header = { alg: 'HS512', typ: 'JWT' };
        const h = Buffer.from(JSON.stringify(header)).toString('base64url');
        const p = Buffer.from(JSON.stringify({ sub: newUserId(), exp: nowS() + 3600 })).toString('base64url');
        return import('node:crypto').then(({ createHmac }) => {
            const s = createHmac('sha512', server.secret).update(`${h}.${p}`).digest('base64url');
            return refusedWith({ token: `${h}.${p}.${s}` }, 'AUTH_INVALID', 'HS512');
        });
    });
    test('no sub -> AUTH_INVALID', () => refusedWith(
        { token: signJwt({ exp: nowS() + 3600 }, server.secret) }, 'AUTH_INVALID', 'no sub'));
    test('sub with a bad charset -> AUTH_INVALID', () => refusedWith(
        { token: signJwt({ sub: 'bad id!', exp: nowS() + 3600 }, server.secret) }, 'AUTH_INVALID', 'bad sub'));
    test('sub of 65 chars -> AUTH_INVALID', () => refusedWith(
        { token: signJwt({ sub: 'a'.repeat(65), exp: nowS() + 3600 }, server.secret) }, 'AUTH_INVALID', 'long sub'));
    test('sub of 64 chars is accepted', async () => {
        const s = await connect(signJwt({ sub: 'a'.repeat(63) + 'Z', exp: nowS() + 3600 }, server.secret));
        assert.equal(s.connected, true);
    });
    test('no exp -> AUTH_INVALID', () => refusedWith(
        { token: signJwt({ sub: newUserId() }, server.secret) }, 'AUTH_INVALID', 'no exp'));
    test('refusals over the polling transport reach connect_error too', async () => {
        for (const [auth, code] of [[{}, 'AUTH_MISSING'], [{ token: 'x.y.z' }, 'AUTH_INVALID'],
                                    [{ token: signJwt({ sub: newUserId(), exp: nowS() - 3600 }, server.secret) }, 'AUTH_EXPIRED']]) {
            const err = await connectRefused(server, { auth, transports: ['polling'] });
            assert.equal(err.message, 'unauthorized');
            assert.equal(err.data?.code, code, JSON.stringify(err.data));
        }
    });
    test('expired (an hour ago) -> AUTH_EXPIRED', () => refusedWith(
        { token: signJwt({ sub: newUserId(), iat: nowS() - 7200, exp: nowS() - 3600 }, server.secret) },
        'AUTH_EXPIRED', 'expired'));
});

describe('REST authentication', () => {
    const path = '/api/chat/conversations';
    test('no Authorization -> 401 UNAUTHORIZED', async () => {
        assertApiError(await api(server, 'GET', path), 401, 'UNAUTHORIZED', 'no header');
    });
    test('garbage bearer -> 401', async () => {
        assertApiError(await api(server, 'GET', path, { token: 'garbage' }), 401, 'UNAUTHORIZED', 'garbage');
    });
    test('wrong signature -> 401', async () => {
        const t = signJwt({ sub: newUserId(), exp: nowS() + 3600 }, 'another-secret-of-at-least-32-bytes!!');
        assertApiError(await api(server, 'GET', path, { token: t }), 401, 'UNAUTHORIZED', 'forged');
    });
    test('alg none -> 401', async () => {
        const t = signJwt({ sub: newUserId(), exp: nowS() + 3600 }, null,
                          { header: { alg: 'none' }, sign: false });
        assertApiError(await api(server, 'GET', path, { token: t }), 401, 'UNAUTHORIZED', 'none');
    });
    test('expired -> 401', async () => {
        const t = signJwt({ sub: newUserId(), exp: nowS() - 3600 }, server.secret);
        assertApiError(await api(server, 'GET', path, { token: t }), 401, 'UNAUTHORIZED', 'expired');
    });
    test('Basic instead of Bearer -> 401', async () => {
        const r = await api(server, 'GET', path, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
        assertApiError(r, 401, 'UNAUTHORIZED', 'basic');
    });
    test('POST /api/chat/messages without a token -> 401 and nothing is sent', async () => {
        const r = await api(server, 'POST', '/api/chat/messages',
                            { body: { recipientId: newUserId(), content: 'x', type: 'text' } });
        assertApiError(r, 401, 'UNAUTHORIZED', 'unauthenticated send');
    });
    test('a valid token -> 200', async () => {
        const r = await api(server, 'GET', path, { token: tokenFor(server, newUserId()) });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { conversations: [], nextCursor: null });
    });
});

describe('standalone accounts', () => {
    const uname = `alice_${Date.now().toString(36)}`;
    const password = 'correct horse battery staple';
    let registered;

    test('register -> 201/200 {token, user}', async (t) => {
        const r = await api(server, 'POST', '/api/auth/register',
                            { body: { username: uname, password, name: 'Alice A.', role: 'tenant' } });
        assert.ok([200, 201].includes(r.status), `${r.status} ${r.text}`);
        t.diagnostic(`register answered ${r.status}`);
        assert.deepEqual(Object.keys(r.json).sort(), ['token', 'user']);
        assert.equal(typeof r.json.token, 'string');
        const u = r.json.user;
        assert.deepEqual(Object.keys(u).sort(), ['id', 'name', 'role', 'username'], JSON.stringify(u));
        assert.match(u.id, /^[A-Za-z0-9_-]{1,64}$/);
        assert.equal(u.username, uname);
        assert.equal(u.name, 'Alice A.');
        assert.equal(u.role, 'tenant');
        const claims = JSON.parse(Buffer.from(r.json.token.split('.')[1], 'base64url'));
        assert.equal(claims.sub, u.id, 'token sub is the user id');
        registered = r.json;
    });

    test('the password is not stored in clear in the data directory or the database', async () => {
        assert.ok(registered, 'register failed');
        const { execFileSync } = await import('node:child_process');
        let found = '';
        try {
            found = execFileSync('grep', ['-rl', '--binary-files=text', password, server.dataDir]).toString();
        } catch (e) {
            if (e.status !== 1) throw e; // 1 = no match
        }
        assert.equal(found, '', `plain password found in ${found}`);
        if (server.store) {
            // PostgreSQL: the database is not in the data directory; look at its rows.
            const dump = execFileSync('pg_dump', ['--data-only', '--schema', pgSchemaOf(server.store), PG_URL],
                                      { encoding: 'utf8', maxBuffer: 64 << 20 });
            assert.ok(dump.includes(uname), 'the dump does not hold the account: nothing was looked at');
            assert.ok(!dump.includes(password), 'plain password found in the PostgreSQL schema');
        }
    });

    test('the registered token works on the socket and on REST', async () => {
        assert.ok(registered, 'register failed');
        const s = await connect(registered.token);
        const b = newUserId();
        const ack = await emitAck(s, 'send_message', { recipientId: b, content: 'from account', type: 'text' });
        assert.equal(ack.ok, true, JSON.stringify(ack));
        assert.equal(ack.message.sender, registered.user.id);
        const r = await api(server, 'GET', '/api/chat/conversations', { token: registered.token });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.conversations.length, 1);
    });

    test('duplicate username -> 409 CONFLICT', async () => {
        const r = await api(server, 'POST', '/api/auth/register',
                            { body: { username: uname, password: 'another password', name: 'Bob', role: 'owner' } });
        assertApiError(r, 409, 'CONFLICT', 'duplicate');
    });

    test('login with the right password -> 200 {token, user}', async () => {
        assert.ok(registered, 'register failed');
        const r = await api(server, 'POST', '/api/auth/login', { body: { username: uname, password } });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['token', 'user']);
        assert.deepEqual(r.json.user, registered.user);
        const s = await connect(r.json.token);
        assert.equal(s.connected, true);
    });

    test('wrong password and unknown user -> the same 401 and code', async () => {
        const wrong = await api(server, 'POST', '/api/auth/login',
                                { body: { username: uname, password: 'not the password' } });
        const unknown = await api(server, 'POST', '/api/auth/login',
                                  { body: { username: `nobody_${Date.now()}`, password } });
        assertApiError(wrong, 401, 'UNAUTHORIZED', 'wrong password');
        assertApiError(unknown, 401, 'UNAUTHORIZED', 'unknown user');
        assert.equal(wrong.json.error.code, unknown.json.error.code);
        assert.equal(wrong.json.error.message, unknown.json.error.message,
                     'messages differ: tells which usernames exist');
    });

    test('register without a password -> 400 BAD_REQUEST', async () => {
        const r = await api(server, 'POST', '/api/auth/register',
                            { body: { username: `nopw_${Date.now()}`, name: 'X', role: 'tenant' } });
        assertApiError(r, 400, 'BAD_REQUEST', 'no password');
    });

    test('login with a malformed body -> 400 BAD_REQUEST', async () => {
        const r = await api(server, 'POST', '/api/auth/login',
                            { rawBody: '{"username":', headers: { 'content-type': 'application/json' } });
        assertApiError(r, 400, 'BAD_REQUEST', 'malformed');
    });
});

describe('issuer and audience', () => {
    let strict;
    const iss = 'https://issuer.example';
    const aud = 'parlor-chat';
    before(async () => {
        strict = await startServer({ args: ['--jwt-issuer', iss, '--jwt-audience', aud] });
    });
    after(async () => {
        await strict.stop();
    });
    const claims = (extra) => ({ sub: newUserId(), iat: nowS(), exp: nowS() + 3600, ...extra });
    async function refused(payload, what) {
        const err = await connectRefused(strict, { auth: { token: signJwt(payload, strict.secret) } });
        assert.equal(err.message, 'unauthorized', what);
        assert.equal(err.data?.code, 'AUTH_INVALID', `${what}: ${JSON.stringify(err.data)}`);
    }
    test('right iss and aud connect', async () => {
        const s = await connectUser(strict, signJwt(claims({ iss, aud }), strict.secret));
        open.push(s);
    });
    test('aud as an array containing it connects', async () => {
        const s = await connectUser(strict, signJwt(claims({ iss, aud: ['other', aud] }), strict.secret));
        open.push(s);
    });
    test('missing iss -> AUTH_INVALID', () => refused(claims({ aud }), 'no iss'));
    test('wrong iss -> AUTH_INVALID', () => refused(claims({ iss: 'https://evil.example', aud }), 'bad iss'));
    test('missing aud -> AUTH_INVALID', () => refused(claims({ iss }), 'no aud'));
    test('wrong aud -> AUTH_INVALID', () => refused(claims({ iss, aud: 'other' }), 'bad aud'));
    test('REST with a wrong audience -> 401', async () => {
        const t = signJwt(claims({ iss, aud: 'other' }), strict.secret);
        assertApiError(await api(strict, 'GET', '/api/chat/conversations', { token: t }), 401,
                       'UNAUTHORIZED', 'REST bad aud');
    });
});

// docs/api.md: "limit defaults to 10, at most 20", and "You are left out of the results".
describe('user search pages', () => {
    const prefix = `pg${Date.now().toString(36)}`;
    const names = Array.from({ length: 22 }, (_, i) => `${prefix}_${String(i).padStart(2, '0')}`);
    const accounts = [];
    before(async () => {
        for (const username of names) {
            const r = await api(server, 'POST', '/api/auth/register', { body: { username, password: 'a long password' } });
            assert.equal(r.status, 201, r.text);
            accounts.push(r.json);
        }
    });
    const search = (token, q) => api(server, 'GET', `/api/chat/users?q=${q}`, { token });
    test('default 10, clamped to 20, by username', async () => {
        const tok = tokenFor(server, newUserId());
        const d = await search(tok, prefix);
        assert.equal(d.status, 200, d.text);
        assert.deepEqual(d.json.users.map((u) => u.username), names.slice(0, 10));
        for (const limit of [20, 21, 1000]) {
            const r = await search(tok, `${prefix}&limit=${limit}`);
            assert.deepEqual(r.json.users.map((u) => u.username), names.slice(0, 20), `limit=${limit}`);
        }
        const three = await search(tok, `${prefix.toUpperCase()}&limit=3`);
        assert.deepEqual(three.json.users.map((u) => u.username), names.slice(0, 3), 'case-insensitive prefix');
    });
    test('the caller is left out, and the page keeps its size', async () => {
        const first = accounts[0];
        const r = await search(first.token, prefix);
        assert.deepEqual(r.json.users.map((u) => u.username), names.slice(1, 11));
        const mid = accounts[5];
        const m = await search(mid.token, `${prefix}&limit=20`);
        assert.deepEqual(m.json.users.map((u) => u.username), names.filter((n, i) => i !== 5).slice(0, 20));
    });
    test('a bad limit is reported as a limit error', async () => {
        const tok = tokenFor(server, newUserId());
        for (const q of ['limit=0', 'limit=', 'limit=-3', 'limit=x']) {
            const r = await search(tok, `${prefix}&${q}`);
            assertApiError(r, 400, 'BAD_REQUEST', q);
            assert.equal(r.json.error.message, 'limit must be a positive integer', q);
        }
    });
});

// docs/api.md: register/login attempts are limited per IP address: a burst of at most 10, then
// --rate-auth-per-min; every attempt counts, a malformed one too. 12/min (one every 5 s) so that
// no token comes back while the burst is spent, even under ASan.
describe('sign-in attempt limit', () => {
    let limited;
    before(async () => {
        limited = await startServer({ args: ['--rate-auth-per-min', '12'] });
    });
    after(async () => {
        await limited.stop();
    });
    test('a burst of 10 attempts, then 429 with Retry-After, for login and register alike', async () => {
        const bad = { rawBody: '{', headers: { 'content-type': 'application/json' } };
        const statuses = [];
        for (let i = 0; i < 10; i++) statuses.push((await api(limited, 'POST', '/api/auth/login', bad)).status);
        assert.deepEqual(statuses, Array(10).fill(400));
        for (const path of ['/api/auth/login', '/api/auth/register']) {
            const r = await api(limited, 'POST', path, { body: { username: 'someone', password: 'a long password' } });
            assertApiError(r, 429, 'RATE_LIMITED', path);
            assert.equal(r.json.error.message, 'too many sign-in attempts; wait a little');
            assert.ok(r.json.error.retryAfterMs > 0 && r.json.error.retryAfterMs <= 5000, r.text);
            assert.ok(Number(r.headers.get('retry-after')) >= 1, `Retry-After ${r.headers.get('retry-after')}`);
        }
        // Chat endpoints are not counted against it.
        const c = await api(limited, 'GET', '/api/chat/conversations', { token: tokenFor(limited, newUserId()) });
        assert.equal(c.status, 200, c.text);
    });
});

// The command line of `parlor serve` / `parlor token`: help, option validation, environment
// variables, the generated JWT secret, and --max-message-length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
    startServer, runParlor, mkDataDir, connectUser, emitAck, tokenFor, newUserId, newSecret,
    api, freePort, assertRefused, HOST, once, withTimeout, sleep, connectRefused, closeAll, BIN, waitFor,
} from './chat_helpers.mjs';

test('`parlor serve --help` lists the options and exits 0', async () => {
    const r = await runParlor(['serve', '--help']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout + r.stderr;
    for (const opt of ['--port', '--host', '--data', '--jwt-secret', '--jwt-issuer', '--jwt-audience',
                       '--max-message-length', '--log-level']) {
        assert.ok(out.includes(opt), `--help does not mention ${opt}:\n${out}`);
    }
});

for (const [args, what] of [
    [['--port', '70000'], 'port 70000'],
    [['--port', 'abc'], 'port abc'],
    [['--max-message-length', '-1'], 'negative max-message-length'],
    [['--log-level', 'chatty'], 'unknown log level'],
    [['--no-such-option', '1'], 'unknown option'],
]) {
    test(`invalid option (${what}) -> non-zero exit at start with a message`, async () => {
        const dir = mkDataDir();
        const port = await freePort();
        const argv = ['serve', '--host', HOST, '--port', String(port), '--data', dir,
                      '--jwt-secret', newSecret()];
        // later options win or are refused; either way the bad one must be reported
        const r = await runParlor([...argv, ...args], { timeoutMs: 5000 });
        assert.equal(r.signal, null, `killed by ${r.signal} (did it start serving?): ${r.stderr}`);
        assert.notEqual(r.code, 0, `exit code 0 for ${what}`);
        assert.ok(r.stderr.trim().length > 0, 'no message on stderr');
        assert.ok(!r.stderr.includes('listening on'), `started anyway:\n${r.stderr}`);
        const name = args[0].replace(/^--/, '');
        assert.ok(r.stderr.includes(name), `stderr does not name ${name}:\n${r.stderr}`);
    });
}

test('invalid option via environment (PARLOR_PORT=70000) -> non-zero exit', async () => {
    const dir = mkDataDir();
    const r = await runParlor(['serve', '--host', HOST, '--data', dir, '--jwt-secret', newSecret()],
                              { env: { PARLOR_PORT: '70000' }, timeoutMs: 5000 });
    assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /port/i);
});

// docs/api.md: an invalid value exits with status 2, before anything is written.
test('a JWT secret shorter than 32 bytes is an invalid value: exit status 2, nothing written', async () => {
    const dir = path.join(mkDataDir(), 'not-yet');
    const port = await freePort();
    for (const [args, env] of [[['--jwt-secret', 'short'], {}], [['--jwt-secret', 'x'.repeat(31)], {}],
                               [[], { PARLOR_JWT_SECRET: 'short' }]]) {
        const r = await runParlor(['serve', '--host', HOST, '--port', String(port), '--data', dir, ...args],
                                  { timeoutMs: 5000, env });
        assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
        assert.equal(r.code, 2, `a short HS256 secret: exit ${r.code} (${r.stderr})`);
        assert.match(r.stderr, /invalid value for jwt-secret: expected at least 32 bytes/);
        assert.equal(existsSync(dir), false, 'the data directory was created');
    }
    const t = await runParlor(['token', 'alice', '--jwt-secret', 'short'], { timeoutMs: 5000 });
    assert.equal(t.code, 2, t.stderr);
    assert.equal(t.stdout, '');
});

test('without --jwt-secret a secret is generated into DIR/jwt-secret (0600), kept across restarts, used by `parlor token --data`', async () => {
    const dir = mkDataDir();
    let server = await startServer({ dataDir: dir, secret: null });
    const file = path.join(dir, 'jwt-secret');
    try {
        assert.ok(existsSync(file), 'no DIR/jwt-secret');
        const st = statSync(file);
        assert.equal(st.mode & 0o777, 0o600, `mode ${(st.mode & 0o777).toString(8)}`);
        const first = readFileSync(file);
        assert.ok(first.length >= 32, `generated secret is only ${first.length} bytes`);
        const a = newUserId();
        const r = await runParlor(['token', a, '--data', dir]);
        assert.equal(r.code, 0, r.stderr);
        const tok = r.stdout.trim();
        const s = await connectUser(server, tok);
        await closeAll([s]);
        await server.stop();
        server = await startServer({ dataDir: dir, secret: null });
        assert.deepEqual(readFileSync(file), first, 'the secret changed on restart');
        const s2 = await connectUser(server, tok);
        await closeAll([s2]);
        const rest = await api(server, 'GET', '/api/chat/conversations', { token: tok });
        assert.equal(rest.status, 200, rest.text);
        await server.stop();
    } finally {
        await server.crash();
    }
});

test('options from the environment: PARLOR_JWT_SECRET and PARLOR_MAX_MESSAGE_LENGTH', async () => {
    const secret = newSecret();
    const server = await startServer({
        secret: null, env: { PARLOR_JWT_SECRET: secret, PARLOR_MAX_MESSAGE_LENGTH: '10' },
    });
    server.secret = secret;
    try {
        const a = await connectUser(server, tokenFor(server, newUserId()));
        const b = newUserId();
        const ok = await emitAck(a, 'send_message', { recipientId: b, content: '0123456789', type: 'text' });
        assert.equal(ok.ok, true, JSON.stringify(ok));
        const bad = await emitAck(a, 'send_message',
                                  { recipientId: b, content: '0123456789X', type: 'text', clientMsgId: 'long' });
        await assertRefused(a, bad, ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE'], 'long', '11 chars with max 10');
        await closeAll([a]);
        await server.stop();
    } finally {
        await server.crash();
    }
});

test('--max-message-length on the command line', async () => {
    const server = await startServer({ args: ['--max-message-length', '5'] });
    try {
        const a = await connectUser(server, tokenFor(server, newUserId()));
        const b = newUserId();
        const ok = await emitAck(a, 'send_message', { recipientId: b, content: 'ééééé', type: 'text' });
        assert.equal(ok.ok, true, `5 two-byte chars with max 5: ${JSON.stringify(ok)}`);
        const bad = await emitAck(a, 'send_message', { recipientId: b, content: 'abcdef', type: 'text' });
        await assertRefused(a, bad, ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE'], undefined, '6 chars with max 5');
        const rest = await api(server, 'POST', '/api/chat/messages', {
            token: tokenFor(server, newUserId()), body: { recipientId: b, content: 'abcdef', type: 'text' },
        });
        assert.ok([400, 413].includes(rest.status), `REST over max: ${rest.status} ${rest.text}`);
        await closeAll([a]);
        await server.stop();
    } finally {
        await server.crash();
    }
});

test('`parlor token` refuses a bad user id', async () => {
    const r = await runParlor(['token', 'bad id!', '--jwt-secret', newSecret()]);
    assert.notEqual(r.code, 0, `exit 0, printed ${r.stdout}`);
    assert.equal(r.stdout.trim(), '', 'printed a token for an invalid id');
});

test('`parlor token --ttl 1s` expires (server with --jwt-leeway-s 0)', async () => {
    const server = await startServer({ args: ['--jwt-leeway-s', '0'] });
    try {
        const r = await runParlor(['token', newUserId(), '--ttl', '1s', '--jwt-secret', server.secret]);
        assert.equal(r.code, 0, r.stderr);
        const tok = r.stdout.trim();
        const claims = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url'));
        assert.ok(claims.exp - claims.iat === 1, `exp-iat = ${claims.exp - claims.iat}`);
        await sleep(2100);
        const err = await connectRefused(server, { auth: { token: tok } });
        assert.equal(err.message, 'unauthorized');
        assert.equal(err.data?.code, 'AUTH_EXPIRED');
        await server.stop();
    } finally {
        await server.crash();
    }
});

for (const transports of [['websocket'], ['polling'], ['polling', 'websocket']]) {
    test(`SIGTERM with connected chat clients (${transports.join('+')}): they are closed, exit 0`, async () => {
        const server = await startServer();
        const sockets = [];
        try {
            for (let i = 0; i < 3; i++) {
                const s = await connectUser(server, tokenFor(server, newUserId()), { transports });
                sockets.push(s);
            }
            // Stop only once every upgrade finished. A client whose probe WebSocket closes
            // after it began pausing its long poll stays paused (engine.io-client 6.6: the
            // pause callback sees the failed probe and returns), and learns of the shutdown
            // only from its heartbeat timeout; docs/architecture.md has the details.
            if (transports.length > 1) {
                await Promise.all(sockets.map((s) => (s.io.engine.transport.name === 'websocket'
                    ? null : once(s.io.engine, 'upgrade', 5000, 'upgrade'))));
            }
            const gone = Promise.all(sockets.map((s) => once(s, 'disconnect', 10000, 'client disconnect')));
            gone.catch(() => {});
            await server.stop(); // asserts exit 0 within PARLOR_STOP_TIMEOUT_MS (10 s)
            const reasons = (await gone).map((r) => r[0]);
            for (const r of reasons) {
                assert.ok(['transport close', 'transport error'].includes(r), `disconnect reason ${r}`);
            }
        } finally {
            for (const s of sockets) s.disconnect();
            await server.crash();
        }
    });
}

test('SIGTERM right after "listening on" still exits 0 (handlers installed before ready)', async () => {
    for (let i = 0; i < 8; i++) {
        const server = await startServer();
        await server.stop();
    }
});

// docs/api.md's options table is the binary's --help: a new or changed option without its
// documentation fails here (node scripts/docs-options.mjs regenerates the table).
test('the options table of docs/api.md matches parlor serve --help', async () => {
    const { optionsTable, withTable } = await import('../../scripts/docs-options.mjs');
    const doc = readFileSync('docs/api.md', 'utf8');
    const want = withTable(doc, optionsTable(BIN));
    assert.ok(doc === want, 'docs/api.md options table is stale: run node scripts/docs-options.mjs');
});

// Issue 12, what a newcomer hit: `parlor token` from another directory used to create a new
// ./data/jwt-secret there and print a token the server refuses.
test('`parlor token` without the server\'s secret fails, says where it looked and creates nothing', async () => {
    const dir = mkDataDir();
    const missing = path.join(dir, 'not-the-data-dir');
    const r = await runParlor(['token', newUserId(), '--data', missing]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no secret in .*not-the-data-dir\/jwt-secret/);
    assert.match(r.stderr, /--new-secret/);
    assert.ok(!existsSync(missing), 'the token command created a data directory');
    // Asked to, it generates one (and a server started on it accepts the token).
    const made = await runParlor(['token', 'u1', '--data', dir, '--new-secret']);
    assert.equal(made.code, 0, made.stderr);
    assert.ok(existsSync(path.join(dir, 'jwt-secret')));
    const server = await startServer({ dataDir: dir, secret: null });
    const s = await connectUser(server, made.stdout.trim());
    await closeAll([s]);
    await server.stop();
});

test('`parlor token` leaves out the claims it was not given', async () => {
    const r = await runParlor(['token', 'bob', '--jwt-secret', newSecret()]);
    assert.equal(r.code, 0, r.stderr);
    const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1], 'base64url').toString());
    assert.deepEqual(Object.keys(claims).sort(), ['exp', 'iat', 'sub']);
    const named = await runParlor(['token', 'bob', '--name', 'Bob', '--role', 'owner', '--jwt-secret', newSecret()]);
    const c2 = JSON.parse(Buffer.from(named.stdout.trim().split('.')[1], 'base64url').toString());
    assert.equal(c2.name, 'Bob');
    assert.equal(c2.role, 'owner');
    const help = await runParlor(['token', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--new-secret/);
    assert.match(help.stdout, /--ttl/);
});

test('`parlor --version` prints the version', async () => {
    const r = await runParlor(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^parlor \d+\.\d+\.\d+\n$/);
});

test('`parlor serve` on a port in use says so, exits 1 and creates nothing', async () => {
    const server = await startServer();
    const dir = path.join(mkDataDir(), 'fresh');
    const r = await runParlor(['serve', '--port', String(server.port), '--host', HOST, '--data', dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /port \d+: the port is in use/);
    assert.doesNotMatch(r.stderr, /signal/);
    assert.ok(!existsSync(dir), 'the data directory was created');
    server.assertAlive();
    await server.stop();
});

// What `make run` shows a newcomer (issue 12): the build is quiet under make -j2 (no jobserver
// warning), and the server says where to point the browser once it listens.
test('make -j2 is quiet: no jobserver warning, no build noise', async () => {
    const out = await new Promise((resolve) => {
        execFile('make', ['-j2', 'all'], { timeout: 600000 }, (error, stdout, stderr) => {
            resolve({ code: error ? error.code : 0, text: stdout + stderr });
        });
    });
    assert.equal(out.code, 0, out.text);
    assert.doesNotMatch(out.text, /jobserver|warning|Building|Linking|Built target/i, out.text);
});

test('serving the web client, the server logs the address to open', async () => {
    const web = mkDataDir();
    writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>x</title>');
    const server = await startServer({ args: ['--web-root', web] });
    const line = new RegExp(`open http://localhost:${server.port} in a browser`);
    await waitFor(() => line.test(server.stderr()), 5000, () => server.stderr());
    await server.stop();
});

// The web client's files as docs/web.md describes them: index.html at / only (the client has no
// routes of its own), the headers every page gets (CSP with media-src and font-src,
// Referrer-Policy, nosniff), and API routes keep precedence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { api, mkDataDir, serverPerFile } from './chat_helpers.mjs';

const root = path.join(mkDataDir(), 'web');
mkdirSync(root);
writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>parlor</title>');
writeFileSync(path.join(root, 'app.ABCDEFGH.js'), 'console.log(1)');

let server;
serverPerFile({ args: ['--web-root', root] }, (s) => (server = s));

test('/ and /index.html serve index.html with the documented CSP and Referrer-Policy', async () => {
    const host = `${new URL(server.url).host}`;
    for (const p of ['/', '/index.html']) {
        const r = await api(server, 'GET', p);
        assert.equal(r.status, 200, `${p}: ${r.text}`);
        assert.equal(r.text, '<!doctype html><title>parlor</title>');
        assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(r.headers.get('referrer-policy'), 'same-origin');
        assert.equal(r.headers.get('content-security-policy'),
                     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
                     "media-src 'self' blob:; font-src 'self'; " +
                     `connect-src 'self' ws://${host} wss://${host}; object-src 'none'; base-uri 'self'; ` +
                     "form-action 'self'; frame-ancestors 'self'");
    }
});

test('paths that are not files are 404, with or without an extension', async () => {
    for (const p of ['/chat', '/settings/', '/missing.js', '/chat/index']) {
        const r = await api(server, 'GET', p);
        assert.equal(r.status, 404, `${p}: ${r.status} ${r.text.slice(0, 100)}`);
        assert.equal(r.json?.error?.code, 'NOT_FOUND', p);
    }
    const js = await api(server, 'GET', '/app.ABCDEFGH.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal((await api(server, 'GET', '/healthz')).status, 200);
});

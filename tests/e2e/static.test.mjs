// How `parlor serve` serves the built web client: types, caching, precompressed files, the
// Content-Security-Policy, SPA fallback, and refusal of every path that leaves the web root.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { HOST, WEB_ROOT, startServer } from './helpers.mjs';

// Raw request: the path goes out exactly as given (fetch would normalise "..").
function get(port, p, { method = 'GET', headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: HOST, port, path: p, method, headers }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.end();
    });
}

describe('static files of the web client', { timeout: 60000 }, () => {
    let server;
    const files = readdirSync(WEB_ROOT);
    const js = files.find((f) => /^app\.[A-Z0-9]+\.js$/.test(f));
    const css = files.find((f) => /^app\.[A-Z0-9]+\.css$/.test(f));
    const index = readFileSync(path.join(WEB_ROOT, 'index.html'));

    before(async () => {
        server = await startServer();
    });
    after(async () => {
        await server?.cleanup();
    });

    it('the build has hashed assets, index.html and .gz copies', () => {
        assert.ok(js && css, `assets in ${files.join(', ')}`);
        for (const f of ['index.html', js, css]) assert.ok(files.includes(`${f}.gz`), `${f}.gz`);
        const html = index.toString();
        assert.ok(html.includes(`src="${js}"`) && html.includes(`href="${css}"`), 'relative asset URLs');
        assert.ok(!/<script>(?!<\/script>)/.test(html), 'no inline script');
    });

    it('index.html: type, no-cache, CSP, nosniff, ETag', async () => {
        const r = await get(server.port, '/');
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
        assert.equal(r.headers['cache-control'], 'no-cache');
        assert.equal(r.headers['x-content-type-options'], 'nosniff');
        assert.ok(r.headers.etag);
        assert.deepEqual(r.body, index);
        const csp = r.headers['content-security-policy'];
        assert.match(csp, /default-src 'self'/);
        assert.match(csp, /script-src 'self'(;|$)/);
        assert.match(csp, /img-src 'self' blob: data:/);
        assert.match(csp, new RegExp(`connect-src 'self' ws://${HOST}:${server.port} wss://${HOST}:${server.port}`));
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
        // Revalidation.
        const again = await get(server.port, '/', { headers: { 'If-None-Match': r.headers.etag } });
        assert.equal(again.status, 304);
        assert.equal(again.body.length, 0);
    });

    it('hashed assets are cached for a year; gzip is served when accepted', async () => {
        const plain = await get(server.port, `/${js}`);
        assert.equal(plain.status, 200);
        assert.equal(plain.headers['content-type'], 'text/javascript; charset=utf-8');
        assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
        assert.equal(plain.headers['content-encoding'], undefined);
        assert.equal(plain.headers.vary, 'Accept-Encoding');
        const gz = await get(server.port, `/${js}`, { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
        assert.equal(gz.headers['content-encoding'], 'gzip');
        assert.equal(gz.headers.vary, 'Accept-Encoding');
        assert.ok(gz.body.length < plain.body.length / 2);
        assert.deepEqual(gunzipSync(gz.body), plain.body);
        assert.notEqual(gz.headers.etag, plain.headers.etag);
        const refused = await get(server.port, `/${js}`, { headers: { 'Accept-Encoding': 'gzip;q=0, br' } });
        assert.equal(refused.headers['content-encoding'], undefined);
        const cssRes = await get(server.port, `/${css}`);
        assert.equal(cssRes.headers['content-type'], 'text/css; charset=utf-8');
    });

    it('directories get index.html; every other unknown path is a 404 (the client routes with the hash)', async () => {
        for (const p of ['/', '/index.html']) {
            const r = await get(server.port, p);
            assert.equal(r.status, 200, p);
            assert.deepEqual(r.body, index, p);
        }
        for (const p of ['/chat', '/c/64b0f1aa00000000000000aa', '/settings/', '/missing.js', '/app.00000000.css',
                         '/favicon.ico', '/.env', '/a/.git']) {
            const r = await get(server.port, p);
            assert.equal(r.status, 404, p);
            assert.equal(r.headers['x-content-type-options'], 'nosniff');
        }
    });

    it('paths that leave the web root are refused', async () => {
        const bad = ['/../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd',
                     '/a/..', '/%2E%2E%5Cwin.ini', '/..\\..\\etc\\passwd', '/index.html%00.js', '/%zz'];
        for (const p of bad) {
            const r = await get(server.port, p);
            assert.equal(r.status, 400, p);
            assert.doesNotMatch(r.body.toString(), /root:/, p);
        }
    });

    it('HEAD answers headers only; other methods 405', async () => {
        const head = await get(server.port, '/', { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers['content-type'], 'text/html; charset=utf-8');
        assert.equal(head.body.length, 0);
        for (const method of ['POST', 'PUT', 'DELETE']) {
            const r = await get(server.port, '/', { method });
            assert.equal(r.status, 405, method);
            assert.equal(r.headers.allow, 'GET, HEAD');
        }
    });

    it('the API and Socket.IO keep their own routes', async () => {
        const h = await get(server.port, '/healthz');
        assert.equal(h.status, 200);
        assert.match(h.body.toString(), /ok/);
        const api = await get(server.port, '/api/chat/conversations');
        assert.equal(api.status, 401);
        const sio = await get(server.port, '/socket.io/?EIO=4&transport=polling');
        assert.equal(sio.status, 200);
        assert.match(sio.body.toString(), /^0\{"sid"/);
    });
});

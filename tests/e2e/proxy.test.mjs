// The web client behind a reverse proxy that mounts Parlor under /chat/: every URL the page uses
// (assets, REST, Socket.IO polling and the WebSocket upgrade) must go through the prefix.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import { HOST, freePort, launchBrowser, openPerson, registerRest, startServer, uniqueName, withScreenshots } from './helpers.mjs';
import { T, assertNoCsp, assertNoErrors, findAndOpen, registerUi, send, waitMessage, waitTick } from './ui.mjs';

const PREFIX = '/chat';

// A minimal path-prefix reverse proxy (what nginx's `location /chat/ { proxy_pass http://parlor/; }`
// does), recording the paths it saw.
function startProxy(targetPort) {
    const seen = [];
    const strip = (url) => url.slice(PREFIX.length) || '/';
    const server = http.createServer((req, res) => {
        seen.push({ method: req.method, url: req.url });
        if (req.url === PREFIX) {
            res.writeHead(301, { Location: `${PREFIX}/` });
            return res.end();
        }
        if (!req.url.startsWith(`${PREFIX}/`)) {
            res.writeHead(404);
            return res.end('outside the proxy prefix');
        }
        const up = http.request({
            host: HOST, port: targetPort, method: req.method, path: strip(req.url),
            headers: { ...req.headers, host: `${HOST}:${targetPort}` },
        }, (r) => {
            res.writeHead(r.statusCode, r.headers);
            r.pipe(res);
        });
        up.on('error', () => {
            res.writeHead(502);
            res.end();
        });
        req.pipe(up);
    });
    server.on('upgrade', (req, socket, head) => {
        seen.push({ method: 'UPGRADE', url: req.url });
        if (!req.url.startsWith(`${PREFIX}/`)) return socket.destroy();
        const up = net.connect(targetPort, HOST, () => {
            const lines = [`${req.method} ${strip(req.url)} HTTP/1.1`];
            for (let i = 0; i < req.rawHeaders.length; i += 2) {
                const name = req.rawHeaders[i];
                lines.push(`${name}: ${/^host$/i.test(name) ? `${HOST}:${targetPort}` : req.rawHeaders[i + 1]}`);
            }
            up.write(`${lines.join('\r\n')}\r\n\r\n`);
            if (head.length) up.write(head);
            socket.pipe(up).pipe(socket);
        });
        up.on('error', () => socket.destroy());
        socket.on('error', () => up.destroy());
    });
    return new Promise((resolve) => {
        freePort().then((port) => server.listen(port, HOST, () => resolve({ server, port, seen })));
    });
}

describe('web client behind a reverse proxy on /chat/', { timeout: 90000 }, () => {
    let server;
    let proxy;
    let browser;
    let person;

    before(async () => {
        server = await startServer();
        proxy = await startProxy(server.port);
        browser = await launchBrowser();
    });
    after(async () => {
        await browser?.close();
        proxy?.server.closeAllConnections?.();
        proxy?.server.close();
        await server?.cleanup();
    });

    it('signs up, finds someone and chats with every request under the prefix', async () => {
        const other = await registerRest(server, { username: uniqueName('owen'), password: 'pass-word-123', name: 'Owen Owner', role: 'owner' });
        person = await openPerson(browser, 'proxied', `http://${HOST}:${proxy.port}${PREFIX}/`);
        await withScreenshots('proxy', [person], async () => {
            await registerUi(person.page, { name: 'Pia Proxy', username: uniqueName('pia'), password: 'pass-word-123', role: 'tenant' });
            await findAndOpen(person.page, other.user.username, 'Owen Owner');
            await send(person.page, 'Hello through the proxy');
            await waitMessage(person.page, 'Hello through the proxy');
            await waitTick(person.page, 'Hello through the proxy', 'sent');
            assert.equal(await person.page.locator('.banner').isVisible(), false);
        });
        const urls = proxy.seen.map((s) => s.url);
        assert.ok(urls.every((u) => u.startsWith(`${PREFIX}/`)), `outside the prefix: ${urls.filter((u) => !u.startsWith(`${PREFIX}/`))}`);
        assert.ok(urls.some((u) => u.startsWith(`${PREFIX}/api/auth/register`)), 'REST under the prefix');
        assert.ok(urls.some((u) => u.startsWith(`${PREFIX}/socket.io/`)), 'Socket.IO under the prefix');
        assert.ok(proxy.seen.some((s) => s.method === 'UPGRADE' && s.url.startsWith(`${PREFIX}/socket.io/`)),
                  'WebSocket upgrade under the prefix');
        assertNoCsp(person);
        assertNoErrors(person);
    });

    it('a deep link under the prefix still loads the app', async () => {
        const page = person.page;
        await page.reload();
        await page.locator('.topbar .me-name').filter({ hasText: 'Pia Proxy' }).waitFor({ timeout: T });
        await waitMessage(page, 'Hello through the proxy');
        assert.ok(page.url().startsWith(`http://${HOST}:${proxy.port}${PREFIX}/#/c/`), page.url());
        assertNoErrors(person);
    });
});

// End to end in Chromium: a tenant and an owner, each in their own browser context, use the web
// client served by a real `parlor serve` for everything a person does in a chat.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';

import {
    ARTIFACTS, MAX_FILE_SIZE, ROOT, allowErrors, launchBrowser, makePng, openPerson, registerRest, rest, serverSupports,
    startServer, uniqueName, storySteps,
} from './helpers.mjs';
import {
    T, assertNoCsp, assertNoErrors, findAndOpen, message, openConversation, registerUi, send, session, texts,
    waitMessage, waitTick,
} from './ui.mjs';

const PASSWORD = 'correct horse battery';

describe('web client: tenant and owner', { timeout: 170000 }, () => {
    let server;
    let browser;
    let tenant;
    let owner;
    const tenantUser = { name: 'Tina Tenant', username: uniqueName('tina'), role: 'tenant' };
    const ownerUser = { name: 'Oscar Owner', username: uniqueName('oscar'), role: 'owner' };

    const { step, done } = storySteps(() => [tenant, owner]);

    before(async () => {
        server = await startServer();
        browser = await launchBrowser();
        tenant = await openPerson(browser, 'tenant', server.url);
        owner = await openPerson(browser, 'owner', server.url);
    });

    after(async () => {
        await browser?.close();
        await server?.cleanup();
    });

    step('register', [], async () => {
        await Promise.all([
            registerUi(tenant.page, { ...tenantUser, password: PASSWORD }),
            registerUi(owner.page, { ...ownerUser, password: PASSWORD }),
        ]);
        tenant.session = await session(tenant.page);
        owner.session = await session(owner.page);
        assert.equal(tenant.session.user.username, tenantUser.username);
        assert.equal(owner.session.user.role, 'owner');
    });

    step('find each other and exchange messages both ways', ['register'], async () => {
        await findAndOpen(tenant.page, ownerUser.username, ownerUser.name);
        await send(tenant.page, 'Hello, the boiler in flat 3 is broken.');
        // Shown at once, then confirmed by the ack.
        await waitMessage(tenant.page, 'the boiler in flat 3');
        await waitTick(tenant.page, 'the boiler in flat 3', 'sent');

        // The owner sees a new conversation with an unread badge, before opening it.
        const conv = owner.page.locator('.conv-list .conv').filter({ hasText: 'the boiler in flat 3' });
        await conv.waitFor({ timeout: T });
        await owner.page.locator('.conv-list .badge').filter({ hasText: '1' }).waitFor({ timeout: T });
        // ... and finds the tenant by username too, which opens the same conversation.
        await findAndOpen(owner.page, tenantUser.username, tenantUser.name);
        await waitMessage(owner.page, 'the boiler in flat 3');
        assert.equal(await owner.page.locator('.conv-list .conv').count(), 1);

        await send(owner.page, 'Sorry to hear that! I will send someone tomorrow morning.');
        await waitMessage(tenant.page, 'send someone tomorrow');
        await send(tenant.page, 'Thank you, 9am works for me.');
        await waitMessage(owner.page, '9am works');
        assert.deepEqual(await texts(owner.page), await texts(tenant.page));
    });

    step('read ticks go from sent to read', ['find each other and exchange messages both ways'], async () => {
        // The owner leaves the conversation (list view), the tenant writes: sent, not read.
        await owner.page.evaluate(() => { location.hash = '#/'; });
        await owner.page.locator('.placeholder').waitFor({ state: 'visible', timeout: T });
        await send(tenant.page, 'Is the plumber confirmed?');
        await waitTick(tenant.page, 'plumber confirmed', 'sent');
        await owner.page.locator('.conv-list .badge').filter({ hasText: '1' }).waitFor({ timeout: T });
        // The owner opens it: the tenant's ticks turn to read.
        await openConversation(owner.page, tenantUser.name);
        await waitMessage(owner.page, 'plumber confirmed');
        await waitTick(tenant.page, 'plumber confirmed', 'read');
        await waitTick(tenant.page, 'the boiler in flat 3', 'read');
        assert.equal(await owner.page.locator('.conv-list .badge').count(), 0);
    });

    step('typing indicator', ['find each other and exchange messages both ways'], async () => {
        const box = owner.page.getByRole('textbox', { name: 'Message' });
        await box.click();
        await box.pressSequentially('Yes, confirmed', { delay: 40 });
        await tenant.page.locator('.typing').filter({ hasText: `${ownerUser.name} is typing…` })
            .waitFor({ timeout: T });
        // The list shows it too.
        await tenant.page.locator('.conv-last.is-typing').waitFor({ timeout: T });
        await box.press('Enter');
        await waitMessage(tenant.page, 'Yes, confirmed');
        await tenant.page.waitForFunction(() => document.querySelector('.typing').textContent === '',
                                          null, { timeout: T });
    });

    step('create a group', ['find each other and exchange messages both ways'], async () => {
        await owner.page.getByRole('button', { name: 'New group' }).click();
        const dialog = owner.page.getByRole('dialog', { name: 'New group' });
        await dialog.getByLabel('Group name').fill('Flat 3 repairs');
        await dialog.getByLabel('Add people by username').fill(tenantUser.username);
        await dialog.locator('.person').filter({ hasText: tenantUser.username }).click();
        await dialog.locator('.chip').filter({ hasText: tenantUser.name }).waitFor({ timeout: T });
        await dialog.getByRole('button', { name: 'Create group' }).click();
        await owner.page.locator('.thread-title').filter({ hasText: 'Flat 3 repairs' }).waitFor({ timeout: T });
        await send(owner.page, 'Welcome to the repairs group.');
        await waitMessage(owner.page, 'Welcome to the repairs group.');
        await openConversation(tenant.page, 'Flat 3 repairs');
        await waitMessage(tenant.page, 'Welcome to the repairs group.');
        await tenant.page.locator('.messages .sender').filter({ hasText: ownerUser.name }).waitFor({ timeout: T });
        await tenant.page.locator('.presence').filter({ hasText: '2 members' }).waitFor({ timeout: T });
        await openConversation(owner.page, tenantUser.name);
        await openConversation(tenant.page, ownerUser.name);
    });

    step('presence: online', ['find each other and exchange messages both ways'], async () => {
        await tenant.page.locator('.presence[data-status="online"]').filter({ hasText: 'online' })
            .waitFor({ timeout: T });
        await tenant.page.locator('.conv .dot.online').waitFor({ timeout: T });
    });

    step('send a photo and see it on the other side', ['find each other and exchange messages both ways'], async () => {
        const png = makePng(160, 120);
        await tenant.page.locator('#file-input').setInputFiles({ name: 'boiler.png', mimeType: 'image/png', buffer: png });
        // Progress then the preview on the sender's side, the image on the other.
        const mine = tenant.page.locator('.messages li.msg.mine img[alt="boiler.png"]');
        await mine.waitFor({ timeout: T });
        const theirs = owner.page.locator('.messages li.msg.theirs img[alt="boiler.png"]');
        await theirs.waitFor({ timeout: T });
        await owner.page.waitForFunction(() => {
            const img = document.querySelector('.messages li.msg.theirs img[alt="boiler.png"]');
            return img && img.complete && img.naturalWidth === 160 && img.naturalHeight === 120;
        }, null, { timeout: T });
        // Opens full size in a dialog; Escape closes it.
        await owner.page.getByRole('button', { name: 'Open photo boiler.png full size' }).click();
        const dialog = owner.page.locator('dialog.lightbox');
        await dialog.waitFor({ state: 'visible', timeout: T });
        await owner.page.waitForFunction(() => document.querySelector('dialog.lightbox img')?.naturalWidth === 160,
                                         null, { timeout: T });
        await owner.page.keyboard.press('Escape');
        await dialog.waitFor({ state: 'hidden', timeout: T });
    });

    step('screenshot for the README', ['find each other and exchange messages both ways'], async () => {
        await send(owner.page, 'Got the photo, thanks. The engineer will bring a new valve.');
        await waitMessage(tenant.page, 'new valve');
        for (const p of [tenant, owner]) await p.page.evaluate(() => document.activeElement?.blur());
        await tenant.page.waitForTimeout(300);
        const shots = await Promise.all([tenant, owner].map((p) => p.page.screenshot()));
        const page = await browser.newPage({ viewport: { width: 2040, height: 740 } });
        try {
            const imgs = shots.map((b) => `data:image/png;base64,${b.toString('base64')}`);
            await page.setContent(`<!doctype html><body style="margin:0;background:#c9d2de;display:flex;gap:20px;padding:20px">
                <img style="border-radius:8px;box-shadow:0 4px 16px #0003" src="${imgs[0]}">
                <img style="border-radius:8px;box-shadow:0 4px 16px #0003" src="${imgs[1]}"></body>`);
            await page.waitForFunction(() => [...document.images].every((i) => i.complete));
            // Always in the artifacts; into docs/ (committed) only when asked, so that a test
            // run leaves the work tree clean: UPDATE_SCREENSHOT=1 scripts/e2e.sh
            mkdirSync(ARTIFACTS, { recursive: true });
            await page.screenshot({ path: path.join(ARTIFACTS, 'screenshot.png') });
            if (process.env.UPDATE_SCREENSHOT === '1') {
                await page.screenshot({ path: path.join(ROOT, 'docs/screenshot.png') });
            }
        } finally {
            await page.close();
        }
    });

    step('HTML and script in a message are shown as text', ['find each other and exchange messages both ways'], async () => {
        const payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b> & "quotes"';
        await send(tenant.page, payload);
        await waitMessage(owner.page, '<script>window.__xss=2</script>');
        for (const p of [tenant, owner]) {
            const text = await message(p.page, 'onerror').first().locator('.text').textContent();
            assert.equal(text, payload, `${p.label} shows the payload as typed`);
            assert.equal(await p.page.locator('.messages b, .messages script, .messages img[src="x"]').count(), 0);
            assert.equal(await p.page.evaluate(() => window.__xss), undefined);
        }
    });

    step('a filename with markup is shown as text', ['find each other and exchange messages both ways'], async () => {
        const evilName = '<img src=x onerror="window.__xss=3"><b>lease.txt';
        await tenant.page.locator('#file-input').setInputFiles({
            name: evilName, mimeType: 'text/plain', buffer: Buffer.from('Tenancy agreement, flat 3.\n'),
        });
        const file = owner.page.locator('.messages li.msg .file-name').filter({ hasText: 'lease' });
        await file.waitFor({ timeout: T });
        // Exactly the name the server stored (it may have replaced the '/'), as text.
        const convId = await owner.page.evaluate(() => decodeURIComponent(location.hash.split('/')[2]));
        const page = await rest(server, 'GET', `api/chat/messages/${convId}?limit=5`, { token: owner.session.token });
        const stored = page.json.messages.filter((m) => m.type === 'file').pop().file.name;
        assert.ok(stored.includes('lease'), stored);
        for (const p of [tenant, owner]) {
            const shown = p.page.locator('.messages li.msg .file-name').filter({ hasText: 'lease' });
            await shown.waitFor({ timeout: T });
            assert.equal(await shown.textContent(), stored);
            assert.equal(await p.page.locator('.messages b, .messages img[src="x"], .messages [onerror]').count(), 0);
            assert.equal(await p.page.evaluate(() => window.__xss), undefined);
        }
    });

    step('upload errors are shown plainly', ['find each other and exchange messages both ways'], async () => {
        const page = tenant.page;
        // The browser logs the refused uploads (and nothing else may show up).
        allowErrors(tenant, /^Failed to load resource: the server responded with a status of 41[35] \(.*\) @ http:\/\/[^/]+\/api\/chat\/files$/);
        // A shell script dressed up as a photo: refused by content type.
        await page.locator('#file-input').setInputFiles({
            name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from('#!/bin/sh\necho not a picture\n'),
        });
        await page.locator('.upload-error').filter({ hasText: '“photo.png” is a type of file that cannot be sent.' })
            .waitFor({ timeout: T });
        await message(page, 'cannot be sent').first().getByRole('button', { name: 'Dismiss' }).click();
        // Larger than the server's limit.
        if (serverSupports('--max-file-size')) {
            await page.locator('#file-input').setInputFiles({
                name: 'huge.pdf', mimeType: 'application/pdf', buffer: Buffer.alloc(MAX_FILE_SIZE + 1024, 0x25),
            });
            await page.locator('.upload-error').filter({ hasText: '“huge.pdf” is larger than 512 KB, the most this server accepts.' })
                .waitFor({ timeout: T });
            await message(page, 'larger than').first().getByRole('button', { name: 'Dismiss' }).click();
        }
        assert.equal(await message(page, 'cannot be sent').count(), 0);
        assert.equal(await message(owner.page, 'photo.png').count(), 0, 'nothing reached the owner');
    });

    step('scroll back through 200 messages of history', ['register'], async () => {
        const bot = await registerRest(server, { username: uniqueName('agent'), password: PASSWORD, name: 'Letting Agent', role: 'owner' });
        for (let i = 1; i <= 200; i++) {
            const r = await rest(server, 'POST', 'api/chat/messages', {
                token: bot.token,
                body: { recipientId: tenant.session.user.id, content: `History message ${i}`, type: 'text', clientMsgId: `h${i}` },
            });
            assert.equal(r.status, 201, r.text);
        }
        const page = tenant.page;
        await page.locator('.conv-list .conv').filter({ hasText: 'History message 200' }).waitFor({ timeout: T });
        await page.locator('.conv-list .conv').filter({ hasText: 'History message 200' }).click();
        await waitMessage(page, 'History message 200');
        const scroller = page.locator('.scroller');
        // Scroll up like a reader: each older page arrives above, and what the reader was
        // looking at stays where it was (no jump).
        const first = page.locator('.messages li.msg .text').getByText('History message 1', { exact: true });
        for (let i = 0; i < 40 && !(await first.count()); i++) {
            const before = await scroller.evaluate((s) => {
                s.scrollTop = 0;
                s.dispatchEvent(new Event('scroll'));
                const row = document.querySelector('.messages li.msg');
                return { key: row.dataset.key, top: row.getBoundingClientRect().top };
            });
            await page.waitForFunction((k) => document.querySelector('.messages li.msg')?.dataset.key !== k ||
                document.querySelector('.older.at-start'), before.key, { timeout: T });
            const top = await page.evaluate((k) =>
                document.querySelector(`.messages li.msg[data-key="${k}"]`).getBoundingClientRect().top, before.key);
            assert.ok(Math.abs(top - before.top) < 3, `the view jumped by ${top - before.top}px`);
        }
        const all = (await texts(page)).filter((t) => t.startsWith('History message'));
        assert.equal(all.length, 200, `saw ${all.length} history messages`);
        assert.deepEqual(all, Array.from({ length: 200 }, (_, i) => `History message ${i + 1}`));
        await page.locator('.older.at-start').waitFor({ timeout: T });
        // Back to the conversation with the owner for the next steps.
        await openConversation(page, ownerUser.name);
    }, 60000);

    step('reload and find everything still there', ['find each other and exchange messages both ways'], async () => {
        await openConversation(tenant.page, ownerUser.name);
        await tenant.page.reload();
        await tenant.page.locator('.topbar .me-name').filter({ hasText: tenantUser.name }).waitFor({ timeout: T });
        // The open conversation comes back from the URL, with its history and the photo.
        await tenant.page.locator('.thread-title').filter({ hasText: ownerUser.name }).waitFor({ timeout: T });
        await waitMessage(tenant.page, 'the boiler in flat 3');
        await waitMessage(tenant.page, 'new valve');
        if (done.has('send a photo and see it on the other side')) {
            await tenant.page.waitForFunction(() => document.querySelector('.messages img[alt="boiler.png"]')?.naturalWidth === 160,
                                              null, { timeout: T });
        }
        if (done.has('read ticks go from sent to read')) await waitTick(tenant.page, 'plumber confirmed', 'read');
        assert.ok(await tenant.page.locator('.conv-list .conv').filter({ hasText: ownerUser.name }).count());
    });

    step('a server restart is survived and missed messages are shown', ['find each other and exchange messages both ways'], async () => {
        await openConversation(tenant.page, ownerUser.name);
        // While the server is down the browser logs the refused connections; only those.
        const at = server.url.replace(/[.?]/g, '\\$&'); // http://127\.0\.0\.1:PORT/
        const ws = at.replace(/^http/, 'ws');
        for (const p of [tenant, owner]) {
            allowErrors(p, new RegExp(`^Failed to load resource: net::ERR_CONNECTION_REFUSED @ ${at}(socket\\.io|api)/`),
                        new RegExp(`^WebSocket connection to '${ws}socket\\.io/\\?EIO=4&transport=websocket[^']*' failed`));
        }
        await server.stop();
        await tenant.page.locator('.banner').waitFor({ state: 'visible', timeout: T });
        server = await startServer({ port: server.port, data: server.data, removeData: true });
        // Written while the tenant's page is still reconnecting: missed, then filled in.
        for (let i = 1; i <= 3; i++) {
            const r = await rest(server, 'POST', 'api/chat/messages', {
                token: owner.session.token,
                body: { recipientId: tenant.session.user.id, content: `Missed while offline ${i}`, type: 'text' },
            });
            assert.equal(r.status, 201, r.text);
        }
        for (let i = 1; i <= 3; i++) await waitMessage(tenant.page, `Missed while offline ${i}`, 20000);
        await tenant.page.locator('.banner').waitFor({ state: 'hidden', timeout: T });
        const all = (await texts(tenant.page)).filter((t) => t.startsWith('Missed while offline'));
        assert.deepEqual(all, ['Missed while offline 1', 'Missed while offline 2', 'Missed while offline 3']);
        // Both directions work again.
        await send(tenant.page, 'Back online.');
        await waitMessage(owner.page, 'Back online.', 20000);
        await waitTick(tenant.page, 'Back online.', 'read', 20000);
    });

    step('no Content-Security-Policy violations', ['register'], async () => {
        assertNoCsp(tenant, owner);
    });

    step('presence goes offline after the other closes their page', ['find each other and exchange messages both ways'], async () => {
        await openConversation(tenant.page, ownerUser.name);
        await tenant.page.locator('.presence[data-status="online"]').waitFor({ timeout: T });
        await owner.page.close();
        await tenant.page.locator('.presence[data-status="offline"]').filter({ hasText: /last seen|offline/ })
            .waitFor({ timeout: 20000 });
        await tenant.page.locator('.conv .dot:not(.online)').first().waitFor({ timeout: T });
    });

    // Last, so that it covers every step before it (the owner's page is closed by then; what it
    // logged is kept).
    step('no console errors or uncaught exceptions in either page', ['register'], async () => {
        assertNoErrors(tenant, owner);
    });
});

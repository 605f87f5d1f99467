// End to end in Chromium: the rough edges a person found using the web client (issue 12): the
// other person's role, links, read ticks, day headings, upload errors, a group's members, and
// the unread badge after a server restart. Each step fails on the client as it was before.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe } from 'node:test';

import {
    MAX_FILE_SIZE, SECRET, allowErrors, launchBrowser, openPerson, registerRest, rest, serverSupports, sleep, startServer,
    uniqueName, storySteps,
} from './helpers.mjs';
import {
    T, assertNoErrors, findAndOpen, message, openConversation, registerUi, send, session, waitMessage, waitTick,
} from './ui.mjs';

const PASSWORD = 'correct horse battery';
const DAY = 86400e3;

// A platform token (HS256 with the server's secret), as a platform would issue.
function platformToken(sub, name, role) {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, name, role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
    return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

// Waits up to `timeout` for fn() to be true; the assertion that follows says what was not.
async function settle(fn, timeout = T) {
    for (const end = Date.now() + timeout; Date.now() < end && !(await fn());) await sleep(100);
}

describe('web client: details a person noticed', { timeout: 170000 }, () => {
    let server;
    let browser;
    let tenant;
    let owner;
    let gary;
    const tenantUser = { name: 'Tina Tenant', username: uniqueName('tina'), role: 'tenant' };
    const ownerUser = { name: 'Oscar Owner', username: uniqueName('oscar'), role: 'owner' };

    const { step, done } = storySteps(() => [tenant, owner]);

    // The conversation of `who` with the other person, as the server has it (unreadCount).
    async function serverConv(who, title) {
        const r = await rest(server, 'GET', 'api/chat/conversations?limit=100', { token: who.session.token });
        assert.equal(r.status, 200, r.text);
        return r.json.conversations.find((c) => (title ? c.title === title : !c.title && c.participants.length === 2));
    }

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
        gary = await registerRest(server, { username: uniqueName('gary'), password: PASSWORD, name: 'Gary Groundfloor', role: 'tenant' });
    });

    // The owner learns of this conversation from a live message (which matters for the badge).
    step('start a conversation', ['register'], async () => {
        await findAndOpen(tenant.page, ownerUser.username, ownerUser.name);
        await send(tenant.page, 'Hello from flat 3');
        await openConversation(owner.page, tenantUser.name);
        await waitMessage(owner.page, 'Hello from flat 3');
    });

    step('the other person\'s role is shown in the conversation header', ['start a conversation'], async () => {
        // The tenant found the owner by search (the result carries the role); the owner only
        // got a message (the client asks the server who that is).
        await openConversation(tenant.page, ownerUser.name);
        await tenant.page.locator('.thread-head .peer-role').filter({ hasText: /^owner$/ }).waitFor({ timeout: T });
        await openConversation(owner.page, tenantUser.name);
        await owner.page.locator('.thread-head .peer-role').filter({ hasText: /^tenant$/ }).waitFor({ timeout: T });
        assert.equal(await owner.page.locator('.thread-head .peer-role').getAttribute('title'), `${tenantUser.name} is a tenant`);
    });

    step('http and https links are clickable, safely; nothing else is', ['start a conversation'], async () => {
        const text = 'Invoice: https://example.com/repairs?id=3&x=(1). Photos (see http://example.org/a_(b)). ' +
            'Quoted "https://example.com/"onmouseover="window.__xss=4" ' +
            'Not these: javascript:alert(1) data:text/html,hi ftp://example.net/x www.example.com xhttps://example.com https://';
        await send(tenant.page, text);
        await waitMessage(owner.page, 'Invoice:');
        const safe = { target: '_blank', rel: 'noopener noreferrer' };
        for (const p of [tenant, owner]) {
            const msg = message(p.page, 'Invoice:').first();
            assert.equal(await msg.locator('.text').textContent(), text, `${p.label} shows the text as typed`);
            const links = await msg.locator('.text a').evaluateAll((as) => as.map((a) => ({
                href: a.getAttribute('href'), text: a.textContent, attrs: a.getAttributeNames().sort().join(','),
                target: a.getAttribute('target'), rel: a.getAttribute('rel'),
            })));
            assert.deepEqual(links, [
                { href: 'https://example.com/repairs?id=3&x=(1)', text: 'https://example.com/repairs?id=3&x=(1)', attrs: 'href,rel,target', ...safe },
                { href: 'http://example.org/a_(b)', text: 'http://example.org/a_(b)', attrs: 'href,rel,target', ...safe },
                { href: 'https://example.com/', text: 'https://example.com/', attrs: 'href,rel,target', ...safe },
            ], `${p.label}: links`);
            await msg.locator('.text a').nth(2).hover();
            assert.equal(await p.page.evaluate(() => window.__xss), undefined);
        }
    });

    step('read ticks look different from sent ticks', ['start a conversation'], async () => {
        await owner.page.evaluate(() => { location.hash = '#/'; });
        await owner.page.locator('.placeholder').waitFor({ state: 'visible', timeout: T });
        await send(tenant.page, 'Is Tuesday fine?');
        await waitTick(tenant.page, 'Is Tuesday fine?', 'sent');
        const tick = message(tenant.page, 'Is Tuesday fine?').first().locator('.tick');
        // Named for screen readers and on hover, in each state.
        await message(tenant.page, 'Is Tuesday fine?').first().getByRole('img', { name: 'Sent' }).waitFor({ timeout: T });
        const style = () => tick.evaluate((el) => {
            const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
            const lum = ([r, g, b]) => {
                const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
                return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            const color = rgb(getComputedStyle(el).color);
            const bg = rgb(getComputedStyle(el.closest('.bubble')).backgroundColor);
            const [a, b] = [lum(color), lum(bg)].sort((x, y) => y - x);
            return { color, contrast: (a + 0.05) / (b + 0.05) };
        });
        const sent = await style();
        await openConversation(owner.page, tenantUser.name);
        await waitTick(tenant.page, 'Is Tuesday fine?', 'read');
        await message(tenant.page, 'Is Tuesday fine?').first().getByRole('img', { name: 'Read' }).waitFor({ timeout: T });
        assert.equal(await tick.getAttribute('title'), 'Read');
        const read = await style();
        // A colour of its own (not a grey like the sent tick), readable on the bubble.
        const spread = (c) => Math.max(...c) - Math.min(...c);
        assert.ok(spread(read.color) >= 60, `read tick colour ${read.color} is a colour, not a grey`);
        assert.ok(spread(sent.color) < 30, `sent tick colour ${sent.color} is a grey`);
        assert.ok(read.contrast >= 3, `read tick contrast ${read.contrast.toFixed(2)} on the bubble`);
    });

    step('day headings: Today, Yesterday, a date; also across older pages', ['register'], async () => {
        const page = tenant.page;
        const bot = await registerRest(server, { username: uniqueName('agent'), password: PASSWORD, name: 'Letting Agent', role: 'owner' });
        for (let i = 1; i <= 120; i++) {
            const r = await rest(server, 'POST', 'api/chat/messages', {
                token: bot.token,
                body: { recipientId: tenant.session.user.id, content: `Old news ${i}`, type: 'text', clientMsgId: `n${i}` },
            });
            assert.equal(r.status, 201, r.text);
        }
        // The server stamps messages with the time they were sent, so the history pages are
        // given older times on their way to the page: 1-40 ten days ago, 41-80 three days ago,
        // 81-110 yesterday, 111-120 as they are (today).
        const now = Date.now();
        const when = { ten: new Date(now - 10 * DAY).toISOString(), three: new Date(now - 3 * DAY).toISOString(), one: new Date(now - DAY).toISOString() };
        await page.route(/\/api\/chat\/messages\/[^/?]+\?/, async (route) => {
            const res = await route.fetch();
            const json = await res.json();
            for (const m of json.messages || []) {
                const n = Number(/^Old news (\d+)$/.exec(m.content)?.[1]);
                if (n) m.createdAt = n <= 40 ? when.ten : n <= 80 ? when.three : n <= 110 ? when.one : m.createdAt;
            }
            await route.fulfill({ response: res, json });
        });
        await page.locator('.conv-list .conv').filter({ hasText: 'Old news 120' }).click();
        await waitMessage(page, 'Old news 120');
        // Each heading with the first message under it.
        const headings = () => page.evaluate(() => [...document.querySelectorAll('.messages > li.day')].map((li) =>
            [li.textContent, li.nextElementSibling?.querySelector('.text')?.textContent]));
        const dateOf = (iso) => page.evaluate((d) => {
            const x = new Date(d);
            return { day: String(x.getDate()), month: x.toLocaleDateString(undefined, { month: 'long' }) };
        }, iso);
        const check = async (label, iso) => {
            const { day, month } = await dateOf(iso);
            assert.ok(label !== 'Today' && label !== 'Yesterday' && label.includes(day) && label.includes(month), `"${label}" names ${day} ${month}`);
        };
        const first = await headings();
        if (!(await message(page, 'Old news 70').count())) {
            assert.deepEqual(first.map((x) => x[1]), ['Old news 71', 'Old news 81', 'Old news 111'], JSON.stringify(first));
            assert.deepEqual(first.slice(1).map((x) => x[0]), ['Yesterday', 'Today']);
            await check(first[0][0], when.three);
        }
        // Older pages arrive above: the three-days-ago heading moves up to their first message.
        const oldest = page.locator('.messages li.msg .text').getByText('Old news 1', { exact: true });
        for (let i = 0; i < 10 && !(await oldest.count()); i++) {
            await page.locator('.older').click();
            await page.waitForFunction(() => !document.querySelector('.older').disabled || document.querySelector('.older.at-start'),
                                       null, { timeout: T });
        }
        await oldest.waitFor({ timeout: T });
        const all = await headings();
        assert.deepEqual(all.map((x) => x[1]), ['Old news 1', 'Old news 41', 'Old news 81', 'Old news 111'], JSON.stringify(all));
        assert.deepEqual(all.slice(2).map((x) => x[0]), ['Yesterday', 'Today']);
        await check(all[0][0], when.ten);
        await check(all[1][0], when.three);
        // A live message today goes under "Today", without a heading of its own.
        await rest(server, 'POST', 'api/chat/messages', { token: bot.token, body: { recipientId: tenant.session.user.id, content: 'Fresh news', type: 'text' } });
        await waitMessage(page, 'Fresh news');
        assert.deepEqual((await headings()).map((x) => x[0]).slice(2), ['Yesterday', 'Today']);
        assert.equal((await headings()).length, 4);
        await page.unroute(/\/api\/chat\/messages\/[^/?]+\?/);
    }, 60000);

    step('upload errors say the size in words and go away with the conversation', ['start a conversation'], async () => {
        const page = tenant.page;
        allowErrors(tenant, /^Failed to load resource: the server responded with a status of 413 \(Payload Too Large\) @ http:\/\/[^/]+\/api\/chat\/files$/);
        const errorText = page.locator('.upload-error');
        await openConversation(page, ownerUser.name);
        if (serverSupports('--max-file-size')) {
            await page.locator('#file-input').setInputFiles({ name: 'big.pdf', mimeType: 'application/pdf', buffer: Buffer.alloc(MAX_FILE_SIZE + 1024, 0x25) });
            await errorText.filter({ hasText: /\S/ }).waitFor({ timeout: T });
            // The server says its limit (maxBytes): the client words it.
            assert.equal(await errorText.textContent(), '“big.pdf” is larger than 512 KB, the most this server accepts.');
        }
        // A server that does not say its limit: the client does not guess it.
        await page.route('**/api/chat/files', (route) => route.fulfill({
            status: 413, contentType: 'application/json',
            body: JSON.stringify({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'the file is larger than max-file-size' } }),
        }));
        await page.locator('#file-input').setInputFiles({ name: 'plan.png', mimeType: 'image/png', buffer: Buffer.from('x') });
        await errorText.filter({ hasText: 'plan.png' }).waitFor({ timeout: T });
        assert.equal(await errorText.textContent(), '“plan.png” (1 B) is larger than this server accepts.');
        await page.unroute('**/api/chat/files');
        // Another conversation (a new one with Gary): the error was about this one.
        await findAndOpen(page, gary.user.username, 'Gary Groundfloor');
        assert.equal(await errorText.textContent(), '');
        await openConversation(page, ownerUser.name);
        assert.equal(await errorText.textContent(), '');
        // The failed bubbles keep saying it, and can be dismissed.
        await message(page, 'plan.png').filter({ hasText: 'is larger than this server accepts' }).getByRole('button', { name: 'Dismiss' }).click();
        assert.equal(await page.locator('.messages').getByText('max-file-size').count(), 0);
    });

    step('a group\'s "3 members" opens who they are: names, roles, presence', ['register'], async () => {
        const r = await rest(server, 'POST', 'api/chat/conversations', {
            token: owner.session.token,
            body: { participantIds: [tenant.session.user.id, gary.user.id], title: 'Flats 3 and 4' },
        });
        assert.equal(r.status, 201, r.text);
        const convId = (r.json.conversation || r.json)._id;
        await rest(server, 'POST', 'api/chat/messages', { token: owner.session.token, body: { conversationId: convId, content: 'Welcome, both', type: 'text' } });
        await openConversation(owner.page, 'Flats 3 and 4');
        const button = owner.page.locator('.thread-head').getByRole('button', { name: '3 members' });
        await button.click();
        const dialog = owner.page.getByRole('dialog', { name: 'Flats 3 and 4' });
        await dialog.waitFor({ timeout: T });
        const rows = () => dialog.locator('.member').evaluateAll((lis) => lis.map((li) => [
            li.querySelector('.person-name').textContent, li.querySelector('.person-sub').textContent, li.querySelector('.role')?.textContent,
        ]));
        const want = [
            [`${ownerUser.name} (you)`, `@${ownerUser.username} · online`, 'owner'],
            [tenantUser.name, `@${tenantUser.username} · online`, 'tenant'],
            ['Gary Groundfloor', `@${gary.user.username} · offline`, 'tenant'],
        ];
        try {
            await settle(async () => JSON.stringify(await rows()) === JSON.stringify(want));
            assert.deepEqual(await rows(), want);
            assert.equal(await dialog.getByText('3 members').count(), 1);
        } finally {
            // Closed even when a check failed: a modal dialog would block the next steps.
            await owner.page.keyboard.press('Escape');
            await dialog.waitFor({ state: 'hidden', timeout: T });
        }
    });

    step('a large group\'s member list names everyone (more than one lookup)', ['register'], async () => {
        // 60 people who came with platform tokens: the server knows their names once they
        // have made a request.
        const ids = Array.from({ length: 60 }, (_, i) => `member-${String(i + 1).padStart(2, '0')}-${uniqueName('x')}`);
        for (const [i, id] of ids.entries()) {
            const r = await rest(server, 'GET', 'api/chat/conversations', { token: platformToken(id, `Member ${i + 1}`, 'tenant') });
            assert.equal(r.status, 200, r.text);
        }
        const r = await rest(server, 'POST', 'api/chat/conversations', {
            token: owner.session.token, body: { participantIds: ids, title: 'Whole building' },
        });
        assert.equal(r.status, 201, r.text);
        const convId = (r.json.conversation || r.json)._id;
        await rest(server, 'POST', 'api/chat/messages', { token: owner.session.token, body: { conversationId: convId, content: 'Building notice', type: 'text' } });
        await openConversation(owner.page, 'Whole building');
        await owner.page.locator('.thread-head').getByRole('button', { name: '61 members' }).click();
        const dialog = owner.page.getByRole('dialog', { name: 'Whole building' });
        await dialog.waitFor({ timeout: T });
        const names = () => dialog.locator('.member .person-name').allTextContents();
        try {
            await settle(async () => (await names()).filter((n) => /^Member \d+$/.test(n)).length === 60);
            const shown = await names();
            assert.deepEqual(shown.filter((n) => n.startsWith('User ')), [], 'members without a name');
            assert.equal(shown.filter((n) => /^Member \d+$/.test(n)).length, 60);
        } finally {
            await owner.page.keyboard.press('Escape');
            await dialog.waitFor({ state: 'hidden', timeout: T });
        }
    });

    step('a conversation list fetched before live messages does not undo their count', ['start a conversation'], async () => {
        await openConversation(owner.page, tenantUser.name);
        await settle(async () => (await serverConv(owner)).unreadCount === 0);
        await owner.page.evaluate(() => { location.hash = '#/'; });
        await owner.page.locator('.placeholder').waitFor({ state: 'visible', timeout: T });
        // The next list the owner's page fetches is answered at once but delivered late, marked
        // so that the page shows when it has taken it in.
        let release;
        const held = new Promise((r) => { release = r; });
        let served;
        const answered = new Promise((r) => { served = r; });
        const url = '**/api/chat/conversations?limit=100';
        await owner.page.route(url, async (route) => {
            const res = await route.fetch();
            const json = await res.json();
            served();
            await held;
            for (const c of json.conversations) if (c.lastMessage?.content === 'Gary says hi') c.lastMessage.content = 'Gary says hi (list)';
            await route.fulfill({ response: res, json });
        });
        // A message in a conversation the page does not know makes it fetch the list.
        const r = await rest(server, 'POST', 'api/chat/messages', { token: gary.token, body: { recipientId: owner.session.user.id, content: 'Gary says hi', type: 'text' } });
        assert.equal(r.status, 201, r.text);
        await answered;
        await send(tenant.page, 'Live while the list is on its way 1');
        await send(tenant.page, 'Live while the list is on its way 2');
        await owner.page.locator('.conv-list .conv').filter({ hasText: 'on its way 2' }).waitFor({ timeout: T });
        release();
        await owner.page.locator('.conv-list .conv').filter({ hasText: 'Gary says hi (list)' }).waitFor({ timeout: T });
        await owner.page.unroute(url);
        const badge = owner.page.locator('.conv-list .conv').filter({ hasText: tenantUser.name }).locator('.badge');
        assert.equal((await serverConv(owner)).unreadCount, 2);
        assert.equal(await badge.count() ? await badge.textContent() : 'no badge', '2');
    });

    step('the unread badge matches the server after a restart', ['start a conversation'], async () => {
        // The owner learned of this conversation from a live message, reads it, and then looks
        // at the list while the tenant writes.
        await openConversation(owner.page, tenantUser.name);
        await settle(async () => (await serverConv(owner)).unreadCount === 0);
        assert.equal((await serverConv(owner)).unreadCount, 0);
        await owner.page.evaluate(() => { location.hash = '#/'; });
        await owner.page.locator('.placeholder').waitFor({ state: 'visible', timeout: T });
        await openConversation(tenant.page, ownerUser.name);
        const at = server.url.replace(/[.?]/g, '\\$&');
        const ws = at.replace(/^http/, 'ws');
        for (const p of [tenant, owner]) {
            allowErrors(p, new RegExp(`^Failed to load resource: net::ERR_CONNECTION_REFUSED @ ${at}(socket\\.io|api)/`),
                        new RegExp(`^WebSocket connection to '${ws}socket\\.io/\\?EIO=4&transport=websocket[^']*' failed`));
        }
        await server.stop();
        await Promise.all([tenant, owner].map((p) => p.page.locator('.banner').waitFor({ state: 'visible', timeout: T })));
        server = await startServer({ port: server.port, data: server.data, removeData: true });
        // Two while the pages are still reconnecting (replayed to them), two after.
        for (let i = 1; i <= 2; i++) {
            const r = await rest(server, 'POST', 'api/chat/messages', {
                token: tenant.session.token, body: { recipientId: owner.session.user.id, content: `While you were away ${i}`, type: 'text' },
            });
            assert.equal(r.status, 201, r.text);
        }
        await Promise.all([tenant, owner].map((p) => p.page.locator('.banner').waitFor({ state: 'hidden', timeout: 20000 })));
        await owner.page.locator('.conv-list .conv').filter({ hasText: 'While you were away 2' }).waitFor({ timeout: T });
        await send(tenant.page, 'After the restart 1');
        await send(tenant.page, 'After the restart 2');
        await waitTick(tenant.page, 'After the restart 2', 'sent');
        await owner.page.locator('.conv-list .conv').filter({ hasText: 'After the restart 2' }).waitFor({ timeout: T });
        const conv = await serverConv(owner);
        assert.equal(conv.unreadCount, 4);
        const badge = owner.page.locator('.conv-list .conv').filter({ hasText: tenantUser.name }).locator('.badge');
        await settle(async () => (await badge.count()) && (await badge.textContent()) === '4');
        assert.equal(await badge.count() ? await badge.textContent() : 'no badge', String(conv.unreadCount), 'badge = the server\'s unreadCount');
        // Reading clears it, on both sides.
        await openConversation(owner.page, tenantUser.name);
        await waitTick(tenant.page, 'After the restart 2', 'read');
        assert.equal(await owner.page.locator('.conv-list .conv').filter({ hasText: tenantUser.name }).locator('.badge').count(), 0);
    }, 60000);

    step('no console errors or uncaught exceptions in either page', ['register'], async () => {
        assertNoErrors(tenant, owner);
    });
});

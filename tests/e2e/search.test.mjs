// End to end in Chromium: message search and the unread total (issue 16). Bob's conversation
// with the tenant holds "The door code is 4711" followed by more than a page of newer messages
// (sent through the API for speed); the tenant, in another conversation, searches with the
// keyboard only, sees the conversation's name and the highlighted words, and Enter on the result
// opens Bob's conversation scrolled to that message (loaded from older pages) and highlighted.
// A snippet with HTML-looking text renders as text, searching within one conversation finds
// only its messages, and the top bar's badge follows the unread total live. In a phone-sized
// window the search is usable by touch. A hit in a group older than the conversation list's
// pages opens too (GET /api/chat/conversations/:id).
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import { launchBrowser, openPerson, registerRest, rest, startServer, uniqueName, storySteps } from './helpers.mjs';
import { T, assertNoCsp, assertNoErrors, openConversation, registerUi, session } from './ui.mjs';

const PASSWORD = 'correct horse battery';
const FILLER = 70; // newer messages after the door code: more than one history page (50)
const XSS = 'doorbell <img src=x onerror="window.__xss=1"> <mark>broken</mark> &amp; &lt;b&gt;';

describe('web client: message search', { timeout: 170000 }, () => {
    let server;
    let browser;
    let tenant;
    let phone;
    let bob;
    let carol;
    const tenantUser = { name: 'Tina Tenant', username: uniqueName('tina'), role: 'tenant' };

    const { step } = storySteps(() => [tenant, phone]);
    const post = (who, body) => rest(server, 'POST', 'api/chat/messages', { token: who.token, body: { type: 'text', ...body } });

    before(async () => {
        server = await startServer();
        browser = await launchBrowser();
        tenant = await openPerson(browser, 'tenant', server.url);
    });

    after(async () => {
        await browser?.close();
        await server?.cleanup();
    });

    step('set up: a door code deep in Bob\'s history, Carol\'s conversation newer', [], async () => {
        await registerUi(tenant.page, { ...tenantUser, password: PASSWORD });
        tenant.session = await session(tenant.page);
        const me = tenant.session.user.id;
        bob = await registerRest(server, { username: uniqueName('bob'), password: PASSWORD, name: 'Bob Builder', role: 'owner' });
        carol = await registerRest(server, { username: uniqueName('carol'), password: PASSWORD, name: 'Carol Caretaker', role: 'owner' });
        let r = await post(bob, { recipientId: me, content: 'The door code is 4711' });
        assert.equal(r.status, 201, r.text);
        bob.convId = r.json.message?.conversationId ?? r.json.conversationId;
        r = await post(bob, { recipientId: me, content: XSS });
        assert.equal(r.status, 201, r.text);
        for (let i = 1; i <= FILLER; i++) {
            r = await post(i % 2 ? bob : tenant.session, { conversationId: bob.convId, content: `Filler ${i} about the boiler` });
            assert.equal(r.status, 201, r.text);
        }
        r = await post(carol, { recipientId: me, content: 'Carol here: the door of the shed is open' });
        assert.equal(r.status, 201, r.text);
        carol.convId = r.json.message?.conversationId ?? r.json.conversationId;
        await tenant.page.reload();
        await openConversation(tenant.page, 'Carol Caretaker');
    });

    step('the unread total is a badge in the top bar and follows unread_total live', ['set up: a door code deep in Bob\'s history, Carol\'s conversation newer'], async () => {
        const badge = tenant.page.locator('.topbar .total-badge');
        // Bob's messages are unread: the door code, the doorbell, his half of the filler. Carol's
        // conversation is open, so read.
        const bobs = 2 + Math.ceil(FILLER / 2);
        const showing = (n) => tenant.page.waitForFunction((k) => document.querySelector('.topbar .total-badge')?.textContent === String(k), n, { timeout: T });
        await showing(bobs);
        await post(bob, { conversationId: bob.convId, content: 'One more thing' });
        await showing(bobs + 1);
        assert.equal(await tenant.page.title(), `(${bobs + 1}) Parlor`);
        assert.equal(await badge.getAttribute('aria-label'), `${bobs + 1} unread messages`);
        const unread = await rest(server, 'GET', 'api/chat/unread', { token: tenant.session.token });
        assert.equal(unread.json.total, bobs + 1, 'the badge says what the server says');
    });

    step('keyboard only: search all conversations, Enter on a result jumps to the message in its history', ['set up: a door code deep in Bob\'s history, Carol\'s conversation newer'], async () => {
        const p = tenant.page;
        await p.getByRole('button', { name: 'Search messages' }).focus();
        await p.keyboard.press('Enter');
        const input = p.getByRole('searchbox', { name: 'Search messages' });
        await input.waitFor({ timeout: T });
        assert.equal(await p.getByRole('radio', { name: 'All conversations' }).isChecked(), true);
        await p.keyboard.type('door code');
        await p.keyboard.press('Enter');
        const results = p.locator('.ms-results .ms-result');
        await results.first().waitFor({ timeout: T });
        assert.equal(await results.count(), 1, 'only the message with both words');
        const hit = results.first();
        assert.equal(await hit.locator('.ms-conv').textContent(), 'Bob Builder');
        assert.deepEqual(await hit.locator('.ms-snippet mark').allTextContents(), ['door', 'code']);
        assert.equal(await hit.locator('.ms-snippet').textContent(), 'The door code is 4711');
        // Not in the first history page of Bob's conversation.
        const first = await rest(server, 'GET', `api/chat/messages/${bob.convId}?limit=50`, { token: tenant.session.token });
        assert.ok(!first.json.messages.some((m) => m.content === 'The door code is 4711'));
        await p.keyboard.press('ArrowDown');
        assert.equal(await p.evaluate(() => document.activeElement?.classList.contains('ms-result')), true, 'ArrowDown moves to the result');
        await p.keyboard.press('Enter');
        await p.locator('.thread-title').filter({ hasText: 'Bob Builder' }).waitFor({ timeout: T });
        const li = p.locator('.messages li.msg').filter({ hasText: 'The door code is 4711' });
        await li.waitFor({ timeout: T });
        await p.locator('.messages li.msg.flash').filter({ hasText: 'The door code is 4711' }).waitFor({ timeout: T });
        // Scrolled into view inside the message list.
        const inView = await p.evaluate(() => {
            const el = [...document.querySelectorAll('.messages li.msg')].find((x) => x.textContent.includes('The door code is 4711'));
            const s = document.querySelector('.scroller').getBoundingClientRect();
            const r = el.getBoundingClientRect();
            return r.top >= s.top - 1 && r.bottom <= s.bottom + 1;
        });
        assert.equal(inView, true, 'the message is scrolled into view');
        assert.equal(await p.locator('.ms-dialog').isVisible(), false, 'the dialog closed');
    });

    step('a snippet with HTML-looking text renders as text; Escape closes', ['keyboard only: search all conversations, Enter on a result jumps to the message in its history'], async () => {
        const p = tenant.page;
        await p.getByRole('button', { name: 'Search messages' }).click();
        const input = p.getByRole('searchbox', { name: 'Search messages' });
        await input.fill('doorbell');
        await input.press('Enter');
        const hit = p.locator('.ms-results .ms-result').first();
        await hit.waitFor({ timeout: T });
        assert.equal(await hit.locator('.ms-snippet').textContent(), XSS);
        assert.deepEqual(await hit.locator('.ms-snippet mark').allTextContents(), ['doorbell'], 'only the hit is marked, not the text <mark>');
        assert.equal(await p.locator('.ms-dialog img').count(), 0, 'no element from the message text');
        assert.equal(await p.evaluate(() => window.__xss), undefined);
        await p.keyboard.press('Escape');
        await p.locator('.ms-dialog').waitFor({ state: 'hidden', timeout: T });
    });

    step('search within one conversation finds only its messages', ['a snippet with HTML-looking text renders as text; Escape closes'], async () => {
        const p = tenant.page;
        await openConversation(p, 'Carol Caretaker');
        await p.getByRole('button', { name: 'Search in this conversation' }).click();
        assert.equal(await p.getByRole('radio', { name: 'Only in Carol Caretaker' }).isChecked(), true);
        const input = p.getByRole('searchbox', { name: 'Search messages' });
        await input.fill('door');
        await input.press('Enter');
        await p.locator('.ms-status').filter({ hasText: '1 message found' }).waitFor({ timeout: T });
        assert.deepEqual(await p.locator('.ms-results .ms-conv').allTextContents(), ['Carol Caretaker']);
        // Widening the scope searches again: Bob's door code and doorbell too.
        await p.getByRole('radio', { name: 'All conversations' }).check();
        await p.locator('.ms-status').filter({ hasText: '3 messages found' }).waitFor({ timeout: T });
        await p.keyboard.press('Escape');
        assertNoErrors(tenant);
        assertNoCsp(tenant);
    });

    step('a touch phone: the search opens full screen and a tap on a result opens it', ['search within one conversation finds only its messages'], async () => {
        // A touch screen: taps, no hover.
        const context = await browser.newContext({ viewport: { width: 390, height: 760 }, hasTouch: true, isMobile: true });
        const page = await context.newPage();
        phone = { label: 'phone', context, page, errors: [], allowed: [], cspViolations: [] };
        page.on('pageerror', (err) => phone.errors.push(`uncaught: ${err.stack || err}`));
        page.on('console', (msg) => {
            if (msg.type() === 'error') phone.errors.push(msg.text());
        });
        await page.goto(server.url);
        await page.evaluate((s) => localStorage.setItem('parlor.session', JSON.stringify(s)), tenant.session);
        await page.reload();
        const p = phone.page;
        await p.getByRole('button', { name: 'Search messages' }).tap();
        const input = p.getByRole('searchbox', { name: 'Search messages' });
        await input.fill('4711');
        await input.press('Enter');
        const hit = p.locator('.ms-results .ms-result').first();
        await hit.waitFor({ timeout: T });
        const box = await p.locator('.ms-dialog').boundingBox();
        assert.ok(box.width >= 380, 'full width');
        await hit.tap();
        await p.locator('.messages li.msg.flash').filter({ hasText: 'The door code is 4711' }).waitFor({ timeout: T });
        assertNoErrors(phone);
    });

    step('a group older than the loaded conversation list opens from a search result', ['a touch phone: the search opens full screen and a tap on a result opens it'], async () => {
        const me = tenant.session.user.id;
        const group = async (title) => {
            const r = await rest(server, 'POST', 'api/chat/conversations', { token: carol.token, body: { participantIds: [me, bob.user.id], title } });
            assert.equal(r.status, 201, r.text);
            return r.json._id;
        };
        const old = await group('Garden committee');
        let r = await post(carol, { conversationId: old, content: 'The gate code is 9090' });
        assert.equal(r.status, 201, r.text);
        // 100 newer conversations: the client loads the 100 most recent, so not the old one.
        for (let i = 0; i < 100; i++) {
            r = await post(carol, { conversationId: await group(`Newer ${i}`), content: `newer ${i}` });
            assert.equal(r.status, 201, r.text);
        }
        const p = tenant.page;
        await p.reload();
        await p.locator('.conv-list li').filter({ hasText: 'Newer 99' }).first().waitFor({ timeout: T });
        assert.equal(await p.locator('.conv-list li').filter({ hasText: 'Garden committee' }).count(), 0, 'not in the list');
        await p.getByRole('button', { name: 'Search messages' }).click();
        const input = p.getByRole('searchbox', { name: 'Search messages' });
        await input.fill('gate code');
        await input.press('Enter');
        const hit = p.locator('.ms-results .ms-result').first();
        await hit.waitFor({ timeout: T });
        await hit.click();
        await p.locator('.thread-title').filter({ hasText: 'Garden committee' }).waitFor({ timeout: T });
        await p.locator('.messages li.msg.flash').filter({ hasText: 'The gate code is 9090' }).waitFor({ timeout: T });
        assertNoErrors(tenant);
    });
});

// End to end in Chromium: conversations about something (issue 15). A listing page's "Message
// the owner" link (#/context/listing/<id>?with=<owner>&title=...) opens a new thread whose
// subject is the listing's title, in the header and the list; the owner sees it as its own
// thread beside their plain one; a second listing is a second thread; a system notice posted by
// the platform's backend (a server credential) shows as a notice line on both sides, live.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe } from 'node:test';

import { SECRET, launchBrowser, openPerson, registerRest, rest, startServer, storySteps, uniqueName } from './helpers.mjs';
import { T, assertNoCsp, assertNoErrors, send, signInUi, waitMessage } from './ui.mjs';

const PASSWORD = 'correct horse battery';

function serverToken() {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'platform', scope: 'server', iat: now, exp: now + 600 })}`;
    return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

describe('web client: conversations about a listing', { timeout: 170000 }, () => {
    let server;
    let browser;
    let tenant;
    let owner;
    let ownerAccount;
    const tenantUser = { name: 'Tina Tenant', username: uniqueName('tina'), role: 'tenant', password: PASSWORD };
    const ownerUser = { name: 'Oscar Owner', username: uniqueName('oscar'), role: 'owner', password: PASSWORD };

    const { step } = storySteps(() => [tenant, owner]);

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

    step('the listing link starts a thread titled by the listing', [], async () => {
        await registerRest(server, tenantUser);
        ownerAccount = await registerRest(server, ownerUser);
        await signInUi(tenant.page, tenantUser);
        await signInUi(owner.page, ownerUser);
        const ownerId = ownerAccount.user.id;
        await tenant.page.goto(`${server.url}#/context/listing/L-1042?with=${encodeURIComponent(ownerId)}&title=${encodeURIComponent('Flat 3B, 12 Baker Street')}`);
        await tenant.page.locator('.thread-title').filter({ hasText: 'Flat 3B, 12 Baker Street' }).waitFor({ timeout: T });
        await send(tenant.page, 'Is the flat still available?');
        await waitMessage(tenant.page, 'Is the flat still available?');
        await tenant.page.locator('.conv-list .conv').filter({ hasText: 'Flat 3B, 12 Baker Street' }).first().waitFor({ timeout: T });
        assert.match(tenant.page.url(), /#\/c\/[0-9a-f]{24}$/);
    });

    step('the owner sees the thread with its subject', ['the listing link starts a thread titled by the listing'], async () => {
        const conv = owner.page.locator('.conv-list .conv').filter({ hasText: 'Flat 3B, 12 Baker Street' });
        await conv.first().waitFor({ timeout: T });
        await conv.first().click();
        await owner.page.locator('.thread-title').filter({ hasText: 'Flat 3B' }).waitFor({ timeout: T });
        await waitMessage(owner.page, 'Is the flat still available?');
        await send(owner.page, 'Yes, viewings on Tuesday');
        await waitMessage(tenant.page, 'Yes, viewings on Tuesday');
    });

    step('a second listing is a second thread; the same link finds the first again', ['the owner sees the thread with its subject'], async () => {
        const ownerId = ownerAccount.user.id;
        await tenant.page.goto(`${server.url}#/context/listing/L-2077?with=${encodeURIComponent(ownerId)}&title=Studio%2C%204%20Elm%20Row`);
        await tenant.page.locator('.thread-title').filter({ hasText: 'Studio, 4 Elm Row' }).waitFor({ timeout: T });
        await send(tenant.page, 'And the studio?');
        await waitMessage(tenant.page, 'And the studio?');
        await tenant.page.goto(`${server.url}#/context/listing/L-1042?with=${encodeURIComponent(ownerId)}`);
        await tenant.page.locator('.thread-title').filter({ hasText: 'Flat 3B' }).waitFor({ timeout: T });
        await waitMessage(tenant.page, 'Yes, viewings on Tuesday');
        const list = await rest(server, 'GET', 'api/chat/conversations?contextType=listing&contextId=L-2077', {
            token: ownerAccount.token,
        });
        assert.equal(list.json.conversations.length, 1);
    });

    step('a system notice from the platform is a notice line on both sides', ['a second listing is a second thread; the same link finds the first again'], async () => {
        const list = await rest(server, 'GET', 'api/chat/conversations?contextType=listing&contextId=L-1042', {
            token: ownerAccount.token,
        });
        const conv = list.json.conversations[0]._id;
        const r = await rest(server, 'POST', 'api/server/messages', {
            token: serverToken(),
            body: { conversationId: conv, senderId: 'system', type: 'system', content: 'Viewing confirmed for Tuesday 10:00' },
        });
        assert.equal(r.status, 201, r.text);
        for (const p of [tenant.page, owner.page]) {
            await p.locator('.messages li.system-notice').filter({ hasText: 'Viewing confirmed for Tuesday 10:00' }).waitFor({ timeout: T });
        }
    });

    step('a member removed from a group by the platform sees the group leave the list', ['a system notice from the platform is a notice line on both sides'], async () => {
        const tenantId = (await rest(server, 'GET', 'api/chat/conversations', { token: ownerAccount.token })).json
            .conversations.flatMap((c) => c.participants).find((p) => p !== ownerAccount.user.id);
        const g = await rest(server, 'POST', 'api/server/conversations', {
            token: serverToken(),
            body: { participantIds: [ownerAccount.user.id, tenantId], type: 'group', title: 'Viewing group' },
        });
        assert.equal(g.status, 201, g.text);
        const n = await rest(server, 'POST', 'api/server/messages', {
            token: serverToken(), body: { conversationId: g.json._id, senderId: 'system', content: 'Welcome to the viewing group' },
        });
        assert.equal(n.status, 201, n.text);
        const row = tenant.page.locator('.conv-list .conv').filter({ hasText: 'Viewing group' });
        await row.first().waitFor({ timeout: T });
        const rm = await rest(server, 'DELETE', `api/server/conversations/${g.json._id}/members/${tenantId}`, { token: serverToken() });
        assert.equal(rm.status, 200, rm.text);
        await row.first().waitFor({ state: 'detached', timeout: T });
        assertNoErrors(tenant, owner);
        assertNoCsp(tenant, owner);
    });
});

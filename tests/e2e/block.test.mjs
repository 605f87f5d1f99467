// End to end in Chromium: blocking (issue 16). The tenant blocks the owner from the header of
// their one-to-one conversation: the conversation shows "You blocked …" with an Unblock button
// and no message box, and stays so after a reload (the blocks list loads at start). The owner's
// send is refused with a clear notice, and nothing reaches the tenant (nor the history).
// Unblocking (keyboard only) brings the message box back and messages flow both ways again;
// a block made in another tab shows at once (block_updated).
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import { launchBrowser, openPerson, rest, startServer, uniqueName, storySteps } from './helpers.mjs';
import {
    T, assertNoCsp, assertNoErrors, findAndOpen, message, openConversation, registerUi, send, session, waitMessage,
} from './ui.mjs';

const PASSWORD = 'correct horse battery';

describe('web client: block and unblock', { timeout: 170000 }, () => {
    let server;
    let browser;
    let tenant;
    let owner;
    const tenantUser = { name: 'Tina Tenant', username: uniqueName('tina'), role: 'tenant' };
    const ownerUser = { name: 'Oscar Owner', username: uniqueName('oscar'), role: 'owner' };

    const { step } = storySteps(() => [tenant, owner]);

    before(async () => {
        server = await startServer();
        browser = await launchBrowser();
        tenant = await openPerson(browser, 'tenant', server.url);
        owner = await openPerson(browser, 'owner', server.url, { width: 390, height: 760 });
    });

    after(async () => {
        await browser?.close();
        await server?.cleanup();
    });

    step('register and talk', [], async () => {
        await Promise.all([
            registerUi(tenant.page, { ...tenantUser, password: PASSWORD }),
            registerUi(owner.page, { ...ownerUser, password: PASSWORD }),
        ]);
        await findAndOpen(tenant.page, ownerUser.username, ownerUser.name);
        await send(tenant.page, 'Hello from flat 2');
        await openConversation(owner.page, tenantUser.name);
        await waitMessage(owner.page, 'Hello from flat 2');
        tenant.session = await session(tenant.page);
        owner.session = await session(owner.page);
    });

    step('block from the header: the blocked state replaces the message box', ['register and talk'], async () => {
        const p = tenant.page;
        p.once('dialog', (d) => d.accept());
        await p.getByRole('button', { name: `Block ${ownerUser.name}` }).click();
        const note = p.locator('.blocked-note');
        await note.filter({ hasText: `You blocked ${ownerUser.name}` }).waitFor({ timeout: T });
        assert.equal(await p.getByRole('textbox', { name: 'Message' }).isVisible(), false, 'no message box');
        await note.getByRole('button', { name: 'Unblock' }).waitFor({ timeout: T });
        const blocks = await rest(server, 'GET', 'api/chat/blocks', { token: tenant.session.token });
        assert.deepEqual(blocks.json.blocks.map((b) => b.userId), [owner.session.user.id]);
    });

    step('the blocked state survives a reload (blocks load at start)', ['block from the header: the blocked state replaces the message box'], async () => {
        await tenant.page.reload();
        await openConversation(tenant.page, ownerUser.name);
        await tenant.page.locator('.blocked-note').filter({ hasText: 'You blocked' }).waitFor({ timeout: T });
        await tenant.page.getByRole('button', { name: `Unblock ${ownerUser.name}` }).waitFor({ timeout: T });
    });

    step('the other person\'s send is refused with a notice; nothing is shown or stored', ['the blocked state survives a reload (blocks load at start)'], async () => {
        await send(owner.page, 'Are you ignoring me?');
        const mine = message(owner.page, 'Are you ignoring me?').first();
        await mine.locator('.failed-note').filter({ hasText: 'blocked' }).waitFor({ timeout: T });
        await owner.page.locator('.toast').filter({ hasText: 'not accepting your messages' }).waitFor({ timeout: T });
        // The refusal is the fence: the server answered it before anything could be delivered.
        const convId = await tenant.page.evaluate(() => decodeURIComponent(location.hash.replace('#/c/', '')));
        const hist = await rest(server, 'GET', `api/chat/messages/${encodeURIComponent(convId)}`, { token: tenant.session.token });
        assert.deepEqual(hist.json.messages.map((m) => m.content), ['Hello from flat 2'], 'nothing stored');
        assert.equal(await message(tenant.page, 'Are you ignoring me?').count(), 0, 'nothing shown');
    });

    step('unblock with the keyboard restores the message box; messages flow again', ['the other person\'s send is refused with a notice; nothing is shown or stored'], async () => {
        const p = tenant.page;
        await p.locator('.blocked-note').getByRole('button', { name: 'Unblock' }).focus();
        await p.keyboard.press('Enter');
        await p.locator('.blocked-note').waitFor({ state: 'hidden', timeout: T });
        await p.getByRole('button', { name: `Block ${ownerUser.name}` }).waitFor({ timeout: T });
        await send(p, 'Sorry, wrong button');
        await waitMessage(owner.page, 'Sorry, wrong button');
        await send(owner.page, 'No problem');
        await waitMessage(p, 'No problem');
        assert.equal(await message(p, 'Are you ignoring me?').count(), 0, 'the refused message never arrives');
    });

    step('a block made elsewhere (another tab, the REST API) shows at once, without a reload', ['unblock with the keyboard restores the message box; messages flow again'], async () => {
        const p = tenant.page;
        const path = `api/chat/users/${encodeURIComponent(owner.session.user.id)}/block`;
        assert.equal((await rest(server, 'POST', path, { token: tenant.session.token })).status, 200);
        await p.locator('.blocked-note').filter({ hasText: `You blocked ${ownerUser.name}` }).waitFor({ timeout: T });
        assert.equal((await rest(server, 'DELETE', path, { token: tenant.session.token })).status, 200);
        await p.locator('.blocked-note').waitFor({ state: 'hidden', timeout: T });
        await p.getByRole('textbox', { name: 'Message' }).waitFor({ timeout: T });
        assertNoErrors(tenant, owner);
        assertNoCsp(tenant, owner);
    });
});

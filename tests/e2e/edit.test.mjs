// End to end in Chromium: editing and deleting your own messages (issue 16). The sender edits
// with the mouse (Edit, then Enter), with the keyboard only (ArrowUp in the empty message box,
// Escape to cancel), and deletes in a phone-sized window (Delete, confirm). The other person sees
// the "edited" marker and the "Message deleted" placeholder live, and the sender cannot edit or
// delete the other person's messages.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import { launchBrowser, openPerson, startServer, uniqueName, storySteps } from './helpers.mjs';
import {
    T, assertNoCsp, assertNoErrors, findAndOpen, message, openConversation, registerUi, send, waitMessage,
} from './ui.mjs';

const PASSWORD = 'correct horse battery';

describe('web client: edit and delete', { timeout: 170000 }, () => {
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
        // The owner's window is phone-sized (one pane at a time).
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
        await send(tenant.page, 'The tap is leakng');
        await waitMessage(tenant.page, 'The tap is leakng');
        await openConversation(owner.page, tenantUser.name);
        await waitMessage(owner.page, 'The tap is leakng');
        await send(owner.page, 'Which tap?');
        await waitMessage(tenant.page, 'Which tap?');
    });

    step('edit with the mouse: Edit, change, Enter; the other side sees it edited', ['register and talk'], async () => {
        const mine = message(tenant.page, 'The tap is leakng').first();
        await mine.hover();
        await mine.getByRole('button', { name: 'Edit message' }).click();
        const box = tenant.page.getByRole('textbox', { name: 'Edit message' });
        await box.fill('The kitchen tap is leaking');
        await box.press('Enter');
        await waitMessage(tenant.page, 'The kitchen tap is leaking');
        await message(tenant.page, 'The kitchen tap is leaking').locator('.edited').waitFor({ timeout: T });
        await waitMessage(owner.page, 'The kitchen tap is leaking');
        await message(owner.page, 'The kitchen tap is leaking').locator('.edited').waitFor({ timeout: T });
        assert.equal(await message(owner.page, 'leakng').count(), 0, 'the old text is gone');
        // Only your own messages have the buttons.
        assert.equal(await message(tenant.page, 'Which tap?').getByRole('button', { name: /Edit|Delete/ }).count(), 0);
    });

    step('edit with the keyboard only: ArrowUp in the empty box, Escape cancels, ArrowUp and Enter saves', ['edit with the mouse: Edit, change, Enter; the other side sees it edited'], async () => {
        const composer = tenant.page.getByRole('textbox', { name: 'Message' });
        await composer.focus();
        await composer.press('ArrowUp');
        const box = tenant.page.getByRole('textbox', { name: 'Edit message' });
        await box.waitFor({ timeout: T });
        await box.press('Escape');
        await box.waitFor({ state: 'detached', timeout: T });
        await composer.press('ArrowUp');
        await box.waitFor({ timeout: T });
        await box.fill('The kitchen tap is leaking, under the sink');
        await box.press('Enter');
        await waitMessage(owner.page, 'The kitchen tap is leaking, under the sink');
    });

    step('delete on a narrow screen without hovering: Delete, confirm; both see the placeholder', ['register and talk'], async () => {
        await send(owner.page, 'Wrong chat, sorry');
        await waitMessage(tenant.page, 'Wrong chat, sorry');
        owner.page.once('dialog', (d) => d.accept());
        const mine = message(owner.page, 'Wrong chat, sorry').first();
        await mine.getByRole('button', { name: 'Delete message' }).click();
        for (const p of [owner.page, tenant.page]) {
            await p.locator('.messages li.msg.deleted').filter({ hasText: 'Message deleted' }).waitFor({ timeout: T });
            assert.equal(await message(p, 'Wrong chat, sorry').count(), 0, 'the deleted text is gone');
        }
        // The conversation list says so too.
        await tenant.page.locator('.conv-list .conv').filter({ hasText: 'Message deleted' }).waitFor({ timeout: T });
        assertNoErrors(tenant, owner);
        assertNoCsp(tenant, owner);
    });
});

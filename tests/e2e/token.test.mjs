// Signing in with a token a platform issued (here: `parlor token`, same secret), keeping the
// session across a reload, signing out, and refusing tokens that cannot work.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';

import { BIN, SECRET, allowErrors, launchBrowser, openPerson, startServer, withScreenshots } from './helpers.mjs';
import { T, assertNoErrors } from './ui.mjs';

describe('platform tokens', { timeout: 60000 }, () => {
    let server;
    let browser;

    before(async () => {
        server = await startServer();
        browser = await launchBrowser();
    });
    after(async () => {
        await browser?.close();
        await server?.cleanup();
    });

    it('a pasted token signs in, survives a reload, and signing out forgets it', async () => {
        const token = execFileSync(BIN, ['token', 'platform-user-42', '--name', 'Pat Platform', '--role', 'tenant',
                                         '--jwt-secret', SECRET, '--data', server.data], { encoding: 'utf8' }).trim();
        const p = await openPerson(browser, 'token', server.url);
        await withScreenshots('token', [p], async () => {
            const { page } = p;
            await page.getByRole('tab', { name: 'Use a token' }).click();
            await page.getByRole('textbox', { name: 'Token' }).fill(token);
            await page.getByRole('button', { name: 'Continue' }).click();
            await page.locator('.topbar .me-name').filter({ hasText: 'Pat Platform' }).waitFor({ timeout: T });
            await page.locator('.empty').filter({ hasText: 'No conversations yet' }).waitFor({ timeout: T });
            await page.reload();
            await page.locator('.topbar .me-name').filter({ hasText: 'Pat Platform' }).waitFor({ timeout: T });
            assert.equal(await page.locator('.banner').isVisible(), false);
            await page.getByRole('button', { name: 'Sign out' }).click();
            await page.getByRole('tab', { name: 'Sign in' }).waitFor({ timeout: T });
            assert.equal(await page.evaluate(() => localStorage.getItem('parlor.session')), null);
        });
        assertNoErrors(p);
    });

    it('garbage, expired and wrongly signed tokens are refused with a message', async () => {
        const p = await openPerson(browser, 'badtoken', server.url);
        await withScreenshots('bad-token', [p], async () => {
            const { page } = p;
            await page.getByRole('tab', { name: 'Use a token' }).click();
            await page.getByRole('textbox', { name: 'Token' }).fill('not a token');
            await page.getByRole('button', { name: 'Continue' }).click();
            await page.getByRole('alert').filter({ hasText: 'does not look like a token' }).waitFor({ timeout: T });

            const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
            const expired = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'x', exp: 1000 })}.c2ln`;
            await page.getByRole('textbox', { name: 'Token' }).fill(expired);
            await page.getByRole('button', { name: 'Continue' }).click();
            await page.getByRole('alert').filter({ hasText: 'expired' }).waitFor({ timeout: T });

            // Well-formed and unexpired but not signed with the server's key: the server refuses
            // the connection, and the client goes back to the sign-in screen saying why.
            allowErrors(p, /^Failed to load resource: the server responded with a status of 401 \(Unauthorized\) @ http:\/\/[^/]+\/api\/chat\//);
            const forged = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'mallory', name: 'Mallory', exp: Math.floor(Date.now() / 1000) + 3600 })}.c2ln`;
            await page.getByRole('textbox', { name: 'Token' }).fill(forged);
            await page.getByRole('button', { name: 'Continue' }).click();
            await page.getByRole('alert').filter({ hasText: /no longer valid|expired/ }).waitFor({ timeout: T });
            assert.equal(await page.evaluate(() => localStorage.getItem('parlor.session')), null);
        });
        assertNoErrors(p);
    });
});

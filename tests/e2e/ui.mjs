// What a person does in the web client, as playwright steps, found the way a person (or a
// screen reader) finds things: by role, label and visible text.
import assert from 'node:assert/strict';

import { unexpectedErrors } from './helpers.mjs';

export const T = 15000; // default wait for something to appear

export async function registerUi(page, { name, username, password, role }) {
    await page.getByRole('tab', { name: 'Create account' }).click();
    await page.getByLabel('Your name').fill(name);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel(/^Password/).fill(password);
    await page.getByLabel('I am a').selectOption(role);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('.topbar .me-name').filter({ hasText: name }).waitFor({ timeout: T });
}

export async function signInUi(page, { username, password }) {
    await page.getByRole('tab', { name: 'Sign in' }).click();
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.topbar').waitFor({ timeout: T });
}

export async function session(page) {
    return page.evaluate(() => JSON.parse(localStorage.getItem('parlor.session')));
}

// Finds someone by username in the sidebar search and opens the conversation with them.
export async function findAndOpen(page, username, name) {
    const search = page.getByLabel('Find people by username');
    await search.fill(username);
    const result = page.locator('.results .person').filter({ hasText: `@${username}` });
    await result.waitFor({ timeout: T });
    await result.click();
    await page.locator('.thread-title').filter({ hasText: name }).waitFor({ timeout: T });
}

export async function openConversation(page, name) {
    const conv = page.locator('.conv-list .conv').filter({ hasText: name });
    await conv.first().waitFor({ timeout: T });
    await conv.first().click();
    await page.locator('.thread-title').filter({ hasText: name }).waitFor({ timeout: T });
}

export async function send(page, text) {
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill(text);
    await box.press('Enter');
}

export function message(page, text) {
    return page.locator('.messages li.msg').filter({ hasText: text });
}

export async function waitMessage(page, text, timeout = T) {
    await message(page, text).first().waitFor({ timeout });
}

export async function tickOf(page, text) {
    return message(page, text).first().locator('.tick').getAttribute('data-state');
}

export async function waitTick(page, text, state, timeout = T) {
    await page.waitForFunction(([t, s]) => {
        const li = [...document.querySelectorAll('.messages li.msg')].find((x) => x.textContent.includes(t));
        return li && li.querySelector('.tick')?.dataset.state === s;
    }, [text, state], { timeout });
}

export async function texts(page) {
    return page.locator('.messages li.msg .text').allTextContents();
}

export function assertNoCsp(...people) {
    for (const p of people) assert.deepEqual(p.cspViolations, [], `${p.label}: CSP violations`);
}

// No console error and no uncaught exception in any page, apart from those a test announced
// with allowErrors() before provoking them.
export function assertNoErrors(...people) {
    for (const p of people) assert.deepEqual(unexpectedErrors(p), [], `${p.label}: console errors or page exceptions`);
}

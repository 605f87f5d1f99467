// The sign-in screen: standalone accounts (register, sign in) or a token from a platform.
import { describeError } from './api.js';
import { h, setChildren } from './dom.js';
import { sessionFromToken, tokenExpired } from './session.js';

let uid = 0;
function field(label, input) {
    const id = `f${++uid}`;
    input.id = id;
    return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

export function renderAuth(root, { api, onSignedIn, notice }) {
    const status = h('p', { class: 'form-error', role: 'alert', 'aria-live': 'assertive' });
    const panel = h('div', { class: 'auth-panel' });
    const tabs = [
        ['signin', 'Sign in'],
        ['register', 'Create account'],
        ['token', 'Use a token'],
    ];
    const tabButtons = tabs.map(([key, label]) => h('button', {
        type: 'button',
        role: 'tab',
        id: `tab-${key}`,
        'aria-controls': 'auth-form',
        class: 'tab',
        onclick: () => show(key),
        onkeydown: (e) => {
            const i = tabs.findIndex(([k]) => k === key);
            const next = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : null;
            if (next === null) return;
            e.preventDefault();
            const [k] = tabs[(next + tabs.length) % tabs.length];
            show(k);
            document.getElementById(`tab-${k}`).focus();
        },
    }, label));

    async function run(form, fn) {
        const btn = form.querySelector('button[type=submit]');
        btn.disabled = true;
        status.textContent = '';
        try {
            await fn();
        } catch (err) {
            status.textContent = err.status === 401 ? 'Wrong username or password.'
                : err.status === 409 ? 'That username is taken. Choose another one.'
                    : describeError(err);
        } finally {
            btn.disabled = false;
        }
    }

    function show(key) {
        for (const b of tabButtons) {
            const on = b.id === `tab-${key}`;
            b.setAttribute('aria-selected', String(on));
            b.tabIndex = on ? 0 : -1;
        }
        status.textContent = '';
        let form;
        if (key === 'signin') {
            const username = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 64 });
            const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
            form = h('form', { id: 'auth-form', role: 'tabpanel', 'aria-labelledby': 'tab-signin' },
                field('Username', username), field('Password', password),
                h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
            form.addEventListener('submit', (e) => {
                e.preventDefault();
                run(form, async () => {
                    const res = await api.post('api/auth/login', { username: username.value.trim(), password: password.value });
                    onSignedIn({ token: res.token, user: res.user });
                });
            });
        } else if (key === 'register') {
            const name = h('input', { name: 'name', autocomplete: 'name', required: true, maxlength: 128 });
            const username = h('input', {
                name: 'username', autocomplete: 'username', required: true, maxlength: 64,
                pattern: '[A-Za-z0-9_\\-]+', title: 'Letters, digits, _ and -',
            });
            const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
            const role = h('select', { name: 'role' },
                h('option', { value: 'tenant' }, 'Tenant'), h('option', { value: 'owner' }, 'Owner'));
            form = h('form', { id: 'auth-form', role: 'tabpanel', 'aria-labelledby': 'tab-register' },
                field('Your name', name), field('Username', username),
                field('Password (at least 8 characters)', password), field('I am a', role),
                h('button', { type: 'submit', class: 'primary' }, 'Create account'));
            form.addEventListener('submit', (e) => {
                e.preventDefault();
                run(form, async () => {
                    const res = await api.post('api/auth/register', {
                        username: username.value.trim(), password: password.value,
                        name: name.value.trim(), role: role.value,
                    });
                    onSignedIn({ token: res.token, user: res.user });
                });
            });
        } else {
            const token = h('textarea', { name: 'token', rows: 4, required: true, spellcheck: 'false', autocomplete: 'off' });
            form = h('form', { id: 'auth-form', role: 'tabpanel', 'aria-labelledby': 'tab-token' },
                h('p', { class: 'hint' }, 'Paste the chat token your property platform issued for you.'),
                field('Token', token),
                h('button', { type: 'submit', class: 'primary' }, 'Continue'));
            form.addEventListener('submit', (e) => {
                e.preventDefault();
                run(form, async () => {
                    const t = token.value.trim();
                    const s = sessionFromToken(t);
                    if (!s) throw new Error('That does not look like a token.');
                    if (tokenExpired(t)) throw new Error('That token has expired.');
                    onSignedIn(s);
                });
            });
        }
        setChildren(panel, form);
    }

    setChildren(root,
        h('main', { class: 'auth' },
            h('div', { class: 'auth-card' },
                h('h1', { class: 'brand' }, 'Parlor'),
                h('p', { class: 'tagline' }, 'Chat between tenants and property owners'),
                h('div', { role: 'tablist', 'aria-label': 'How to sign in', class: 'tabs' }, tabButtons),
                status,
                panel)));
    show('signin');
    if (notice) status.textContent = notice; // after show(), which clears old messages
    panel.querySelector('input, textarea')?.focus();
}

// Entry point: shows the sign-in screen or the chat, and keeps the session across reloads.
import { Api } from './api.js';
import { renderAuth } from './auth.js';
import { ChatApp } from './chat.js';
import { clearSession, loadSession, saveSession, tokenExpired } from './session.js';

const root = document.getElementById('app');
let session = loadSession();
let app = null;

const api = new Api(() => session?.token, (err) => {
    // A 401 on any request: the token expired, was revoked, or the server's key changed.
    if (!app) return;
    signOut(/expired/i.test(err?.message || '') ? 'Your session has expired. Please sign in again.'
        : 'Your sign-in is no longer valid. Please sign in again.');
});

function signOut(notice) {
    if (app) {
        const a = app;
        app = null;
        a.stop();
    }
    session = null;
    document.title = 'Parlor'; // no unread count of the user who left
    clearSession();
    localStorage.removeItem('parlor.people'); // names seen by this user stay with this user
    root.className = 'app';
    history.replaceState(null, '', location.pathname + location.search);
    renderAuth(root, { api, onSignedIn, notice });
}

function onSignedIn(s) {
    session = s;
    saveSession(s);
    startChat();
}

function startChat() {
    root.className = 'app';
    app = new ChatApp(root, session, api, { onSignOut: (notice) => signOut(notice) });
    app.start();
}

if (session && tokenExpired(session.token)) signOut('Your session has expired. Please sign in again.');
else if (session) startChat();
else renderAuth(root, { api, onSignedIn });

// Another tab signed in or out: follow it.
window.addEventListener('storage', (e) => {
    if (e.key !== 'parlor.session') return;
    const s = loadSession();
    if (!s && app) signOut();
    else if (s && (!session || s.token !== session.token)) {
        if (app) app.stop();
        app = null;
        session = s;
        startChat();
    }
});

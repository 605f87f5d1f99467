// The signed-in user: token and profile in localStorage, so a reload keeps the session.
const KEY = 'parlor.session';

// The payload of a JWT, without verifying it (the server does that): used only to show the
// name of a pasted platform token and to notice an expired one before using it.
export function decodeJwt(token) {
    const parts = String(token).split('.');
    if (parts.length !== 3) return null;
    try {
        const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
        const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
        const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
        const payload = JSON.parse(new TextDecoder().decode(bytes));
        return payload && typeof payload === 'object' ? payload : null;
    } catch {
        return null;
    }
}

export function tokenExpired(token, skewS = 0) {
    const p = decodeJwt(token);
    return !p || (typeof p.exp === 'number' && p.exp * 1000 < Date.now() - skewS * 1000);
}

// A session from a token alone (pasted from a platform): the profile comes from its claims.
export function sessionFromToken(token) {
    const p = decodeJwt(token);
    if (!p || typeof p.sub !== 'string' || !p.sub) return null;
    return {
        token,
        user: {
            id: p.sub,
            username: typeof p.username === 'string' ? p.username : '',
            name: typeof p.name === 'string' && p.name ? p.name : p.sub,
            role: typeof p.role === 'string' ? p.role : '',
        },
    };
}

export function loadSession() {
    try {
        const s = JSON.parse(localStorage.getItem(KEY));
        if (s && typeof s.token === 'string' && s.user && typeof s.user.id === 'string') return s;
    } catch {
        /* corrupt or absent */
    }
    return null;
}

export function saveSession(s) {
    localStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession() {
    localStorage.removeItem(KEY);
}

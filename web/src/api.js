// REST client. Every URL is relative to the page (document.baseURI), so the client works when
// Parlor is mounted under a path prefix by a reverse proxy (https://example.com/chat/).

export class ApiError extends Error {
    constructor(status, code, message, extra = {}) {
        super(message || code || `HTTP ${status}`);
        this.status = status;
        this.code = code || (status ? `HTTP_${status}` : 'NETWORK');
        Object.assign(this, extra);
    }
}

export function apiUrl(path) {
    return new URL(path, document.baseURI).toString();
}

// The path the Socket.IO client must use: "/socket.io/" at the root, "/chat/socket.io/" under
// a proxy prefix.
export function socketPath() {
    return new URL('socket.io/', document.baseURI).pathname;
}

async function errorFrom(res) {
    let body = null;
    try {
        body = await res.json();
    } catch {
        /* not JSON (a proxy's error page, say) */
    }
    const e = body && body.error ? body.error : {};
    const retry = Number(res.headers.get('Retry-After'));
    return new ApiError(res.status, e.code, e.message || res.statusText, {
        retryAfterMs: e.retryAfterMs ?? (retry > 0 ? retry * 1000 : undefined),
        reason: e.reason,
    });
}

export class Api {
    constructor(getToken, onUnauthorized) {
        this.getToken = getToken;
        this.onUnauthorized = onUnauthorized;
    }

    async request(method, path, body) {
        const headers = { Accept: 'application/json' };
        const token = this.getToken();
        if (token) headers.Authorization = `Bearer ${token}`;
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        let res;
        try {
            res = await fetch(apiUrl(path), {
                method,
                headers,
                body: body === undefined ? undefined : JSON.stringify(body),
                cache: 'no-store',
            });
        } catch (err) {
            throw new ApiError(0, 'NETWORK', 'Cannot reach the server');
        }
        if (!res.ok) {
            const err = await errorFrom(res);
            if (res.status === 401 && token && this.onUnauthorized) this.onUnauthorized(err);
            throw err;
        }
        return res.status === 204 ? null : res.json();
    }

    get(path) {
        return this.request('GET', path);
    }

    post(path, body) {
        return this.request('POST', path, body);
    }

    put(path, body) {
        return this.request('PUT', path, body);
    }

    delete(path) {
        return this.request('DELETE', path);
    }

    // Multipart upload with progress (fetch has no upload progress). Returns { promise, abort }.
    upload(path, file, onProgress) {
        const xhr = new XMLHttpRequest();
        const promise = new Promise((resolve, reject) => {
            xhr.open('POST', apiUrl(path));
            const token = this.getToken();
            if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
            xhr.responseType = 'text';
            xhr.upload.onprogress = (e) => {
                if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
            };
            xhr.onload = () => {
                let body = null;
                try {
                    body = JSON.parse(xhr.responseText);
                } catch {
                    /* not JSON */
                }
                if (xhr.status >= 200 && xhr.status < 300 && body) return resolve(body);
                const e = body && body.error ? body.error : {};
                reject(new ApiError(xhr.status, e.code, e.message || xhr.statusText || 'Upload failed', { maxBytes: e.maxBytes }));
            };
            xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'The upload was interrupted'));
            xhr.onabort = () => reject(new ApiError(0, 'ABORTED', 'Upload cancelled'));
            const form = new FormData();
            form.append('file', file, file.name);
            xhr.send(form);
        });
        return { promise, abort: () => xhr.abort() };
    }

    // The bytes of an uploaded file as a blob (downloads need the Authorization header, which
    // an <img src> cannot send).
    async blob(path) {
        const headers = {};
        const token = this.getToken();
        if (token) headers.Authorization = `Bearer ${token}`;
        const res = await fetch(apiUrl(path), { headers });
        if (!res.ok) throw await errorFrom(res);
        return res.blob();
    }
}

// Plain words for the errors a person can do something about.
export function describeError(err, what = 'That') {
    if (!err) return 'Something went wrong';
    if (err.reason === 'BLOCKED') return 'Not sent: messages between you and this person are blocked.';
    switch (err.code) {
    case 'NETWORK': return 'Cannot reach the server. Check your connection and try again.';
    case 'PAYLOAD_TOO_LARGE': return `${what} is too large.${err.message ? ` (${err.message})` : ''}`;
    case 'UNSUPPORTED_MEDIA_TYPE': return `${what} is a type of file that cannot be sent.`;
    case 'RATE_LIMITED': return 'You are sending too fast; wait a moment.';
    default:
        if (err.status === 413) return `${what} is too large.`;
        if (err.status === 415) return `${what} is a type of file that cannot be sent.`;
        return err.message || 'Something went wrong';
    }
}

// What the client knows about other users: names (from searches, the server's user lookup
// when it has one, and a small localStorage cache) and presence.
const KEY = 'parlor.people';
const MAX_CACHED = 500;

export class People {
    constructor(api, onChange) {
        this.api = api;
        this.onChange = onChange;
        this.users = new Map(); // id -> { id, username, name, role }
        this.status = new Map(); // id -> { status, lastSeen }
        this.lookupSupported = true;
        this.pending = new Set();
        this.asked = new Set(); // ids looked up for a missing role (asked once)
        this.timer = null;
        try {
            for (const u of JSON.parse(localStorage.getItem(KEY)) || []) this.users.set(u.id, u);
        } catch {
            /* nothing cached */
        }
    }

    learn(user) {
        if (!user || typeof user.id !== 'string') return;
        const old = this.users.get(user.id);
        const u = {
            id: user.id,
            username: user.username || old?.username || '',
            name: user.name || old?.name || '',
            role: user.role || old?.role || '',
        };
        this.users.set(u.id, u);
        this.save();
    }

    save() {
        const all = [...this.users.values()].slice(-MAX_CACHED);
        try {
            localStorage.setItem(KEY, JSON.stringify(all));
        } catch {
            /* storage full or disabled: the cache is only a convenience */
        }
    }

    get(id) {
        return this.users.get(id);
    }

    name(id) {
        const u = this.users.get(id);
        if (u && (u.name || u.username)) return u.name || u.username;
        if (!u) this.want(id);
        return `User ${String(id).slice(-6)}`;
    }

    // 'tenant', 'owner', ... or '' when unknown (then asks the server once).
    role(id) {
        const u = this.users.get(id);
        if (u?.role) return u.role;
        if (!this.asked.has(id)) {
            this.asked.add(id);
            this.want(id);
        }
        return '';
    }

    // Asks the server for users it has not named yet, batched (GET api/chat/users?ids=a,b).
    // Servers without that lookup answer 400/404 once and are not asked again.
    want(id) {
        if (!this.lookupSupported || this.pending.has(id)) return;
        this.pending.add(id);
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.flush(), 50);
    }

    async flush() {
        const ids = [...this.pending].slice(0, 50);
        if (!ids.length) return;
        try {
            const res = await this.api.get(`api/chat/users?ids=${ids.map(encodeURIComponent).join(',')}`);
            for (const u of res.users || []) this.learn(u);
            for (const id of ids) if (!this.users.has(id)) this.users.set(id, { id });
            this.onChange();
        } catch (err) {
            if (err.status === 400 || err.status === 404 || err.status === 405) this.lookupSupported = false;
            for (const id of ids) if (!this.users.has(id)) this.users.set(id, { id });
        }
        for (const id of ids) this.pending.delete(id);
        // More than one batch was wanted (a large group's member list): ask for the rest.
        if (this.pending.size && this.lookupSupported) this.timer = setTimeout(() => this.flush(), 0);
        else this.pending.clear();
    }

    setStatus(s) {
        if (!s || typeof s.userId !== 'string') return;
        this.status.set(s.userId, { status: s.status, lastSeen: s.lastSeen || null });
    }

    online(id) {
        return this.status.get(id)?.status === 'online';
    }
}

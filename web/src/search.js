// Finding people by username in the sidebar.
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { describeError } from './api.js';
import { h, setChildren } from './dom.js';
import { initials } from './format.js';

export class SearchMethods {
    async search(q) {
        const seq = (this.searchSeq = (this.searchSeq || 0) + 1);
        const list = this.el.results;
        q = q.trim().replace(/^@/, '');
        if (!q) {
            list.replaceChildren();
            this.el.searchStatus.textContent = '';
            return;
        }
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(q)) {
            list.replaceChildren();
            this.el.searchStatus.textContent = 'Usernames have only letters, digits, _ and -.';
            return;
        }
        try {
            const res = await this.api.get(`api/chat/users?q=${encodeURIComponent(q)}&limit=10`);
            if (seq !== this.searchSeq) return;
            const users = (res.users || []).filter((u) => u.id !== this.me.id);
            for (const u of users) this.people.learn(u);
            this.el.searchStatus.textContent = users.length ? `${users.length} found` : 'Nobody with that username.';
            setChildren(list, users.map((u) => h('li', {},
                h('button', { type: 'button', class: 'person', onclick: () => this.startWith(u) },
                    h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(u.name || u.username)),
                    h('span', { class: 'person-text' },
                        h('span', { class: 'person-name' }, u.name || u.username),
                        h('span', { class: 'person-sub' }, `@${u.username}${u.role ? ` · ${u.role}` : ''}`))))));
        } catch (err) {
            if (seq !== this.searchSeq) return;
            list.replaceChildren();
            this.el.searchStatus.textContent = err.status === 404 ? 'Search is not available on this server.' : describeError(err);
        }
    }

    clearSearch() {
        this.el.search.value = '';
        this.el.results.replaceChildren();
        this.el.searchStatus.textContent = '';
    }
}

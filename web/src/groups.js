// Groups: the "New group" dialog.
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { describeError } from './api.js';
import { h, setChildren } from './dom.js';

export class GroupMethods {
    openGroupDialog() {
        const d = this.el.groupDialog;
        const picked = new Map();
        const title = h('input', { id: 'group-title', required: true, maxlength: 100, autocomplete: 'off' });
        const q = h('input', { id: 'group-search', type: 'search', autocomplete: 'off', placeholder: 'username' });
        const results = h('ul', { class: 'results', 'aria-label': 'People found' });
        const chips = h('ul', { class: 'chips', 'aria-label': 'Members' });
        const err = h('p', { class: 'form-error', role: 'alert' });
        const renderChips = () => setChildren(chips, [...picked.values()].map((u) => h('li', { class: 'chip' },
            u.name || u.username,
            h('button', { type: 'button', 'aria-label': `Remove ${u.name || u.username}`, onclick: () => { picked.delete(u.id); renderChips(); } }, '×'))));
        let timer;
        q.addEventListener('input', () => {
            clearTimeout(timer);
            timer = setTimeout(async () => {
                const v = q.value.trim().replace(/^@/, '');
                if (!/^[A-Za-z0-9_-]{1,64}$/.test(v)) return results.replaceChildren();
                try {
                    const res = await this.api.get(`api/chat/users?q=${encodeURIComponent(v)}&limit=10`);
                    setChildren(results, (res.users || []).filter((u) => u.id !== this.me.id).map((u) => h('li', {},
                        h('button', { type: 'button', class: 'person', onclick: () => { this.people.learn(u); picked.set(u.id, u); renderChips(); q.value = ''; results.replaceChildren(); q.focus(); } },
                            h('span', { class: 'person-name' }, u.name || u.username),
                            h('span', { class: 'person-sub' }, ` @${u.username}`)))));
                } catch (e) {
                    err.textContent = describeError(e);
                }
            }, 200);
        });
        const form = h('form', { method: 'dialog', class: 'group-form' },
            h('h2', { id: 'group-dialog-title' }, 'New group'),
            h('div', { class: 'field' }, h('label', { for: 'group-title' }, 'Group name'), title),
            h('div', { class: 'field' }, h('label', { for: 'group-search' }, 'Add people by username'), q),
            results, chips, err,
            h('div', { class: 'dialog-actions' },
                h('button', { type: 'button', onclick: () => d.close() }, 'Cancel'),
                h('button', { type: 'submit', class: 'primary' }, 'Create group')));
        form.addEventListener('submit', async (e) => {
            e.preventDefault();
            if (!picked.size) {
                err.textContent = 'Add at least one person.';
                return;
            }
            try {
                const res = await this.api.post('api/chat/conversations', { participantIds: [...picked.keys()], title: title.value.trim() });
                const conv = this.upsertConv(res.conversation || res);
                d.close();
                this.renderList();
                this.open(conv._id);
            } catch (e2) {
                err.textContent = describeError(e2);
            }
        });
        setChildren(d, form);
        d.showModal();
        title.focus();
    }
}

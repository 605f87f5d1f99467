// Groups: the "New group" dialog, and the member list that the "N members" button in a group's
// header opens (names, roles, presence).
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { describeError } from './api.js';
import { h, setChildren } from './dom.js';
import { initials, lastSeen } from './format.js';

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

    openMembers() {
        const conv = this.activeConv();
        if (!conv || this.peerOf(conv)) return;
        this.membersOf = conv._id;
        // Presence of everyone listed (get_status takes 100 ids at a time).
        const ids = (conv.participants || []).filter((p) => p !== this.me.id);
        for (let i = 0; i < ids.length; i += 100) {
            this.emit('get_status', { userIds: ids.slice(i, i + 100) }, 5000).then((ack) => {
                for (const st of ack.statuses || []) this.people.setStatus(st);
                this.renderMembers();
            }, () => {});
        }
        const d = this.el.membersDialog;
        this.el.membersTitle = h('h2', { id: 'members-title' });
        this.el.membersCount = h('p', { class: 'hint' });
        this.el.membersList = h('ul', { class: 'members-list', 'aria-labelledby': 'members-title' });
        setChildren(d, h('div', { class: 'members-form' }, this.el.membersTitle, this.el.membersCount, this.el.membersList,
            h('div', { class: 'dialog-actions' },
                h('button', { type: 'button', class: 'primary', autofocus: true, onclick: () => d.close() }, 'Close'))));
        d.showModal();
        this.renderMembers();
    }

    // Fills the member list while it is open (names, roles and presence arrive over time).
    renderMembers() {
        const d = this.el.membersDialog;
        if (!d.open) return;
        const conv = this.convs.get(this.membersOf);
        if (!conv) return d.close();
        const members = (conv.participants || []).map((id) => {
            const u = this.people.get(id);
            const st = this.people.status.get(id);
            return {
                id,
                name: this.people.name(id),
                username: u?.username || '',
                role: this.people.role(id),
                presence: id === this.me.id || st?.status === 'online' ? 'online' : st ? lastSeen(st.lastSeen) : '',
                online: id === this.me.id || st?.status === 'online',
            };
        }).sort((a, b) => (b.id === this.me.id) - (a.id === this.me.id) || b.online - a.online || a.name.localeCompare(b.name));
        const n = members.length;
        this.el.membersTitle.textContent = this.convName(conv);
        this.el.membersCount.textContent = `${n} member${n === 1 ? '' : 's'}`;
        setChildren(this.el.membersList, members.map((m) => h('li', { class: 'member' },
            h('span', { class: 'avatar-wrap', 'aria-hidden': 'true' },
                h('span', { class: 'avatar' }, initials(m.name)),
                h('span', { class: `dot${m.online ? ' online' : ''}` })),
            h('span', { class: 'person-text' },
                h('span', { class: 'person-name' }, m.name, m.id === this.me.id ? ' (you)' : ''),
                h('span', { class: 'person-sub' }, [m.username ? `@${m.username}` : '', m.presence].filter(Boolean).join(' · '))),
            m.role ? h('span', { class: 'role' }, m.role) : null)));
    }
}

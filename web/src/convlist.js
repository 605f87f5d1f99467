// The conversation list in the sidebar: keyed rows updated in place, newest first, with the
// last message (or who is typing), the time, the unread badge and the online dot.
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { h, setChildren } from './dom.js';
import { initials, shortTime } from './format.js';

function timeOf(c) {
    return Date.parse(c.lastMessage?.createdAt || c.updatedAt || c.createdAt || 0) || 0;
}

export class ConvListMethods {
    renderList() {
        if (this.stopped) return;
        const convs = [...this.convs.values()].sort((a, b) => timeOf(b) - timeOf(a));
        this.el.empty.hidden = convs.length > 0;
        const list = this.el.convList;
        const seen = new Set();
        let cursor = list.firstChild;
        for (const c of convs) {
            seen.add(c._id);
            let li = this.convEls.get(c._id);
            if (!li) {
                li = h('li', { dataset: { id: c._id } }, h('button', { type: 'button', class: 'conv', onclick: () => this.open(c._id) }));
                this.convEls.set(c._id, li);
            }
            this.fillConv(li.firstChild, c);
            if (li !== cursor) list.insertBefore(li, cursor);
            else cursor = cursor.nextSibling;
        }
        for (const [id, li] of this.convEls) {
            if (!seen.has(id)) {
                li.remove();
                this.convEls.delete(id);
            }
        }
    }

    preview(m) {
        if (!m) return '';
        const mine = m.sender === this.me.id ? 'You: ' : '';
        if (m.deleted) return `${mine}Message deleted`;
        if (m.type === 'image') return `${mine}Photo${m.file?.name ? `: ${m.file.name}` : ''}`;
        if (m.type === 'file') return `${mine}File: ${m.file?.name || 'file'}`;
        return mine + (m.content || '').replace(/\s+/g, ' ').slice(0, 120);
    }

    fillConv(btn, c) {
        const name = this.convName(c);
        const peer = this.peerOf(c);
        const online = peer && this.people.online(peer);
        const unread = c._id === this.activeId && document.visibilityState === 'visible' ? 0 : (c.unreadCount || 0);
        const typers = this.typingNames(c._id);
        const last = typers.length ? `${typers.length > 1 ? 'Several people are' : `${typers[0]} is`} typing…` : this.preview(c.lastMessage);
        const sig = JSON.stringify([name, online, unread, last, c.lastMessage?.createdAt, c._id === this.activeId]);
        if (btn.dataset.sig === sig) return;
        btn.dataset.sig = sig;
        if (c._id === this.activeId) btn.setAttribute('aria-current', 'true');
        else btn.removeAttribute('aria-current');
        btn.setAttribute('aria-label', [name, online ? 'online' : null, unread ? `${unread} unread` : null, last].filter(Boolean).join(', '));
        setChildren(btn,
            h('span', { class: 'avatar-wrap', 'aria-hidden': 'true' },
                h('span', { class: 'avatar' }, initials(name)),
                peer ? h('span', { class: `dot${online ? ' online' : ''}` }) : null),
            h('span', { class: 'conv-main' },
                h('span', { class: 'conv-name' }, name),
                h('span', { class: `conv-last${typers.length ? ' is-typing' : ''}` }, last)),
            h('span', { class: 'conv-side' },
                h('span', { class: 'conv-time' }, shortTime(c.lastMessage?.createdAt || c.updatedAt)),
                unread ? h('span', { class: 'badge' }, unread > 99 ? '99+' : String(unread)) : null));
    }
}

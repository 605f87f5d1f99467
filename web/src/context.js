// Conversations about something (issue 15): a conversation's context ({type, id, title}) is
// shown as the thread's subject in the list and the header; a deep link
// #/context/<type>/<id>?with=<userId>&title=<title> opens (or starts) the one-to-one
// conversation about it (a listing page's "Message the owner" button points there); system
// notices (type "system") are shown as a notice line, not as someone's message.
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { describeError } from './api.js';
import { h, setChildren } from './dom.js';
import { fullTime } from './format.js';

const PART = /^[A-Za-z0-9_.:-]{1,64}$/;
const USER = /^[A-Za-z0-9_-]{1,64}$/;

// The subject of a conversation about something, or '' (user text: only ever set as text).
export function contextSubject(conv) {
    const c = conv?.context;
    if (!c) return '';
    return (c.title || '').trim() || `${c.type} ${c.id}`;
}

// The parts of a #/context/... hash, or null when it is not one (or not a valid one).
export function parseContextHash(hash) {
    const m = /^#\/context\/([^/?]+)\/([^/?]+)(?:\?(.*))?$/.exec(hash || '');
    if (!m) return null;
    let type, id;
    try {
        type = decodeURIComponent(m[1]);
        id = decodeURIComponent(m[2]);
    } catch {
        return null;
    }
    const q = new URLSearchParams(m[3] || '');
    const withUser = q.get('with') || '';
    const title = (q.get('title') || '').slice(0, 200);
    if (!PART.test(type) || !PART.test(id) || !USER.test(withUser)) return null;
    return { type, id, with: withUser, title };
}

export class ContextMethods {
    contextSubject(conv) {
        return contextSubject(conv);
    }

    // true when the hash was a context link (handled: opened, started, or an error shown).
    routeContext() {
        if (!/^#\/context\//.test(location.hash)) return false;
        const link = parseContextHash(location.hash);
        if (!link || link.with === this.me.id) {
            this.toast(link ? 'That link is about a conversation with yourself.' : 'That conversation link is not valid.');
            history.replaceState(null, '', '#/');
            this.open(null, false);
            return true;
        }
        const found = [...this.convs.values()].find((c) => c.context && c.context.type === link.type
            && c.context.id === link.id && this.peerOf(c) === link.with);
        if (found) {
            this.open(found._id);
            return true;
        }
        const context = { type: link.type, id: link.id };
        if (link.title) context.title = link.title;
        this.api.post('api/chat/conversations', { participantIds: [link.with], context }).then((conv) => {
            if (this.stopped) return;
            this.upsertConv(conv);
            this.renderList();
            this.open(conv._id);
        }, (err) => {
            if (this.stopped) return;
            this.toast(`Could not open the conversation: ${describeError(err)}`);
            history.replaceState(null, '', '#/');
            this.open(null, false);
        });
        return true;
    }

    // A group's members changed (the platform's server API): the new document; when we were
    // removed, the conversation leaves the list (and closes if it was open).
    onConversationUpdated(c) {
        if (!c || typeof c._id !== 'string') return;
        if (!(c.participants || []).includes(this.me.id)) {
            this.convs.delete(c._id);
            this.threads.delete(c._id);
            if (this.activeId === c._id) {
                this.toast('You were removed from this conversation.');
                this.open(null);
            }
            this.renderList();
            return;
        }
        const old = this.convs.get(c._id);
        // keep what this client counted itself (unread, last message); take the members and names
        this.upsertConv({ ...c, unreadCount: old?.unreadCount ?? c.unreadCount, lastMessage: old?.lastMessage ?? c.lastMessage });
        this.renderList();
        if (this.activeId === c._id) this.renderHeader();
    }

    // A system notice: one centred line, with its time.
    fillSystem(li, m) {
        li.className = 'msg system-notice';
        if (m.seq) li.dataset.seq = String(m.seq);
        setChildren(li, h('p', { class: 'notice', role: 'note' },
            h('span', { class: 'notice-text' }, m.deleted ? 'Notice removed' : m.content || ''),
            h('time', { class: 'notice-time', datetime: m.createdAt || '' }, m.createdAt ? fullTime(m.createdAt) : '')));
    }
}

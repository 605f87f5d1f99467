// Editing and deleting your own messages (issue 16): the "Edit" and "Delete" buttons of a message
// (always in the tab order, so keyboard users reach them; on touch screens always visible, with a
// pointer shown on hover or focus), inline editing (Enter saves, Escape cancels, Shift+Enter a new
// line), ArrowUp in an empty message box edits your last text message, and the live events
// message_updated / message_deleted (also replayed after a reconnect, see docs/api.md).
// Methods of ChatApp (chat.js), mixed into its prototype.
import { h } from './dom.js';
import { describeError } from './api.js';
import { keyOf } from './thread.js';

export class EditMethods {
    // The message, with that _id, of the thread (and its key), or null.
    findMessage(t, id) {
        for (const [key, m] of t.msgs) if (m._id === id) return { key, m };
        return null;
    }

    // message_updated: the whole message as it is now. Unknown ones (sent and edited while we
    // were away, replayed) are simply merged in like a new message.
    onMessageUpdated(m) {
        if (!m || !m._id || !m.conversationId) return;
        const t = this.threads.get(m.conversationId);
        const conv = this.convs.get(m.conversationId);
        if (t) {
            const found = this.findMessage(t, m._id);
            if (found) t.msgs.set(found.key, { ...found.m, ...m });
            else this.merge(t, [m]);
        }
        if (conv && conv.lastMessage && conv.lastMessage._id === m._id) conv.lastMessage = m;
        this.renderList();
        if (this.activeId === m.conversationId) this.renderMessages();
    }

    // message_deleted {conversationId, messageId, seq}: the message becomes a placeholder.
    onMessageDeleted(d) {
        if (!d || !d.messageId || !d.conversationId) return;
        const t = this.threads.get(d.conversationId);
        const conv = this.convs.get(d.conversationId);
        let m = null;
        if (t) {
            const found = this.findMessage(t, d.messageId);
            if (found) {
                m = { ...found.m, content: '', file: null, deleted: true };
                t.msgs.set(found.key, m);
            }
        }
        if (conv) {
            if (conv.lastMessage && conv.lastMessage._id === d.messageId) {
                conv.lastMessage = { ...conv.lastMessage, content: '', file: null, deleted: true };
            }
            // It no longer counts as unread (docs/api.md): one less if we had counted it.
            const theirs = m ? m.sender !== this.me.id : true;
            if (theirs && d.seq > (conv.myReadSeq || 0) && conv.unreadCount > 0 &&
                (!m || m.sender !== this.me.id)) {
                conv.unreadCount -= 1;
                conv.liveUnread?.delete(d.seq);
            }
        }
        if (this.editing && this.editing.id === d.messageId) this.editing = null;
        this.renderList();
        if (this.activeId === d.conversationId) this.renderMessages();
    }

    canEdit(m) {
        return m.sender === this.me.id && m._id && m.seq && !m.deleted && m.type === 'text' && !m._pending;
    }

    // The buttons under one of your own messages.
    messageActions(m, key) {
        if (m.sender !== this.me.id || !m._id || !m.seq || m.deleted || m._pending) return null;
        return h('span', { class: 'msg-actions' },
            this.canEdit(m) ? h('button', { type: 'button', class: 'msg-action', 'aria-label': 'Edit message', onclick: () => this.startEdit(m, key) }, 'Edit') : null,
            h('button', { type: 'button', class: 'msg-action', 'aria-label': 'Delete message', onclick: () => this.deleteMessage(m) }, 'Delete'));
    }

    // The inline editor in place of the message text.
    editorNode(m) {
        const input = h('textarea', { class: 'edit-input', rows: 2, maxlength: 4000, 'aria-label': 'Edit message' });
        input.value = this.editing.text;
        const save = () => this.saveEdit(m, input.value);
        input.addEventListener('input', () => {
            this.editing.text = input.value;
        });
        input.addEventListener('keydown', (e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                e.preventDefault();
                save();
            } else if (e.key === 'Escape') {
                e.preventDefault();
                this.cancelEdit();
            }
        });
        queueMicrotask(() => {
            input.focus();
            input.setSelectionRange(input.value.length, input.value.length);
        });
        return h('div', { class: 'editor' }, input,
            this.editing.error ? h('p', { class: 'edit-error', role: 'alert' }, this.editing.error) : null,
            h('div', { class: 'edit-buttons' },
                h('button', { type: 'button', onclick: () => this.cancelEdit() }, 'Cancel'),
                h('button', { type: 'button', class: 'primary', disabled: this.editing.busy, onclick: save }, 'Save')));
    }

    startEdit(m, key) {
        if (!this.canEdit(m)) return;
        this.editing = { id: m._id, key, text: m.content, busy: false, error: null };
        this.renderMessages();
    }

    cancelEdit() {
        this.editing = null;
        this.renderMessages();
        this.el.input.focus();
    }

    async saveEdit(m, text) {
        if (!this.editing || this.editing.busy) return;
        if (!text.trim() || text === m.content) {
            this.cancelEdit();
            return;
        }
        this.editing.busy = true;
        this.editing.error = null;
        try {
            let ack;
            try {
                ack = await this.emit('edit_message', { messageId: m._id, content: text });
            } catch (err) {
                if (err.code !== 'NETWORK' && err.code !== 'TIMEOUT') throw err;
                ack = await this.api.request('PATCH', `api/chat/messages/${encodeURIComponent(m._id)}`, { content: text });
            }
            this.editing = null;
            this.onMessageUpdated(ack.message);
            this.el.input.focus();
        } catch (err) {
            if (this.editing) {
                this.editing.busy = false;
                this.editing.error = err.code === 'FORBIDDEN' ? `${err.message}.` : describeError(err);
                this.renderMessages();
            }
        }
    }

    async deleteMessage(m) {
        if (!window.confirm('Delete this message for everyone?')) return;
        try {
            let ack;
            try {
                ack = await this.emit('delete_message', { messageId: m._id });
            } catch (err) {
                if (err.code !== 'NETWORK' && err.code !== 'TIMEOUT') throw err;
                ack = await this.api.request('DELETE', `api/chat/messages/${encodeURIComponent(m._id)}`);
            }
            this.onMessageDeleted({ conversationId: ack.message.conversationId, messageId: ack.message._id, seq: ack.message.seq });
        } catch (err) {
            window.alert(`The message was not deleted: ${describeError(err)}`);
        }
    }

    // ArrowUp in the empty message box: edit your last text message of the open conversation.
    editLast() {
        const t = this.activeId && this.threads.get(this.activeId);
        if (!t) return false;
        const mine = t.sorted().filter((m) => this.canEdit(m)).pop();
        if (!mine) return false;
        this.startEdit(mine, keyOf(mine, this.me.id));
        return true;
    }
}

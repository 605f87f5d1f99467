// The open conversation's message list: keyed <li> rows updated in place, a heading row for each
// day (Today, Yesterday, a date), links, ticks, photos and file buttons, "load earlier".
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { h, icon, setChildren } from './dom.js';
import { dayKey, dayLabel, fileSize, fullTime, shortTime } from './format.js';
import { linkify } from './links.js';
import { keyOf } from './thread.js';

export class MessageMethods {
    renderOlder() {
        const t = this.threads.get(this.activeId);
        const b = this.el.older;
        if (!t || !this.activeConv()?._id) {
            b.hidden = true;
            return;
        }
        b.hidden = false;
        if (t.error && !t.loading && !t.loadingOlder) {
            b.disabled = false;
            b.textContent = `${t.error} Try again`;
            b.onclick = () => (t.loaded ? this.loadOlder(t) : this.loadThread(t));
            return;
        }
        b.onclick = () => this.loadOlder(t);
        b.disabled = t.loading || t.loadingOlder || !t.hasOlder;
        b.textContent = t.loading || t.loadingOlder ? 'Loading…'
            : t.hasOlder ? 'Load earlier messages' : t.loaded ? 'This is the beginning of the conversation' : '';
        b.classList.toggle('at-start', t.loaded && !t.hasOlder);
    }

    renderMessages() {
        if (this.stopped) return;
        const conv = this.activeConv();
        const t = conv && this.threads.get(conv._id || conv.id);
        const list = this.el.messages;
        const wasAtBottom = this.stickToBottom;
        if (!t) {
            list.replaceChildren();
            this.msgEls.clear();
            return;
        }
        const group = !this.peerOf(conv);
        const seen = new Set();
        let cursor = list.firstChild;
        // Puts the row of key at the cursor (creating or refilling it when its sig changed).
        const place = (key, sig, fill) => {
            seen.add(key);
            let entry = this.msgEls.get(key);
            if (!entry) {
                entry = { el: h('li', { dataset: { key } }), sig: null };
                this.msgEls.set(key, entry);
            }
            if (entry.sig !== sig) {
                entry.sig = sig;
                fill(entry.el);
            }
            if (entry.el !== cursor) list.insertBefore(entry.el, cursor);
            else cursor = cursor.nextSibling;
        };
        let prev = null;
        let prevDay = '';
        for (const m of t.sorted()) {
            // A day heading above the first message of each day, wherever that message came
            // from (the first page, an older page loaded later, a live message after midnight).
            const day = dayKey(m.createdAt) || prevDay;
            const newDay = day !== prevDay;
            if (newDay) {
                const label = dayLabel(m.createdAt);
                place(`day:${day}`, label, (li) => this.fillDay(li, label, day));
            }
            prevDay = day;
            const key = keyOf(m, this.me.id);
            const showSender = group && m.sender !== this.me.id && (!prev || prev.sender !== m.sender || newDay);
            place(key, this.msgSig(m, conv, showSender), (li) => this.fillMessage(li, m, conv, showSender, key));
            prev = m;
        }
        for (const [key, entry] of this.msgEls) {
            if (!seen.has(key)) {
                entry.el.remove();
                this.msgEls.delete(key);
            }
        }
        if (wasAtBottom) this.scrollToBottom();
    }

    fillDay(li, label, day) {
        li.className = 'day';
        setChildren(li, h('h3', { class: 'day-label' }, h('time', { datetime: day }, label)));
    }

    tickState(m, conv) {
        if (m._failed) return 'failed';
        if (m._pending || !m.seq) return 'pending';
        if (m.read || (conv.peerReadSeq || 0) >= m.seq) return 'read';
        return 'sent';
    }

    msgSig(m, conv, showSender) {
        const mine = m.sender === this.me.id;
        const editing = this.editing && this.editing.id === m._id && m._id ? [this.editing.busy, this.editing.error] : 0;
        return JSON.stringify([m._id, m.seq, m.content, m.type, m.file?.id, m.file?.name, mine ? this.tickState(m, conv) : 0,
            m.editedAt || null, !!m.deleted, editing,
            m._failed, m._progress === undefined ? -1 : 0, showSender, showSender ? this.people.name(m.sender) : '']);
    }

    updateProgress(key, p) {
        const entry = this.msgEls.get(key);
        const bar = entry?.el.querySelector('progress');
        if (bar) {
            bar.value = p;
            bar.textContent = `${Math.round(p * 100)}%`;
        }
    }

    fillMessage(li, m, conv, showSender, key) {
        if (m.type === 'system') return this.fillSystem(li, m); // a notice line (context.js)
        const mine = m.sender === this.me.id;
        li.className = `msg ${mine ? 'mine' : 'theirs'}${m._failed ? ' failed' : ''}${m._pending ? ' pending' : ''}`;
        if (m.seq) li.dataset.seq = String(m.seq);
        const body = [];
        const editing = this.editing && m._id && this.editing.id === m._id;
        if (m.deleted) {
            li.classList.add('deleted');
            body.push(h('p', { class: 'text deleted-text' }, 'Message deleted'));
        } else if (editing) {
            body.push(this.editorNode(m));
        } else if (m.type === 'image' && m.file) body.push(this.imageNode(m));
        else if (m.type === 'file' && m.file) body.push(this.fileNode(m));
        if (m.content && !m.deleted && !editing) body.push(h('p', { class: 'text' }, linkify(m.content)));
        if (m._progress !== undefined && m._pending) {
            body.push(h('progress', { max: 1, value: m._progress, 'aria-label': `Uploading ${m.file?.name || 'file'}` }, `${Math.round(m._progress * 100)}%`));
        }
        const meta = [h('time', { datetime: m.createdAt || '', title: fullTime(m.createdAt) }, shortTime(m.createdAt))];
        if (m.editedAt && !m.deleted) meta.push(h('span', { class: 'edited', title: `Edited ${fullTime(m.editedAt)}` }, 'edited'));
        if (mine && !editing) meta.unshift(this.messageActions(m, key));
        if (mine) {
            const state = this.tickState(m, conv);
            // Sent: one grey check. Read: two checks in the read colour. Named for screen readers
            // and on hover.
            const label = { pending: 'Sending', sent: 'Sent', read: 'Read', failed: 'Not sent' }[state];
            const mark = state === 'sent' ? icon('check', 'tick-icon') : state === 'read' ? icon('checks', 'tick-icon')
                : h('span', { 'aria-hidden': 'true' }, state === 'pending' ? '◷' : '!');
            meta.push(h('span', { class: 'tick', dataset: { state }, role: 'img', 'aria-label': label, title: label }, mark));
        }
        const failed = m._failed ? h('div', { class: 'failed-note' },
            h('span', {}, m._failed),
            !m._uploadFailed && m._retry ? h('button', { type: 'button', onclick: () => this.retry(key) }, 'Retry') : null,
            h('button', { type: 'button', onclick: () => this.discard(key) }, 'Dismiss')) : null;
        setChildren(li,
            showSender ? h('div', { class: 'sender' }, this.people.name(m.sender)) : null,
            h('div', { class: 'bubble' }, body, h('div', { class: 'meta' }, meta)),
            failed);
    }

    imageNode(m) {
        const name = m.file.name || 'Photo';
        const img = h('img', { alt: name, class: 'thumb-img', decoding: 'async' });
        const btn = h('button', { type: 'button', class: 'thumb', 'aria-label': `Open photo ${name} full size`, onclick: () => this.openImage(m) }, img);
        const onLoad = () => {
            if (this.stickToBottom) this.scrollToBottom();
        };
        img.addEventListener('load', onLoad);
        if (m._previewUrl) img.src = m._previewUrl;
        else if (m.file.id) {
            this.fileBlobUrl(m.file).then((u) => {
                img.src = u;
            }, () => {
                btn.replaceWith(h('p', { class: 'file-missing' }, `Photo “${name}” is not available`));
            });
        }
        return btn;
    }

    fileNode(m) {
        const f = m.file;
        return h('button', {
            type: 'button', class: 'file-link', disabled: !f.id,
            'aria-label': `Download ${f.name || 'file'}, ${fileSize(f.size)}`, onclick: () => this.download(f),
        },
        icon('file', 'icon file-icon'),
        h('span', { class: 'file-text' },
            h('span', { class: 'file-name' }, f.name || 'file'),
            h('span', { class: 'file-size' }, [fileSize(f.size), f.mime].filter(Boolean).join(' · '))));
    }
}

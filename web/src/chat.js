// The chat screen: conversation list, one open conversation, and the live Socket.IO session.
// State lives in plain objects; the DOM is updated in place (keyed elements) so focus, scroll
// position and images survive updates. User strings only ever reach the DOM as text.
import { io } from 'socket.io-client';

import { ApiError, describeError, socketPath } from './api.js';
import { h, icon, setChildren } from './dom.js';
import { fileSize, fullTime, initials, lastSeen, randomId, shortTime } from './format.js';
import { People } from './people.js';

const PAGE = 50;
const TYPING_RENEW_MS = 2000; // resend isTyping:true at most this often while typing
const TYPING_IDLE_MS = 3000; // no keystroke for this long: isTyping:false
const TYPING_SHOW_MS = 8000; // a remote "typing" without renewal fades after this
const ACK_TIMEOUT_MS = 10000;

// A message's identity in the client: our own messages by clientMsgId (so the pending copy and
// the stored one are the same entry), everyone else's by _id.
function keyOf(m, me) {
    return m.clientMsgId && m.sender === me ? `c:${m.clientMsgId}` : `m:${m._id}`;
}

function timeOf(c) {
    return Date.parse(c.lastMessage?.createdAt || c.updatedAt || c.createdAt || 0) || 0;
}

class Thread {
    constructor(id) {
        this.id = id; // conversation id, or "draft:<userId>"
        this.msgs = new Map(); // key -> message
        this.nextCursor = null;
        this.hasOlder = false;
        this.loaded = false;
        this.loading = false;
        this.loadingOlder = false;
        this.error = null;
    }

    sorted() {
        return [...this.msgs.values()].sort((a, b) => {
            const sa = a.seq ?? Infinity;
            const sb = b.seq ?? Infinity;
            if (sa !== sb) return sa - sb;
            return (a._local ?? 0) - (b._local ?? 0);
        });
    }

    maxSeq() {
        let m = 0;
        for (const x of this.msgs.values()) if (x.seq > m) m = x.seq;
        return m;
    }

    minSeq() {
        let m = Infinity;
        for (const x of this.msgs.values()) if (x.seq && x.seq < m) m = x.seq;
        return m;
    }
}

export class ChatApp {
    constructor(root, session, api, { onSignOut }) {
        this.root = root;
        this.token = session.token;
        this.me = session.user;
        this.api = api;
        this.onSignOut = onSignOut;
        this.people = new People(api, () => this.renderAll());
        this.people.learn(this.me);
        this.convs = new Map();
        this.convCursor = null;
        this.threads = new Map();
        this.activeId = null; // conversation id or "draft:<userId>"
        this.drafts = new Map(); // "draft:<userId>" -> pseudo-conversation
        this.outbox = []; // messages waiting for their ack: { key, threadId, payload, inflight, timer }
        this.typing = new Map(); // convId -> Map(userId -> timer)
        this.typingOut = { convId: null, sentAt: 0, stopTimer: null };
        this.blobs = new Map(); // fileId -> Promise<object URL>
        this.msgEls = new Map(); // key -> { el, sig } for the open conversation
        this.convEls = new Map(); // convId -> li
        this.connectedOnce = false;
        this.stickToBottom = true;
        this.stopped = false;
        this.clock = setInterval(() => this.renderHeader(), 30000);
    }

    // ---- lifecycle ----

    start() {
        this.buildDom();
        this.connect();
        this.loadConversations().then(() => this.route());
        this.onHash = () => this.route();
        this.onVisible = () => {
            if (document.visibilityState === 'visible') this.markRead();
        };
        window.addEventListener('hashchange', this.onHash);
        document.addEventListener('visibilitychange', this.onVisible);
        window.addEventListener('focus', this.onVisible);
    }

    stop() {
        this.stopped = true;
        clearInterval(this.clock);
        window.removeEventListener('hashchange', this.onHash);
        document.removeEventListener('visibilitychange', this.onVisible);
        window.removeEventListener('focus', this.onVisible);
        if (this.socket) {
            this.socket.removeAllListeners();
            this.socket.io.removeAllListeners();
            this.socket.disconnect();
        }
        for (const p of this.blobs.values()) p.then((u) => URL.revokeObjectURL(u), () => {});
        for (const o of this.outbox) clearTimeout(o.timer);
    }

    signOut(notice) {
        this.stop();
        this.onSignOut(notice);
    }

    // ---- socket ----

    connect() {
        const socket = io({
            path: socketPath(),
            auth: { token: this.token },
            reconnectionDelay: 500,
            reconnectionDelayMax: 3000,
        });
        this.socket = socket;
        socket.on('connect', () => this.onConnect());
        socket.on('disconnect', (reason) => {
            for (const o of this.outbox) o.inflight = false;
            if (reason !== 'io client disconnect') this.banner('Connection lost. Reconnecting…');
        });
        socket.on('connect_error', (err) => {
            if (err && err.message === 'unauthorized') {
                const code = err.data?.code;
                this.signOut(code === 'AUTH_EXPIRED' ? 'Your session has expired. Please sign in again.'
                    : 'Your sign-in is no longer valid. Please sign in again.');
                return;
            }
            this.banner(err && err.message === 'rate_limited' ? 'Too many connections. Retrying…'
                : 'Cannot reach the server. Retrying…');
        });
        socket.on('receive_message', (m) => this.onMessage(m));
        socket.on('messages_read', (r) => this.onRead(r));
        socket.on('typing', (t) => this.onTyping(t));
        socket.on('user_status', (s) => {
            this.people.setStatus(s);
            this.renderList();
            this.renderHeader();
        });
        socket.on('message_error', (e) => this.onMessageError(e));
    }

    async onConnect() {
        this.banner(null);
        const first = !this.connectedOnce;
        this.connectedOnce = true;
        this.flushOutbox();
        this.requestStatuses();
        if (!first) {
            // Recovered sessions get what they missed as events; others catch up over REST.
            // The conversation list is refreshed either way (cheap, and fixes unread counts).
            await this.loadConversations();
            if (!this.socket.recovered) {
                for (const t of this.threads.values()) if (t.loaded) await this.catchUp(t);
            }
        }
        this.markRead();
    }

    banner(text) {
        this.el.banner.hidden = !text;
        this.el.banner.textContent = text || '';
        this.root.classList.toggle('offline', !!text);
    }

    emit(event, payload, timeoutMs = ACK_TIMEOUT_MS) {
        return new Promise((resolve, reject) => {
            if (!this.socket.connected) return reject(new ApiError(0, 'NETWORK', 'Not connected'));
            this.socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
                if (err) return reject(new ApiError(0, 'TIMEOUT', 'No answer from the server'));
                if (!ack || ack.ok === false) {
                    const e = ack?.error || {};
                    return reject(new ApiError(0, e.code || 'ERROR', e.message, { retryAfterMs: e.retryAfterMs }));
                }
                resolve(ack);
            });
        });
    }

    // Batched: conversations arrive one by one, the question goes once.
    requestStatuses() {
        clearTimeout(this.statusTimer);
        this.statusTimer = setTimeout(() => this.sendStatusRequest(), 30);
    }

    sendStatusRequest() {
        if (this.stopped || !this.socket.connected) return;
        const ids = new Set();
        for (const c of this.convs.values()) for (const p of c.participants || []) if (p !== this.me.id) ids.add(p);
        for (const d of this.drafts.values()) ids.add(d.peer);
        if (!ids.size) return;
        this.emit('get_status', { userIds: [...ids].slice(0, 100) }, 5000).then((ack) => {
            for (const s of ack.statuses || []) this.people.setStatus(s);
            this.renderList();
            this.renderHeader();
        }, () => { /* a server without presence: no dots */ });
    }

    // ---- data ----

    async loadConversations() {
        try {
            const res = await this.api.get('api/chat/conversations?limit=100');
            const seen = new Set();
            for (const c of res.conversations || []) {
                seen.add(c._id);
                this.upsertConv(c);
            }
            this.convCursor = res.nextCursor || null;
            this.el.listError.textContent = '';
            const before = new Set(this.convs.keys());
            for (const id of before) if (!seen.has(id) && !this.threads.get(id)?.msgs.size) this.convs.delete(id);
        } catch (err) {
            if (err.status !== 401) this.el.listError.textContent = describeError(err);
        }
        this.renderList();
        this.renderHeader();
    }

    upsertConv(c) {
        const old = this.convs.get(c._id);
        const conv = { ...old, ...c };
        if (old?.lastMessage && c.lastMessage && old.lastMessage.seq > c.lastMessage.seq) conv.lastMessage = old.lastMessage;
        conv.peerReadSeq = Math.max(old?.peerReadSeq || 0, conv.peerReadSeq || 0);
        if (c.lastMessage && c.lastMessage.sender === this.me.id && c.lastMessage.read) {
            conv.peerReadSeq = Math.max(conv.peerReadSeq, c.lastMessage.seq);
        }
        this.convs.set(c._id, conv);
        const isNew = !old;
        if (isNew && this.socket?.connected) this.requestStatuses();
        // A draft with this peer became real (here, or in another tab of ours).
        const peer = this.peerOf(conv);
        if (peer && this.drafts.has(`draft:${peer}`) && !conv.title && conv.participants.length === 2) {
            this.adoptDraft(`draft:${peer}`, conv._id);
        }
        return conv;
    }

    adoptDraft(draftId, convId) {
        const draft = this.threads.get(draftId);
        this.drafts.delete(draftId);
        if (draft) {
            this.threads.delete(draftId);
            const t = this.thread(convId);
            for (const [k, m] of draft.msgs) if (!t.msgs.has(k)) t.msgs.set(k, { ...m, conversationId: convId });
            for (const o of this.outbox) {
                if (o.threadId === draftId) {
                    o.threadId = convId;
                    o.payload = { ...o.payload, conversationId: convId };
                    delete o.payload.recipientId;
                }
            }
        }
        if (this.activeId === draftId) {
            this.activeId = convId;
            history.replaceState(null, '', `#/c/${encodeURIComponent(convId)}`);
            if (!this.thread(convId).loaded) this.loadThread(this.thread(convId));
            this.renderThread(true);
        }
    }

    thread(id) {
        let t = this.threads.get(id);
        if (!t) {
            t = new Thread(id);
            this.threads.set(id, t);
        }
        return t;
    }

    peerOf(conv) {
        if (!conv) return null;
        if (conv.peer) return conv.peer;
        const others = (conv.participants || []).filter((p) => p !== this.me.id);
        return others.length === 1 && !conv.title ? others[0] : null;
    }

    convName(conv) {
        if (!conv) return '';
        if (conv.title) return conv.title;
        const peer = this.peerOf(conv);
        if (peer) return this.people.name(peer);
        const others = (conv.participants || []).filter((p) => p !== this.me.id);
        return others.map((p) => this.people.name(p)).join(', ') || 'Just you';
    }

    merge(t, messages) {
        const conv = this.convs.get(t.id);
        for (const m of messages || []) {
            const key = keyOf(m, this.me.id);
            const old = t.msgs.get(key);
            // A stored message replaces its pending copy; keep a local preview URL for images.
            const merged = old ? { ...m, _local: old._local, _previewUrl: old._previewUrl } : m;
            t.msgs.set(key, merged);
            if (conv && m.sender === this.me.id && m.read && m.seq > (conv.peerReadSeq || 0)) conv.peerReadSeq = m.seq;
        }
    }

    async loadThread(t) {
        if (t.loading || t.id.startsWith('draft:')) return;
        t.loading = true;
        t.error = null;
        this.renderOlder();
        try {
            const res = await this.api.get(`api/chat/messages/${encodeURIComponent(t.id)}?limit=${PAGE}`);
            this.merge(t, res.messages);
            t.nextCursor = res.nextCursor || null;
            t.hasOlder = !!res.nextCursor;
            t.loaded = true;
        } catch (err) {
            t.error = describeError(err);
        } finally {
            t.loading = false;
        }
        if (this.activeId === t.id) {
            this.renderThread(true);
            this.markRead();
            this.fillViewport(t);
        }
    }

    // Loads older pages while the list does not fill the view (no scrollbar to scroll up with).
    fillViewport(t) {
        requestAnimationFrame(() => {
            const s = this.el.scroller;
            if (this.activeId === t.id && t.hasOlder && s.scrollHeight <= s.clientHeight + 40) this.loadOlder(t);
        });
    }

    async loadOlder(t) {
        if (t.loadingOlder || !t.hasOlder || !t.nextCursor) return;
        t.loadingOlder = true;
        this.renderOlder();
        try {
            const res = await this.api.get(`api/chat/messages/${encodeURIComponent(t.id)}?limit=${PAGE}&before=${encodeURIComponent(t.nextCursor)}`);
            const s = this.el.scroller;
            const fromBottom = s.scrollHeight - s.scrollTop;
            this.merge(t, res.messages);
            t.nextCursor = res.nextCursor || null;
            t.hasOlder = !!res.nextCursor;
            if (this.activeId === t.id) {
                this.renderMessages();
                // Keep what the reader looks at in place: older rows were added above it.
                s.scrollTop = s.scrollHeight - fromBottom;
            }
        } catch (err) {
            t.error = describeError(err);
        } finally {
            t.loadingOlder = false;
            this.renderOlder();
        }
        if (this.activeId === t.id) this.fillViewport(t);
    }

    // After a reconnect without recovery: fetch newest pages until they meet what we have.
    async catchUp(t) {
        const have = t.maxSeq();
        let cursor = null;
        for (let i = 0; i < 20; i++) {
            let res;
            try {
                const q = cursor ? `&before=${encodeURIComponent(cursor)}` : '';
                res = await this.api.get(`api/chat/messages/${encodeURIComponent(t.id)}?limit=${PAGE}${q}`);
            } catch {
                return;
            }
            this.merge(t, res.messages);
            const oldest = res.messages?.[0]?.seq ?? 0;
            if (!res.nextCursor || oldest <= have + 1) break;
            cursor = res.nextCursor;
        }
        const conv = this.convs.get(t.id);
        const last = t.sorted().filter((m) => m.seq).pop();
        if (conv && last && (!conv.lastMessage || conv.lastMessage.seq < last.seq)) conv.lastMessage = last;
        if (this.activeId === t.id) this.renderMessages();
        this.renderList();
    }

    // ---- incoming ----

    onMessage(m) {
        if (!m || !m.conversationId) return;
        let conv = this.convs.get(m.conversationId);
        if (!conv) {
            // A conversation we do not know yet (someone wrote first, or a group we were added to).
            conv = this.upsertConv({ _id: m.conversationId, participants: [m.sender, this.me.id].filter((v, i, a) => a.indexOf(v) === i), lastMessage: m, unreadCount: 0 });
            conv._partial = true;
            clearTimeout(this.convReload);
            this.convReload = setTimeout(() => this.loadConversations(), 100);
        }
        const t = this.threads.get(m.conversationId);
        if (t) this.merge(t, [m]);
        if (!conv.lastMessage || (m.seq || 0) >= (conv.lastMessage.seq || 0)) {
            conv.lastMessage = m;
            conv.updatedAt = m.createdAt;
        }
        if (m.sender !== this.me.id) {
            this.clearTyping(m.conversationId, m.sender);
            if (this.isReading(m.conversationId)) this.markRead();
            else if (!conv._partial || conv.unreadCount === 0) conv.unreadCount = (conv.unreadCount || 0) + 1;
        }
        this.renderList();
        if (this.activeId === m.conversationId) {
            this.renderMessages();
            if (m.sender === this.me.id) this.scrollToBottom();
        }
    }

    onRead(r) {
        if (!r || !r.conversationId) return;
        const conv = this.convs.get(r.conversationId);
        if (!conv) return;
        if (r.readerId === this.me.id) {
            // Read in another tab of ours.
            const t = this.threads.get(r.conversationId);
            if (t && t.loaded) {
                conv.unreadCount = [...t.msgs.values()].filter((m) => m.sender !== this.me.id && m.seq > r.seq).length;
            } else if (conv.lastMessage && r.seq >= conv.lastMessage.seq) {
                conv.unreadCount = 0;
            }
            conv.myReadSeq = Math.max(conv.myReadSeq || 0, r.seq);
        } else {
            conv.peerReadSeq = Math.max(conv.peerReadSeq || 0, r.seq || 0);
        }
        this.renderList();
        if (this.activeId === r.conversationId) this.renderMessages();
    }

    onTyping(ev) {
        if (!ev || !ev.conversationId || ev.userId === this.me.id) return;
        let m = this.typing.get(ev.conversationId);
        if (!m) {
            m = new Map();
            this.typing.set(ev.conversationId, m);
        }
        clearTimeout(m.get(ev.userId));
        if (ev.isTyping) m.set(ev.userId, setTimeout(() => this.clearTyping(ev.conversationId, ev.userId), TYPING_SHOW_MS));
        else m.delete(ev.userId);
        this.renderTyping();
        this.renderList();
    }

    clearTyping(convId, userId) {
        const m = this.typing.get(convId);
        if (!m || !m.has(userId)) return;
        clearTimeout(m.get(userId));
        m.delete(userId);
        this.renderTyping();
        this.renderList();
    }

    typingNames(convId) {
        const m = this.typing.get(convId);
        return m ? [...m.keys()].map((id) => this.people.name(id)) : [];
    }

    onMessageError(e) {
        if (!e) return;
        const o = e.clientMsgId && this.outbox.find((x) => x.payload.clientMsgId === e.clientMsgId);
        if (o) this.failSend(o, new ApiError(0, e.code, e.message, { retryAfterMs: e.retryAfterMs }));
        else this.toast(e.message || e.code || 'The server refused that');
    }

    // ---- read receipts ----

    isReading(convId) {
        return this.activeId === convId && document.visibilityState === 'visible';
    }

    markRead() {
        const conv = this.convs.get(this.activeId);
        const t = this.threads.get(this.activeId);
        if (!conv || !t || !t.loaded || document.visibilityState !== 'visible') return;
        const last = t.sorted().filter((m) => m._id && m.seq).pop();
        if (!last) return;
        const hasUnread = (conv.unreadCount || 0) > 0 ||
            [...t.msgs.values()].some((m) => m.sender !== this.me.id && m.seq > (conv.myReadSeq || 0));
        if (!hasUnread || (conv.markingSeq || 0) >= last.seq) return;
        conv.markingSeq = last.seq;
        conv.unreadCount = 0;
        this.renderList();
        const done = (ack) => {
            conv.myReadSeq = Math.max(conv.myReadSeq || 0, ack?.seq || last.seq);
            if (typeof ack?.unreadCount === 'number') conv.unreadCount = ack.unreadCount;
            this.renderList();
        };
        const payload = { conversationId: conv._id, messageId: last._id };
        this.emit('mark_read', payload).then(done, () => this.api.put(`api/chat/messages/${encodeURIComponent(last._id)}/read`).then(done, () => {
            conv.markingSeq = 0; // try again on the next occasion
        }));
    }

    // ---- sending ----

    activeConv() {
        return this.convs.get(this.activeId) || this.drafts.get(this.activeId) || null;
    }

    sendText(text) {
        const conv = this.activeConv();
        if (!conv || !text.trim()) return;
        this.queueSend(conv, { type: 'text', content: text });
    }

    queueSend(conv, { type, content, fileId, file, previewUrl, existingKey }) {
        const clientMsgId = existingKey ? existingKey.slice(2) : randomId();
        const threadId = conv._id || conv.id;
        const t = this.thread(threadId);
        const key = `c:${clientMsgId}`;
        const old = t.msgs.get(key);
        t.msgs.set(key, {
            ...old,
            clientMsgId,
            conversationId: conv._id || null,
            sender: this.me.id,
            content: content || '',
            type,
            file: file || old?.file || null,
            createdAt: old?.createdAt || new Date().toISOString(),
            _pending: true,
            _failed: null,
            _progress: undefined,
            _local: old?._local ?? performance.now(),
            _previewUrl: previewUrl || old?._previewUrl,
        });
        const payload = { content: content || '', type, clientMsgId };
        if (fileId) payload.fileId = fileId;
        if (conv._id) payload.conversationId = conv._id;
        else payload.recipientId = conv.peer;
        const o = { key, threadId, payload, inflight: false, timer: null };
        this.outbox.push(o);
        this.stopTyping();
        this.renderMessages();
        this.scrollToBottom();
        this.trySend(o);
    }

    flushOutbox() {
        for (const o of this.outbox) this.trySend(o);
    }

    trySend(o) {
        if (o.inflight || !this.socket.connected || this.stopped) return;
        o.inflight = true;
        clearTimeout(o.timer);
        this.emit('send_message', o.payload).then((ack) => {
            o.inflight = false;
            this.outbox = this.outbox.filter((x) => x !== o);
            const m = ack.message;
            const t = this.thread(o.threadId);
            if (m) {
                if (o.threadId.startsWith('draft:')) {
                    this.merge(t, [m]);
                    this.upsertConv({ _id: m.conversationId, participants: [this.me.id, m.recipient].filter(Boolean), lastMessage: m, unreadCount: 0, createdAt: m.createdAt, updatedAt: m.createdAt });
                    this.loadConversations();
                } else {
                    this.onMessage(m);
                    if (!this.threads.get(m.conversationId)) this.merge(t, [m]);
                }
            }
            this.renderMessages();
            this.renderList();
        }, (err) => {
            o.inflight = false;
            if (err.code === 'TIMEOUT' || err.code === 'NETWORK') {
                // The ack was lost or never came: send again with the same clientMsgId; the
                // server answers a repeat with the stored message, never a second copy.
                o.timer = setTimeout(() => this.trySend(o), 1000);
            } else if (err.code === 'RATE_LIMITED') {
                o.timer = setTimeout(() => this.trySend(o), Math.min(Math.max(err.retryAfterMs || 1000, 200), 30000));
            } else {
                this.failSend(o, err);
            }
        });
    }

    failSend(o, err) {
        clearTimeout(o.timer);
        this.outbox = this.outbox.filter((x) => x !== o);
        const t = this.thread(o.threadId);
        const m = t.msgs.get(o.key);
        if (m) {
            m._pending = false;
            m._failed = describeError(err, 'This message');
            m._retry = o.payload;
        }
        this.renderMessages();
    }

    retry(key) {
        const t = this.threads.get(this.activeId);
        const m = t?.msgs.get(key);
        if (!m || !m._retry) return;
        const conv = this.activeConv();
        if (!conv) return;
        const p = m._retry;
        this.queueSend(conv, { type: p.type, content: p.content, fileId: p.fileId, file: m.file, existingKey: key });
    }

    discard(key) {
        const t = this.threads.get(this.activeId);
        const m = t?.msgs.get(key);
        if (m?._previewUrl) URL.revokeObjectURL(m._previewUrl);
        t?.msgs.delete(key);
        this.renderMessages();
    }

    // ---- typing (outgoing) ----

    onComposerInput() {
        const conv = this.convs.get(this.activeId);
        if (!conv || !this.socket.connected) return;
        const now = Date.now();
        const out = this.typingOut;
        if (out.convId !== conv._id || now - out.sentAt > TYPING_RENEW_MS) {
            if (out.convId && out.convId !== conv._id) this.stopTyping();
            out.convId = conv._id;
            out.sentAt = now;
            this.socket.emit('typing', { conversationId: conv._id, isTyping: true });
        }
        clearTimeout(out.stopTimer);
        out.stopTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
    }

    stopTyping() {
        const out = this.typingOut;
        clearTimeout(out.stopTimer);
        if (out.convId && this.socket?.connected) this.socket.emit('typing', { conversationId: out.convId, isTyping: false });
        out.convId = null;
        out.sentAt = 0;
    }

    // ---- files ----

    async uploadFiles(files) {
        const conv = this.activeConv();
        if (!conv) return;
        for (const file of files) this.uploadOne(conv, file);
    }

    async uploadOne(conv, file) {
        const threadId = conv._id || conv.id;
        const t = this.thread(threadId);
        const clientMsgId = randomId();
        const key = `c:${clientMsgId}`;
        const isImage = /^image\//.test(file.type);
        const previewUrl = isImage ? URL.createObjectURL(file) : undefined;
        const m = {
            clientMsgId,
            sender: this.me.id,
            type: isImage ? 'image' : 'file',
            content: '',
            file: { name: file.name, size: file.size, mime: file.type },
            createdAt: new Date().toISOString(),
            _pending: true,
            _progress: 0,
            _local: performance.now(),
            _previewUrl: previewUrl,
        };
        t.msgs.set(key, m);
        this.renderMessages();
        this.scrollToBottom();
        const up = this.api.upload('api/chat/files', file, (p) => {
            m._progress = p;
            this.updateProgress(key, p);
        });
        let doc;
        try {
            const res = await up.promise;
            doc = res.file || res;
        } catch (err) {
            m._pending = false;
            m._progress = undefined;
            m._failed = describeError(err, `“${file.name}”`);
            m._uploadFailed = true;
            this.uploadError(m._failed);
            this.renderMessages();
            return;
        }
        const type = /^image\//.test(doc.mime || '') ? 'image' : 'file';
        if (previewUrl && doc.id) this.blobs.set(doc.id, Promise.resolve(previewUrl));
        // The draft this started in may have become a real conversation meanwhile.
        const target = conv._id ? (this.convs.get(conv._id) || conv)
            : (this.drafts.get(conv.id) || [...this.convs.values()].find((c) => this.peerOf(c) === conv.peer) || conv);
        this.queueSend(target, { type, content: '', fileId: doc.id, file: doc, previewUrl, existingKey: key });
    }

    fileBlobUrl(file) {
        if (!file?.id) return Promise.reject(new Error('no file'));
        let p = this.blobs.get(file.id);
        if (!p) {
            // Not file.url: that is absolute ("/api/..."), and the page may live under a prefix.
            p = this.api.blob(`api/chat/files/${encodeURIComponent(file.id)}`).then((b) => URL.createObjectURL(b));
            p.catch(() => this.blobs.delete(file.id));
            this.blobs.set(file.id, p);
        }
        return p;
    }

    async download(file) {
        try {
            const url = await this.fileBlobUrl(file);
            const a = h('a', { href: url, download: file.name || 'file', hidden: true });
            document.body.appendChild(a);
            a.click();
            a.remove();
        } catch (err) {
            this.toast(describeError(err, 'The file'));
        }
    }

    async openImage(m) {
        const d = this.el.lightbox;
        const img = h('img', { alt: m.file?.name || 'Photo', class: 'lightbox-img' });
        setChildren(d.body, img);
        this.el.lightboxTitle.textContent = m.file?.name || 'Photo';
        this.el.lightboxDownload.onclick = () => this.download(m.file);
        d.showModal();
        try {
            img.src = m._previewUrl || await this.fileBlobUrl(m.file);
        } catch (err) {
            setChildren(d.body, h('p', {}, describeError(err, 'The photo')));
        }
    }

    uploadError(text) {
        this.el.uploadError.textContent = text;
        clearTimeout(this.uploadErrTimer);
        this.uploadErrTimer = setTimeout(() => {
            this.el.uploadError.textContent = '';
        }, 10000);
    }

    toast(text) {
        this.el.toast.textContent = text;
        this.el.toast.hidden = false;
        clearTimeout(this.toastTimer);
        this.toastTimer = setTimeout(() => {
            this.el.toast.hidden = true;
        }, 6000);
    }

    // ---- navigation ----

    route() {
        const m = /^#\/c\/([^/]+)$/.exec(location.hash);
        const id = m ? decodeURIComponent(m[1]) : null;
        if (id && (this.convs.has(id) || /^[A-Za-z0-9_-]{1,64}$/.test(id))) this.open(id, false);
        else this.open(null, false);
    }

    open(id, push = true) {
        if (id === this.activeId && push) {
            this.el.input.focus();
            return;
        }
        this.stopTyping();
        this.activeId = id;
        if (push) {
            const hash = id && !id.startsWith('draft:') ? `#/c/${encodeURIComponent(id)}` : '#/';
            if (location.hash !== hash) history.pushState(null, '', hash);
        }
        this.root.classList.toggle('thread-open', !!id);
        this.msgEls.clear();
        this.el.messages.replaceChildren();
        this.stickToBottom = true;
        if (id && !id.startsWith('draft:')) {
            const t = this.thread(id);
            if (!t.loaded) this.loadThread(t);
            else this.catchUp(t).then(() => this.markRead());
        }
        this.renderAll(true);
        this.markRead();
        if (id) this.el.input.focus();
    }

    startWith(user) {
        this.people.learn(user);
        const existing = [...this.convs.values()].find((c) => this.peerOf(c) === user.id);
        this.clearSearch();
        if (existing) return this.open(existing._id);
        const id = `draft:${user.id}`;
        if (!this.drafts.has(id)) {
            this.drafts.set(id, { id, peer: user.id, participants: [this.me.id, user.id], draft: true });
            this.requestStatuses();
        }
        this.open(id);
    }

    // ---- people search ----

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

    // ---- groups ----

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

    // ---- DOM ----

    buildDom() {
        const el = {};
        this.el = el;
        el.banner = h('div', { class: 'banner', role: 'status', hidden: true });
        el.toast = h('div', { class: 'toast', role: 'alert', hidden: true });
        el.search = h('input', { id: 'people-search', type: 'search', autocomplete: 'off', placeholder: 'Find people by username', 'aria-describedby': 'search-status' });
        el.searchStatus = h('p', { id: 'search-status', class: 'search-status', 'aria-live': 'polite' });
        el.results = h('ul', { class: 'results', 'aria-label': 'People found' });
        el.convList = h('ul', { class: 'conv-list', 'aria-label': 'Conversations' });
        el.listError = h('p', { class: 'form-error', role: 'alert' });
        el.empty = h('p', { class: 'empty' }, 'No conversations yet. Find someone by username to start one.');
        let searchTimer;
        el.search.addEventListener('input', () => {
            clearTimeout(searchTimer);
            searchTimer = setTimeout(() => this.search(el.search.value), 200);
        });
        el.search.addEventListener('keydown', (e) => {
            if (e.key === 'Escape') this.clearSearch();
            if (e.key === 'ArrowDown') {
                e.preventDefault();
                el.results.querySelector('button')?.focus();
            }
        });
        el.results.addEventListener('keydown', (e) => this.arrowNav(e, el.results));
        el.convList.addEventListener('keydown', (e) => this.arrowNav(e, el.convList));

        el.back = h('button', { type: 'button', class: 'back', 'aria-label': 'Back to conversations', onclick: () => this.open(null) }, icon('back'));
        el.avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
        el.title = h('h2', { class: 'thread-title', id: 'thread-title' });
        el.presence = h('p', { class: 'presence', 'aria-live': 'polite' });
        el.older = h('button', { type: 'button', class: 'older', onclick: () => { const t = this.threads.get(this.activeId); if (t) this.loadOlder(t); } }, 'Load earlier messages');
        el.messages = h('ol', { class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-labelledby': 'thread-title' });
        el.scroller = h('div', { class: 'scroller', tabindex: '0', 'aria-label': 'Messages' }, el.older, el.messages);
        el.scroller.addEventListener('scroll', () => {
            const s = el.scroller;
            this.stickToBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 60;
            const t = this.threads.get(this.activeId);
            if (t && s.scrollTop < 400) this.loadOlder(t);
        });
        el.typing = h('p', { class: 'typing', 'aria-live': 'polite' });
        el.uploadError = h('p', { class: 'upload-error', role: 'alert' });
        el.file = h('input', { type: 'file', id: 'file-input', class: 'visually-hidden', multiple: true, tabindex: '-1', 'aria-hidden': 'true' });
        el.file.addEventListener('change', () => {
            const files = [...el.file.files];
            el.file.value = '';
            this.uploadFiles(files);
        });
        el.attach = h('button', { type: 'button', class: 'attach', 'aria-label': 'Attach a photo or file', title: 'Attach a photo or file', onclick: () => el.file.click() }, icon('clip'));
        el.input = h('textarea', { id: 'composer-input', rows: 1, maxlength: 4000, placeholder: 'Write a message', 'aria-label': 'Message', enterkeyhint: 'send' });
        el.input.addEventListener('input', () => {
            this.autosize();
            this.onComposerInput();
        });
        el.input.addEventListener('keydown', (e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                e.preventDefault();
                el.composer.requestSubmit();
            }
        });
        el.input.addEventListener('blur', () => this.stopTyping());
        el.send = h('button', { type: 'submit', class: 'send primary', 'aria-label': 'Send message' }, 'Send');
        el.composer = h('form', { class: 'composer', 'aria-label': 'Write a message' }, el.attach, el.file, el.input, el.send);
        el.composer.addEventListener('submit', (e) => {
            e.preventDefault();
            const text = el.input.value;
            if (!text.trim()) return;
            el.input.value = '';
            this.autosize();
            this.sendText(text);
        });
        el.placeholder = h('div', { class: 'placeholder' },
            h('p', {}, 'Pick a conversation, or find someone by username to start one.'));
        el.drop = h('div', { class: 'drop-overlay', hidden: true, 'aria-hidden': 'true' }, 'Drop files to send them');
        el.threadBody = h('div', { class: 'thread-body' },
            h('header', { class: 'thread-head' }, el.back, el.avatar, h('div', { class: 'thread-who' }, el.title, el.presence)),
            el.scroller, el.typing, el.uploadError, el.composer, el.drop);
        el.thread = h('section', { class: 'thread', 'aria-labelledby': 'thread-title' }, el.placeholder, el.threadBody);
        this.setupDrop(el.thread);

        el.lightboxTitle = h('h2', { class: 'lightbox-title' });
        el.lightboxDownload = h('button', { type: 'button' }, 'Download');
        el.lightbox = h('dialog', { class: 'lightbox', 'aria-label': 'Photo' },
            h('div', { class: 'lightbox-bar' }, el.lightboxTitle, el.lightboxDownload,
                h('button', { type: 'button', class: 'primary', onclick: () => el.lightbox.close(), autofocus: true }, 'Close')));
        el.lightbox.body = h('div', { class: 'lightbox-body' });
        el.lightbox.appendChild(el.lightbox.body);
        el.lightbox.addEventListener('click', (e) => {
            if (e.target === el.lightbox) el.lightbox.close();
        });
        el.groupDialog = h('dialog', { class: 'group-dialog', 'aria-labelledby': 'group-dialog-title' });

        const who = this.me.name || this.me.username || this.me.id;
        el.me = h('span', { class: 'me' },
            h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(who)),
            h('span', { class: 'me-name' }, who),
            this.me.role ? h('span', { class: 'role' }, this.me.role) : null);
        setChildren(this.root,
            h('a', { class: 'skip', href: '#composer-input' }, 'Skip to message box'),
            h('header', { class: 'topbar' },
                h('h1', { class: 'brand' }, 'Parlor'), el.me,
                h('button', { type: 'button', class: 'signout', onclick: () => this.signOut() }, 'Sign out')),
            el.banner,
            h('div', { class: 'layout' },
                h('nav', { class: 'sidebar', 'aria-label': 'Conversations' },
                    h('div', { class: 'search' },
                        h('label', { for: 'people-search', class: 'visually-hidden' }, 'Find people by username'),
                        el.search, el.searchStatus, el.results),
                    h('div', { class: 'list-head' },
                        h('h2', {}, 'Conversations'),
                        h('button', { type: 'button', class: 'new-group', onclick: () => this.openGroupDialog() }, 'New group')),
                    el.listError, el.empty, el.convList),
                el.thread),
            el.toast, el.lightbox, el.groupDialog);
        this.root.classList.add('chat');
    }

    arrowNav(e, list) {
        if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
        const buttons = [...list.querySelectorAll(':scope > li > button')];
        const i = buttons.indexOf(document.activeElement);
        if (i < 0) return;
        e.preventDefault();
        const next = buttons[i + (e.key === 'ArrowDown' ? 1 : -1)];
        if (next) next.focus();
        else if (e.key === 'ArrowUp' && list === this.el.results) this.el.search.focus();
    }

    setupDrop(target) {
        let depth = 0;
        const has = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
        target.addEventListener('dragenter', (e) => {
            if (!has(e) || !this.activeId) return;
            e.preventDefault();
            depth++;
            this.el.drop.hidden = false;
        });
        target.addEventListener('dragover', (e) => {
            if (has(e) && this.activeId) e.preventDefault();
        });
        target.addEventListener('dragleave', () => {
            if (--depth <= 0) {
                depth = 0;
                this.el.drop.hidden = true;
            }
        });
        target.addEventListener('drop', (e) => {
            if (!has(e) || !this.activeId) return;
            e.preventDefault();
            depth = 0;
            this.el.drop.hidden = true;
            this.uploadFiles([...e.dataTransfer.files]);
        });
    }

    autosize() {
        const t = this.el.input;
        t.style.height = 'auto';
        t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
    }

    scrollToBottom() {
        const s = this.el.scroller;
        s.scrollTop = s.scrollHeight;
        this.stickToBottom = true;
    }

    // ---- rendering ----

    renderAll(scroll = false) {
        if (this.stopped) return;
        this.renderList();
        this.renderThread(scroll);
    }

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

    renderThread(scrollToEnd = false) {
        if (this.stopped) return;
        const conv = this.activeConv();
        this.el.placeholder.hidden = !!conv;
        this.el.threadBody.hidden = !conv;
        if (!conv) return;
        this.renderHeader();
        this.renderTyping();
        this.renderMessages();
        this.renderOlder();
        if (scrollToEnd) this.scrollToBottom();
    }

    renderHeader() {
        if (this.stopped || !this.el) return;
        const conv = this.activeConv();
        if (!conv) return;
        const name = this.convName(conv);
        this.el.title.textContent = name;
        this.el.avatar.textContent = initials(name);
        const peer = this.peerOf(conv);
        let presence = '';
        if (peer) {
            const s = this.people.status.get(peer);
            presence = s?.status === 'online' ? 'online' : s ? lastSeen(s.lastSeen) : '';
        } else {
            presence = `${(conv.participants || []).length} members`;
        }
        this.el.presence.textContent = presence;
        this.el.presence.dataset.status = peer ? (this.people.online(peer) ? 'online' : 'offline') : 'group';
        this.el.thread.classList.toggle('is-draft', !conv._id);
    }

    renderTyping() {
        const names = this.activeId ? this.typingNames(this.activeId) : [];
        this.el.typing.textContent = !names.length ? ''
            : names.length === 1 ? `${names[0]} is typing…`
                : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are typing…`;
    }

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
        let prev = null;
        for (const m of t.sorted()) {
            const key = keyOf(m, this.me.id);
            seen.add(key);
            let entry = this.msgEls.get(key);
            const showSender = group && m.sender !== this.me.id && (!prev || prev.sender !== m.sender);
            const sig = this.msgSig(m, conv, showSender);
            if (!entry) {
                entry = { el: h('li', { dataset: { key } }), sig: null };
                this.msgEls.set(key, entry);
            }
            if (entry.sig !== sig) {
                entry.sig = sig;
                this.fillMessage(entry.el, m, conv, showSender, key);
            }
            if (entry.el !== cursor) list.insertBefore(entry.el, cursor);
            else cursor = cursor.nextSibling;
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

    tickState(m, conv) {
        if (m._failed) return 'failed';
        if (m._pending || !m.seq) return 'pending';
        if (m.read || (conv.peerReadSeq || 0) >= m.seq) return 'read';
        return 'sent';
    }

    msgSig(m, conv, showSender) {
        const mine = m.sender === this.me.id;
        return JSON.stringify([m._id, m.seq, m.content, m.type, m.file?.id, m.file?.name, mine ? this.tickState(m, conv) : 0,
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
        const mine = m.sender === this.me.id;
        li.className = `msg ${mine ? 'mine' : 'theirs'}${m._failed ? ' failed' : ''}${m._pending ? ' pending' : ''}`;
        if (m.seq) li.dataset.seq = String(m.seq);
        const body = [];
        if (m.type === 'image' && m.file) body.push(this.imageNode(m));
        else if (m.type === 'file' && m.file) body.push(this.fileNode(m));
        if (m.content) body.push(h('p', { class: 'text' }, m.content));
        if (m._progress !== undefined && m._pending) {
            body.push(h('progress', { max: 1, value: m._progress, 'aria-label': `Uploading ${m.file?.name || 'file'}` }, `${Math.round(m._progress * 100)}%`));
        }
        const meta = [h('time', { datetime: m.createdAt || '', title: fullTime(m.createdAt) }, shortTime(m.createdAt))];
        if (mine) {
            const state = this.tickState(m, conv);
            const label = { pending: 'Sending', sent: 'Sent', read: 'Read', failed: 'Not sent' }[state];
            const glyph = { pending: '◷', sent: '✓', read: '✓✓', failed: '!' }[state];
            meta.push(h('span', { class: 'tick', dataset: { state }, title: label },
                h('span', { 'aria-hidden': 'true' }, glyph), h('span', { class: 'visually-hidden' }, label)));
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

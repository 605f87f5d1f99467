// The chat screen: conversation list, one open conversation, and the live Socket.IO session.
// State lives in plain objects; the DOM is updated in place (keyed elements) so focus, scroll
// position and images survive updates. User strings only ever reach the DOM as text.
import { io } from 'socket.io-client';

import { ApiError, describeError, socketPath } from './api.js';
import { BlockMethods } from './block.js';
import { ContextMethods } from './context.js';
import { ConvListMethods } from './convlist.js';
import { FileMethods } from './files.js';
import { setChildren } from './dom.js';
import { dayKey, initials, lastSeen, randomId } from './format.js';
import { GroupMethods } from './groups.js';
import { LayoutMethods } from './layout.js';
import { EditMethods } from './edit.js';
import { MessageMethods } from './messages.js';
import { MessageSearchMethods } from './msgsearch.js';
import { People } from './people.js';
import { SearchMethods } from './search.js';
import { Thread, keyOf } from './thread.js';
import { UnreadMethods } from './unread.js';

const PAGE = 50;
const TYPING_RENEW_MS = 2000; // resend isTyping:true at most this often while typing
const TYPING_IDLE_MS = 3000; // no keystroke for this long: isTyping:false
const TYPING_SHOW_MS = 8000; // a remote "typing" without renewal fades after this
const ACK_TIMEOUT_MS = 10000;

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
        this.today = dayKey(new Date().toISOString());
        this.clock = setInterval(() => this.tick(), 30000);
    }

    // ---- lifecycle ----

    start() {
        this.buildDom();
        this.connect();
        this.setupBlocks(); // block.js, msgsearch.js, unread.js
        this.setupMessageSearch();
        this.setupUnread();
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

    // Every 30 s: "last seen" texts age, and after midnight "Today" becomes "Yesterday".
    tick() {
        this.renderHeader();
        const today = dayKey(new Date().toISOString());
        if (today !== this.today) {
            this.today = today;
            this.renderMessages();
        }
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
        socket.on('message_updated', (m) => this.onMessageUpdated(m));
        socket.on('message_deleted', (d) => this.onMessageDeleted(d));
        socket.on('conversation_updated', (c) => this.onConversationUpdated(c)); // context.js
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
                    return reject(new ApiError(0, e.code || 'ERROR', e.message, { retryAfterMs: e.retryAfterMs, reason: e.reason }));
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
                this.upsertConv(c, true);
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

    // fromServer: c is from GET api/chat/conversations, whose unreadCount counts every message up
    // to its lastMessage. Messages that arrived live after that (liveUnread, by seq) are added,
    // and live messages it already counted are not counted again (countLive): the same count
    // whichever of the list and the events (live or replayed after a reconnect) comes first.
    upsertConv(c, fromServer = false) {
        const old = this.convs.get(c._id);
        const conv = { ...old, ...c };
        if (fromServer) {
            conv.countedSeq = c.lastMessage?.seq || 0;
            conv.liveUnread = new Set([...(old?.liveUnread || [])].filter((seq) => seq > conv.countedSeq));
            conv.unreadCount = (c.unreadCount || 0) + conv.liveUnread.size;
        }
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
        if (peer && this.drafts.has(`draft:${peer}`) && !conv.title && !conv.context && conv.participants.length === 2) {
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
        const subject = this.contextSubject(conv); // what it is about leads (context.js)
        const name = this.convPeopleName(conv);
        return subject && subject !== name ? `${subject} · ${name}` : name;
    }

    convPeopleName(conv) {
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
            else this.countLive(conv, m);
        }
        this.renderList();
        if (this.activeId === m.conversationId) {
            this.renderMessages();
            if (m.sender === this.me.id) this.scrollToBottom();
        }
    }

    // One more unread message, unless the conversation list already counted it (its seq is not
    // above the list's lastMessage) or it was counted before (a replay after a reconnect).
    countLive(conv, m) {
        const seq = m.seq || 0;
        if (seq && (seq <= (conv.countedSeq || 0) || conv.liveUnread?.has(seq))) return;
        if (!conv.liveUnread) conv.liveUnread = new Set();
        if (seq) conv.liveUnread.add(seq);
        conv.unreadCount = (conv.unreadCount || 0) + 1;
    }

    // Our own read watermark moved: what is at or below it is no longer unread.
    readUpTo(conv, seq) {
        conv.myReadSeq = Math.max(conv.myReadSeq || 0, seq || 0);
        if (conv.liveUnread) for (const s of conv.liveUnread) if (s <= conv.myReadSeq) conv.liveUnread.delete(s);
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
            this.readUpTo(conv, r.seq);
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
        if (o) this.failSend(o, new ApiError(0, e.code, e.message, { retryAfterMs: e.retryAfterMs, reason: e.reason }));
        else if (e.reason !== 'BLOCKED') this.toast(e.message || e.code || 'The server refused that');
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
            this.readUpTo(conv, ack?.seq || last.seq);
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
        if (err.reason === 'BLOCKED') this.onBlockedSend(o);
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
        if (this.routeContext()) return; // #/context/<type>/<id>?with= (context.js)
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
        this.uploadError(null); // it was about the conversation being left
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
        const existing = [...this.convs.values()].find((c) => this.peerOf(c) === user.id && !c.context);
        this.clearSearch();
        if (existing) return this.open(existing._id);
        const id = `draft:${user.id}`;
        if (!this.drafts.has(id)) {
            this.drafts.set(id, { id, peer: user.id, participants: [this.me.id, user.id], draft: true });
            this.requestStatuses();
        }
        this.open(id);
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
        const role = peer ? this.people.role(peer) : '';
        this.el.peerRole.hidden = !role;
        this.el.peerRole.textContent = role;
        this.el.peerRole.title = role ? `${name} is ${/^[aeiou]/i.test(role) ? 'an' : 'a'} ${role}` : '';
        if (peer) {
            const s = this.people.status.get(peer);
            this.el.presence.textContent = s?.status === 'online' ? 'online' : s ? lastSeen(s.lastSeen) : '';
        } else {
            // A group: who is in it opens from here.
            const n = (conv.participants || []).length;
            this.el.members.textContent = `${n} member${n === 1 ? '' : 's'}`;
            if (this.el.members.parentNode !== this.el.presence) setChildren(this.el.presence, this.el.members);
        }
        this.el.presence.dataset.status = peer ? (this.people.online(peer) ? 'online' : 'offline') : 'group';
        this.el.thread.classList.toggle('is-draft', !conv._id);
        this.renderMembers();
        this.renderBlock(); // block.js
        this.el.msOpenConv.hidden = !conv._id;
    }

    renderTyping() {
        const names = this.activeId ? this.typingNames(this.activeId) : [];
        this.el.typing.textContent = !names.length ? ''
            : names.length === 1 ? `${names[0]} is typing…`
                : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are typing…`;
    }

}

// ChatApp's methods live in several files (one concern each); they are copied onto its prototype
// here, so they all share `this` exactly as if they were written in the class.
for (const part of [BlockMethods, ContextMethods, ConvListMethods, EditMethods, FileMethods, GroupMethods, LayoutMethods,
    MessageMethods, MessageSearchMethods, SearchMethods, UnreadMethods]) {
    for (const [name, desc] of Object.entries(Object.getOwnPropertyDescriptors(part.prototype))) {
        if (name !== 'constructor') Object.defineProperty(ChatApp.prototype, name, desc);
    }
}

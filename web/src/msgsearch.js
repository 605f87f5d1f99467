// Message search (issue 16): a dialog opened from the top bar ("Search messages", over all your
// conversations) or from a conversation's header ("Search in this conversation"), backed by
// GET api/chat/search. Enter searches, Escape closes, ArrowDown/ArrowUp (or Tab) move through
// the results, "More results" follows nextCursor. A result shows the conversation, who wrote it,
// when, and the server's snippet; choosing one opens the conversation and jumps to the message
// in its history (older pages are loaded until it is there), scrolled into view and highlighted.
//
// The snippet is HTML-escaped text with <mark>…</mark> around the hits (docs/api.md). It is
// never parsed as HTML: it is split on the exact strings "<mark>" and "</mark>", the five
// entities the server writes are decoded, and every piece becomes a text node (inside a <mark>
// element for the hits). Anything else that looks like markup stays visible text.
// Methods of ChatApp (chat.js), mixed into its prototype.
import { describeError } from './api.js';
import { h, icon } from './dom.js';
import { fullTime, shortTime } from './format.js';

const RESULTS_PAGE = 20;
const JUMP_PAGES_MAX = 400; // history pages loaded at most to reach a result (50 messages each)
const FLASH_MS = 2500;

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const decode = (s) => s.replace(/&(?:amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e]);

// The snippet as DOM nodes: text, and <mark> elements for the hits. Exported for tests.
export function snippetNodes(snippet) {
    const out = [];
    let inMark = false;
    for (const part of String(snippet || '').split(/(<mark>|<\/mark>)/)) {
        if (part === '<mark>') inMark = true;
        else if (part === '</mark>') inMark = false;
        else if (part) out.push(inMark ? h('mark', {}, decode(part)) : document.createTextNode(decode(part)));
    }
    return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class MessageSearchMethods {
    // Called once after buildDom (chat.js start).
    setupMessageSearch() {
        const el = this.el;
        this.msgSearch = { q: '', convId: null, cursor: null, results: [], busy: false, seq: 0 };
        el.msOpen = h('button', { type: 'button', class: 'ms-open', 'aria-haspopup': 'dialog', 'aria-label': 'Search messages', title: 'Search messages', onclick: () => this.openMessageSearch(null) },
            icon('search'), h('span', { class: 'ms-open-text' }, 'Search messages'));
        el.msOpenConv = h('button', { type: 'button', class: 'ms-open-conv', 'aria-haspopup': 'dialog', 'aria-label': 'Search in this conversation', title: 'Search in this conversation', onclick: () => this.openMessageSearch(this.activeConv()?._id || null) }, 'Search');
        this.root.querySelector('.topbar .signout')?.before(el.msOpen);
        el.threadBody.querySelector('.thread-head').append(el.msOpenConv);

        el.msInput = h('input', { id: 'msg-search-input', type: 'search', autocomplete: 'off', enterkeyhint: 'search', maxlength: 200, placeholder: 'Words to find', 'aria-describedby': 'msg-search-status' });
        el.msAll = h('input', { type: 'radio', name: 'ms-scope', id: 'ms-scope-all', value: 'all' });
        el.msOne = h('input', { type: 'radio', name: 'ms-scope', id: 'ms-scope-one', value: 'one' });
        el.msOneLabel = h('label', { for: 'ms-scope-one' });
        el.msScope = h('fieldset', { class: 'ms-scope' }, h('legend', { class: 'visually-hidden' }, 'Where to search'),
            h('span', { class: 'ms-choice' }, el.msAll, h('label', { for: 'ms-scope-all' }, 'All conversations')),
            h('span', { class: 'ms-choice' }, el.msOne, el.msOneLabel));
        el.msForm = h('form', { class: 'ms-form', role: 'search' },
            h('label', { for: 'msg-search-input', class: 'visually-hidden' }, 'Search messages'),
            el.msInput, h('button', { type: 'submit', class: 'primary' }, 'Search'));
        el.msStatus = h('p', { id: 'msg-search-status', class: 'ms-status', 'aria-live': 'polite' });
        el.msResults = h('ul', { class: 'ms-results', 'aria-label': 'Messages found' });
        el.msMore = h('button', { type: 'button', class: 'ms-more', hidden: true, onclick: () => this.runMessageSearch(true) }, 'More results');
        el.msDialog = h('dialog', { class: 'ms-dialog', 'aria-labelledby': 'ms-title' },
            h('div', { class: 'ms-bar' }, h('h2', { id: 'ms-title' }, 'Search messages'),
                h('button', { type: 'button', class: 'ms-close', onclick: () => el.msDialog.close() }, 'Close')),
            el.msForm, el.msScope, el.msStatus, el.msResults, el.msMore);
        this.root.append(el.msDialog);

        el.msForm.addEventListener('submit', (e) => {
            e.preventDefault();
            this.runMessageSearch(false);
        });
        for (const r of [el.msAll, el.msOne]) {
            r.addEventListener('change', () => {
                this.msgSearch.convId = el.msOne.checked ? this.msgSearch.scopeConv : null;
                if (el.msInput.value.trim()) this.runMessageSearch(false);
            });
        }
        el.msInput.addEventListener('keydown', (e) => {
            if (e.key === 'ArrowDown') {
                const first = el.msResults.querySelector('button');
                if (first) {
                    e.preventDefault();
                    first.focus();
                }
            }
        });
        el.msResults.addEventListener('keydown', (e) => {
            if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
            const buttons = [...el.msResults.querySelectorAll('button')];
            const i = buttons.indexOf(document.activeElement);
            if (i < 0) return;
            e.preventDefault();
            const next = buttons[i + (e.key === 'ArrowDown' ? 1 : -1)];
            if (next) next.focus();
            else if (e.key === 'ArrowUp') el.msInput.focus();
            else if (!el.msMore.hidden) el.msMore.focus();
        });
        // Escape closes from anywhere in it (a search field would otherwise take the first
        // Escape to clear itself).
        el.msDialog.addEventListener('keydown', (e) => {
            if (e.key === 'Escape' && !e.isComposing) {
                e.preventDefault();
                el.msDialog.close();
            }
        });
        el.msDialog.addEventListener('click', (e) => {
            if (e.target === el.msDialog) el.msDialog.close(); // a tap outside the panel
        });
        el.msDialog.addEventListener('close', () => this.msgSearch.seq++); // late answers are dropped
    }

    // convId: search within that conversation (the scope can still be widened), or null.
    openMessageSearch(convId) {
        const el = this.el;
        const s = this.msgSearch;
        s.scopeConv = convId || (this.activeConv()?._id ?? null);
        el.msOne.disabled = !s.scopeConv;
        el.msOneLabel.textContent = s.scopeConv ? `Only in ${this.convName(this.convs.get(s.scopeConv))}` : 'Only in the open conversation';
        const scopeChanged = (s.convId || null) !== (convId || null);
        s.convId = convId || null;
        el.msOne.checked = !!s.convId;
        el.msAll.checked = !s.convId;
        if (!el.msDialog.open) el.msDialog.showModal();
        el.msInput.focus();
        el.msInput.select();
        if (scopeChanged && el.msInput.value.trim()) this.runMessageSearch(false);
    }

    async runMessageSearch(more) {
        const el = this.el;
        const s = this.msgSearch;
        const q = el.msInput.value.trim().replace(/\s+/g, ' ');
        if (!more) {
            s.results = [];
            s.cursor = null;
            el.msResults.replaceChildren();
            el.msMore.hidden = true;
        }
        if (!q) {
            el.msStatus.textContent = 'Type a word to find.';
            return;
        }
        // The server's words are runs of ASCII letters and digits and non-ASCII characters
        // (docs/api.md): the other ASCII characters separate words here too, so "door-code?"
        // searches door code rather than being refused as an operator.
        const words = q.split(/[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+/).filter(Boolean).slice(0, 8);
        if (!words.length) {
            el.msStatus.textContent = 'Search for words of letters or digits.';
            return;
        }
        const seq = ++s.seq;
        s.q = q;
        el.msStatus.textContent = 'Searching…';
        el.msMore.disabled = true;
        const params = new URLSearchParams({ q: words.join(' '), limit: String(RESULTS_PAGE) });
        if (s.convId) params.set('conversationId', s.convId);
        if (more && s.cursor) params.set('cursor', s.cursor);
        try {
            const res = await this.api.get(`api/chat/search?${params}`);
            if (seq !== s.seq) return;
            const fresh = res.results || [];
            s.results.push(...fresh);
            s.cursor = res.nextCursor || null;
            const focusFrom = more ? el.msResults.children.length : -1;
            el.msResults.append(...fresh.map((r) => this.searchResultNode(r)));
            el.msMore.hidden = !s.cursor;
            el.msMore.disabled = false;
            const n = s.results.length;
            el.msStatus.textContent = n ? `${n} message${n === 1 ? '' : 's'} found${s.cursor ? ', more below' : ''}.`
                : s.cursor ? 'Nothing yet; there is more to look through.' : 'No messages found.';
            if (focusFrom >= 0) el.msResults.children[focusFrom]?.querySelector('button')?.focus();
        } catch (err) {
            if (seq !== s.seq) return;
            el.msMore.disabled = false;
            el.msStatus.textContent = err.status === 404 && !s.convId ? 'Search is not available on this server.' : describeError(err);
        }
    }

    searchResultNode(r) {
        const m = r.message || {};
        const conv = this.convs.get(r.conversationId);
        const where = conv ? this.convName(conv) : 'Conversation';
        const who = m.sender === this.me.id ? 'You' : this.people.name(m.sender);
        return h('li', {}, h('button', { type: 'button', class: 'ms-result', onclick: () => this.jumpToResult(r) },
            h('span', { class: 'ms-head' },
                h('span', { class: 'ms-conv' }, where),
                h('time', { class: 'ms-time', datetime: m.createdAt || '', title: fullTime(m.createdAt) }, shortTime(m.createdAt))),
            h('span', { class: 'ms-who' }, who),
            h('span', { class: 'ms-snippet' }, snippetNodes(r.snippet))));
    }

    // Opens the result's conversation and brings the message into view.
    async jumpToResult(r) {
        const m = r.message;
        if (!m || !r.conversationId) return;
        this.el.msDialog.close();
        const convId = r.conversationId;
        if (!this.convs.has(convId)) {
            // A conversation older than the conversation list's pages: ask for that one.
            try {
                this.upsertConv(await this.api.get(`api/chat/conversations/${encodeURIComponent(convId)}`), true);
            } catch {
                if (m.recipient) { // an older server: what the message tells of it is enough
                    this.upsertConv({ _id: convId, participants: [...new Set([this.me.id, m.sender, m.recipient].filter(Boolean))], unreadCount: 0 });
                }
            }
        }
        if (!this.convs.has(convId)) {
            this.toast('That conversation is no longer available.');
            return;
        }
        if (this.activeId !== convId) this.open(convId);
        const jump = (this.jumpSeq = (this.jumpSeq || 0) + 1);
        const t = this.thread(convId);
        const stale = () => this.stopped || jump !== this.jumpSeq || this.activeId !== convId;
        for (let i = 0; i < JUMP_PAGES_MAX && !stale(); i++) {
            if (t.loading || t.loadingOlder) {
                await sleep(50);
                continue;
            }
            if (!t.loaded) {
                if (t.error) break;
                await this.loadThread(t);
                continue;
            }
            if (this.findMessage(t, m._id) || !t.hasOlder || !(m.seq < t.minSeq())) break;
            await this.loadOlder(t);
            if (t.error) break;
        }
        if (stale()) return;
        const found = this.findMessage(t, m._id);
        const li = found && this.msgEls.get(found.key)?.el;
        if (!li) {
            this.toast('That message is no longer in the conversation.');
            return;
        }
        this.stickToBottom = false;
        li.scrollIntoView({ block: 'center' });
        li.classList.add('flash');
        li.setAttribute('tabindex', '-1');
        li.focus({ preventScroll: true });
        setTimeout(() => li.classList.remove('flash'), FLASH_MS);
    }
}

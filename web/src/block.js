// Blocking (issue 16): a "Block" / "Unblock" button in the header of a one-to-one conversation,
// and a blocked conversation shows "You blocked this person" with an Unblock button instead of
// the message box. The list of people you block is loaded at start (GET api/chat/blocks) and
// after a reconnect, and kept current by block_updated events (a block made in another tab).
// A send the server refuses with reason BLOCKED (either of you blocked the other, docs/api.md
// "Blocking users") is marked "Not sent" with a plain notice.
// Methods of ChatApp (chat.js), mixed into its prototype.
import { describeError } from './api.js';
import { h } from './dom.js';

const BLOCKS_PAGES_MAX = 50; // 50 x 200: the server's cap of 10,000 blocks per user

export class BlockMethods {
    // Called once after buildDom (chat.js start).
    setupBlocks() {
        this.blocked = new Set();
        const el = this.el;
        el.blockBtn = h('button', { type: 'button', class: 'block-btn', hidden: true, onclick: () => this.toggleBlock() });
        el.blockedText = h('p', { class: 'blocked-text' });
        el.blockedNote = h('div', { class: 'blocked-note', role: 'status', hidden: true }, el.blockedText,
            h('button', { type: 'button', class: 'primary', onclick: () => this.toggleBlock() }, 'Unblock'));
        el.composer.before(el.blockedNote);
        el.threadBody.querySelector('.thread-head').append(el.blockBtn);
        this.blocksSeq = 0;
        this.loadBlocks();
        // A block or unblock made in another tab (or through the REST API) shows at once.
        this.socket.on('block_updated', (b) => {
            if (!b || typeof b.userId !== 'string') return;
            this.blocksSeq++; // newer than any list still on its way
            if (b.blocked) this.blocked.add(b.userId);
            else this.blocked.delete(b.userId);
            this.renderHeader();
        });
        this.socket.on('connect', () => {
            if (this.connectedBefore) this.loadBlocks(); // blocks made in another tab meanwhile
            this.connectedBefore = true;
        });
    }

    async loadBlocks() {
        const seq = this.blocksSeq;
        const ids = new Set();
        let cursor = null;
        try {
            for (let i = 0; i < BLOCKS_PAGES_MAX; i++) {
                const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
                const res = await this.api.get(`api/chat/blocks?limit=200${q}`);
                for (const b of res.blocks || []) ids.add(b.userId);
                cursor = res.nextCursor;
                if (!cursor) break;
            }
        } catch {
            return; // a server without blocking, or offline: keep what we knew
        }
        if (seq !== this.blocksSeq) return; // a block_updated came meanwhile: the list may be older
        this.blocked = ids;
        this.renderHeader();
    }

    isBlocked(userId) {
        return !!userId && !!this.blocked?.has(userId);
    }

    // The header button and the blocked state of the open conversation (from renderHeader).
    renderBlock() {
        const el = this.el;
        if (!el.blockBtn) return;
        const conv = this.activeConv();
        const peer = conv ? this.peerOf(conv) : null;
        const blocked = this.isBlocked(peer);
        el.blockBtn.hidden = !peer;
        el.blockBtn.disabled = !!this.blockBusy;
        el.blockBtn.textContent = blocked ? 'Unblock' : 'Block';
        el.blockBtn.setAttribute('aria-label', peer ? `${blocked ? 'Unblock' : 'Block'} ${this.people.name(peer)}` : '');
        el.blockedNote.hidden = !blocked;
        el.blockedText.textContent = blocked ? `You blocked ${this.people.name(peer)}. Neither of you can send messages here until you unblock.` : '';
        for (const b of el.blockedNote.querySelectorAll('button')) b.disabled = !!this.blockBusy;
        el.composer.hidden = blocked;
        this.el.thread.classList.toggle('is-blocked', blocked);
    }

    async toggleBlock() {
        const conv = this.activeConv();
        const peer = conv ? this.peerOf(conv) : null;
        if (!peer || this.blockBusy) return;
        const blocking = !this.isBlocked(peer);
        const name = this.people.name(peer);
        if (blocking && !window.confirm(`Block ${name}? Neither of you will be able to send messages in this conversation, and you will not see each other online or typing.`)) return;
        this.blockBusy = true;
        this.renderBlock();
        try {
            const path = `api/chat/users/${encodeURIComponent(peer)}/block`;
            const res = blocking ? await this.api.post(path) : await this.api.delete(path);
            if (res?.blocked) this.blocked.add(peer);
            else this.blocked.delete(peer);
            this.toast(res?.blocked ? `You blocked ${name}.` : `You unblocked ${name}.`);
        } catch (err) {
            this.toast(`${blocking ? 'Blocking' : 'Unblocking'} did not work: ${describeError(err)}`);
        } finally {
            this.blockBusy = false;
        }
        this.renderBlock();
        if (!this.isBlocked(peer) && this.activeConv() === conv) this.el.input.focus();
        else this.el.blockedNote.querySelector('button')?.focus();
    }

    // A send refused because of a block: the message says "Not sent" (describeError), and a
    // notice says why, in words for whichever side this is.
    onBlockedSend(o) {
        const conv = this.convs.get(o.threadId) || this.drafts.get(o.threadId);
        const peer = conv ? this.peerOf(conv) : null;
        this.toast(this.isBlocked(peer) ? 'Not sent: you blocked this person. Unblock to send messages.'
            : 'Not sent: this person is not accepting your messages.');
    }
}

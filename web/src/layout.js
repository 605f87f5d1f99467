// The chat screen's DOM, built once; render methods fill it in place.
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { h, icon, setChildren } from './dom.js';
import { initials } from './format.js';

export class LayoutMethods {
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
        el.peerRole = h('span', { class: 'role peer-role', hidden: true });
        el.members = h('button', { type: 'button', class: 'members', 'aria-haspopup': 'dialog', onclick: () => this.openMembers() });
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
            } else if (e.key === 'ArrowUp' && !el.input.value && this.editLast()) {
                e.preventDefault(); // edit your last message (edit.js)
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
            h('header', { class: 'thread-head' }, el.back, el.avatar, h('div', { class: 'thread-who' }, h('div', { class: 'thread-name' }, el.title, el.peerRole), el.presence)),
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
        el.membersDialog = h('dialog', { class: 'members-dialog', 'aria-labelledby': 'members-title' });
        el.membersDialog.addEventListener('click', (e) => {
            if (e.target === el.membersDialog) el.membersDialog.close();
        });

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
            el.toast, el.lightbox, el.groupDialog, el.membersDialog);
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

    autosize() {
        const t = this.el.input;
        t.style.height = 'auto';
        t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
    }
}

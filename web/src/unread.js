// The unread total (issue 16): a badge next to the brand in the top bar and "(N) Parlor" in the
// window title, from GET api/chat/unread at start and after each reconnect, then the server's
// unread_total events (docs/api.md), so it is right without polling.
// Methods of ChatApp (chat.js), mixed into its prototype.
import { h } from './dom.js';

export class UnreadMethods {
    // Called once after connect() (chat.js start).
    setupUnread() {
        this.el.unreadTotal = h('span', { class: 'total-badge', role: 'status', hidden: true });
        this.root.querySelector('.topbar .brand')?.after(this.el.unreadTotal);
        this.unreadSeq = 0;
        this.socket.on('unread_total', (u) => {
            this.unreadSeq++; // newer than any GET still on its way
            this.setUnreadTotal(u?.total);
        });
        this.socket.on('connect', () => this.fetchUnread());
    }

    async fetchUnread() {
        const seq = this.unreadSeq;
        try {
            const res = await this.api.get('api/chat/unread');
            if (seq === this.unreadSeq) this.setUnreadTotal(res.total);
        } catch {
            /* a server without it: no badge */
        }
    }

    setUnreadTotal(total) {
        if (this.stopped || typeof total !== 'number' || total < 0) return;
        const b = this.el.unreadTotal;
        b.hidden = total === 0;
        b.textContent = total > 999 ? '999+' : String(total);
        b.setAttribute('aria-label', `${total} unread message${total === 1 ? '' : 's'}`);
        b.title = b.getAttribute('aria-label');
        document.title = total ? `(${total > 999 ? '999+' : total}) Parlor` : 'Parlor';
    }
}

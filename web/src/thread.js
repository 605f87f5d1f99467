// What the client holds of one conversation's messages.

// A message's identity in the client: our own messages by clientMsgId (so the pending copy and
// the stored one are the same entry), everyone else's by _id.
export function keyOf(m, me) {
    return m.clientMsgId && m.sender === me ? `c:${m.clientMsgId}` : `m:${m._id}`;
}

export class Thread {
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

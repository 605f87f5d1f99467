// Human-readable times, sizes and names.

const pad = (n) => String(n).padStart(2, '0');

function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() &&
        a.getDate() === b.getDate();
}

// "14:05" today, "Mon 14:05" this week, "3 Mar 14:05" otherwise.
export function shortTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const now = new Date();
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (sameDay(d, now)) return hm;
    if (now - d < 6 * 86400e3 && d < now) {
        return `${d.toLocaleDateString(undefined, { weekday: 'short' })} ${hm}`;
    }
    return `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} ${hm}`;
}

// The local calendar day of a time, "2026-12-04"; '' for no time.
export function dayKey(iso) {
    const d = new Date(iso);
    if (!iso || Number.isNaN(d.getTime())) return '';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// The heading of a day in a conversation: "Today", "Yesterday", "Monday 30 November" (with the
// year when it is not this year's).
export function dayLabel(iso) {
    const d = new Date(iso);
    if (!iso || Number.isNaN(d.getTime())) return '';
    const now = new Date();
    if (sameDay(d, now)) return 'Today';
    const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (sameDay(d, yesterday)) return 'Yesterday';
    return d.toLocaleDateString(undefined, {
        weekday: 'long', day: 'numeric', month: 'long',
        ...(d.getFullYear() !== now.getFullYear() ? { year: 'numeric' } : {}),
    });
}

export function fullTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

// "last seen just now", "last seen 5 min ago", "last seen today at 09:12", ...
export function lastSeen(iso) {
    if (!iso) return 'offline';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return 'offline';
    const s = Math.max(0, (Date.now() - d.getTime()) / 1000);
    if (s < 60) return 'last seen just now';
    if (s < 3600) return `last seen ${Math.floor(s / 60)} min ago`;
    return `last seen ${sameDay(d, new Date()) ? 'today at ' : ''}${shortTime(iso)}`;
}

export function fileSize(bytes) {
    if (!Number.isFinite(bytes) || bytes < 0) return '';
    if (bytes < 1024) return `${bytes} B`;
    const units = ['KB', 'MB', 'GB'];
    let v = bytes / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function initials(name) {
    const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
    const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
    return s.toUpperCase();
}

// A random id for clientMsgId: crypto.randomUUID needs a secure context, which a page behind a
// plain-HTTP proxy is not; getRandomValues works everywhere.
export function randomId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// Links in message text: http and https URLs become <a> elements that open in a new tab without
// giving the page that opens a handle on this one (rel="noopener noreferrer"). Every other
// scheme (javascript:, data:, ftp:, ...) stays plain text. Built from text nodes and
// setAttribute (dom.js), never from HTML.
import { h } from './dom.js';

// A candidate starts with http:// or https:// (not in the middle of a word) and runs to the
// next space or a character that cannot be in a URL as typed.
const CANDIDATE = /(?<![\p{L}\p{N}_])https?:\/\/[^\s<>"`{}|\\^]+/giu;
const CLOSERS = { ')': '(', ']': '[' };

// "https://example.com/a)." -> "https://example.com/a": sentence punctuation after a link is
// not part of it, nor a closing bracket that the link itself did not open.
export function trimLink(s) {
    for (;;) {
        const c = s[s.length - 1];
        if (/[.,;:!?'*]/.test(c)) {
            s = s.slice(0, -1);
            continue;
        }
        const open = CLOSERS[c];
        if (open && s.split(c).length > s.split(open).length) {
            s = s.slice(0, -1);
            continue;
        }
        return s;
    }
}

// The normalised href of an http(s) URL, or null.
function safeHref(s) {
    try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname ? u.href : null;
    } catch {
        return null;
    }
}

// The text as a list of strings and <a> nodes, for append()/h().
export function linkify(text) {
    const out = [];
    let last = 0;
    for (const match of text.matchAll(CANDIDATE)) {
        const shown = trimLink(match[0]);
        const href = safeHref(shown);
        if (!href) continue;
        if (match.index > last) out.push(text.slice(last, match.index));
        out.push(h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, shown));
        last = match.index + shown.length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
}

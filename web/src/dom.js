// DOM building without HTML parsing: every string becomes a text node or an attribute value,
// so user-provided text can never turn into markup. Nothing in the client uses innerHTML.

// h('button', { class: 'x', 'aria-label': 'Send', onclick: fn }, 'Send', child, [more])
export function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
        for (const [k, v] of Object.entries(props)) {
            if (v === undefined || v === null || v === false) continue;
            if (k === 'class') el.className = v;
            else if (k === 'text') el.textContent = v;
            else if (k === 'dataset') Object.assign(el.dataset, v);
            else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
            else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = v;
            else el.setAttribute(k, v === true ? '' : String(v));
        }
    }
    append(el, children);
    return el;
}

export function append(el, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        if (Array.isArray(c)) append(el, c);
        else if (c instanceof Node) el.appendChild(c);
        else el.appendChild(document.createTextNode(String(c)));
    }
    return el;
}

// Replaces el's children with the given ones (text or nodes).
export function setChildren(el, ...children) {
    el.replaceChildren();
    return append(el, children);
}

export function $(sel, root = document) {
    return root.querySelector(sel);
}

// A small inline icon (24x24 viewBox, stroked path), built as SVG nodes, never parsed markup.
const ICONS = {
    clip: 'M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9',
    file: 'M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9zM14 3v6h6',
    photo: 'M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4M15.5 9.5h.01',
    back: 'M15 18l-6-6 6-6',
    send: 'M4 12l16-8-6 16-2.5-6.5z',
    check: 'M5 12.5l4.5 4.5L19 7.5',
    checks: 'M1.5 12.5L6 17l9.5-9.5M10.5 16l1 1 10-9.5',
    search: 'M10.5 17a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM15.5 15.5L21 21',
};
export function icon(name, cls = 'icon') {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', cls);
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.appendChild(path);
    return svg;
}

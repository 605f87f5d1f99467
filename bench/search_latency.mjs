// Search latency over ~100k messages (BENCH_N=1000000 for 1M): node bench/search_latency.mjs <engine: sqlite|postgres> <port> [pgurl]
// Seeds through the database directly (a Parlor-migrated schema), then times GET /api/chat/search.
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
const [engine, port, pgurl] = process.argv.slice(2);
const BIN = process.env.PARLOR_BIN || 'build/parlor';
const SECRET = 'b'.repeat(64);
const dir = `${process.env.BENCH_DIR || '/tmp/parlor-search-bench'}/${engine}`;
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const tok = (sub) => { const h = b64({ alg: 'HS256', typ: 'JWT' }), p = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
    return `${h}.${p}.${createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url')}`; };
const store = engine === 'postgres' ? pgurl : `sqlite:${dir}/parlor.db`;
function serve() {
    const p = spawn(BIN, ['serve', '--port', port, '--host', '127.0.0.1', '--data', dir, '--store', store, '--jwt-secret', SECRET,
        '--rate-rest-per-s', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return new Promise((res) => p.stderr.on('data', (d) => { if (String(d).includes('listening on')) res(p); }));
}
const url = `http://127.0.0.1:${port}`;
const call = (m, path, t, body) => fetch(url + path, { method: m, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) }).then((r) => r.json());
let srv = await serve();
// 20 users, 40 conversations (direct), 'alice' is in 8 of them.
const convs = [];
for (let i = 0; i < 40; i++) {
    const a = i < 8 ? 'alice' : `u${i}`, b = `v${i}`;
    const m = await call('POST', '/api/chat/messages', tok(a), { recipientId: b, content: 'hello', type: 'text' });
    convs.push(m.message.conversationId);
}
srv.kill('SIGTERM');
await new Promise((r) => srv.on('exit', r));
// Words: 5000 of 4-9 letters (a Zipf-ish draw), 12 words a message, 100k messages.
let seed = 42; const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const vocab = Array.from({ length: 5000 }, (_, i) => 'w' + i.toString(36) + 'abcdefgh'.slice(0, 2 + (i % 6)));
const N = Number(process.env.BENCH_N) || 100000, rows = [];
for (let i = 0; i < N; i++) {
    const words = Array.from({ length: 12 }, () => vocab[Math.floor(Math.pow(rnd(), 2) * vocab.length)]);
    if (i % 1000 === 7) words.push('doorcode');
    if (i % 3 === 0) words.push('ok'); // a common two-letter word
    rows.push([convs[i % convs.length], words.join(' ')]);
}
const tsv = rows.map(([c, t], i) => `${c}\t${t}`).join('\n');
fs.writeFileSync(`${dir}/rows.tsv`, tsv);
if (engine === 'sqlite') {
    execFileSync('python3', ['-c', `
import sqlite3, os, sys
db = sqlite3.connect('${dir}/parlor.db')
seqs = dict(db.execute("select id, last_seq from conversations"))
rows = []
t0 = 1764900000000
for i, line in enumerate(open('${dir}/rows.tsv')):
    c, text = line.rstrip('\\n').split('\\t')
    seqs[c] += 1
    rows.append(('%024x' % (0xa00000000000000000000000 + i), c, seqs[c], 'x', None, text, 'text', t0 + i, t0 + i))
db.executemany("insert into messages (id, conversation_id, seq, sender, recipient, content, type, created_at, updated_at) values (?,?,?,?,?,?,?,?,?)", rows)
for c, s in seqs.items(): db.execute("update conversations set last_seq = ? where id = ?", (s, c))
db.commit()
`]);
} else {
    fs.writeFileSync(`${dir}/seed.sql`, `CREATE TEMP TABLE r (n serial, conv text, body text);
\\copy r (conv, body) FROM '${dir}/rows.tsv'
INSERT INTO messages (pos, id, conversation_id, seq, sender, content, type, created_at, updated_at)
 SELECT nextval('messages_pos_seq'), 'f' || lpad(to_hex(n), 23, '0'), conv,
  (SELECT last_seq FROM conversations WHERE id = conv) + row_number() OVER (PARTITION BY conv ORDER BY n),
  'x', convert_to(body, 'UTF8'), 'text', 1764900000000 + n, 1764900000000 + n FROM r ORDER BY n;
UPDATE conversations c SET last_seq = (SELECT max(seq) FROM messages m WHERE m.conversation_id = c.id);
ANALYZE;
`);
    execFileSync('psql', [pgurl, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-f', `${dir}/seed.sql`], { stdio: 'inherit' });
}
console.log(engine, 'seeded', N);

srv = await serve();
const A = tok('alice');
const queries = (process.env.BENCH_QUERIES || 'doorcode,w1abc,w1a,w2abcd w1abc,wzzz,w,w1,ok').split(',');
for (const q of queries) {
    await call('GET', `/api/chat/search?q=${encodeURIComponent(q)}&limit=20`, A);
    const times = [];
    let hits = 0;
    for (let i = 0; i < 15; i++) {
        const t0 = process.hrtime.bigint();
        const r = await call('GET', `/api/chat/search?q=${encodeURIComponent(q)}&limit=20`, A);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        hits = r.results.length;
    }
    times.sort((x, y) => x - y);
    console.log(`${engine} q=${JSON.stringify(q)} hits(page)=${hits} median=${times[7].toFixed(2)} ms p90=${times[13].toFixed(2)} ms`);
}
srv.kill('SIGTERM');

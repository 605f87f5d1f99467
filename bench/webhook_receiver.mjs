// A webhook receiver for bench/webhooks.sh: answers 200 at once, and for each delivery records
// the time from the event (the body's createdAt) to its arrival. GET /stats answers
// {count, byType, p50_ms, p99_ms, max_ms, first_at, last_at}; GET /reset clears them.
import http from 'node:http';

const port = Number(process.argv[2] || 0);
let lat = [];
let byType = {};
let first = 0;
let last = 0;
const pct = (a, p) => (a.length ? a[Math.min(a.length - 1, Math.floor(a.length * p))] : null);
const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
        if (req.url === '/reset') {
            lat = [];
            byType = {};
            first = last = 0;
            res.end('{}');
            return;
        }
        const s = [...lat].sort((a, b) => a - b);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ count: lat.length, byType, p50_ms: pct(s, 0.5), p99_ms: pct(s, 0.99),
                                 max_ms: s.length ? s[s.length - 1] : null, first_at: first, last_at: last }));
        return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        const now = Date.now();
        const j = JSON.parse(Buffer.concat(chunks).toString());
        lat.push(now - Date.parse(j.createdAt));
        byType[j.type] = (byType[j.type] || 0) + 1;
        if (!first) first = now;
        last = now;
        res.end('ok');
    });
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => console.log(server.address().port));

// The reference stack for the benchmark: what a Node developer would write for the events of
// shared CONTRACT.md that bench/loadgen uses (token auth on connect, send_message with an ack,
// receive_message to the other member), with an in-memory store instead of MongoDB.
//
//   node server.mjs --port 5001 --host 127.0.0.1 --jwt-secret SECRET [--redis redis://HOST:PORT]
// With --redis (env REDIS_URL), several processes form one socket.io cluster through
// @socket.io/redis-adapter (pub/sub; each process keeps its own in-memory store): what a Node
// developer would run behind a load balancer (bench/cluster.sh).
// Options may also come from the environment: PORT, HOST, JWT_SECRET, PING_INTERVAL_MS,
// PING_TIMEOUT_MS, MAX_MESSAGE_LENGTH. Prints "listening on HOST:PORT" to stderr when ready.
import { createServer } from 'node:http';
import { createSecretKey, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';
import jwt from 'jsonwebtoken';

const { values: opts } = parseArgs({
    options: {
        port: { type: 'string', default: process.env.PORT ?? '5001' },
        host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
        'jwt-secret': { type: 'string', default: process.env.JWT_SECRET },
        'ping-interval-ms': { type: 'string', default: process.env.PING_INTERVAL_MS ?? '25000' },
        'ping-timeout-ms': { type: 'string', default: process.env.PING_TIMEOUT_MS ?? '20000' },
        'max-message-length': { type: 'string', default: process.env.MAX_MESSAGE_LENGTH ?? '4000' },
        redis: { type: 'string', default: process.env.REDIS_URL },
    },
});
const secret = opts['jwt-secret'];
if (!secret || secret.length < 32) {
    console.error('server.mjs: --jwt-secret (at least 32 bytes) is required');
    process.exit(2);
}
// A KeyObject made once: given the string, jsonwebtoken 9 first tries to parse it as a public
// key on every verify, which costs most of a handshake (auth0/node-jsonwebtoken#966).
const secretKey = createSecretKey(Buffer.from(secret));
const maxLength = Number(opts['max-message-length']);
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

// ObjectId-style ids: 4 bytes of seconds, 5 random bytes per process, 3 bytes of counter.
const processUnique = randomBytes(5).toString('hex');
let idCounter = randomBytes(3).readUIntBE(0, 3);
function objectId() {
    idCounter = (idCounter + 1) & 0xffffff;
    const secs = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
    return secs + processUnique + idCounter.toString(16).padStart(6, '0');
}

// The store: the shape a MongoDB-backed version would have, kept in Maps.
class MemoryStore {
    constructor() {
        this.conversations = new Map(); // "a\nb" (sorted members) -> conversation
        this.messages = new Map(); // conversationId -> [message]
        this.byClientMsgId = new Map(); // "sender\nclientMsgId" -> message
    }

    directConversation(a, b) {
        const key = a < b ? `${a}\n${b}` : `${b}\n${a}`;
        let conv = this.conversations.get(key);
        if (!conv) {
            const now = new Date();
            conv = { _id: objectId(), participants: [a, b], title: null, lastMessage: null,
                     seq: 0, createdAt: now, updatedAt: now };
            this.conversations.set(key, conv);
            this.messages.set(conv._id, []);
        }
        return conv;
    }

    // Returns { message, duplicate }.
    insertDirect(sender, recipient, content, clientMsgId) {
        const dedupKey = clientMsgId == null ? null : `${sender}\n${clientMsgId}`;
        if (dedupKey) {
            const existing = this.byClientMsgId.get(dedupKey);
            if (existing) return { message: existing, duplicate: true };
        }
        const conv = this.directConversation(sender, recipient);
        const now = new Date();
        const message = {
            _id: objectId(),
            conversationId: conv._id,
            seq: ++conv.seq,
            sender,
            recipient,
            content,
            type: 'text',
            file: null,
            read: false,
            readAt: null,
            clientMsgId: clientMsgId ?? null,
            createdAt: now,
            updatedAt: now,
        };
        this.messages.get(conv._id).push(message);
        conv.lastMessage = message;
        conv.updatedAt = now;
        if (dedupKey) this.byClientMsgId.set(dedupKey, message);
        return { message, duplicate: false };
    }

    // Groups (bench/groups.mjs): created over REST, then messages to every member.
    createGroup(creator, participantIds) {
        const now = new Date();
        const participants = [...new Set([creator, ...participantIds])];
        const conv = { _id: objectId(), participants, title: null, lastMessage: null, seq: 0,
                       createdAt: now, updatedAt: now };
        this.conversations.set(conv._id, conv);
        this.messages.set(conv._id, []);
        return conv;
    }

    insertGroup(sender, conversationId, content, clientMsgId) {
        const conv = this.conversations.get(conversationId);
        if (!conv || !conv.participants.includes(sender)) throw new ClientError('NOT_FOUND', 'no such conversation');
        const dedupKey = clientMsgId == null ? null : `${sender}\n${clientMsgId}`;
        if (dedupKey) {
            const existing = this.byClientMsgId.get(dedupKey);
            if (existing) return { conv, message: existing, duplicate: true };
        }
        const now = new Date();
        const message = { _id: objectId(), conversationId: conv._id, seq: ++conv.seq, sender,
                          recipient: null, content, type: 'text', file: null, read: false,
                          readAt: null, clientMsgId: clientMsgId ?? null, createdAt: now, updatedAt: now };
        this.messages.get(conv._id).push(message);
        conv.lastMessage = message;
        conv.updatedAt = now;
        if (dedupKey) this.byClientMsgId.set(dedupKey, message);
        return { conv, message, duplicate: false };
    }
}

const store = new MemoryStore();
const httpServer = createServer((req, res) => {
    if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        return;
    }
    if (req.url === '/api/chat/conversations' && req.method === 'POST') {
        let body = '';
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            try {
                const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
                const user = jwt.verify(token, secretKey, { algorithms: ['HS256'] });
                const { participantIds } = JSON.parse(body);
                const conv = store.createGroup(user.sub, participantIds);
                res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(conv));
            } catch {
                res.writeHead(400).end();
            }
        });
        return;
    }
    res.writeHead(404).end();
});
const io = new Server(httpServer, {
    serveClient: false,
    pingInterval: Number(opts['ping-interval-ms']),
    pingTimeout: Number(opts['ping-timeout-ms']),
});

if (opts.redis) {
    const { createClient } = await import('redis');
    const { createAdapter } = await import('@socket.io/redis-adapter');
    const pub = createClient({ url: opts.redis });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
}

class ClientError extends Error {
    constructor(code, message) {
        super(message);
        this.code = code;
    }
}

io.use((socket, next) => {
    const token = socket.handshake.auth?.token;
    if (!token) {
        const err = new Error('unauthorized');
        err.data = { code: 'AUTH_MISSING', message: 'a token is required (auth: { token })' };
        return next(err);
    }
    try {
        const claims = jwt.verify(token, secretKey, { algorithms: ['HS256'] });
        if (typeof claims.sub !== 'string' || !USER_ID.test(claims.sub)) throw new Error('bad sub');
        socket.data.user = { id: claims.sub, name: claims.name ?? null, role: claims.role ?? null };
        next();
    } catch (e) {
        const err = new Error('unauthorized');
        const expired = e instanceof jwt.TokenExpiredError;
        err.data = {
            code: expired ? 'AUTH_EXPIRED' : 'AUTH_INVALID',
            message: expired ? 'the token has expired' : 'the token is not valid',
        };
        next(err);
    }
});

function validateSend(userId, payload) {
    if (typeof payload !== 'object' || payload === null) {
        throw new ClientError('BAD_REQUEST', 'send_message needs an object');
    }
    const { recipientId, content, clientMsgId } = payload;
    if (typeof recipientId !== 'string' || !USER_ID.test(recipientId)) {
        throw new ClientError('BAD_REQUEST', 'recipientId must be a user id');
    }
    if (recipientId === userId) {
        throw new ClientError('BAD_REQUEST', 'cannot send a message to yourself');
    }
    if (typeof content !== 'string' || content.trim() === '') {
        throw new ClientError('BAD_REQUEST', 'content must be a non-empty string');
    }
    if ([...content].length > maxLength) {
        throw new ClientError('BAD_REQUEST', 'content is too long');
    }
    if (clientMsgId !== undefined && clientMsgId !== null &&
        (typeof clientMsgId !== 'string' || clientMsgId === '' || clientMsgId.length > 128)) {
        throw new ClientError('BAD_REQUEST', 'clientMsgId must be a non-empty string of at most 128 bytes');
    }
    return { recipientId, content, clientMsgId };
}

io.on('connection', (socket) => {
    const userId = socket.data.user.id;
    socket.join(userId); // a room per user: all of that user's sockets

    socket.on('send_message', (payload, ack) => {
        const reply = typeof ack === 'function' ? ack : () => {};
        try {
            if (typeof payload?.conversationId === 'string') { // a group (bench/groups.mjs)
                const { content, clientMsgId } = payload;
                if (typeof content !== 'string' || content.trim() === '') throw new ClientError('BAD_REQUEST', 'content must be a non-empty string');
                const { conv, message, duplicate } = store.insertGroup(userId, payload.conversationId, content, clientMsgId);
                if (!duplicate) socket.to(conv.participants).emit('receive_message', message);
                reply({ ok: true, message });
                return;
            }
            const { recipientId, content, clientMsgId } = validateSend(userId, payload);
            const { message, duplicate } = store.insertDirect(userId, recipientId, content, clientMsgId);
            // Every socket of both members except this one; the sender learns from the ack.
            if (!duplicate) socket.to([recipientId, userId]).emit('receive_message', message);
            reply({ ok: true, message });
        } catch (e) {
            const error = e instanceof ClientError
                ? { code: e.code, message: e.message }
                : { code: 'INTERNAL', message: 'internal error' };
            if (!(e instanceof ClientError)) console.error(e);
            socket.emit('message_error', { ...error, clientMsgId: payload?.clientMsgId });
            reply({ ok: false, error });
        }
    });
});

httpServer.listen(Number(opts.port), opts.host, () => {
    const addr = httpServer.address();
    console.error(`listening on ${addr.address}:${addr.port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        io.close();
        process.exit(0);
    });
}

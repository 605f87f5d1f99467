// Photos and files: uploads with progress, downloads and previews through blob: URLs (the
// Authorization header cannot ride on an <img src>), the lightbox and drag and drop.
// Methods of ChatApp (chat.js), kept in their own file and mixed into its prototype.
import { describeError } from './api.js';
import { h, setChildren } from './dom.js';
import { fileSize, randomId } from './format.js';

// An upload refusal in plain words. A 413 is either the size limit ("the file is larger than
// max-file-size") or the storage quota ("your storage quota is used up"). Parlor's answer
// carries the limit as error.maxBytes, and the text says it; without it (another server) the
// text gives the file's own size and does not guess the limit.
export function uploadErrorText(err, file) {
    const name = `“${file.name}”`;
    if (err.status === 413 || err.code === 'PAYLOAD_TOO_LARGE') {
        if (/quota/i.test(err.message || '')) return `${name} cannot be sent: your storage space on the server is used up.`;
        const limit = Number(err.maxBytes);
        if (Number.isSafeInteger(limit) && limit > 0) return `${name} is larger than ${fileSize(limit)}, the most this server accepts.`;
        return `${name} (${fileSize(file.size)}) is larger than this server accepts.`;
    }
    return describeError(err, name);
}

export class FileMethods {
    async uploadFiles(files) {
        const conv = this.activeConv();
        if (!conv) return;
        // A conversation with someone you block has no message box: a dropped file would be
        // uploaded only to be refused (block.js).
        if (this.isBlocked?.(this.peerOf(conv))) {
            this.toast('Not sent: you blocked this person. Unblock to send files.');
            return;
        }
        for (const file of files) this.uploadOne(conv, file);
    }

    async uploadOne(conv, file) {
        const threadId = conv._id || conv.id;
        const t = this.thread(threadId);
        const clientMsgId = randomId();
        const key = `c:${clientMsgId}`;
        const isImage = /^image\//.test(file.type);
        const previewUrl = isImage ? URL.createObjectURL(file) : undefined;
        const m = {
            clientMsgId,
            sender: this.me.id,
            type: isImage ? 'image' : 'file',
            content: '',
            file: { name: file.name, size: file.size, mime: file.type },
            createdAt: new Date().toISOString(),
            _pending: true,
            _progress: 0,
            _local: performance.now(),
            _previewUrl: previewUrl,
        };
        t.msgs.set(key, m);
        this.renderMessages();
        this.scrollToBottom();
        const up = this.api.upload('api/chat/files', file, (p) => {
            m._progress = p;
            this.updateProgress(key, p);
        });
        let doc;
        try {
            const res = await up.promise;
            doc = res.file || res;
        } catch (err) {
            m._pending = false;
            m._progress = undefined;
            m._failed = uploadErrorText(err, file);
            m._uploadFailed = true;
            // Said under the message box only while its conversation is open; the failed
            // bubble in the conversation keeps saying it.
            if (this.activeId === threadId) this.uploadError(m._failed);
            this.renderMessages();
            return;
        }
        const type = /^image\//.test(doc.mime || '') ? 'image' : 'file';
        if (previewUrl && doc.id) this.blobs.set(doc.id, Promise.resolve(previewUrl));
        // The draft this started in may have become a real conversation meanwhile.
        const target = conv._id ? (this.convs.get(conv._id) || conv)
            : (this.drafts.get(conv.id) || [...this.convs.values()].find((c) => this.peerOf(c) === conv.peer) || conv);
        this.queueSend(target, { type, content: '', fileId: doc.id, file: doc, previewUrl, existingKey: key });
    }

    fileBlobUrl(file) {
        if (!file?.id) return Promise.reject(new Error('no file'));
        let p = this.blobs.get(file.id);
        if (!p) {
            // Not file.url: that is absolute ("/api/..."), and the page may live under a prefix.
            p = this.api.blob(`api/chat/files/${encodeURIComponent(file.id)}`).then((b) => URL.createObjectURL(b));
            p.catch(() => this.blobs.delete(file.id));
            this.blobs.set(file.id, p);
        }
        return p;
    }

    async download(file) {
        try {
            const url = await this.fileBlobUrl(file);
            const a = h('a', { href: url, download: file.name || 'file', hidden: true });
            document.body.appendChild(a);
            a.click();
            a.remove();
        } catch (err) {
            this.toast(describeError(err, 'The file'));
        }
    }

    async openImage(m) {
        const d = this.el.lightbox;
        const img = h('img', { alt: m.file?.name || 'Photo', class: 'lightbox-img' });
        setChildren(d.body, img);
        this.el.lightboxTitle.textContent = m.file?.name || 'Photo';
        this.el.lightboxDownload.onclick = () => this.download(m.file);
        d.showModal();
        try {
            img.src = m._previewUrl || await this.fileBlobUrl(m.file);
        } catch (err) {
            setChildren(d.body, h('p', {}, describeError(err, 'The photo')));
        }
    }

    // Shows text under the message box for 10 s; null clears it.
    uploadError(text) {
        this.el.uploadError.textContent = text || '';
        clearTimeout(this.uploadErrTimer);
        if (text) this.uploadErrTimer = setTimeout(() => {
            this.el.uploadError.textContent = '';
        }, 10000);
    }

    setupDrop(target) {
        let depth = 0;
        const has = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
        target.addEventListener('dragenter', (e) => {
            if (!has(e) || !this.activeId) return;
            e.preventDefault();
            depth++;
            this.el.drop.hidden = false;
        });
        target.addEventListener('dragover', (e) => {
            if (has(e) && this.activeId) e.preventDefault();
        });
        target.addEventListener('dragleave', () => {
            if (--depth <= 0) {
                depth = 0;
                this.el.drop.hidden = true;
            }
        });
        target.addEventListener('drop', (e) => {
            if (!has(e) || !this.activeId) return;
            e.preventDefault();
            depth = 0;
            this.el.drop.hidden = true;
            this.uploadFiles([...e.dataTransfer.files]);
        });
    }
}

// thread.js — a ticket's conversation in the portal: the messages between the customer and
// staff (GET /api/v1/ticket/ID/thread: only what the store lets the customer read, never an
// internal note), each with its files to download, and the customer's answer with files
// (POST …/plugins/collaborative/thread/ticket/ID). Its section has data-view="ticket", so it
// shows with the ticket's page (pages.js); it follows the ticket shown there. A new ticket's
// files go the same way once pages.js has opened it (Thread.check, Thread.afterCreate).
// The sizes are checked here to spare a wasted upload; the server decides.
'use strict';
(function () {
    const THREAD = '/api/v1/plugins/collaborative/thread/ticket/';
    const $ = (id) => document.getElementById(id);
    const t = (k, v) => I18n.t(k, v);
    // What the server said it takes (GET thread's limits), until it says otherwise.
    let limits = {attachment_max_bytes: 5 << 20, attachment_max_count: 5,
                  body_max_bytes: 1 << 20, text_max_bytes: 20000};
    let shown = 0; // the ticket whose thread is on the page

    function el(tag, text, cls) {
        const e = document.createElement(tag);
        if (text !== undefined && text !== null)
            e.textContent = text;
        if (cls)
            e.className = cls;
        return e;
    }

    // A size as people read it: bytes, KB or MB (never "0 MB" for a small file).
    const mb = (n) => n < 1024 ? t('thread.bytes', {n: I18n.number(n, 0)})
        : n < 1048576 ? t('thread.kb', {n: I18n.number(n / 1024, n < 10240 ? 1 : 0)})
        : t('thread.mb', {n: I18n.number(n / 1048576, 1)});
    const say = (id, text) => { $(id).textContent = text || ''; };
    const detail = (r) => (r.data && r.data.detail) || t('error.server', {status: r.status});

    // What is wrong with the files of input INPUT for one message, or '' (nothing).
    function check(input) {
        const files = Array.from($(input).files || []);
        if (files.length > limits.attachment_max_count)
            return t('thread.too_many', {n: I18n.number(limits.attachment_max_count, 0)});
        let total = 0;
        for (const f of files) {
            if (f.size > limits.attachment_max_bytes)
                return t('thread.too_big', {name: f.name, max: mb(limits.attachment_max_bytes)});
            total += Math.ceil(f.size / 3) * 4 + f.name.length + 100;
        }
        if (total + 64 * 1024 > limits.body_max_bytes)
            return t('thread.body_too_big', {max: mb(limits.body_max_bytes)});
        return '';
    }

    // A file as {filename, content_type, data: base64}.
    function encode(file) {
        return new Promise((done, fail) => {
            const r = new FileReader();
            r.onload = () => {
                const url = String(r.result);
                done({filename: file.name, content_type: file.type || 'application/octet-stream',
                      data: url.slice(url.indexOf(',') + 1)});
            };
            r.onerror = () => fail(r.error);
            r.readAsDataURL(file);
        });
    }

    async function send(id, text, input) {
        const attachments = await Promise.all(Array.from($(input).files || []).map(encode));
        return Rapport.call('POST', THREAD + id, {text, attachments});
    }

    function item(m) {
        const li = el('li', null, 'message ' + (m.from === 'customer' ? 'mine' : 'theirs'));
        const head = el('p', null, 'muted');
        head.append(el('strong', m.from === 'customer' ? t('thread.you') : t('thread.staff')),
                    ' · ', el('time', I18n.date(m.at, true)));
        li.append(head);
        if (m.subject && m.from !== 'customer')
            li.append(el('p', m.subject, 'subject'));
        if (m.text)
            li.append(el('p', m.text, 'text'));
        if (m.attachments && m.attachments.length) {
            const files = el('ul', null, 'files');
            for (const a of m.attachments) {
                const f = el('li');
                const link = el('a', a.filename || t('thread.download'));
                // The server's own address (a number in it), sent as a download it sandboxes.
                link.href = '/api/v1/plugins/collaborative/attachments/' + Number(a.id);
                link.setAttribute('download', a.filename || '');
                f.append(link, ' ', el('span', '(' + mb(a.size || 0) + ')', 'muted'));
                files.append(f);
            }
            li.append(files);
        }
        return li;
    }

    async function load(id) {
        const r = await Rapport.call('GET', '/api/v1/ticket/' + id + '/thread');
        if (id !== shown)
            return; // another ticket was opened meanwhile
        const list = $('thread-items');
        list.replaceChildren();
        if (r.status !== 200) {
            $('thread').hidden = true;
            return say('error', detail(r));
        }
        const thread = r.data.data;
        limits = Object.assign(limits, thread.limits || {});
        $('thread-none').hidden = thread.items.length > 0;
        for (const m of thread.items)
            list.append(item(m));
        const closed = thread.status === 'closed';
        $('thread-form').hidden = closed;
        $('thread-closed').hidden = !closed;
        say('thread-limits', t('thread.limits', {n: I18n.number(limits.attachment_max_count, 0),
                                                  max: mb(limits.attachment_max_bytes)}));
    }

    // The ticket's page was drawn (pages.js sets its title): show that ticket's thread.
    function follow() {
        const m = /^#ticket\/(\d+)$/.exec(location.hash);
        if (!m || $('thread').hidden)
            return;
        shown = Number(m[1]);
        load(shown);
    }

    async function answer(ev) {
        ev.preventDefault();
        say('error');
        say('notice');
        const text = $('thread-text').value;
        const bad = check('thread-files');
        if (bad)
            return say('error', bad);
        if (!text.trim() && !$('thread-files').files.length)
            return say('error', t('thread.empty'));
        $('thread-send').disabled = true;
        try {
            const r = await send(shown, text, 'thread-files');
            if (r.status !== 201)
                return say('error', detail(r));
            $('thread-text').value = '';
            $('thread-files').value = '';
            say('notice', t('thread.sent'));
            await load(shown);
        } finally {
            $('thread-send').disabled = false;
        }
    }

    // After pages.js opened ticket ID from the new-ticket form: its files, as its first answer.
    async function afterCreate(id) {
        if (!$('ticket-files') || !$('ticket-files').files.length)
            return true;
        const r = await send(id, '', 'ticket-files');
        $('ticket-files').value = '';
        if (r.status !== 201) {
            say('error', detail(r));
            return false;
        }
        return true;
    }

    document.addEventListener('DOMContentLoaded', () => {
        $('thread-form').addEventListener('submit', answer);
        new MutationObserver(follow).observe($('ticket-title'), {childList: true});
        new MutationObserver(follow).observe($('thread'), {attributes: true,
                                                           attributeFilter: ['hidden']});
    });

    window.Thread = {check: (input) => check(input || 'ticket-files'), afterCreate};
})();

// account.js — the Account tab: the customer's own details (PATCH /api/v1/contact/ID with
// If-Match, checked by the store; an error goes beside the field it names), what we may send
// them (email, SMS, the public mailing lists: /api/v1/plugins/portal/consent), their data
// (the privacy policy, a download of everything held about them, "forget me"), and the
// language chosen in the menu saved to their contact. The privacy page anyone may read.
'use strict';
(function () {
    const P = '/api/v1/plugins/portal';
    const $ = (id) => document.getElementById(id);
    const t = (k, v) => I18n.t(k, v);
    // The fields the portal role may change; the email address stays read-only (the role
    // says so too): it is who signs in, so staff change it after confirming it.
    const FIELDS = ['first_name', 'last_name', 'phone', 'mobile', 'address', 'city', 'country'];
    let contact = null; // the record as last read, with its version for If-Match
    let etag = null;

    function say(kind, text) {
        $('error').textContent = kind === 'error' ? text : '';
        $('notice').textContent = kind === 'notice' ? text : '';
    }

    const detail = (r) => (r.data && r.data.detail) || t('error.server', {status: r.status});

    // A write the API wants If-Match on: Rapport.call sends no extra header, so this one asks
    // for the session's CSRF token itself.
    async function patch(path, body, version) {
        const me = await Rapport.me();
        const res = await fetch(path, {
            method: 'PATCH', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json', Accept: 'application/json',
                      'If-Match': version, 'X-CSRF-Token': (me && me.csrf) || ''},
            body: JSON.stringify(body),
        });
        let data = null;
        try { data = await res.json(); } catch (e) { data = null; }
        return {status: res.status, data, etag: res.headers.get('ETag')};
    }

    // The contact as stored and its version: [record, ETag], or [null, null].
    async function read(id) {
        const res = await fetch('/api/v1/contact/' + id, {credentials: 'same-origin',
                                                           headers: {Accept: 'application/json'}});
        return res.ok ? [await res.json(), res.headers.get('ETag')] : [null, null];
    }

    function clearErrors() {
        for (const f of FIELDS)
            $('acc-' + f + '-error').textContent = '';
    }

    // The field a refusal names ("contact.phone: … is not a phone number"), when the form has it.
    function fieldOf(text) {
        const m = /^(?:[a-z_]+\.)?([a-z_]+):/.exec(text || '');
        return m && FIELDS.includes(m[1]) ? m[1] : null;
    }

    function fill() {
        $('acc-email').value = contact.email || '';
        for (const f of FIELDS)
            $('acc-' + f).value = contact[f] === null || contact[f] === undefined ? '' : contact[f];
        $('download-data').href = '/api/v1/contact/' + contact.id + '/subject';
    }

    async function save(ev) {
        ev.preventDefault();
        clearErrors();
        say();
        const changed = {};
        for (const f of FIELDS) {
            const v = $('acc-' + f).value.trim();
            const was = contact[f] === null || contact[f] === undefined ? '' : String(contact[f]);
            if (v !== was)
                changed[f] = v === '' ? null : v;
        }
        if (!Object.keys(changed).length)
            return say('notice', t('account.details.saved'));
        const r = await patch('/api/v1/contact/' + contact.id, changed, etag);
        if (r.status === 200) {
            contact = r.data;
            etag = r.etag || etag;
            fill();
            return say('notice', t('account.details.saved'));
        }
        if (r.status === 412) { // changed elsewhere: show it as it is now
            const [now, tag] = await read(contact.id);
            if (now)
                [contact, etag] = [now, tag];
            fill();
            return say('error', t('account.details.conflict'));
        }
        const text = detail(r);
        const field = fieldOf(text) || (r.data && fieldOf((r.data.field || '') + ':'));
        if (field) {
            $('acc-' + field + '-error').textContent = text;
            $('acc-' + field).focus();
        } else
            say('error', text);
    }

    // ---- consent ----

    function listItem(l) {
        const li = document.createElement('li');
        const label = document.createElement('label');
        label.className = 'switch';
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.checked = !!l.subscribed;
        box.dataset.list = l.id;
        box.addEventListener('change', () =>
            change({lists: [{list: l.id, subscribed: box.checked}]}, l.name));
        const name = document.createElement('span');
        name.textContent = l.name;
        label.append(box, ' ', name);
        li.append(label);
        if (l.description) {
            const d = document.createElement('span');
            d.className = 'muted';
            d.textContent = ' — ' + l.description;
            li.append(d);
        }
        const when = document.createElement('span');
        when.className = 'muted when';
        // When it was recorded: what the customer agreed to, or took back, and since when.
        const at = l.subscribed ? l.opted_in_at : l.opted_out_at;
        if (at)
            when.textContent = ' (' + t(l.subscribed ? 'account.lists.since' : 'account.lists.left',
                                        {date: I18n.date(at, true)}) + ')';
        li.append(when);
        return li;
    }

    function showConsent(c) {
        $('consent-email').checked = !c.email_opt_out;
        $('consent-sms').checked = !c.sms_opt_out;
        const ul = $('consent-lists');
        ul.replaceChildren(...c.lists.map(listItem));
        $('lists-none').hidden = c.lists.length > 0;
    }

    async function consent() {
        const r = await Rapport.call('GET', P + '/consent');
        if (r.status === 200)
            showConsent(r.data);
        else
            say('error', detail(r));
    }

    async function change(body, what) {
        say();
        const r = await Rapport.call('POST', P + '/consent', body);
        if (r.status === 200) {
            showConsent(r.data);
            say('notice', t('account.consent.saved', {what}));
        } else {
            say('error', detail(r));
            await consent(); // the switches as they are stored
        }
    }

    // ---- forget me ----

    async function forget() {
        say();
        const r = await Rapport.call('POST', P + '/forget');
        $('forget-confirm').hidden = true;
        if (r.status === 202 || r.status === 200) {
            $('forget-button').hidden = true;
            $('forget-done').hidden = false;
        } else
            say('error', detail(r));
    }

    // ---- the pages ----

    async function load(customer) {
        clearErrors();
        $('forget-confirm').hidden = true;
        $('forget-done').hidden = true;
        $('forget-button').hidden = false;
        if (!customer)
            return;
        [contact, etag] = await read(customer.id);
        if (!contact)
            return say('error', t('error.server', {status: 404}));
        fill();
        await consent();
    }

    async function privacy() {
        const r = await Rapport.call('GET', P + '/privacy?lang=' + encodeURIComponent(I18n.lang()));
        const html = r.status === 200 && r.data ? r.data.html : null;
        $('privacy-none').hidden = !!html;
        // The server's HTML, rendered from the setting's Markdown by libcmark in safe mode and
        // stripped of unsafe addresses (plugins/portal/kb.c), as an article's body is.
        $('privacy-body').innerHTML = html || '';
    }

    // The language chosen in the menu becomes the contact's own, so mail and a new browser
    // speak it too.
    async function saveLanguage() {
        const me = await Rapport.me();
        const m = me && /^contact:(\d+)$/.exec(me.principal || '');
        if (!m)
            return;
        const [c, tag] = await read(m[1]);
        const lang = $('lang').value;
        if (!c || c.language === lang)
            return;
        const r = await patch('/api/v1/contact/' + m[1], {language: lang}, tag);
        if (r.status === 200) {
            if (contact && contact.id === r.data.id) {
                contact = r.data;
                etag = r.etag || etag;
            }
        } else
            say('error', detail(r));
    }

    document.addEventListener('DOMContentLoaded', () => {
        $('details-form').addEventListener('submit', save);
        $('consent-email').addEventListener('change', (ev) =>
            change({email_opt_out: !ev.target.checked}, t('account.consent.email')));
        $('consent-sms').addEventListener('change', (ev) =>
            change({sms_opt_out: !ev.target.checked}, t('account.consent.sms')));
        $('forget-button').addEventListener('click', () => { $('forget-confirm').hidden = false; });
        $('forget-no').addEventListener('click', () => { $('forget-confirm').hidden = true; });
        $('forget-yes').addEventListener('click', forget);
        $('lang').addEventListener('change', saveLanguage);
    });

    window.Account = {load, privacy};
})();

// portal.js — the customer portal's sign-in: a one-time link from the mail (its token read
// from the address's fragment, which never reaches a server's log), or an email address and a
// password; then who is signed in, setting a password, signing out. Also the business's look
// (GET brand) and the language: the one chosen here (kept in this browser), else the
// contact's own, else the browser's when the portal speaks it, else English.
'use strict';
(function () {
    const P = '/api/v1/plugins/portal';
    const $ = (id) => document.getElementById(id);
    const say = (id, text) => { $(id).textContent = text || ''; };
    const detail = (r) => (r.data && r.data.detail) || I18n.t('error.server', {status: r.status});
    const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

    const LANG_KEY = 'rp_portal_lang';

    function pickLanguage(customer) {
        const have = I18n.languages();
        const chosen = localStorage.getItem(LANG_KEY);
        const own = customer && customer.language ? String(customer.language).toLowerCase() : '';
        const browser = (navigator.language || '').toLowerCase().split('-')[0];
        return [chosen, own, browser].find((c) => c && have.includes(c)) || 'en';
    }

    async function brand() {
        const r = await Rapport.call('GET', P + '/brand');
        const b = r.status === 200 && r.data ? r.data : {};
        I18n.setExtra(b.messages);
        Pages.setBrand(b.name);
        if (b.name) {
            $('brand-name').removeAttribute('data-i18n');
            $('brand-name').textContent = b.name;
        }
        if (b.logo) {
            $('brand-logo').src = b.logo;
            $('brand-logo').alt = b.name || '';
            $('brand-logo').hidden = false;
        }
        if (b.color) // through the CSS object model, which the page's CSP allows
            document.documentElement.style.setProperty('--accent', b.color);
    }

    function languageMenu() {
        const menu = $('lang');
        menu.replaceChildren();
        for (const code of I18n.languages()) {
            const o = document.createElement('option');
            o.value = code;
            o.textContent = I18n.name(code);
            menu.append(o);
        }
        menu.value = I18n.lang();
    }

    async function show() {
        const me = await Rapport.me(); // keeps the session's CSRF token
        const r = me && me.principal ? await Rapport.call('GET', P + '/me') : null;
        const customer = r && r.status === 200 ? r.data : null;
        await I18n.use(pickLanguage(customer));
        languageMenu();
        $('signed-in').hidden = !customer;
        if (customer)
            say('who', [customer.first_name, customer.last_name].filter(Boolean).join(' ') ||
                customer.email);
        Pages.setCustomer(customer);
        await Pages.route();
    }

    async function withToken(token) {
        // The token is used once: take it out of the address before anything else.
        history.replaceState(null, '', location.pathname);
        const r = await Rapport.call('POST', P + '/login/token', {token});
        if (r.status !== 200)
            say('error', detail(r));
    }

    async function withPassword(email, password) {
        let r = await Rapport.call('POST', P + '/login/password', {email, password});
        // 503: every check is busy (someone else's flood); the page tries again a few times.
        for (let i = 0; r.status === 503 && i < 10; i++) {
            await sleep((r.data && r.data.retry_ms) || 1000);
            r = await Rapport.call('POST', P + '/login/password', {email, password});
        }
        const ticket = r.status === 202 ? r.data.ticket : null;
        for (let i = 0; ticket && i < 100; i++) {
            await sleep(r.data.retry_ms || 200);
            r = await Rapport.call('POST', P + '/login/finish', {ticket});
            if (r.status !== 202)
                break;
        }
        if (r.status !== 200)
            say('error', detail(r));
    }

    document.addEventListener('DOMContentLoaded', async () => {
        $('link-form').addEventListener('submit', async (ev) => {
            ev.preventDefault();
            say('error');
            const r = await Rapport.call('POST', P + '/login/link', {email: $('link-email').value});
            if (r.status === 202)
                say('notice', I18n.t('signin.link.sent'));
            else
                say('error', detail(r));
        });
        $('password-form').addEventListener('submit', async (ev) => {
            ev.preventDefault();
            say('error');
            await withPassword($('email').value, $('password').value);
            $('password').value = '';
            await show();
        });
        $('new-password-form').addEventListener('submit', async (ev) => {
            ev.preventDefault();
            const r = await Rapport.call('POST', P + '/password', {password: $('new-password').value});
            $('new-password').value = '';
            if (r.status === 202) {
                // The server ended the other sessions and opened this one again: its new token.
                await Rapport.me();
                say('notice', I18n.t('account.password_saved'));
            }
            else
                say('error', detail(r));
        });
        $('signout-button').addEventListener('click', async () => {
            await Rapport.call('POST', P + '/logout');
            history.replaceState(null, '', location.pathname);
            await show();
        });
        $('lang').addEventListener('change', async () => {
            localStorage.setItem(LANG_KEY, $('lang').value);
            await I18n.use($('lang').value);
            languageMenu();
            await Pages.route(); // the values again, formatted for the language
        });
        // The link opened in a tab that shows the portal already changes only the fragment;
        // any other fragment names a page.
        window.addEventListener('hashchange', () => {
            say('error');
            say('notice');
            return isLink() ? fromLink() : Pages.route();
        });
        await brand();
        await fromLink();
    });

    const isLink = () => /^#token=([A-Za-z0-9_-]+)$/.test(location.hash);

    async function fromLink() {
        const m = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
        if (m)
            await withToken(m[1]);
        await show();
    }
})();

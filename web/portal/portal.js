// portal.js — the customer portal's sign-in: a one-time link from the mail (its token read
// from the address's fragment, which never reaches a server's log), or an email address and a
// password; then who is signed in, setting a password, signing out.
'use strict';
(function () {
    const P = '/api/v1/plugins/portal';
    const $ = (id) => document.getElementById(id);
    const say = (id, text) => { $(id).textContent = text || ''; };
    const detail = (r) => (r.data && r.data.detail) || ('the server answered ' + r.status);
    const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

    async function show() {
        const me = await Rapport.me(); // keeps the session's CSRF token
        const r = me && me.principal ? await Rapport.call('GET', P + '/me') : null;
        const customer = r && r.status === 200;
        $('signin').hidden = customer;
        $('signed-in').hidden = !customer;
        if (customer)
            say('who', [r.data.first_name, r.data.last_name].filter(Boolean).join(' ') ||
                r.data.email);
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
                say('notice', 'If this address may sign in, a link is on its way: open it in ' +
                    'this browser.');
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
            if (r.status === 202)
                say('notice', 'Your password is saved.');
            else
                say('error', detail(r));
        });
        $('signout-button').addEventListener('click', async () => {
            await Rapport.call('POST', P + '/logout');
            await show();
        });
        // The link opened in a tab that shows the portal already changes only the fragment.
        window.addEventListener('hashchange', fromLink);
        await fromLink();
    });

    async function fromLink() {
        const m = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
        if (m)
            await withToken(m[1]);
        await show();
    }
})();

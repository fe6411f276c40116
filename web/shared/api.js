// api.js — the one way a page of ours calls the JSON API: same origin, the session cookie
// (HttpOnly: this script never sees it), and the session's CSRF token on every write.
'use strict';
(function () {
    let csrf = null;

    // Calls METHOD PATH with BODY (an object, or undefined) and EXTRA headers (If-Match…);
    // resolves to {status, data, etag}, data being the parsed JSON answer (a problem document
    // on a refusal) or null.
    async function call(method, path, body, extra) {
        const headers = Object.assign({Accept: 'application/json'}, extra || {});
        if (body !== undefined)
            headers['Content-Type'] = 'application/json';
        if (method !== 'GET' && method !== 'HEAD' && csrf)
            headers['X-CSRF-Token'] = csrf;
        const res = await fetch(path, {
            method, headers, credentials: 'same-origin',
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        let data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = {detail: text}; }
        return {status: res.status, data, etag: res.headers.get('ETag')};
    }

    // Who is signed in ({user, role, …}), or null; keeps the session's CSRF token.
    async function me() {
        const r = await call('GET', '/api/v1/auth/me');
        csrf = r.status === 200 ? r.data.csrf || null : null;
        return r.status === 200 ? r.data : null;
    }

    async function signIn(user, password) {
        const r = await call('POST', '/api/v1/auth/session', {user, password});
        if (r.status === 201)
            csrf = r.data.csrf;
        return r;
    }

    async function signOut() {
        const r = await call('DELETE', '/api/v1/auth/session');
        csrf = null;
        return r;
    }

    window.Rapport = {call, me, signIn, signOut};
})();

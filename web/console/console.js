// console.js — the console's frame: signing in into a session (the user read back from the
// API), the pages' registry and the hash router, the language menu, and a small DOM helper.
// Every page is its own file that calls Console.page(); what a page shows is what the API lets
// the signed-in user read, so the console needs no permission logic of its own. Text goes in
// with textContent, never as HTML.
'use strict';
(function () {
    const $ = (id) => document.getElementById(id);
    const pages = new Map();
    let who = null, current = null;

    // el('td', {class: 'num', text: '3', on: {click: fn}, title: '…'}, child, …): an element;
    // children are elements or strings (set as text). No HTML is ever parsed.
    function el(tag, props, ...children) {
        const e = document.createElement(tag);
        for (const [k, v] of Object.entries(props || {})) {
            if (v === undefined || v === null || v === false)
                continue;
            if (k === 'text')
                e.textContent = String(v);
            else if (k === 'class')
                e.className = v;
            else if (k === 'on')
                for (const [ev, fn] of Object.entries(v))
                    e.addEventListener(ev, fn);
            else if (k === 'dataset')
                Object.assign(e.dataset, v);
            else
                e.setAttribute(k, v === true ? '' : String(v));
        }
        for (const c of children.flat())
            if (c !== null && c !== undefined && c !== false)
                e.append(c instanceof Node ? c : document.createTextNode(String(c)));
        return e;
    }

    // Registers page NAME: {label: i18n key, order: number, render(view, args), when(me)?:
    // whether the nav offers it to this user (the API decides anyway)}.
    function page(name, spec) {
        pages.set(name, Object.assign({order: 100}, spec));
        if (who)
            drawNav();
    }

    function drawNav() {
        const nav = $('nav');
        nav.replaceChildren();
        const list = [...pages.entries()]
            .filter(([, p]) => p.label && (!p.when || p.when(who)))
            .sort((a, b) => a[1].order - b[1].order);
        for (const [name, p] of list)
            nav.append(el('a', {href: '#' + name, text: I18n.t(p.label), dataset: {page: name},
                                'aria-current': current === name ? 'page' : null}));
        nav.hidden = list.length === 0;
    }

    function say(msg) { $('error').textContent = msg || ''; }
    function notice(msg) { $('notice').textContent = msg || ''; }

    // A refusal's words (the API's problem document), else the status.
    function problem(r) {
        return (r && r.data && (r.data.detail || r.data.title)) ||
               I18n.t('error.http', {status: r ? r.status : '?'});
    }

    // Shows the page the fragment names ("#records/contact/42" → records, ["contact", "42"]).
    async function route() {
        if (!who)
            return;
        const parts = decodeURIComponent(location.hash.slice(1)).split('/').filter(Boolean);
        const first = [...pages.entries()].filter(([, p]) => p.label && (!p.when || p.when(who)))
            .sort((a, b) => a[1].order - b[1].order)[0];
        const name = parts[0] || (first && first[0]) || 'home';
        // The default page names itself in the fragment without a second route (replaceState
        // fires no hashchange), so its own link in the bar does not draw it again.
        if (!parts.length && pages.has(name))
            history.replaceState(null, '', '#' + name);
        // Each route draws into a box of its own: a page still waiting on the API when the
        // user moves on draws into a box no longer shown, never into the next page.
        const view = el('div', {class: 'page'});
        $('view').replaceChildren(view);
        say('');
        notice('');
        current = name;
        drawNav();
        const p = pages.get(name);
        if (!p) {
            view.append(el('p', {class: 'error', text: I18n.t('page.unknown', {name})}));
            return;
        }
        try {
            await p.render(view, parts.slice(1));
        } catch (e) {
            if (view.isConnected)
                say(String(e && e.message ? e.message : e));
        }
    }

    function show(me) {
        who = me;
        $('signin').hidden = !!me;
        $('signed-in').hidden = !me;
        $('view').hidden = !me;
        $('who').textContent = me ? me.user : '';
        $('role').textContent = me ? me.role : '';
        if (me) {
            drawNav();
            route();
        } else {
            $('nav').hidden = true;
            $('view').replaceChildren();
        }
    }

    $('signin').addEventListener('submit', async (ev) => {
        ev.preventDefault();
        say('');
        const r = await Rapport.signIn($('user').value, $('password').value);
        $('password').value = '';
        if (r.status !== 201) {
            say((r.data && r.data.detail) || I18n.t('signin.failed', {status: r.status}));
            return;
        }
        show(await Rapport.me());
    });

    $('signout').addEventListener('click', async () => {
        await Rapport.signOut();
        show(null);
    });

    window.addEventListener('hashchange', route);

    async function start() {
        const stored = localStorage.getItem('console.lang');
        await I18n.use(stored || (navigator.language || 'en').split('-')[0]);
        const sel = $('lang');
        for (const code of I18n.languages())
            sel.append(el('option', {value: code, text: I18n.name(code)}));
        sel.value = I18n.lang();
        sel.addEventListener('change', async () => {
            localStorage.setItem('console.lang', sel.value);
            await I18n.use(sel.value);
            show(who);
        });
        show(await Rapport.me());
    }

    page('home', {render(view) {
        view.append(el('h1', {text: I18n.t('home.title')}), el('p', {text: I18n.t('home.text')}));
    }});

    window.Console = {page, el, route, say, notice, problem, me: () => who,
                      go: (hash) => { location.hash = hash; }};
    document.addEventListener('DOMContentLoaded', start);
})();

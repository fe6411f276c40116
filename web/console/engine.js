// engine.js — the engine room, for admins: the live event log, jobs (dead ones retried), the
// subscribers' dead letters (replayed), the webhooks' deliveries, a field's history ("explain"), users and tokens (a new
// token's secret shown once, revocation), and the settings (what is secret masked by the
// server; set as `rapport config set` sets them, checked by the server). Every call is to /api/v1/admin/…, which refuses anyone but an admin: the
// page is only offered to them, and the server decides anyway.
'use strict';
(function () {
    const {el} = Console;
    // The live log is not the tab a sign-in lands on: a stream opened by merely arriving would be
    // cut (and reported as a failed request) by the first reload or link away.
    const TABS = ['jobs', 'log', 'dead', 'webhooks', 'explain', 'access', 'settings'];
    let closeLive = null;

    const isAdmin = (me) => !!me && me.role === 'admin';
    const table = (id, cols, rows) => el('table', {class: 'engine-table', id},
        el('thead', {}, el('tr', {}, ...cols.map((k) => el('th', {text: k ? I18n.t('engine.col.' + k) : ''})))),
        el('tbody', {}, rows));
    const text = (v) => v === null || v === undefined ? I18n.t('none')
                                                      : typeof v === 'object' ? JSON.stringify(v) : String(v);

    async function get(path) {
        const r = await Rapport.call('GET', path);
        if (r.status !== 200) {
            Console.say(Console.problem(r));
            return null;
        }
        return r.data;
    }

    async function act(method, path, body, done) {
        const r = await Rapport.call(method, path, body);
        if (r.status >= 300) {
            Console.say(Console.problem(r));
            return null;
        }
        Console.notice(done);
        return r.data;
    }

    async function jobs(box) {
        const pick = el('select', {id: 'jobs-state', 'aria-label': I18n.t('engine.col.state')},
            ...['', 'pending', 'running', 'dead'].map((s) =>
                el('option', {value: s, text: s ? I18n.t('engine.state.' + s) : I18n.t('engine.all')})));
        const holder = el('div');
        async function draw() {
            const d = await get('/api/v1/admin/jobs' + (pick.value ? '?state=' + pick.value : ''));
            if (!d)
                return;
            holder.replaceChildren(d.data.length === 0 ? el('p', {class: 'muted', text: I18n.t('engine.empty')})
                : table('jobs', ['id', 'name', 'state', 'attempts', 'due', 'error', ''], d.data.map((j) =>
                    el('tr', {dataset: {id: j.id}},
                        el('td', {class: 'num', text: j.id}), el('td', {text: j.name}),
                        el('td', {text: I18n.t('engine.state.' + j.state)}),
                        el('td', {class: 'num', text: j.attempts}), el('td', {text: text(j.due_at)}),
                        el('td', {text: text(j.error)}),
                        el('td', {}, j.state === 'dead' ? el('button', {type: 'button', class: 'retry',
                            text: I18n.t('engine.retry'), on: {click: async () => {
                                if (await act('POST', '/api/v1/admin/jobs/' + j.id + '/retry', {},
                                              I18n.t('engine.retried', {id: j.id})))
                                    draw();
                            }}}) : null)))));
        }
        pick.addEventListener('change', draw);
        box.append(el('p', {}, pick), holder);
        await draw();
    }

    async function dead(box) {
        const holder = el('div');
        async function draw() {
            const d = await get('/api/v1/admin/dead');
            if (!d)
                return;
            holder.replaceChildren(d.data.length === 0 ? el('p', {class: 'muted', id: 'dead-none', text: I18n.t('engine.empty')})
                : table('dead', ['id', 'subscriber', 'seq', 'type', 'attempts', 'error', ''], d.data.map((x) =>
                    el('tr', {dataset: {id: x.id}},
                        el('td', {class: 'num', text: x.id}), el('td', {text: x.subscriber}),
                        el('td', {class: 'num', text: x.seq}), el('td', {text: x.type}),
                        el('td', {class: 'num', text: x.attempts}), el('td', {text: text(x.error)}),
                        el('td', {}, x.replaying ? el('span', {class: 'muted', text: I18n.t('engine.replaying')})
                            : el('button', {type: 'button', class: 'replay', text: I18n.t('engine.replay'),
                                on: {click: async () => {
                                    if (await act('POST', '/api/v1/admin/dead/' + x.id + '/replay', {},
                                                  I18n.t('engine.replayed', {id: x.id})))
                                        draw();
                                }}}))))));
        }
        box.append(holder);
        await draw();
    }

    function explain(box, args) {
        const [e0, i0, f0] = args;
        const entity = el('input', {id: 'explain-entity', value: e0 || '', required: true});
        const id = el('input', {id: 'explain-id', value: i0 || '', required: true, inputmode: 'numeric'});
        const field = el('input', {id: 'explain-field', value: f0 || '', required: true});
        const out = el('div', {id: 'explain-out'});
        const form = el('form', {class: 'engine-form'},
            el('label', {}, I18n.t('engine.col.entity'), entity), el('label', {}, I18n.t('engine.col.id'), id),
            el('label', {}, I18n.t('engine.col.field'), field),
            el('button', {type: 'submit', text: I18n.t('engine.explain.go')}));
        async function go() {
            const path = '/api/v1/' + encodeURIComponent(entity.value) + '/' + encodeURIComponent(id.value) +
                         '/explain/' + encodeURIComponent(field.value);
            const d = await get(path);
            out.replaceChildren();
            if (!d)
                return;
            out.append(d.data.length === 0 ? el('p', {class: 'muted', text: I18n.t('engine.empty')})
                : table('explain', ['seq', 'at', 'type', 'actor', 'old', 'new', 'causes'], d.data.map((h) =>
                    el('tr', {}, el('td', {class: 'num', text: h.seq}), el('td', {text: I18n.date(h.at, true)}),
                        el('td', {text: h.type}), el('td', {text: h.actor}), el('td', {text: text(h.old)}),
                        el('td', {text: text(h.new)}),
                        el('td', {text: (h.causes || []).map((c) => '#' + c.seq + ' ' + c.type + ' (' + c.actor + ')').join(' ← ')})))));
        }
        form.addEventListener('submit', (ev) => { ev.preventDefault(); go(); });
        box.append(form, out);
        if (e0 && i0 && f0)
            go();
    }

    async function access(box) {
        const users = await get('/api/v1/admin/users');
        if (!users)
            return;
        box.append(el('h2', {text: I18n.t('engine.users')}),
            table('users', ['name', 'role', 'team', 'email', 'disabled'], users.data.map((u) =>
                el('tr', {}, el('td', {text: u.name}), el('td', {text: u.role}), el('td', {text: text(u.team)}),
                    el('td', {text: text(u.email)}), el('td', {text: u.disabled ? I18n.t('engine.yes') : ''})))));
        // The roles and what each grants, as the settings keep them (roles set / config set).
        const roles = await get('/api/v1/admin/roles');
        if (roles)
            box.append(el('h2', {text: I18n.t('engine.roles')}),
                table('roles', ['role', 'grants'], roles.data.map((r) =>
                    el('tr', {dataset: {role: r.role}}, el('td', {text: r.role}),
                        el('td', {}, el('code', {text: r.grants ? JSON.stringify(r.grants) : r.note}))))));
        const who = el('select', {id: 'token-user'}, ...users.data.filter((u) => !u.disabled).map((u) =>
            el('option', {value: u.name, text: u.name})));
        const days = el('input', {id: 'token-days', type: 'number', min: 1, max: 3650, value: 90});
        const secret = el('div', {id: 'token-secret', 'aria-live': 'polite'});
        const holder = el('div');
        async function draw() {
            const t = await get('/api/v1/admin/tokens');
            if (!t)
                return;
            holder.replaceChildren(table('tokens', ['id', 'user', 'role', 'prefix', 'expires', 'last_used', 'revoked', ''],
                t.data.map((k) => el('tr', {dataset: {id: k.id}},
                    el('td', {class: 'num', text: k.id}), el('td', {text: k.user}), el('td', {text: text(k.role)}),
                    el('td', {text: text(k.prefix)}), el('td', {text: text(k.expires_at)}),
                    el('td', {text: text(k.last_used_at)}), el('td', {text: text(k.revoked_at)}),
                    el('td', {}, k.revoked_at ? null : el('button', {type: 'button', class: 'revoke',
                        text: I18n.t('engine.revoke'), on: {click: async () => {
                            if (await act('POST', '/api/v1/admin/tokens/' + k.id + '/revoke', {},
                                          I18n.t('engine.revoked', {id: k.id})))
                                draw();
                        }}}))))));
        }
        const form = el('form', {class: 'engine-form', id: 'token-form'},
            el('label', {}, I18n.t('engine.col.user'), who), el('label', {}, I18n.t('engine.token.days'), days),
            el('button', {type: 'submit', text: I18n.t('engine.token.create')}));
        form.addEventListener('submit', async (ev) => {
            ev.preventDefault();
            const d = await act('POST', '/api/v1/admin/tokens', {user: who.value, expires_days: Number(days.value)},
                                I18n.t('engine.token.made'));
            secret.replaceChildren();
            if (!d)
                return;
            // Shown once: the server keeps only its hash.
            secret.append(el('p', {text: I18n.t('engine.token.once')}), el('code', {id: 'token-value', text: d.token}));
            draw();
        });
        box.append(el('h2', {text: I18n.t('engine.tokens')}), form, secret, holder);
        await draw();
    }

    async function webhooks(box) {
        const d = await get('/api/v1/admin/webhooks');
        if (!d)
            return;
        box.append(el('p', {class: 'muted', text: I18n.t('engine.webhooks.note')}),
            table('webhooks', ['id', 'url', 'events', 'user', 'active', 'dead'], d.data.map((w) =>
                el('tr', {}, el('td', {class: 'num', text: w.id}), el('td', {text: w.url}),
                    el('td', {text: w.events}), el('td', {text: w.user}),
                    el('td', {text: w.active ? I18n.t('engine.yes') : ''}), el('td', {class: 'num', text: text(w.dead)})))),
            el('h2', {text: I18n.t('engine.deliveries')}),
            table('deliveries', ['at', 'id', 'type', 'attempts', 'status', 'outcome', 'error'],
                d.deliveries.slice().reverse().map((x) =>
                    el('tr', {class: x.outcome === 'delivered' ? '' : 'broken'},
                        el('td', {text: I18n.date(x.at, true)}), el('td', {class: 'num', text: x.webhook}),
                        el('td', {text: x.type}), el('td', {class: 'num', text: x.attempt}),
                        el('td', {class: 'num', text: text(x.status)}), el('td', {text: x.outcome}),
                        el('td', {text: text(x.error)})))));
    }

    async function settings(box) {
        const d = await get('/api/v1/admin/settings');
        if (!d)
            return;
        const key = el('input', {id: 'setting-key', required: true, list: 'setting-keys'});
        const value = el('input', {id: 'setting-value', required: true});
        const err = el('p', {class: 'field-error', id: 'setting-error'});
        const form = el('form', {class: 'engine-form', id: 'setting-form'},
            el('datalist', {id: 'setting-keys'}, Object.keys(d.data).map((k) => el('option', {value: k}))),
            el('label', {}, I18n.t('engine.col.key'), key),
            el('label', {}, I18n.t('engine.settings.json'), value),
            el('button', {type: 'submit', text: I18n.t('engine.settings.set')}));
        form.addEventListener('submit', async (ev) => {
            ev.preventDefault();
            err.textContent = '';
            let v;
            // A value is JSON when it parses, else text (as `rapport config set` takes it).
            try { v = JSON.parse(value.value); } catch (e) { v = value.value; }
            const r = await Rapport.call('POST', '/api/v1/admin/settings', {key: key.value, value: v});
            if (r.status !== 200) {
                err.textContent = (r.data && r.data.field ? r.data.field + ': ' : '') + Console.problem(r);
                return;
            }
            Console.notice(I18n.t('engine.settings.done', {key: r.data.key}));
            box.replaceChildren();
            await settings(box);
        });
        box.append(el('p', {class: 'muted', text: I18n.t('engine.settings.note')}), form, err,
            table('settings', ['key', 'value'], Object.keys(d.data).sort().map((k) =>
                el('tr', {}, el('td', {text: k}), el('td', {class: 'changes', text: text(d.data[k])})))));
    }

    Console.page('engine', {label: 'nav.engine', order: 80, when: isAdmin, async render(view, args) {
        if (closeLive) {
            closeLive();
            closeLive = null;
        }
        const tab = TABS.includes(args[0]) ? args[0] : 'jobs';
        view.append(el('h1', {text: I18n.t('engine.title')}),
            el('nav', {class: 'tabs', 'aria-label': I18n.t('engine.title')}, ...TABS.map((t) =>
                el('a', {href: '#engine/' + t, text: I18n.t('engine.tab.' + t),
                         'aria-current': t === tab ? 'page' : null}))));
        const box = el('section', {id: 'engine-' + tab, class: 'engine-box'});
        view.append(box);
        if (tab === 'log') {
            const close = await EngineLive.render(box);
            closeLive = close;
            // Leaving the tab (or the page) closes the stream.
            window.addEventListener('hashchange', () => {
                if (closeLive === close) {
                    close();
                    closeLive = null;
                }
            }, {once: true});
        } else if (tab === 'jobs')
            await jobs(box);
        else if (tab === 'dead')
            await dead(box);
        else if (tab === 'webhooks')
            await webhooks(box);
        else if (tab === 'explain')
            explain(box, args.slice(1));
        else if (tab === 'access')
            await access(box);
        else
            await settings(box);
    }});
})();

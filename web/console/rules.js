// rules.js — the rules page, for admins: the Lua scripts the server runs (a broken one with
// why; an edit on disk is reloaded by the server within a second, the button does it now),
// the plugins, the scripts' tests (run by the server in a child process, as `rapport test`),
// and the Lua line (repl.js).
'use strict';
(function () {
    const {el} = Console;

    function scriptsTable(d) {
        return el('table', {class: 'engine-table', id: 'scripts'},
            el('thead', {}, el('tr', {}, ...['file', 'state', 'error'].map((k) =>
                el('th', {text: I18n.t('rules.col.' + k)})))),
            el('tbody', {}, d.scripts.map((s) => el('tr', {class: s.error ? 'broken' : ''},
                el('td', {text: s.file}),
                el('td', {text: I18n.t(s.running ? (s.error ? 'rules.state.old' : 'rules.state.running')
                                                 : 'rules.state.broken')}),
                el('td', {class: 'error-text', text: s.error || ''})))));
    }

    Console.page('rules', {label: 'nav.rules', order: 81, when: (me) => !!me && me.role === 'admin',
        async render(view) {
            view.append(el('h1', {text: I18n.t('rules.title')}));
            const r = await Rapport.call('GET', '/api/v1/admin/engine');
            if (r.status !== 200) {
                Console.say(Console.problem(r));
                return;
            }
            const holder = el('div', {}, scriptsTable(r.data));
            const reload = el('button', {type: 'button', id: 'scripts-reload', text: I18n.t('rules.reload'),
                on: {click: async () => {
                    const x = await Rapport.call('POST', '/api/v1/admin/scripts/reload', {});
                    if (x.status !== 200)
                        return Console.say(Console.problem(x));
                    holder.replaceChildren(scriptsTable(x.data));
                    Console.notice(I18n.t('rules.reloaded'));
                }}});
            const testOut = el('div', {id: 'tests-out'});
            const test = el('button', {type: 'button', id: 'scripts-test', text: I18n.t('rules.test'),
                on: {click: async () => {
                    test.disabled = true;
                    testOut.replaceChildren(el('p', {class: 'muted', text: I18n.t('rules.testing')}));
                    const x = await Rapport.call('POST', '/api/v1/admin/scripts/test', {});
                    test.disabled = false;
                    testOut.replaceChildren();
                    if (x.status !== 200)
                        return Console.say(Console.problem(x));
                    testOut.append(el('p', {id: 'tests-summary', class: x.data.ok ? 'ok' : 'error',
                        text: x.data.passed === undefined ? I18n.t('rules.tests.nosum', {exit: x.data.exit})
                            : I18n.t('rules.tests.sum', {passed: x.data.passed, failed: x.data.failed})}),
                        el('pre', {class: 'tests-output', text: x.data.output}));
                }}});
            view.append(el('h2', {text: I18n.t('rules.scripts')}),
                el('p', {class: 'muted', text: I18n.t('rules.auto')}),
                el('p', {}, reload, ' ', test), holder, testOut,
                el('h2', {text: I18n.t('rules.plugins')}),
                el('ul', {id: 'plugins'}, r.data.plugins.map((p) =>
                    el('li', {}, el('strong', {text: p.name}), ' ' + (p.version || '') + ' — ' + (p.description || '')))),
                el('h2', {text: I18n.t('rules.repl')}),
                el('p', {class: 'muted', text: I18n.t('rules.repl.note')}));
            const replBox = el('section');
            view.append(replBox);
            EngineRepl.render(replBox);
        }});
})();

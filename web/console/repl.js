// repl.js — the rules page's Lua line: run in crm.dry_run by default (nothing is stored; the
// answer lists what would change, record by record and field by field, old → new); "run for
// real" asks again on the page before it runs and saves. The server runs the line in a sandbox
// with the caller's permissions and the request's time budget (POST /api/v1/admin/eval).
'use strict';
(function () {
    const {el} = Console;

    const show = (v) => v === null || v === undefined ? I18n.t('none')
                                                       : typeof v === 'string' ? v
                                                       : JSON.stringify(v);

    // The changes as rows: entity, id, action, field, old → new.
    function diff(changes) {
        const rows = [];
        for (const rec of (changes && changes.records) || []) {
            const fields = Object.entries(rec.changes || {});
            if (!fields.length)
                rows.push(el('tr', {}, el('td', {text: rec.entity}), el('td', {class: 'num', text: rec.id}),
                                 el('td', {text: rec.action}), el('td', {}), el('td', {}), el('td', {})));
            for (const [f, pair] of fields) {
                const [old, now] = Array.isArray(pair) ? pair : [null, pair];
                rows.push(el('tr', {}, el('td', {text: rec.entity}), el('td', {class: 'num', text: rec.id}),
                    el('td', {text: rec.action}), el('td', {text: f}),
                    el('td', {class: 'old', text: show(old)}), el('td', {class: 'new', text: show(now)})));
            }
        }
        if (!rows.length)
            return el('p', {class: 'muted', id: 'repl-nochange', text: I18n.t('rules.repl.nochange')});
        return el('table', {class: 'engine-table', id: 'repl-diff'},
            el('thead', {}, el('tr', {}, ...['entity', 'id', 'action', 'field', 'old', 'new'].map((k) =>
                el('th', {text: I18n.t('rules.diff.' + k)})))),
            el('tbody', {}, rows));
    }

    function render(box) {
        const code = el('textarea', {id: 'repl-code', rows: 3, spellcheck: 'false',
                                     'aria-label': I18n.t('rules.repl.code')});
        const real = el('input', {type: 'checkbox', id: 'repl-real'});
        const run = el('button', {type: 'submit', id: 'repl-run', text: I18n.t('rules.repl.run')});
        const out = el('div', {id: 'repl-out', 'aria-live': 'polite'});
        const confirmBox = el('div', {id: 'repl-confirm', class: 'confirm', hidden: true});

        async function go(forReal) {
            out.replaceChildren(el('p', {class: 'muted', text: I18n.t('loading')}));
            const r = await Rapport.call('POST', '/api/v1/admin/eval', {code: code.value, real: forReal});
            out.replaceChildren();
            if (r.status !== 200) {
                out.append(el('p', {class: 'error', id: 'repl-error', text: Console.problem(r)}));
                return;
            }
            out.append(el('p', {id: 'repl-mode', class: r.data.dry ? 'dry' : 'real',
                                text: I18n.t(r.data.dry ? 'rules.repl.was_dry' : 'rules.repl.was_real')}),
                el('pre', {id: 'repl-results', text: r.data.results.join('\n')}),
                diff(r.data.changes));
        }

        const form = el('form', {id: 'repl', class: 'repl'},
            el('label', {for: 'repl-code', text: I18n.t('rules.repl.code')}), code,
            el('div', {class: 'repl-bar'},
                el('label', {class: 'inline'}, real, ' ', I18n.t('rules.repl.real')), run),
            confirmBox, out);
        form.addEventListener('submit', (ev) => {
            ev.preventDefault();
            if (!code.value.trim())
                return;
            if (!real.checked) {
                go(false);
                return;
            }
            // For real: asked once more, on the page.
            confirmBox.replaceChildren(
                el('span', {text: I18n.t('rules.repl.confirm')}), ' ',
                el('button', {type: 'button', id: 'repl-yes', class: 'danger', text: I18n.t('rules.repl.yes'),
                              on: {click: () => { confirmBox.hidden = true; go(true); }}}), ' ',
                el('button', {type: 'button', id: 'repl-no', text: I18n.t('rules.repl.no'),
                              on: {click: () => { confirmBox.hidden = true; }}}));
            confirmBox.hidden = false;
        });
        box.append(form);
    }

    window.EngineRepl = {render, diff};
})();

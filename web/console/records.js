// records.js — records of every entity: the entity picker (#records), a list per entity
// (#records/<entity>: columns chosen per entity and kept in localStorage, sort by a column,
// filters typed by the field, cursor paging of 50, the deleted ones), and the keyboard (j/k or
// the arrows move in a list, Enter opens, / goes to the search box, Esc goes back). The record
// page and its form are record.js's (Records.record), the search search.js's.
//
// What there is to show comes from GET /api/v1/schema, read each time a page opens: a field an
// admin adds shows on the next visit, and a field the role hides is not there to show. The
// store applies the same role to every call anyway.
'use strict';
(function () {
    const {el} = Console;
    const t = (k, v) => I18n.t(k, v);
    const PAGE = 50;
    // Per entity while the console is open: filters, order, and the cursors of the pages seen.
    const state = new Map();
    // The list the keyboard moves in: its rows and which is current.
    let nav = null;

    // The schema as the caller may use it: {entity: {fields, system, may, label}}.
    async function schema() {
        const r = await Rapport.call('GET', '/api/v1/schema');
        if (r.status !== 200)
            throw new Error(Console.problem(r));
        return r.data.data;
    }

    function entityLabel(name, ent) {
        return (ent && ent.label) || name;
    }

    // Text of value V of a field of type TYPE, as a list or a record page shows it.
    function show(v, type) {
        if (v === null || v === undefined || v === '')
            return t('none');
        if (type === 'boolean')
            return v ? t('records.yes') : t('records.no');
        if (type === 'json' || typeof v === 'object')
            return JSON.stringify(v);
        return String(v);
    }

    // A cell or a record page's value: a ref the caller may read is a link to that record.
    function valueNode(v, spec, sch) {
        if (spec && spec.type === 'ref' && v !== null && v !== undefined && sch[spec.ref])
            return el('a', {href: `#records/${spec.ref}/${v}`, class: 'ref',
                            text: `${spec.ref} #${v}`});
        return document.createTextNode(show(v, spec && spec.type));
    }

    function colsKey(entity) { return 'console.records.cols.' + entity; }

    // The columns shown for ENTITY: the stored choice (less what is no longer there to read),
    // else the first five fields: required, then searchable, then indexed ones first.
    function columns(entity, ent) {
        const names = Object.keys(ent.fields);
        let chosen = null;
        try { chosen = JSON.parse(localStorage.getItem(colsKey(entity)) || 'null'); } catch (e) { }
        if (Array.isArray(chosen)) {
            const ok = chosen.filter((c) => names.includes(c) || ent.system.includes(c));
            if (ok.length)
                return ok;
        }
        const by = (flag) => names.filter((n) => ent.fields[n][flag]);
        return [...new Set(by('required').concat(by('searchable'), by('indexed'), names))]
            .slice(0, 5);
    }

    function stateOf(entity) {
        if (!state.has(entity))
            state.set(entity, {filters: [], order: null, cursors: [null], page: 0, deleted: false});
        return state.get(entity);
    }

    // ---- the keyboard ----------------------------------------------------------------------

    // Makes ROWS (elements with a data-href) the list j/k move in.
    function keyList(rows) {
        nav = {rows, at: -1};
        for (const [i, r] of rows.entries())
            r.addEventListener('click', (ev) => {
                if (ev.target.closest('a, button, input, select'))
                    return;
                select(i);
            });
    }

    function select(i) {
        if (!nav || !nav.rows.length)
            return;
        const at = Math.max(0, Math.min(nav.rows.length - 1, i));
        if (nav.rows[nav.at])
            nav.rows[nav.at].removeAttribute('aria-selected');
        nav.at = at;
        nav.rows[at].setAttribute('aria-selected', 'true');
        nav.rows[at].scrollIntoView({block: 'nearest'});
    }

    // Esc: one level up (#records/contact/4 → #records/contact → #records), else back.
    function up() {
        const parts = location.hash.slice(1).split('/').filter(Boolean);
        if (parts[0] === 'records' && parts.length > 1)
            Console.go(parts.slice(0, -1).join('/'));
        else
            history.back();
    }

    document.addEventListener('keydown', (ev) => {
        if (!Console.me() || ev.ctrlKey || ev.metaKey || ev.altKey)
            return;
        const typing = ev.target.closest && ev.target.closest('input, textarea, select');
        if (ev.key === 'Escape') {
            if (typing)
                ev.target.blur();
            else
                up();
            return;
        }
        if (typing)
            return;
        const search = document.getElementById('search');
        if (ev.key === '/' && search) {
            ev.preventDefault();
            search.focus();
            search.select();
        } else if (nav && nav.rows.length && nav.rows[0].isConnected) {
            if (ev.key === 'j' || ev.key === 'ArrowDown') {
                ev.preventDefault();
                select(nav.at + 1);
            } else if (ev.key === 'k' || ev.key === 'ArrowUp') {
                ev.preventDefault();
                select(nav.at - 1);
            } else if (ev.key === 'Enter' && nav.at >= 0 && !ev.target.closest('a, button')) {
                ev.preventDefault();
                Console.go(nav.rows[nav.at].dataset.href);
            }
        }
    });

    // ---- the entity picker -----------------------------------------------------------------

    function picker(view, sch) {
        view.append(el('h1', {text: t('records.title')}));
        const names = Object.keys(sch).sort();
        if (!names.length) {
            view.append(el('p', {class: 'muted', text: t('records.no_entities')}));
            return;
        }
        const items = names.map((n) => el('li', {dataset: {href: 'records/' + n}},
                                             el('a', {href: '#records/' + n,
                                                      text: entityLabel(n, sch[n])})));
        view.append(el('ul', {id: 'records-entities', class: 'entities'}, items));
        keyList(items);
    }

    // ---- a list ----------------------------------------------------------------------------

    // A value typed in a filter box, as the list's field=value parameter carries it.
    function filterInput(spec) {
        if (spec && spec.type === 'enum')
            return el('select', {id: 'filter-value'}, (spec.values || []).map(
                (v) => el('option', {value: v, text: v})));
        if (spec && spec.type === 'boolean')
            return el('select', {id: 'filter-value'},
                      el('option', {value: 'true', text: t('records.yes')}),
                      el('option', {value: 'false', text: t('records.no')}));
        const type = {date: 'date', integer: 'number', real: 'number', ref: 'number'}[spec && spec.type];
        return el('input', {id: 'filter-value', type: type || 'text',
                            step: spec && spec.type === 'real' ? 'any' : null});
    }

    function filterBar(entity, ent, st, redraw) {
        const fieldSel = el('select', {id: 'filter-field', 'aria-label': t('records.filter_field')},
                            Object.keys(ent.fields).sort().map(
                                (n) => el('option', {value: n, text: n})));
        let valueBox = filterInput(ent.fields[fieldSel.value]);
        const slot = el('span', {class: 'filter-slot'}, valueBox);
        fieldSel.addEventListener('change', () => {
            valueBox = filterInput(ent.fields[fieldSel.value]);
            slot.replaceChildren(valueBox);
        });
        const form = el('form', {id: 'filter-form', class: 'filters'},
                        el('span', {class: 'muted', text: t('records.filter')}), fieldSel, slot,
                        el('button', {type: 'submit', text: t('records.filter_add')}));
        form.addEventListener('submit', (ev) => {
            ev.preventDefault();
            if (valueBox.value === '')
                return;
            st.filters = st.filters.filter((f) => f.field !== fieldSel.value);
            st.filters.push({field: fieldSel.value, value: valueBox.value});
            st.cursors = [null];
            st.page = 0;
            redraw();
        });
        const chips = st.filters.map((f) => el('span', {class: 'chip'},
            `${f.field} = ${f.value}`,
            el('button', {type: 'button', class: 'link', title: t('records.filter_remove'),
                          'aria-label': t('records.filter_remove'), text: '×',
                          on: {click: () => {
                              st.filters = st.filters.filter((g) => g !== f);
                              st.cursors = [null];
                              st.page = 0;
                              redraw();
                          }}})));
        return el('div', {class: 'filter-bar'}, form, el('div', {class: 'chips'}, chips));
    }

    function columnChooser(entity, ent, cols, redraw) {
        const all = Object.keys(ent.fields).concat(ent.system.filter((s) => s !== 'id'));
        const boxes = all.map((n) => {
            const box = el('input', {type: 'checkbox', value: n, checked: cols.includes(n),
                                     dataset: {col: n}});
            box.addEventListener('change', () => {
                const next = all.filter((c) => c === n ? box.checked : cols.includes(c));
                localStorage.setItem(colsKey(entity), JSON.stringify(next));
                redraw();
            });
            return el('label', {class: 'col-choice'}, box, ' ' + n);
        });
        return el('details', {id: 'columns', class: 'columns'},
                  el('summary', {text: t('records.columns')}), el('div', {class: 'col-list'}, boxes));
    }

    function listPath(entity, cols, st) {
        const q = new URLSearchParams();
        q.set('limit', String(PAGE));
        q.set('fields', ['id', 'deleted_at'].concat(cols.filter((c) => c !== 'id' && c !== 'deleted_at')).join(','));
        if (st.order)
            q.set('order', st.order);
        if (st.cursors[st.page])
            q.set('after', st.cursors[st.page]);
        for (const f of st.filters)
            q.set(f.field, f.value);
        if (st.deleted) {
            q.set('with_deleted', 'true');
            q.set('where', JSON.stringify({deleted_at: {is_null: false}}));
        }
        return `/api/v1/${encodeURIComponent(entity)}?${q}`;
    }

    async function list(view, entity, sch) {
        const ent = sch[entity];
        if (!ent) {
            view.append(el('p', {class: 'error', text: t('records.no_entity', {entity})}));
            return;
        }
        const st = stateOf(entity);
        const redraw = () => Console.route();
        const cols = columns(entity, ent);
        const head = el('div', {class: 'list-head'},
                        el('h1', {text: entityLabel(entity, ent)}),
                        ent.may.create ? el('a', {href: `#records/${entity}/new`, id: 'new-record',
                                                  class: 'button', text: t('records.new')}) : null);
        const deleted = el('input', {type: 'checkbox', id: 'show-deleted', checked: st.deleted});
        deleted.addEventListener('change', () => {
            st.deleted = deleted.checked;
            st.cursors = [null];
            st.page = 0;
            redraw();
        });
        view.append(head, el('div', {class: 'list-tools'}, filterBar(entity, ent, st, redraw),
                              columnChooser(entity, ent, cols, redraw),
                              el('label', {class: 'inline'}, deleted, ' ' + t('records.deleted'))));
        const r = await Rapport.call('GET', listPath(entity, cols, st));
        if (r.status !== 200) {
            view.append(el('p', {class: 'error', id: 'list-error', text: Console.problem(r)}));
            return;
        }
        // What the issue measures: drawing the page once the API has answered, its layout
        // included (reading offsetHeight makes the browser lay the table out now).
        const t0 = performance.now();
        const table = table50(entity, ent, cols, r.data.data, st, redraw, sch);
        view.append(el('div', {class: 'table-wrap'}, table)); /* scrolls sideways when wide */
        void table.offsetHeight;
        const drawn = performance.now() - t0;
        table.dataset.renderMs = drawn.toFixed(2);
        window.RecordsTiming = {entity, rows: r.data.data.length, ms: drawn};
        const more = r.data.next;
        const pager = el('nav', {class: 'pager', 'aria-label': t('records.pages')},
            el('button', {type: 'button', id: 'prev-page', text: t('records.prev'),
                          disabled: st.page === 0,
                          on: {click: () => { st.page--; redraw(); }}}),
            el('span', {id: 'page-no', text: t('records.page', {n: st.page + 1})}),
            el('button', {type: 'button', id: 'next-page', text: t('records.next'),
                          disabled: !more,
                          on: {click: () => {
                              st.cursors[st.page + 1] = more;
                              st.page++;
                              redraw();
                          }}}));
        view.append(pager);
    }

    function table50(entity, ent, cols, rows, st, redraw, sch) {
        const spec = (c) => ent.fields[c] || {type: c.endsWith('_at') ? 'datetime' : 'text'};
        const sortBy = (c) => {
            st.order = st.order === c ? '-' + c : c;
            st.cursors = [null];
            st.page = 0;
            redraw();
        };
        const mark = (c) => st.order === c ? ' ▲' : st.order === '-' + c ? ' ▼' : '';
        const th = (c) => el('th', {scope: 'col', class: c === 'id' ? 'num' : null,
                                    'aria-sort': st.order === c ? 'ascending'
                                               : st.order === '-' + c ? 'descending' : null},
                             el('button', {type: 'button', class: 'link sort', dataset: {col: c},
                                           text: c + mark(c), on: {click: () => sortBy(c)}}));
        const head = el('tr', {}, th('id'), cols.filter((c) => c !== 'id').map(th),
                        st.deleted ? el('th', {}) : null);
        const body = rows.map((rec) => {
            const href = `records/${entity}/${rec.id}`;
            return el('tr', {dataset: {href, id: rec.id}},
                      el('td', {class: 'num'}, el('a', {href: '#' + href, text: String(rec.id)})),
                      cols.filter((c) => c !== 'id').map(
                          (c) => el('td', {dataset: {col: c}}, valueNode(rec[c], spec(c), sch))),
                      st.deleted ? el('td', {}, ent.may.delete ? el('button', {
                          type: 'button', class: 'restore', text: t('records.restore'),
                          on: {click: async () => {
                              const r = await Rapport.call(
                                  'POST', `/api/v1/${entity}/${rec.id}/restore`, {});
                              if (r.status === 200) {
                                  Console.notice(t('records.restored', {id: rec.id}));
                                  redraw();
                              } else {
                                  Console.say(Console.problem(r));
                              }
                          }}}) : null) : null);
        });
        const table = el('table', {id: 'records-list', class: 'records'},
                         el('thead', {}, head), el('tbody', {}, body));
        if (!rows.length)
            table.append(el('caption', {class: 'muted', text: t('records.empty')}));
        keyList(body);
        return table;
    }

    Console.page('records', {
        label: 'nav.records',
        order: 20,
        async render(view, args) {
            nav = null;
            const sch = await schema();
            const [entity, id] = args;
            if (!entity)
                return picker(view, sch);
            if (id === undefined)
                return list(view, entity, sch);
            return Records.record(view, entity, id, sch);
        },
    });

    window.Records = Object.assign(window.Records || {}, {schema, show, valueNode, keyList,
                                                           entityLabel});
})();

// record.js — one record (#records/<entity>/<id>) and a new one (#records/<entity>/new): its
// fields with refs as links, an edit form typed by the schema, the store's refusal shown beside
// the field it names, If-Match with the ETag read when the page opened (412: "changed by X
// since you opened it", X read back from the record, with a way to reload), delete and
// restore. Called by records.js's page.
'use strict';
(function () {
    const {el} = Console;
    const t = (k, v) => I18n.t(k, v);

    // An input for field NAME of SPEC holding V.
    function input(name, spec, v) {
        const id = 'f-' + name;
        const ro = spec.read_only;
        let box;
        if (spec.type === 'enum' || spec.type === 'boolean') {
            const opts = spec.type === 'boolean' ? [['true', t('records.yes')], ['false', t('records.no')]]
                                                 : (spec.values || []).map((x) => [x, x]);
            box = el('select', {id, name, disabled: ro},
                     el('option', {value: '', text: t('none')}),
                     opts.map(([val, label]) => el('option', {value: val, text: label})));
            box.value = v === null || v === undefined ? '' : String(v);
        } else if (spec.type === 'json') {
            box = el('textarea', {id, name, rows: 3, readonly: ro});
            box.value = v === null || v === undefined ? '' : JSON.stringify(v);
        } else {
            const type = {integer: 'number', real: 'number', ref: 'number', date: 'date',
                          email: 'email', url: 'url', phone: 'tel'}[spec.type] || 'text';
            box = el('input', {id, name, type, readonly: ro,
                               step: spec.type === 'real' ? 'any' : null,
                               inputmode: spec.type === 'decimal' ? 'decimal' : null,
                               placeholder: spec.type === 'datetime' ? 'YYYY-MM-DDTHH:MM:SSZ' : null});
            box.value = v === null || v === undefined ? '' : String(v);
        }
        box.dataset.type = spec.type;
        return box;
    }

    // The value box B holds, typed as the API takes it ('' is null).
    function valueOf(b) {
        const s = b.value;
        if (s === '')
            return null;
        switch (b.dataset.type) {
        case 'integer': case 'real': case 'ref': {
            const n = Number(s);
            return Number.isNaN(n) ? s : n;
        }
        case 'boolean': return s === 'true';
        case 'json':
            try { return JSON.parse(s); } catch (e) { return s; }
        default: return s;
        }
    }

    function same(a, b) {
        return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b);
    }

    // The form for ENT's fields (REC's values, or empty); SUBMIT(form, changes) on save.
    function form(entity, ent, rec, submit, cancel) {
        const boxes = new Map();
        const rows = Object.keys(ent.fields).map((name) => {
            const spec = ent.fields[name];
            const box = input(name, spec, rec ? rec[name] : spec.default);
            boxes.set(name, box);
            return el('div', {class: 'field', dataset: {field: name}},
                      el('label', {for: box.id},
                         name, spec.required ? el('span', {class: 'req', text: ' *'}) : null,
                         spec.read_only ? el('span', {class: 'muted', text: ' ' + t('records.read_only')}) : null),
                      box,
                      el('span', {class: 'field-error', id: 'err-' + name, role: 'alert'}));
        });
        const f = el('form', {id: 'record-form', class: 'record-form', novalidate: true},
                     el('div', {class: 'fields'}, rows),
                     el('div', {class: 'actions'},
                        el('button', {type: 'submit', id: 'save', text: t('records.save')}),
                        cancel ? el('button', {type: 'button', class: 'secondary', id: 'cancel',
                                               text: t('records.cancel'), on: {click: cancel}}) : null));
        f.addEventListener('submit', (ev) => {
            ev.preventDefault();
            for (const e of f.querySelectorAll('.field-error'))
                e.textContent = '';
            const changes = {};
            for (const [name, box] of boxes) {
                if (ent.fields[name].read_only)
                    continue;
                const v = valueOf(box);
                if (rec ? !same(v, rec[name]) : v !== null)
                    changes[name] = v;
            }
            submit(f, changes);
        });
        return f;
    }

    // Shows refusal R beside the field its problem document names, else at the top.
    function refuse(f, r) {
        const field = r.data && r.data.field;
        const slot = field && f.querySelector(`#err-${CSS.escape(field.replace(/^\//, ''))}`);
        if (slot) {
            slot.textContent = Console.problem(r);
            const box = f.querySelector('#f-' + CSS.escape(field));
            if (box)
                box.focus();
        } else {
            Console.say(Console.problem(r));
        }
    }

    function create(view, entity, ent) {
        view.append(el('h1', {text: t('records.new_title', {entity: Records.entityLabel(entity, ent)})}));
        if (!ent.may.create) {
            view.append(el('p', {class: 'error', text: t('records.may_not_create')}));
            return;
        }
        view.append(form(entity, ent, null, async (f, changes) => {
            const r = await Rapport.call('POST', `/api/v1/${entity}`, changes);
            if (r.status === 201) {
                Console.go(`records/${entity}/${r.data.id}`);
                Console.notice(t('records.created', {id: r.data.id}));
            } else {
                refuse(f, r);
            }
        }, () => Console.go('records/' + entity)));
    }

    function details(entity, ent, rec, sch) {
        const rows = Object.keys(ent.fields).map((name) => el('div', {class: 'kv', dataset: {field: name}},
            el('dt', {text: name}), el('dd', {}, Records.valueNode(rec[name], ent.fields[name], sch))));
        const sys = ent.system.filter((s) => s !== 'id' && s in rec).map((name) =>
            el('div', {class: 'kv', dataset: {field: name}}, el('dt', {text: name}),
               el('dd', {text: Records.show(rec[name])})));
        return el('dl', {id: 'record-fields', class: 'record'}, rows,
                  el('div', {class: 'system'}, sys));
    }

    async function record(view, entity, id, sch) {
        const ent = sch[entity];
        if (!ent) {
            view.append(el('p', {class: 'error', text: t('records.no_entity', {entity})}));
            return;
        }
        if (id === 'new')
            return create(view, entity, ent);
        const path = `/api/v1/${encodeURIComponent(entity)}/${encodeURIComponent(id)}`;
        const r = await Rapport.call('GET', path);
        if (r.status !== 200) {
            view.append(el('p', {class: 'error', id: 'record-error', text: Console.problem(r)}));
            return;
        }
        let rec = r.data, etag = r.etag;
        const title = el('h1', {}, `${Records.entityLabel(entity, ent)} #${rec.id}`);
        const conflict = el('div', {id: 'conflict', class: 'conflict', role: 'alert', hidden: true});
        const body = el('div', {id: 'record-body'});
        const tools = el('div', {class: 'record-tools'});
        view.append(el('p', {}, el('a', {href: '#records/' + entity, text: t('records.back')})),
                    title, conflict, tools, body);

        const drawTools = () => {
            tools.replaceChildren();
            if (rec.deleted_at) {
                tools.append(el('span', {class: 'deleted', id: 'deleted-note',
                                         text: t('records.deleted_at', {at: rec.deleted_at})}));
                if (ent.may.delete)
                    tools.append(el('button', {type: 'button', id: 'restore', text: t('records.restore'),
                                               on: {click: restore}}));
                return;
            }
            if (ent.may.update)
                tools.append(el('button', {type: 'button', id: 'edit', text: t('records.edit'),
                                           on: {click: edit}}));
            if (ent.may.delete) {
                const del = el('button', {type: 'button', id: 'delete', class: 'danger',
                                          text: t('records.delete')});
                // Two steps, not confirm(): the second click is the confirmation.
                del.addEventListener('click', async () => {
                    if (!del.dataset.armed) {
                        del.dataset.armed = '1';
                        del.textContent = t('records.delete_confirm');
                        return;
                    }
                    const d = await Rapport.call('DELETE', path, undefined, {'If-Match': etag});
                    if (d.status === 204) {
                        Console.notice(t('records.deleted_done', {id: rec.id}));
                        await reload();
                    } else if (d.status === 412) {
                        await changed();
                    } else {
                        Console.say(Console.problem(d));
                    }
                });
                tools.append(del);
            }
        };
        const view0 = () => {
            body.replaceChildren(details(entity, ent, rec, sch));
            drawTools();
        };
        const reload = async () => {
            const again = await Rapport.call('GET', path);
            if (again.status !== 200) {
                Console.say(Console.problem(again));
                return;
            }
            rec = again.data;
            etag = again.etag;
            conflict.hidden = true;
            view0();
        };
        // Someone changed the record since the page read it: say who, offer to reload.
        const changed = async () => {
            const now = await Rapport.call('GET', path);
            const by = now.status === 200 ? now.data.updated_by : '?';
            conflict.replaceChildren(
                el('span', {id: 'conflict-text', text: t('records.conflict', {who: by})}),
                ' ',
                el('button', {type: 'button', id: 'reload', text: t('records.reload'),
                              on: {click: reload}}));
            conflict.hidden = false;
        };
        const restore = async () => {
            const x = await Rapport.call('POST', path + '/restore', {});
            if (x.status === 200) {
                Console.notice(t('records.restored', {id: rec.id}));
                rec = x.data;
                etag = x.etag;
                view0();
            } else {
                Console.say(Console.problem(x));
            }
        };
        function edit() {
            tools.replaceChildren();
            body.replaceChildren(form(entity, ent, rec, async (f, changes) => {
                if (!Object.keys(changes).length) {
                    view0();
                    return;
                }
                const p = await Rapport.call('PATCH', path, changes, {'If-Match': etag});
                if (p.status === 200) {
                    rec = p.data;
                    etag = p.etag;
                    Console.notice(t('records.saved'));
                    view0();
                } else if (p.status === 412) {
                    await changed();
                } else {
                    refuse(f, p);
                }
            }, view0));
            const first = body.querySelector('input:not([readonly]), select:not([disabled]), textarea');
            if (first)
                first.focus();
        }
        view0();
    }

    window.Records = Object.assign(window.Records || {}, {record});
})();

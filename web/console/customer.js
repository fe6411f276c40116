// customer.js — a customer's page (#customer/<contact id>): the contact record, its timeline
// (the collaborative plugin's GET /api/v1/contact/<id>/timeline, 50 entries a page, older ones
// on demand), its open deals, its tickets with their SLA clocks (time left to the first answer
// and to the resolution, or how long overdue, ticking live), its orders, and the analytical
// plugin's RFM segment, CLV and P(alive) when that plugin is loaded (its routes are in the
// OpenAPI document; absent, the section says so). Each section shows the API's refusal when
// the user's role may not read it, and the rest of the page still works.
'use strict';
(function () {
    const el = (...a) => Console.el(...a);
    const t = (k, v) => I18n.t(k, v);
    const TIMELINE_PAGE = 50;
    // Fields the record's table leaves out: the analytics section shows these.
    const ANALYTIC = ['rfm_segment', 'rfm_score', 'rfm_frequency', 'rfm_monetary',
                      'clv_historic', 'clv_predicted', 'p_alive', 'churn_risk',
                      'expected_purchases', 'last_purchase_at'];
    let clock = null;   // the SLA clocks' timer, one at a time

    function section(id, title) {
        const body = el('div', {class: 'customer-body'});
        const s = el('section', {id, class: 'customer-section card'}, el('h2', {text: title}),
                     body);
        return {s, body};
    }

    function refused(body, r) {
        body.replaceChildren(el('p', {class: 'error', role: 'alert', text: Console.problem(r)}));
    }

    function value(v) {
        if (v === null || v === undefined || v === '')
            return t('none');
        if (typeof v === 'boolean')
            return t(v ? 'customer.yes' : 'customer.no');
        if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v))
            return I18n.date(v, true);
        return typeof v === 'object' ? JSON.stringify(v) : String(v);
    }

    function table(columns, rows) {
        return el('table', {},
            el('thead', {}, el('tr', {}, columns.map((c) => el('th', {text: c})))),
            el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) =>
                c instanceof Node ? el('td', {}, c) : el('td', {text: c}))))));
    }

    // "2 h 5 min left" / "overdue by 3 min" from now to DUE; done when STOPPED (the time the
    // clock stopped: answered, resolved) is set.
    function slaText(due, stopped, now) {
        if (!due)
            return {text: t('none'), cls: ''};
        const end = Date.parse(due);
        if (stopped) {
            const late = Date.parse(stopped) > end;
            return {text: t(late ? 'customer.sla.met_late' : 'customer.sla.met'), cls: late ? 'late' : 'ok'};
        }
        let s = Math.round((end - now) / 1000);
        const over = s < 0;
        s = Math.abs(s);
        const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
              m = Math.floor(s % 3600 / 60), sec = s % 60;
        const span = (d ? t('customer.sla.d', {n: I18n.number(d)}) + ' ' : '') +
                     (d || h ? t('customer.sla.h', {n: I18n.number(h)}) + ' ' : '') +
                     t('customer.sla.m', {n: I18n.number(m)}) +
                     (d ? '' : ' ' + t('customer.sla.s', {n: I18n.number(sec)}));
        return {text: t(over ? 'customer.sla.overdue' : 'customer.sla.left', {span}),
                cls: over ? 'overdue' : 'left'};
    }

    function tick() {
        const cells = document.querySelectorAll('#customer-tickets .sla-clock');
        if (!cells.length) {
            clearInterval(clock);
            clock = null;
            return;
        }
        const now = Date.now();
        for (const c of cells) {
            const s = slaText(c.dataset.due, c.dataset.stopped, now);
            c.textContent = s.text;
            c.className = 'sla-clock ' + s.cls;
        }
    }

    function slaCell(due, stopped) {
        return el('span', {class: 'sla-clock', dataset: {due: due || '', stopped: stopped || ''}});
    }

    async function timeline(body, id) {
        const list = el('ol', {class: 'timeline', id: 'customer-timeline'});
        const more = el('button', {type: 'button', id: 'timeline-more', hidden: true,
                                   text: t('customer.timeline.more')});
        body.replaceChildren(list, more);
        let before = null;
        async function page() {
            more.disabled = true;
            let q = '/api/v1/contact/' + encodeURIComponent(id) + '/timeline?limit=' + TIMELINE_PAGE;
            if (before)
                q += '&before=' + encodeURIComponent(before);
            const r = await Rapport.call('GET', q);
            if (r.status !== 200) {
                refused(body, r);
                return;
            }
            const answered = performance.now();
            const items = r.data.data || [];
            list.append(...items.map((it) => el('li', {class: 'timeline-item kind-' + it.kind},
                el('time', {datetime: it.at, text: I18n.date(it.at, true)}),
                el('span', {class: 'timeline-kind', text: t('customer.kind.' + it.kind) ||
                                                           it.kind}),
                it.channel ? el('span', {class: 'muted', text: it.channel +
                    (it.direction ? ' · ' + it.direction : '')}) : null,
                el('span', {class: 'timeline-subject', text: it.subject || ''}),
                it.summary ? el('span', {class: 'muted timeline-summary', text: it.summary})
                           : null)));
            if (!list.children.length)
                list.append(el('li', {class: 'muted', text: t('customer.timeline.empty')}));
            before = r.data.next || null;
            more.hidden = !before;
            more.disabled = false;
            // How long the page took to show an answer (its elements built and laid out: the
            // offsetHeight read forces the layout), for the speed the issue asks about.
            void list.offsetHeight;
            list.dataset.renderMs = String(performance.now() - answered);
            list.dataset.count = String(list.querySelectorAll('.timeline-item').length);
        }
        more.addEventListener('click', page);
        await page();
    }

    async function deals(body, id) {
        const r = await Rapport.call('GET', '/api/v1/deal?contact=' + encodeURIComponent(id) +
                                     '&order=-id&limit=200');
        if (r.status !== 200)
            return refused(body, r);
        const open = r.data.data.filter((d) => !d.closed_at);
        body.replaceChildren(open.length ? table(
            [t('customer.deal.name'), t('customer.deal.stage'), t('customer.deal.amount'),
             t('customer.deal.close')],
            open.map((d) => [el('a', {href: '#records/deal/' + d.id, text: d.name}),
                             (d.pipeline || '') + ' / ' + (d.stage || ''),
                             d.amount === null || d.amount === undefined ? t('none')
                                 : I18n.money(d.amount, d.currency || 'USD'),
                             d.expected_close ? I18n.date(d.expected_close) : t('none')]))
            : el('p', {class: 'muted', text: t('customer.deals.none')}));
    }

    async function tickets(body, id) {
        const r = await Rapport.call('GET', '/api/v1/ticket?contact=' + encodeURIComponent(id) +
                                     '&order=-id&limit=200');
        if (r.status !== 200)
            return refused(body, r);
        const rows = r.data.data;
        body.replaceChildren(rows.length ? table(
            [t('customer.ticket.subject'), t('customer.ticket.status'),
             t('customer.ticket.priority'), t('customer.ticket.first_response'),
             t('customer.ticket.resolution')],
            rows.map((k) => {
                const closed = k.status === 'resolved' || k.status === 'closed';
                return [el('a', {href: '#records/ticket/' + k.id, text: k.subject}),
                        k.status || '', k.priority || '',
                        slaCell(k.first_response_due, k.first_response_at ||
                                (closed ? k.resolved_at || k.updated_at : null)),
                        slaCell(k.resolution_due, k.resolved_at ||
                                (closed ? k.updated_at : null))];
            })) : el('p', {class: 'muted', text: t('customer.tickets.none')}));
        tick();
        if (!clock && rows.length)
            clock = setInterval(tick, 1000);
    }

    async function orders(body, id) {
        const r = await Rapport.call('GET', '/api/v1/order?contact=' + encodeURIComponent(id) +
                                     '&order=-id&limit=200');
        if (r.status !== 200)
            return refused(body, r);
        const rows = r.data.data;
        body.replaceChildren(rows.length ? table(
            [t('customer.order.id'), t('customer.order.status'), t('customer.order.total'),
             t('customer.order.placed')],
            rows.map((o) => [el('a', {href: '#records/order/' + o.id, text: '#' + o.id}),
                             o.status || '', I18n.money(o.total || 0, o.currency || 'USD'),
                             value(o.placed_at || o.created_at)]))
            : el('p', {class: 'muted', text: t('customer.orders.none')}));
    }

    // The analytical plugin is loaded when its routes are in the API's document.
    async function analytics(body, contact) {
        const doc = await Rapport.call('GET', '/openapi.json');
        const paths = doc.status === 200 && doc.data && doc.data.paths ? doc.data.paths : {};
        if (!paths['/api/v1/plugins/analytical/clv']) {
            body.replaceChildren(el('p', {class: 'muted', id: 'customer-no-analytics',
                                          text: t('customer.analytics.absent')}));
            return;
        }
        const pct = (v) => v === null || v === undefined ? t('none')
            : I18n.number(Number(v) * 100, 1) + '%';
        const money = (v) => v === null || v === undefined ? t('none') : I18n.money(v, 'USD');
        body.replaceChildren(el('dl', {class: 'customer-fields', id: 'customer-analytics'},
            el('dt', {text: t('customer.analytics.segment')}),
            el('dd', {text: contact.rfm_segment || t('none')}),
            el('dt', {text: t('customer.analytics.score')}),
            el('dd', {text: contact.rfm_score || t('none')}),
            el('dt', {text: t('customer.analytics.clv_historic')}),
            el('dd', {text: money(contact.clv_historic)}),
            el('dt', {text: t('customer.analytics.clv_predicted')}),
            el('dd', {text: money(contact.clv_predicted)}),
            el('dt', {text: t('customer.analytics.p_alive')}),
            el('dd', {text: pct(contact.p_alive)})));
        if (!('rfm_segment' in contact))   // the role hides them: say so rather than show "—"
            body.append(el('p', {class: 'muted', text: t('customer.analytics.hidden')}));
    }

    async function render(view, args) {
        const id = args[0];
        if (!id || !/^\d+$/.test(id)) {
            view.append(el('p', {class: 'error', role: 'alert',
                                 text: t('customer.bad_id', {id: id || ''})}));
            return;
        }
        const r = await Rapport.call('GET', '/api/v1/contact/' + encodeURIComponent(id));
        if (r.status !== 200) {
            view.append(el('h1', {text: t('customer.title', {id})}),
                        el('p', {class: 'error', role: 'alert', text: Console.problem(r)}));
            return;
        }
        const c = r.data;
        const name = [c.first_name, c.last_name].filter(Boolean).join(' ') || c.email || '#' + id;
        view.append(el('h1', {text: name}));
        const grid = el('div', {class: 'customer-grid'});
        view.append(grid);
        const rec = section('customer-record', t('customer.record'));
        const hidden = new Set(['id', ...ANALYTIC]);
        rec.body.append(el('dl', {class: 'customer-fields'},
            Object.entries(c).filter(([k]) => !hidden.has(k))
                .flatMap(([k, v]) => [el('dt', {text: k}), el('dd', {text: value(v)})])));
        const tl = section('customer-timeline-section', t('customer.timeline'));
        const dl = section('customer-deals', t('customer.deals'));
        const tk = section('customer-tickets', t('customer.tickets'));
        const od = section('customer-orders', t('customer.orders'));
        const an = section('customer-analytics-section', t('customer.analytics'));
        grid.append(rec.s, an.s, dl.s, tk.s, od.s, tl.s);
        await Promise.all([timeline(tl.body, id), deals(dl.body, id), tickets(tk.body, id),
                           orders(od.body, id), analytics(an.body, c)]);
    }

    Console.page('customer', {render});
})();

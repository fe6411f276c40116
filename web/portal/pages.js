// pages.js — the portal's pages once a customer is signed in (orders, an order, its invoice to
// print, tickets, a ticket) and the help pages anyone may read. The address's fragment names
// the page (#orders, #order/12, #invoice/3, #tickets, #ticket/7, #help, #article/slug), so
// the back button and a bookmark work. Every value goes in with textContent; the one exception
// is an article's body, which the server renders from Markdown and sanitises (kb.c).
'use strict';
(function () {
    const API = '/api/v1/';
    const KB = '/api/v1/plugins/portal/articles';
    const $ = (id) => document.getElementById(id);
    const t = (k, v) => I18n.t(k, v);
    let customer = null; // {id, first_name, …} from GET me, or null
    let brandName = '';
    const extra = {};        // pages other files add (Pages.add): name -> function(arg)
    const orderViews = [];   // more of an order's page (Pages.onOrder): function(order)

    function el(tag, text, cls) {
        const e = document.createElement(tag);
        if (text !== undefined && text !== null)
            e.textContent = text;
        if (cls)
            e.className = cls;
        return e;
    }

    function link(href, text) {
        const a = el('a', text);
        a.href = href;
        return a;
    }

    function row(cells) {
        const tr = el('tr');
        for (const c of cells) {
            const td = el('td');
            if (c instanceof Node)
                td.append(c);
            else if (c && typeof c === 'object') {
                td.textContent = c.text;
                td.className = c.cls;
            } else
                td.textContent = c;
            tr.append(td);
        }
        return tr;
    }

    const num = (text) => ({text, cls: 'num'});

    function fail(r) {
        $('error').textContent = (r.data && r.data.detail) || t('error.server', {status: r.status});
    }

    async function get(path) {
        const r = await Rapport.call('GET', path);
        if (r.status !== 200) {
            fail(r);
            return null;
        }
        return r.data;
    }

    const where = (f) => 'where=' + encodeURIComponent(JSON.stringify(f));
    const status = (kind, v) => (v ? t(kind + '.status.' + v) : t('none'));

    // Shows the section for VIEW and marks its tab.
    function show(view, tab) {
        for (const s of document.querySelectorAll('main > section[data-view]'))
            s.hidden = s.dataset.view !== view;
        $('signin').hidden = view !== 'signin';
        for (const a of document.querySelectorAll('#tabs a'))
            a.classList.toggle('active', a.dataset.tab === (tab || view));
    }

    async function orders() {
        show('orders');
        const page = await get(API + 'order?order=-id&limit=200');
        const body = $('orders-table').tBodies[0];
        body.replaceChildren();
        if (!page)
            return;
        $('orders-none').hidden = page.data.length > 0;
        $('orders-table').hidden = page.data.length === 0;
        for (const o of page.data)
            body.append(row([link('#order/' + o.id, I18n.number(o.id, 0)),
                             I18n.date(o.placed_at || o.created_at), status('order', o.status),
                             num(I18n.money(o.total, o.currency))]));
    }

    function lineRows(tbody, lines, currency) {
        tbody.replaceChildren();
        for (const l of lines)
            tbody.append(row([l.description || t('none'), num(I18n.number(l.quantity)),
                              num(I18n.money(l.unit_price, currency)),
                              num(I18n.money(l.total, currency))]));
    }

    async function order(id) {
        const o = await get(API + 'order/' + id);
        // A refusal shows no page at all: nothing of the one shown before stays in view.
        show(o ? 'order' : null, 'orders');
        if (!o)
            return;
        $('order-title').textContent = t('order.title', {n: I18n.number(o.id, 0)});
        $('order-status').textContent = status('order', o.status);
        $('order-placed').textContent = I18n.date(o.placed_at || o.created_at, true);
        $('order-changed').textContent = I18n.date(o.status_changed_at, true);
        $('order-total').textContent = I18n.money(o.total, o.currency);
        const lines = await get(API + 'order_line?' + where({order: o.id}) + '&limit=1000');
        lineRows($('order-lines').tBodies[0], lines ? lines.data : [], o.currency);
        const inv = await get(API + 'invoice?' + where({order: o.id}));
        const list = $('order-invoices');
        list.replaceChildren();
        const invoices = inv ? inv.data : [];
        $('order-no-invoices').hidden = invoices.length > 0;
        for (const i of invoices) {
            const li = el('li');
            li.append(link('#invoice/' + i.id, t('invoice.title', {n: i.number || i.id})),
                      ' · ' + I18n.date(i.issued_at || i.created_at) + ' · ' +
                      status('invoice', i.status) + ' · ' + I18n.money(i.total, i.currency));
            list.append(li);
        }
        for (const view of orderViews)
            await view(o);
    }

    async function invoice(id) {
        const i = await get(API + 'invoice/' + id);
        // A refusal shows no page at all: nothing of the one shown before stays in view.
        show(i ? 'invoice' : null, 'orders');
        if (!i)
            return;
        const o = await get(API + 'order/' + i.order);
        $('invoice-back').href = '#order/' + i.order;
        $('invoice-brand').textContent = brandName;
        $('invoice-title').textContent = t('invoice.title', {n: i.number || i.id});
        $('invoice-to').textContent = customer ? [customer.first_name, customer.last_name]
            .filter(Boolean).join(' ') || customer.email : '';
        $('invoice-issued').textContent = I18n.date(i.issued_at || i.created_at);
        $('invoice-order').textContent = I18n.number(i.order, 0);
        $('invoice-status').textContent = status('invoice', i.status);
        $('invoice-total').textContent = I18n.money(i.total, i.currency);
        const lines = o ? await get(API + 'order_line?' + where({order: o.id}) + '&limit=1000')
                        : null;
        lineRows($('invoice-lines').tBodies[0], lines ? lines.data : [], i.currency);
    }

    async function tickets() {
        show('tickets');
        const page = await get(API + 'ticket?order=-id&limit=200');
        const body = $('tickets-table').tBodies[0];
        body.replaceChildren();
        if (!page)
            return;
        $('tickets-none').hidden = page.data.length > 0;
        $('tickets-table').hidden = page.data.length === 0;
        for (const k of page.data)
            body.append(row([link('#ticket/' + k.id, k.subject), status('ticket', k.status),
                             I18n.date(k.first_response_due, true)]));
    }

    async function ticket(id) {
        const k = await get(API + 'ticket/' + id);
        // A refusal shows no page at all: nothing of the one shown before stays in view.
        show(k ? 'ticket' : null, 'tickets');
        if (!k)
            return;
        $('ticket-title').textContent =
            t('ticket.title', {n: I18n.number(k.id, 0)}) + ': ' + k.subject;
        $('ticket-status').textContent = status('ticket', k.status);
        $('ticket-opened').textContent = I18n.date(k.created_at, true);
        $('ticket-due').textContent = I18n.date(k.first_response_due, true);
        $('ticket-resolution').textContent = I18n.date(k.resolution_due, true);
        $('ticket-priority').textContent =
            k.priority ? t('ticket.priority.' + k.priority) : t('none');
        $('ticket-text-view').textContent = k.description || '';
        const close = $('ticket-close');
        close.hidden = k.status === 'closed';
        close.onclick = async () => {
            // The one status a customer sets: closing goes through the portal's route.
            const r = await Rapport.call('POST', API + 'plugins/portal/tickets/' + k.id +
                                         '/close', {});
            if (r.status !== 200)
                return fail(r);
            $('notice').textContent = t('ticket.closed');
            await ticket(k.id);
        };
    }

    async function newTicket(ev) {
        ev.preventDefault();
        // Files that could not go with it refuse the ticket before it is opened (thread.js).
        const bad = window.Thread ? Thread.check('ticket-files') : '';
        if (bad)
            return fail({status: 422, data: {detail: bad}});
        const r = await Rapport.call('POST', API + 'ticket', {
            subject: $('ticket-subject').value, description: $('ticket-text').value,
        });
        if (r.status !== 201)
            return fail(r);
        if (window.Thread && !(await Thread.afterCreate(r.data.id)))
            return tickets(); // the ticket is open; the error says what became of its files
        $('ticket-subject').value = $('ticket-text').value = '';
        $('notice').textContent = r.data.first_response_due
            ? t('tickets.created', {due: I18n.date(r.data.first_response_due, true)})
            : t('tickets.created_plain');
        await tickets();
    }

    async function help() {
        show('help');
        const q = $('help-q').value.trim();
        const page = await get(KB + '?limit=50&lang=' + encodeURIComponent(I18n.lang()) +
                               (q ? '&q=' + encodeURIComponent(q) : ''));
        const list = $('help-results');
        list.replaceChildren();
        const found = page ? page.data : [];
        $('help-none').hidden = found.length > 0;
        for (const a of found) {
            const li = el('li');
            li.append(link('#article/' + encodeURIComponent(a.slug), a.title));
            if (a.category)
                li.append(' ', el('span', a.category, 'muted'));
            list.append(li);
        }
    }

    async function article(slug) {
        const a = await get(KB + '/' + encodeURIComponent(slug));
        // A refusal shows no page at all: nothing of the one shown before stays in view.
        show(a ? 'article' : null, 'help');
        if (!a)
            return;
        $('article-title').textContent = a.title;
        $('article-updated').textContent = I18n.date(a.updated_at);
        // The only innerHTML in the portal: the server's HTML, rendered by libcmark in safe mode
        // and stripped of unsafe addresses (plugins/portal/kb.c).
        $('article-body').innerHTML = a.html;
        for (const [id, yes] of [['article-yes', true], ['article-no', false]])
            $(id).onclick = async () => {
                const r = await Rapport.call('POST', KB + '/' + encodeURIComponent(slug) +
                                             '/helpful', {yes});
                if (r.status === 200)
                    $('notice').textContent = t('help.thanks');
                else
                    fail(r);
            };
    }

    // Shows the page the fragment names; a customer's page asks a visitor to sign in first.
    async function route() {
        const [name, arg] = location.hash.replace(/^#/, '').split('/');
        const open = {help, article: () => article(decodeURIComponent(arg || '')),
                      privacy: () => { show('privacy'); return Account.privacy(); }};
        const signedIn = {
            orders, tickets, account: () => { show('account'); return Account.load(customer); },
            order: () => order(Number(arg)), invoice: () => invoice(Number(arg)),
            ticket: () => ticket(Number(arg)),
        };
        for (const [page, fn] of Object.entries(extra))
            signedIn[page] = () => fn(arg);
        if (open[name])
            return open[name]();
        if (!customer)
            return show('signin');
        return (signedIn[name] || orders)();
    }

    document.addEventListener('DOMContentLoaded', () => {
        $('ticket-form').addEventListener('submit', newTicket);
        $('invoice-print').addEventListener('click', () => window.print());
        $('help-form').addEventListener('submit', (ev) => {
            ev.preventDefault();
            if (location.hash !== '#help')
                location.hash = '#help'; // the hashchange shows the results
            else
                help();
        });
    });

    window.Pages = {
        route,
        setCustomer: (c) => {
            customer = c;
            for (const a of document.querySelectorAll('#tabs a'))
                a.hidden = a.dataset.tab !== 'help' && !('public' in a.dataset) && !c;
        },
        setBrand: (name) => { brandName = name || ''; },
        // For the pages of other files: shows section VIEW under tab TAB; GET PATH (null and
        // the error shown when refused).
        show, get,
        add: (name, fn) => { extra[name] = fn; },
        onOrder: (fn) => { orderViews.push(fn); },
    };
})();

// search.js — one search box over what the customer may see: their orders (by number, status
// or tracking number), tickets and invoices, and the help articles, from
// GET /api/v1/plugins/portal/search (which runs as the customer: the store keeps the scope).
// The page is #search/<words>, so a result list can be bookmarked; results are grouped by kind
// and link to their pages. Values go in with textContent.
'use strict';
(function () {
    const $ = (id) => document.getElementById(id);
    const t = (k, v) => I18n.t(k, v);

    function item(href, text, extra) {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = href;
        a.textContent = text;
        li.append(a);
        if (extra) {
            const s = document.createElement('span');
            s.className = 'muted';
            s.textContent = extra;
            li.append(' ', s);
        }
        return li;
    }

    // Fills group KIND's list with ROWS, each made by MAKE; hides the group when empty.
    function group(kind, rows, make) {
        const list = $('search-' + kind);
        list.replaceChildren(...rows.map(make));
        $('search-group-' + kind).hidden = rows.length === 0;
        return rows.length;
    }

    const orderStatus = (s) => (s ? t('order.status.' + s) : '');

    // An order's status typed as the page names it ("ارسال شده", "Shipped") is asked as the
    // status itself, which the server matches; Arabic letter forms count as Persian ones.
    const STATUSES = ['placed', 'paid', 'shipped', 'delivered', 'cancelled'];
    const fold = (s) => s.toLowerCase().replace(/ي/g, 'ی').replace(/ك/g, 'ک')
        .replace(/[\s\u200c]+/g, ' ').trim();
    const asked = (q) => STATUSES.find((s) => fold(t('order.status.' + s)) === fold(q)) || q;

    async function page(arg) {
        Pages.show('search');
        const q = decodeURIComponent(arg || '').trim();
        $('search-q').value = q;
        $('search-none').hidden = true;
        for (const kind of ['orders', 'tickets', 'invoices', 'articles'])
            $('search-group-' + kind).hidden = true;
        if (!q)
            return;
        const r = await Pages.get('/api/v1/plugins/portal/search?q=' + encodeURIComponent(asked(q)) +
                                  '&lang=' + encodeURIComponent(I18n.lang()));
        if (!r)
            return;
        let n = group('orders', r.orders, (o) => item(o.href, t('order.title', {n: I18n.number(o.id, 0)}),
            [orderStatus(o.status), o.total ? I18n.money(o.total, o.currency) : '']
                .filter(Boolean).join(' · ')));
        n += group('tickets', r.tickets, (k) => item(k.href, k.subject || ('#' + k.id),
            k.status ? t('ticket.status.' + k.status) : ''));
        n += group('invoices', r.invoices, (i) => item(i.href,
            t('invoice.title', {n: i.number || i.id}), i.total ? I18n.money(i.total, i.currency) : ''));
        n += group('articles', r.articles, (a) => item(a.href, a.title, a.category || ''));
        $('search-none').hidden = n > 0;
    }

    Pages.add('search', page);

    document.addEventListener('DOMContentLoaded', () => {
        $('search-form').addEventListener('submit', (ev) => {
            ev.preventDefault();
            const want = '#search/' + encodeURIComponent($('search-q').value.trim());
            if (location.hash !== want)
                location.hash = want; // the hashchange shows the results
            else
                page(want.slice(8));
        });
    });
})();

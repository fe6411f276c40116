// orders_track.js — more of an order's page: its status history (placed, paid, shipped,
// delivered, cancelled, each with its time), read from the order's own events as the customer
// may see them (GET /api/v1/order/ID/events: the store leaves hidden fields out), and its
// tracking (carrier, tracking number, and the carrier's page as a link only when it is an
// http(s) address). Values go in with textContent.
'use strict';
(function () {
    const $ = (id) => document.getElementById(id);
    const t = (k, v) => I18n.t(k, v);

    // The status steps of EVENTS: [{status, at, origin}], oldest first.
    function steps(events) {
        const out = [];
        for (const e of events) {
            const c = e.changes || {};
            if (e.type === 'order.created')
                out.push({status: (Array.isArray(c.status) && c.status[1]) || 'placed',
                          at: e.at, origin: e.origin});
            else if (e.type === 'order.status_changed' && c.to)
                out.push({status: c.to, at: e.at, origin: e.origin});
        }
        return out;
    }

    // Every event of order ID the customer may see, page after page (at most 10 of 1,000).
    async function events(id) {
        let all = [], after = '';
        for (let i = 0; i < 10; i++) {
            const page = await Pages.get('/api/v1/order/' + id + '/events?limit=1000' +
                                         (after ? '&after=' + encodeURIComponent(after) : ''));
            if (!page)
                return null;
            all = all.concat(page.data);
            if (!page.next)
                break;
            after = page.next;
        }
        return all;
    }

    async function history(o) {
        const list = $('order-history');
        list.replaceChildren();
        const evs = await events(o.id);
        for (const s of steps(evs || [])) {
            const li = document.createElement('li');
            li.dataset.status = s.status;
            const name = document.createElement('strong');
            name.textContent = t('order.status.' + s.status);
            const when = document.createElement('time');
            when.dateTime = s.at;
            when.textContent = I18n.date(s.at, true);
            li.append(name, ' · ', when);
            if (s.origin === 'portal')
                li.append(' · ' + t('order.by_you'));
            list.append(li);
        }
    }

    const isWeb = (u) => typeof u === 'string' && /^https?:\/\/[^\s]+$/i.test(u);

    function tracking(o) {
        const any = o.carrier || o.tracking_number || o.tracking_url;
        $('order-no-tracking').hidden = !!any;
        $('order-tracking').hidden = !any;
        $('order-carrier').textContent = o.carrier || t('none');
        $('order-tracking-number').textContent = o.tracking_number || t('none');
        const where = $('order-tracking-link');
        where.replaceChildren();
        if (isWeb(o.tracking_url)) {
            const a = document.createElement('a');
            a.href = o.tracking_url;
            a.rel = 'noopener noreferrer';
            a.target = '_blank';
            a.id = 'order-track-link';
            a.textContent = t('order.track');
            where.append(a);
        } else if (o.tracking_url) {
            where.textContent = o.tracking_url; // not a web address: shown, never followed
        }
    }

    // Another page (or order) asked for: nothing of this order's stays while that one loads.
    window.addEventListener('hashchange', () => {
        $('order-history').replaceChildren();
        $('order-tracking-link').replaceChildren();
        $('order-carrier').textContent = $('order-tracking-number').textContent = '';
    });

    Pages.onOrder(async (o) => {
        tracking(o);
        await history(o);
    });
})();

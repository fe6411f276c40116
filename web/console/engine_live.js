// engine_live.js — the engine room's live event log: the newest events, then each new one as
// the server streams it (server-sent events from /api/v1/admin/events/stream, opened after the
// newest seq shown, so nothing is missed or shown twice). The browser's EventSource reconnects
// by itself, sending the last id it saw. Events come as the signed-in admin may see them.
'use strict';
(function () {
    const {el} = Console;
    const MAX_ROWS = 500;

    // One formatter per language, kept (making one per row cost most of drawing 50 rows), with
    // seconds: events of one minute are told apart.
    let fmt = null, fmtLang = null;
    function when(at) {
        if (fmtLang !== I18n.lang()) {
            fmtLang = I18n.lang();
            fmt = new Intl.DateTimeFormat(fmtLang, {dateStyle: 'short', timeStyle: 'medium'});
        }
        const d = new Date(at);
        return Number.isNaN(d.getTime()) ? I18n.t('none') : fmt.format(d);
    }

    function row(ev) {
        return el('tr', {dataset: {seq: ev.seq}},
            el('td', {class: 'num', text: ev.seq}),
            el('td', {text: when(ev.at)}),
            el('td', {text: ev.type}),
            el('td', {text: ev.entity ? ev.entity + ' ' + ev.record_id : ''}),
            el('td', {text: ev.actor}),
            el('td', {class: 'changes', text: JSON.stringify(ev.changes || {})}));
    }

    // Draws the live log into BOX; returns a function that closes the stream.
    async function render(box) {
        const state = el('span', {class: 'live-state', text: I18n.t('engine.live.connecting')});
        const body = el('tbody', {id: 'live-rows'});
        box.append(el('p', {}, state),
            el('table', {class: 'engine-table'},
                el('thead', {}, el('tr', {},
                    ...['seq', 'at', 'type', 'record', 'actor', 'changes'].map((k) =>
                        el('th', {text: I18n.t('engine.col.' + k)})))),
                body));
        const r = await Rapport.call('GET', '/api/v1/admin/events?limit=50');
        if (r.status !== 200) {
            Console.say(Console.problem(r));
            return () => {};
        }
        // How long the rows took once the API had answered (the browser test reports it).
        const t0 = performance.now();
        for (const ev of r.data.data.slice().reverse())
            body.append(row(ev));
        box.dataset.renderMs = (performance.now() - t0).toFixed(1);
        const es = new EventSource('/api/v1/admin/events/stream?after=' + r.data.last_seq);
        es.onopen = () => { state.textContent = I18n.t('engine.live.on'); };
        es.onerror = () => { state.textContent = I18n.t('engine.live.lost'); };
        es.onmessage = (m) => {
            let ev;
            try { ev = JSON.parse(m.data); } catch (e) { return; }
            if (body.querySelector('tr[data-seq="' + ev.seq + '"]'))
                return;
            body.prepend(row(ev));
            while (body.children.length > MAX_ROWS)
                body.lastElementChild.remove();
        };
        return () => es.close();
    }

    window.EngineLive = {render};
})();

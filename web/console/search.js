// search.js — the global search: a box in the frame's bar (/ goes to it) and its results
// (#search/<words>) from GET /api/v1/search, each a link to its record with its snippet. The
// store marks the words found in a snippet with [ and ]; they become <mark> elements by
// splitting the text, so nothing of a record is ever parsed as HTML.
'use strict';
(function () {
    const {el} = Console;
    const t = (k, v) => I18n.t(k, v);

    // The nodes of snippet S: text, and <mark> for each [marked] run.
    function marked(s) {
        const out = [];
        let rest = String(s || '');
        for (;;) {
            const open = rest.indexOf('[');
            const close = open < 0 ? -1 : rest.indexOf(']', open + 1);
            if (open < 0 || close < 0) {
                if (rest)
                    out.push(document.createTextNode(rest));
                return out;
            }
            if (open > 0)
                out.push(document.createTextNode(rest.slice(0, open)));
            out.push(el('mark', {text: rest.slice(open + 1, close)}));
            rest = rest.slice(close + 1);
        }
    }

    // The box, inside the signed-in part of the bar: it shows only with a session.
    function box() {
        const input = el('input', {id: 'search', type: 'search', name: 'q', autocomplete: 'off',
                                   placeholder: t('search.placeholder'),
                                   'aria-label': t('search.label')});
        const f = el('form', {id: 'search-form', class: 'search', role: 'search'}, input);
        f.addEventListener('submit', (ev) => {
            ev.preventDefault();
            const q = input.value.trim();
            if (!q)
                return;
            input.blur(); /* so j/k move in the results at once */
            Console.go('search/' + encodeURIComponent(q));
        });
        const spot = document.getElementById('signed-in');
        spot.prepend(f);
        return input;
    }

    async function results(view, args) {
        const q = args.join('/');
        const input = document.getElementById('search');
        if (input && document.activeElement !== input)
            input.value = q;
        view.append(el('h1', {text: t('search.title', {q})}));
        if (!q)
            return;
        const r = await Rapport.call('GET', '/api/v1/search?q=' + encodeURIComponent(q) + '&limit=50');
        if (r.status !== 200) {
            view.append(el('p', {class: 'error', id: 'search-error', text: Console.problem(r)}));
            return;
        }
        const hits = r.data.data;
        if (!hits.length) {
            view.append(el('p', {class: 'muted', id: 'search-none', text: t('search.none')}));
            return;
        }
        const items = hits.map((h) => {
            const href = `records/${h.entity}/${h.id}`;
            return el('li', {dataset: {href}},
                      el('a', {href: '#' + href, text: `${h.entity} #${h.id}`}),
                      el('span', {class: 'snippet'}, marked(h.snippet)));
        });
        view.append(el('ul', {id: 'search-results', class: 'hits'}, items));
        Records.keyList(items);
    }

    let input = null;
    // The box's words follow the language: I18n.use() sets <html lang> once its words are in.
    const relabel = () => {
        if (input) {
            input.placeholder = t('search.placeholder');
            input.setAttribute('aria-label', t('search.label'));
        }
    };
    new MutationObserver(relabel).observe(document.documentElement,
                                          {attributes: true, attributeFilter: ['lang']});
    document.addEventListener('DOMContentLoaded', () => { input = box(); });
    Console.page('search', {render: results});
})();

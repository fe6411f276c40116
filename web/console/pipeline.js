// pipeline.js — the pipeline board (#pipeline[/<pipeline>]): a pipeline's deals as cards in its
// stages' columns (the operational plugin's GET /api/v1/plugins/operational/pipelines gives the
// stages, so an empty stage is a column too). Dragging a card to another column, or choosing a
// stage in the card's menu (the keyboard's way), is a PATCH of the deal's stage with If-Match;
// a 412 or any refusal puts the card back where it was and says why. Each column totals its
// deals' amounts and their weighted amounts (amount × the deal's probability, which the plugin
// sets from the stage), per currency. Moving a deal to a "won" stage shows the tasks the
// engine's rules then gave it (the default onboarding rule's).
'use strict';
(function () {
    const el = (...a) => Console.el(...a);
    const t = (k, v) => I18n.t(k, v);

    // Every deal of pipeline NAME the caller may read, following the cursor (at most 20 pages).
    async function deals(name) {
        const out = [];
        let after = null;
        for (let i = 0; i < 20; i++) {
            let q = '/api/v1/deal?pipeline=' + encodeURIComponent(name) + '&limit=500&order=id';
            if (after)
                q += '&after=' + encodeURIComponent(after);
            const r = await Rapport.call('GET', q);
            if (r.status !== 200)
                return r;
            out.push(...r.data.data);
            if (!r.data.next)
                break;
            after = r.data.next;
        }
        return {status: 200, data: out};
    }

    // "USD 1,200.00 · EUR 30.00" for sums keyed by currency.
    function sums(byCurrency) {
        const parts = Object.entries(byCurrency).map(([c, v]) => I18n.money(v, c));
        return parts.length ? parts.join(' · ') : I18n.money(0, 'USD');
    }

    function probability(deal, stage) {
        const p = deal.probability !== null && deal.probability !== undefined
            ? Number(deal.probability) : Number(stage.probability || 0);
        return Number.isFinite(p) ? p : 0;
    }

    async function render(view, args) {
        view.append(el('h1', {text: t('pipeline.title')}));
        const pr = await Rapport.call('GET', '/api/v1/plugins/operational/pipelines');
        if (pr.status !== 200) {
            view.append(el('p', {class: 'error', role: 'alert', text: Console.problem(pr)}));
            return;
        }
        const all = pr.data || {};
        const names = Object.keys(all);
        const name = args[0] || (names.includes('default') ? 'default' : names[0]);
        const stages = all[name];
        if (!Array.isArray(stages)) {
            view.append(el('p', {class: 'error', role: 'alert',
                                 text: t('pipeline.unknown', {name, names: names.join(', ')})}));
            return;
        }
        if (names.length > 1) {
            const sel = el('select', {id: 'pipeline-choice', 'aria-label': t('pipeline.choose'),
                on: {change: () => Console.go('pipeline/' + encodeURIComponent(sel.value))}},
                names.map((n) => el('option', {value: n, text: n, selected: n === name})));
            view.append(el('p', {}, el('label', {}, t('pipeline.choose') + ' ', sel)));
        }
        const dr = await deals(name);
        if (dr.status !== 200) {
            view.append(el('p', {class: 'error', role: 'alert', text: Console.problem(dr)}));
            return;
        }
        const board = el('div', {class: 'pipeline-board', id: 'pipeline-board'});
        view.append(board);
        const byId = new Map(dr.data.map((d) => [String(d.id), d]));
        const columns = new Map();   // stage name → {stage, list, head}

        function column(stage) {
            const list = el('ol', {class: 'pipeline-cards'});
            const head = el('div', {class: 'pipeline-totals'});
            const col = el('section', {class: 'pipeline-column stage-' + (stage.kind || 'open'),
                                       dataset: {stage: stage.name},
                                       'aria-label': stage.name},
                el('h2', {}, el('span', {text: stage.name}),
                   el('span', {class: 'muted', text: ' ' + I18n.number(stage.probability || 0) + '%'})),
                head, list);
            col.addEventListener('dragover', (ev) => {
                if (ev.dataTransfer.types.includes('text/x-deal')) {
                    ev.preventDefault();
                    ev.dataTransfer.dropEffect = 'move';
                    col.classList.add('drop-target');
                }
            });
            col.addEventListener('dragleave', () => col.classList.remove('drop-target'));
            col.addEventListener('drop', (ev) => {
                ev.preventDefault();
                col.classList.remove('drop-target');
                const id = ev.dataTransfer.getData('text/x-deal');
                if (id)
                    move(id, stage.name);
            });
            columns.set(stage.name, {stage, list, head, col});
            return col;
        }

        function card(deal) {
            const choose = el('select', {class: 'pipeline-move', 'aria-label':
                                         t('pipeline.move', {name: deal.name})},
                stages.map((s) => el('option', {value: s.name, text: s.name,
                                                selected: s.name === deal.stage})));
            choose.addEventListener('change', () => move(String(deal.id), choose.value));
            const c = el('li', {class: 'pipeline-card', draggable: 'true', tabindex: '0',
                                dataset: {id: String(deal.id)}},
                el('a', {href: '#records/deal/' + deal.id, class: 'deal-name', text: deal.name}),
                el('div', {class: 'deal-amount',
                           text: deal.amount === null || deal.amount === undefined
                               ? t('none') : I18n.money(deal.amount, deal.currency || 'USD')}),
                deal.contact ? el('a', {href: '#customer/' + deal.contact, class: 'deal-contact',
                                        text: t('pipeline.customer', {id: deal.contact})}) : null,
                deal.owner ? el('div', {class: 'muted', text: deal.owner}) : null,
                el('div', {class: 'pipeline-message', role: 'status'}),
                el('ul', {class: 'pipeline-tasks'}),
                choose);
            c.addEventListener('dragstart', (ev) => {
                ev.dataTransfer.setData('text/x-deal', String(deal.id));
                ev.dataTransfer.effectAllowed = 'move';
                c.classList.add('dragging');
            });
            c.addEventListener('dragend', () => c.classList.remove('dragging'));
            return c;
        }

        function cardOf(id) {
            return board.querySelector('.pipeline-card[data-id="' + CSS.escape(id) + '"]');
        }

        // Puts deal ID's card in the column of its stage (its card rebuilt from the record).
        function place(id) {
            const deal = byId.get(id), old = cardOf(id);
            const c = card(deal), colm = columns.get(deal.stage);
            if (old)
                old.remove();
            if (colm)
                colm.list.append(c);
            return c;
        }

        function totals() {
            for (const {stage, list, head} of columns.values()) {
                const sum = {}, weighted = {};
                let n = 0;
                for (const c of list.children) {
                    const d = byId.get(c.dataset.id);
                    n++;
                    const a = Number(d.amount);
                    if (!Number.isFinite(a))
                        continue;
                    const cur = d.currency || 'USD';
                    sum[cur] = (sum[cur] || 0) + a;
                    weighted[cur] = (weighted[cur] || 0) + a * probability(d, stage) / 100;
                }
                head.replaceChildren(
                    el('div', {class: 'count', text: t('pipeline.count', {n: I18n.number(n)})}),
                    el('div', {class: 'total', text: t('pipeline.total', {sum: sums(sum)})}),
                    el('div', {class: 'weighted', text: t('pipeline.weighted',
                                                         {sum: sums(weighted)})}));
            }
        }

        // The tasks the rules gave deal ID once it was won: they come a moment after the move
        // (the rule runs on the event), so look a few times.
        async function showTasks(id) {
            for (let i = 0; i < 25; i++) {
                const r = await Rapport.call('GET', '/api/v1/activity?related_entity=deal&related_id=' +
                                             encodeURIComponent(id) + '&order=id&limit=50');
                const c = cardOf(id);
                if (!c || r.status !== 200)
                    return;
                if (r.data.data.length) {
                    c.querySelector('.pipeline-tasks').replaceChildren(
                        ...r.data.data.map((a) => el('li', {text: a.subject})));
                    return;
                }
                await new Promise((done) => setTimeout(done, 200));
            }
        }

        async function move(id, stageName) {
            const deal = byId.get(id);
            const c = cardOf(id);
            // One move at a time per card: a second one would carry the same version and fail.
            if (!deal || !c || c.classList.contains('saving') || deal.stage === stageName ||
                !columns.has(stageName))
                return;
            columns.get(stageName).list.append(c);   // at once; back if the store says no
            c.classList.add('saving');
            Console.say('');
            const r = await Rapport.call('PATCH', '/api/v1/deal/' + encodeURIComponent(id),
                                         {stage: stageName},
                                         {'If-Match': '"' + deal.version + '"'});
            if (r.status === 200) {
                byId.set(id, r.data);
                const moved = place(id);
                totals();
                Console.notice(t('pipeline.moved', {name: r.data.name, stage: stageName}));
                const st = stages.find((s) => s.name === stageName);
                if (st && st.kind === 'won')
                    showTasks(id);
                moved.focus();
                return;
            }
            // Refused: the card goes back; a conflict reads the deal again, so the next try
            // starts from what is stored.
            let msg = Console.problem(r);
            if (r.status === 412) {
                const fresh = await Rapport.call('GET', '/api/v1/deal/' + encodeURIComponent(id));
                if (fresh.status === 200)
                    byId.set(id, fresh.data);
                const by = fresh.status === 200 ? fresh.data.updated_by : null;
                msg = t('pipeline.conflict', {name: deal.name, by: by || t('pipeline.someone')});
            }
            const back = place(id);
            totals();
            back.querySelector('.pipeline-message').textContent = msg;
            back.classList.add('refused');
            Console.say(msg);
        }

        for (const s of stages)
            board.append(column(s));
        for (const id of byId.keys())
            place(id);
        totals();
    }

    Console.page('pipeline', {label: 'nav.pipeline', order: 30, render});
})();

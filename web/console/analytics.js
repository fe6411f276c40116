// analytics.js — the analytical plugin's reports as charts (#analytics/<rfm|pareto|cohorts|
// forecast>): RFM segments as bars, the Pareto concentration curve as a line, cohorts as a
// heatmap table (coloured by class, no inline style), the pipeline forecast as bars. Charts are
// Chart.js (Debian's libjs-chart.js, carried in the binary as /shared/vendor/chart.min.js and
// loaded only when this page is opened). Each report downloads as CSV: its columns and rows as
// the API gave them. A report the caller's role may not compute shows the API's refusal.
'use strict';
(function () {
    const el = (...a) => Console.el(...a);
    const t = (k, v) => I18n.t(k, v);
    const KINDS = ['rfm', 'pareto', 'cohorts', 'forecast'];
    let chart = null;       // the chart on screen, destroyed before the next one
    let loading = null;     // Chart.js, loaded once

    function chartLib() {
        if (window.Chart)
            return Promise.resolve(window.Chart);
        if (!loading)
            loading = new Promise((resolve, reject) => {
                const s = document.createElement('script');
                s.src = '/shared/vendor/chart.min.js';
                s.onload = () => resolve(window.Chart);
                s.onerror = () => { loading = null; reject(new Error(t('analytics.nolib'))); };
                document.head.append(s);
            });
        return loading;
    }

    // One CSV field: quoted when it holds a comma, a quote, a line break or edge spaces.
    function csvField(v) {
        if (v === null || v === undefined)
            return '';
        const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
        return /[",\r\n]|^\s|\s$/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }

    function csv(report) {
        const lines = [report.columns.map(csvField).join(',')];
        for (const r of report.rows)
            lines.push(r.map(csvField).join(','));
        return lines.join('\r\n') + '\r\n';
    }

    function download(name, report) {
        const a = el('a', {id: 'analytics-csv', class: 'button', download: name + '.csv',
                           text: t('analytics.csv')});
        a.addEventListener('click', () => {
            const url = URL.createObjectURL(new Blob([csv(report)], {type: 'text/csv;charset=utf-8'}));
            a.href = url;
            setTimeout(() => URL.revokeObjectURL(url), 10000);
        });
        return a;
    }

    function table(report) {
        return el('table', {class: 'analytics-table'},
            el('thead', {}, el('tr', {}, report.columns.map((c) => el('th', {text: c})))),
            el('tbody', {}, report.rows.map((r) => el('tr', {}, r.map((v) =>
                el('td', {class: typeof v === 'number' ? 'num' : null,
                          text: v === null ? t('none') : typeof v === 'number'
                              ? I18n.number(v, Number.isInteger(v) ? 0 : 2) : String(v)}))))));
    }

    const col = (report, name) => report.columns.indexOf(name);
    const num = (v) => (v === null || v === undefined ? 0 : Number(v));
    const COLOURS = ['#2f6fde', '#21a366', '#e08a00', '#c0392b'];

    async function draw(canvas, config) {
        const Chart = await chartLib();
        if (chart)
            chart.destroy();
        config.options = Object.assign({animation: false, responsive: true,
                                        maintainAspectRatio: false,
                                        locale: I18n.lang()}, config.options || {});
        chart = new Chart(canvas, config);
    }

    const specs = {
        rfm(report) {
            const s = col(report, 'segment'), n = col(report, 'customers');
            return {type: 'bar', data: {labels: report.rows.map((r) => r[s]),
                datasets: [{label: t('analytics.rfm.customers'), backgroundColor: COLOURS[0],
                            data: report.rows.map((r) => num(r[n]))}]}};
        },
        pareto(report) {
            const c = col(report, 'cumulative_share'), total = report.rows.length;
            const points = [{x: 0, y: 0}, ...report.rows.map((r, i) =>
                ({x: (i + 1) / total * 100, y: num(r[c]) * 100}))];
            return {type: 'line', data: {datasets: [{label: t('analytics.pareto.curve'),
                borderColor: COLOURS[0], backgroundColor: COLOURS[0], data: points}]},
                options: {scales: {
                    x: {type: 'linear', min: 0, max: 100,
                        title: {display: true, text: t('analytics.pareto.x')}},
                    y: {min: 0, max: 100, title: {display: true, text: t('analytics.pareto.y')}}}}};
        },
        forecast(report) {
            const m = col(report, 'month'), f = col(report, 'forecast'), w = col(report, 'won');
            const months = [...new Set(report.rows.map((r) => r[m]))].sort();
            const sum = (i) => months.map((mo) => report.rows.filter((r) => r[m] === mo)
                .reduce((a, r) => a + num(r[i]), 0));
            return {type: 'bar', data: {labels: months, datasets: [
                {label: t('analytics.forecast.weighted'), backgroundColor: COLOURS[0], data: sum(f)},
                {label: t('analytics.forecast.won'), backgroundColor: COLOURS[1], data: sum(w)}]}};
        },
    };

    // Cohorts: a table whose cells are coloured by class heat-0 … heat-10 (the share of the
    // largest value), so the CSP's ban on inline style holds.
    function heatmap(report) {
        const first = col(report, 'customers') + 1;
        let max = 0;
        for (const r of report.rows)
            for (const v of r.slice(first))
                max = Math.max(max, num(v));
        const revenue = report.measure === 'revenue';
        return el('table', {class: 'heatmap', id: 'analytics-heatmap'},
            el('thead', {}, el('tr', {}, report.columns.map((c) => el('th', {text: c})))),
            el('tbody', {}, report.rows.map((r) => el('tr', {},
                r.map((v, i) => {
                    if (i < first)
                        return el('td', {text: i === first - 1 ? I18n.number(num(v)) : String(v)});
                    if (v === null || v === undefined)
                        return el('td', {class: 'heat-none', text: ''});
                    const level = max > 0 ? Math.round(num(v) / max * 10) : 0;
                    return el('td', {class: 'num heat-' + level, title: String(v),
                                     text: revenue ? I18n.number(num(v), 2)
                                                   : I18n.number(num(v) * 100, 0) + '%'});
                })))));
    }

    async function render(view, args) {
        const kind = KINDS.includes(args[0]) ? args[0] : 'rfm';
        if (chart) {
            chart.destroy();
            chart = null;
        }
        view.append(el('h1', {text: t('analytics.title')}),
                    el('nav', {class: 'analytics-tabs', 'aria-label': t('analytics.title')},
                       KINDS.map((k) => el('a', {href: '#analytics/' + k, text: t('analytics.' + k),
                                                 'aria-current': k === kind ? 'page' : null}))));
        const body = el('div', {class: 'analytics-body', id: 'analytics-body'},
                        el('p', {class: 'muted', text: t('loading')}));
        view.append(body);
        const r = await Rapport.call('GET', '/api/v1/plugins/analytical/' + kind);
        if (r.status !== 200) {
            body.replaceChildren(el('p', {class: 'error', role: 'alert',
                                          text: r.status === 404 ? t('analytics.absent')
                                                                 : Console.problem(r)}));
            return;
        }
        const report = r.data;
        body.replaceChildren(el('p', {}, download(kind, report)));
        if (!report.rows || report.rows.length === 0) {
            body.append(el('p', {class: 'muted', text: t('analytics.empty')}));
            return;
        }
        if (kind === 'cohorts') {
            body.append(heatmap(report));
            return;
        }
        const canvas = el('canvas', {id: 'analytics-chart', role: 'img',
                                     'aria-label': t('analytics.' + kind)});
        body.append(el('div', {class: 'analytics-chart'}, canvas), table(report));
        try {
            await draw(canvas, specs[kind](report));
        } catch (e) {
            body.prepend(el('p', {class: 'error', role: 'alert', text: String(e.message || e)}));
        }
    }

    Console.page('analytics', {label: 'nav.analytics', order: 60, render});
})();

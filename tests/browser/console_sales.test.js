// console_sales.test.js — the console's sales pages in headless chromium. The pipeline board
// shows the default pipeline's six stages with each column's total and weighted total; a deal
// dragged to "won" is stored won and its card shows the onboarding tasks the default rule made;
// a deal changed elsewhere since the board loaded, dragged, comes back to its column with the
// conflict's message (and moves with the card's stage menu, the keyboard's way, once read
// again). A customer's page shows the contact, 50 timeline entries then older ones, the open
// deal, the ticket's SLA clocks ticking, the order and the analytical values; its render time
// after the API answered is measured and printed. The analytics pages draw their charts with
// data (a heatmap table for cohorts), and each CSV download is checked against the API's
// report, a name holding a comma and quotes escaped. A user whose role cannot read deals sees
// the API's refusal on the board and in the customer page's deals, the rest working. At a
// tablet's 800 px the board scrolls in itself and the customer page is one column; in Persian
// the board runs right to left. Without the analytical plugin (its routes made to answer 404
// in the browser) both pages say it is not loaded. No script error, CSP violation, failed request or unexpected
// HTTP error on any page.
'use strict';
const {chromium} = require('playwright-core');
const {execFileSync} = require('child_process');
const fs = require('fs');

const base = process.env.RP_URL;
const rapport = process.env.RAPPORT || 'build/rapport';
const {check, finish, run, until} = require('./lib');

function seed() {
    const out = run('eval', `
local s = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org"})
local o = crm.create("contact", {first_name = 'Omid "O"', last_name = "Other, Jr", email = "omid@example.org"})
for i = 1, 50 do
  crm.collaborative.log({channel = "phone", direction = "in", external_id = "call-" .. i,
                         subject = "Call " .. i, body = "We talked about item " .. i},
                        {{"contact", s.id}})
end
local acme = crm.create("deal", {name = "Acme renewal", amount = "1200.00", contact = s.id})
local beta = crm.create("deal", {name = "Beta upgrade", amount = "300.00", contact = s.id,
                                 expected_close = "2027-01-15"})
crm.update("deal", beta.id, {stage = "proposal"})
crm.create("ticket", {subject = "Kettle whistles", contact = s.id, priority = "high"})
crm.create("order", {contact = s.id, currency = "EUR"})
local function buy(c, at, amount, ref)
  crm.create("purchase", {customer = c, at = at, amount = amount, ref = ref})
end
buy(s.id, "2026-01-10T10:00:00Z", "120.00", "a1")
buy(s.id, "2026-03-05T10:00:00Z", "80.00", "a2")
buy(o.id, "2026-02-02T10:00:00Z", "40.00", "b1")
return table.concat({s.id, o.id, acme.id, beta.id}, " ")`);
    const [sara, omid, acme, beta] = out.trim().split(' ');
    return {sara, omid, acme, beta};
}

const dealOf = (id) => JSON.parse(run('eval', `return crm.get("deal", ${id})`));

async function signIn(page, user, password) {
    await page.goto(base + '/console/');
    await page.waitForSelector('#signin:not([hidden])');
    await page.fill('#user', user);
    await page.fill('#password', password);
    await page.click('#signin-button');
    await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});
}

// A page that records script errors, console errors, CSP violations, failed requests and every
// HTTP answer of 400 or more (the test says which ones it expects).
async function watched(browser) {
    const context = await browser.newContext({acceptDownloads: true});
    await context.addInitScript(() => {
        window.__csp = [];
        document.addEventListener('securitypolicyviolation',
            (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
    });
    const page = await context.newPage();
    const w = {page, context, errors: [], failed: [], bad: []};
    page.on('pageerror', (e) => w.errors.push(String(e)));
    page.on('console', (m) => {
        // The browser logs each 4xx answer; those are checked through w.bad instead.
        if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()))
            w.errors.push(m.text());
    });
    page.on('requestfailed', (r) => w.failed.push(r.url() + ' ' + (r.failure() || {}).errorText));
    page.on('response', (r) => {
        // Before signing in, the console asks who is signed in: 401 is its answer, not an error.
        if (r.status() >= 400 && !(r.status() === 401 && r.url().endsWith('/api/v1/auth/me')))
            w.bad.push(r.request().method() + ' ' + new URL(r.url()).pathname + ' ' + r.status());
    });
    return w;
}

// Follows a link inside the console (the same document, so its CSP record holds): resolves once
// the router has taken the new fragment.
async function go(page, hash) {
    await page.evaluate((h) => new Promise((done) => {
        window.addEventListener('hashchange', () => setTimeout(done, 0), {once: true});
        location.hash = h;
    }), hash);
}

async function board(page) {
    return page.evaluate(() => [...document.querySelectorAll('.pipeline-column')].map((c) => ({
        stage: c.dataset.stage,
        cards: [...c.querySelectorAll('.pipeline-card')].map((k) => k.dataset.id),
        total: c.querySelector('.total').textContent,
        weighted: c.querySelector('.weighted').textContent,
    })));
}

async function pipeline(w, ids) {
    const {page} = w;
    await go(page, '#pipeline');
    await page.waitForSelector('.pipeline-card');
    let cols = await board(page);
    check(cols.map((c) => c.stage).join(',') === 'new,qualified,proposal,negotiation,won,lost',
          'the board has the default pipeline\'s stages as columns', cols.map((c) => c.stage));
    const col = (name) => cols.find((c) => c.stage === name);
    check(col('new').cards.includes(ids.acme) && col('proposal').cards.includes(ids.beta),
          'each deal is in its stage\'s column', cols);
    check(col('new').total.includes('1,200.00') && col('new').weighted.includes('120.00'),
          'a column totals its deals and weighs them by the stage\'s probability (10 %)', col('new'));
    check(col('proposal').weighted.includes('150.00'), 'proposal weighs 300.00 at 50 %',
          col('proposal'));

    // Drag Acme to "won": stored won, the onboarding rule's tasks on its card.
    await page.dragAndDrop(`.pipeline-card[data-id="${ids.acme}"]`,
                           '.pipeline-column[data-stage="won"]');
    await page.waitForSelector(`.pipeline-column[data-stage="won"] .pipeline-card[data-id="${ids.acme}"] .pipeline-tasks li`,
                               {timeout: 10000});
    check(dealOf(ids.acme).stage === 'won', 'the dragged deal is stored won', dealOf(ids.acme).stage);
    const tasks = await page.$$eval(`.pipeline-card[data-id="${ids.acme}"] .pipeline-tasks li`,
                                    (l) => l.map((e) => e.textContent));
    check(tasks.length === 3 && tasks.some((x) => x.startsWith('Onboarding: Welcome call')),
          'the won deal\'s card shows the onboarding tasks the default rule made', tasks);
    cols = await board(page);
    check(col('won').total.includes('1,200.00') && col('new').cards.length === 0 &&
          col('won').weighted.includes('1,200.00'),
          'the totals follow the move (won weighs 100 %)', [col('new'), col('won')]);

    // Someone else changes Beta: the drag is refused with 412 and the card comes back.
    run('eval', `crm.update("deal", ${ids.beta}, {amount = "350.00"})`);
    await page.dragAndDrop(`.pipeline-card[data-id="${ids.beta}"]`,
                           '.pipeline-column[data-stage="negotiation"]');
    await page.waitForSelector(`.pipeline-card[data-id="${ids.beta}"].refused`);
    cols = await board(page);
    const msg = await page.textContent(`.pipeline-card[data-id="${ids.beta}"] .pipeline-message`);
    check(col('proposal').cards.includes(ids.beta) && !col('negotiation').cards.includes(ids.beta),
          'a refused move puts the card back in its column', cols);
    check(msg.includes('was changed by') && msg.includes('Beta upgrade'),
          'the card says it was changed since the board was opened', msg);
    check(dealOf(ids.beta).stage === 'proposal', 'the conflicting move stored nothing');
    check(w.bad.includes(`PATCH /api/v1/deal/${ids.beta} 412`), 'the API answered 412', w.bad);

    // The keyboard's way: the card's stage menu, now with the version read again.
    await page.selectOption(`.pipeline-card[data-id="${ids.beta}"] select`, 'negotiation');
    await page.waitForSelector(`.pipeline-column[data-stage="negotiation"] .pipeline-card[data-id="${ids.beta}"]`);
    check(dealOf(ids.beta).stage === 'negotiation' && dealOf(ids.beta).amount === '350.00',
          'the stage menu moves the deal, keeping the other change', dealOf(ids.beta));
}

async function customer(w, ids) {
    const {page} = w;
    await go(page, '#customer/' + ids.sara);
    await page.waitForSelector('#customer-timeline[data-count]');
    const tl = await page.$eval('#customer-timeline', (l) => ({
        count: Number(l.dataset.count), ms: Number(l.dataset.renderMs),
        first: l.querySelector('.timeline-subject').textContent}));
    check(tl.count === 50, 'the customer page shows a page of 50 timeline entries', tl);
    check(Number.isFinite(tl.ms) && tl.ms >= 0, 'the timeline records how long it took to draw', tl.ms);
    console.log(`MEASURE customer page: 50 timeline entries rendered ${tl.ms.toFixed(1)} ms after the API answered`);
    const h1 = await page.textContent('#view h1');
    check(h1 === 'Sara Ahmadi', 'the page is the contact\'s', h1);
    const record = await page.textContent('#customer-record');
    check(record.includes('sara@example.org'), 'the contact record is shown', record);
    await page.click('#timeline-more');
    await page.waitForFunction(() => Number(document.getElementById('customer-timeline').dataset.count) > 50);
    const subjects = await page.$$eval('#customer-timeline .timeline-subject', (l) => l.map((e) => e.textContent));
    check(subjects.includes('Call 1') && subjects.includes('Call 50'),
          'older entries load on demand: every call is there', subjects.length);

    const deals = await page.textContent('#customer-deals');
    check(deals.includes('Beta upgrade') && !deals.includes('Acme renewal'),
          'the open deals are shown, the won one not', deals);
    const clock1 = await page.textContent('#customer-tickets .sla-clock');
    check(/\d+ h .* left/.test(clock1), 'the ticket\'s first-response clock shows the time left', clock1);
    await page.waitForFunction((c) => document.querySelector('#customer-tickets .sla-clock').textContent !== c,
                               clock1, {timeout: 3000});
    check(true, 'the SLA clock ticks');
    check((await page.textContent('#customer-orders')).includes('€'), 'the order is shown');
    await page.waitForSelector('#customer-analytics');
    check((await page.textContent('#customer-analytics')).includes('RFM segment'),
          'the analytical plugin\'s values have their section');
    return tl.ms;
}

async function analytics(w, ids) {
    const {page} = w;
    const api = async (kind) => page.evaluate(async (k) =>
        (await Rapport.call('GET', '/api/v1/plugins/analytical/' + k)).data, kind);
    const csvLine = (r) => r.map((v) => {
        if (v === null || v === undefined) return '';
        const s = String(v);
        return /[",\r\n]|^\s|\s$/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }).join(',');
    for (const kind of ['rfm', 'pareto', 'forecast', 'cohorts']) {
        await go(page, '#analytics/' + kind);
        await page.waitForSelector('#analytics-csv');
        if (kind === 'cohorts') {
            const cells = await page.$$eval('#analytics-heatmap td[class*="heat-"]', (l) => l.length);
            check(cells > 0, 'the cohorts heatmap has coloured cells', cells);
        } else {
            await page.waitForFunction(() => window.Chart && Chart.getChart('analytics-chart'));
            const sum = await page.evaluate(() => Chart.getChart('analytics-chart').data.datasets
                .reduce((a, d) => a + d.data.reduce((b, v) => b + (typeof v === 'number' ? v : v.y), 0), 0));
            check(sum > 0, `the ${kind} chart is drawn with data`, sum);
        }
        const [download] = await Promise.all([page.waitForEvent('download'),
                                              page.click('#analytics-csv')]);
        const text = fs.readFileSync(await download.path(), 'utf8');
        const report = await api(kind);
        const expect = [csvLine(report.columns), ...report.rows.map(csvLine)].join('\r\n') + '\r\n';
        check(download.suggestedFilename() === kind + '.csv' && text === expect,
              `the ${kind} CSV is the API's report`, {text, expect});
        if (kind === 'pareto')
            check(text.includes('"Omid ""O"" Other, Jr"'), 'a name with a comma and quotes is escaped',
                  text);
    }
}

// On a tablet (800 px) the board scrolls inside itself and the customer page is one column; in
// Persian the board runs right to left.
async function layout(w, ids) {
    const {page} = w;
    await page.setViewportSize({width: 800, height: 1000});
    await go(page, '#pipeline');
    await page.waitForSelector('.pipeline-card');
    const fit = await page.evaluate(() => ({page: document.documentElement.scrollWidth,
        board: document.getElementById('pipeline-board').scrollWidth,
        seen: document.getElementById('pipeline-board').clientWidth}));
    check(fit.page <= 800 && fit.board > fit.seen,
          'at 800 px the page fits and the board scrolls in itself', fit);
    await page.selectOption('#lang', 'fa');
    await page.waitForFunction(() => document.documentElement.dir === 'rtl' &&
                               document.querySelector('#view h1').textContent === 'قیف فروش');
    await page.waitForSelector('.pipeline-card');
    const xs = await page.$$eval('.pipeline-column', (l) => l.map((c) => c.getBoundingClientRect().left));
    check(xs[0] > xs[1], 'in Persian the first stage is on the right', xs);
    await go(page, '#customer/' + ids.sara);
    await page.waitForSelector('#customer-timeline[data-count]');
    const cols = await page.evaluate(() => ['customer-record', 'customer-analytics-section']
        .map((id) => document.getElementById(id).getBoundingClientRect().left));
    check(cols[0] === cols[1], 'at 800 px the customer page is one column', cols);
    const clock = await page.textContent('#customer-tickets .sla-clock');
    check(clock.includes('مانده'), 'the SLA clock in Persian', clock);
    await page.selectOption('#lang', 'en');
    await page.waitForFunction(() => document.documentElement.dir === 'ltr');
    await page.setViewportSize({width: 1280, height: 800});
}

async function restricted(browser, ids) {
    run('roles', 'set', 'support', JSON.stringify({entities: {
        contact: {read: 'all'}, ticket: {read: 'all'}, order: {read: 'all'},
        interaction: {read: 'all'}, interaction_link: {read: 'all'}}}));
    execFileSync(rapport, ['users', 'add', 'sam', '--role', 'support', '--password-stdin'],
                 {input: 'sam password 12\n'});
    const w = await watched(browser);
    const {page} = w;
    await signIn(page, 'sam', 'sam password 12');
    await go(page, '#pipeline');
    await page.waitForSelector('#view .error');
    const refusal = await page.textContent('#view .error');
    check(w.bad.includes('GET /api/v1/deal 403') &&
          /deal/.test(refusal) && !(await page.$('.pipeline-card')),
          'a role that cannot read deals sees the API\'s refusal on the board', [refusal, w.bad]);
    await go(page, '#customer/' + ids.sara);
    await page.waitForSelector('#customer-deals .error');
    await page.waitForSelector('#customer-timeline[data-count]');
    check((await page.textContent('#customer-tickets')).includes('Kettle whistles'),
          'the rest of the customer page still works for that role');
    check((await page.textContent('#customer-deals .error')).includes('deal'),
          'the deals section shows the API\'s refusal', await page.textContent('#customer-deals'));
    const csp = await page.evaluate(() => window.__csp);
    check(w.errors.length === 0 && w.failed.length === 0 && csp.length === 0 &&
          w.bad.every((b) => b.endsWith(' 403')),
          'the restricted user\'s pages: no error but the refusals', [w.errors, w.failed, csp, w.bad]);
    await w.context.close();
}

// Without the analytical plugin (simulated in the browser: its routes answer 404 as the server
// does for a path it does not serve, and the OpenAPI document lacks them), the customer page's
// section and the analytics page say so, with no script error.
async function absent(browser, ids) {
    const w = await watched(browser);
    const {page, context} = w;
    await context.route('**/openapi.json', async (route) => {
        const res = await route.fetch();
        const doc = await res.json();
        for (const p of Object.keys(doc.paths))
            if (p.startsWith('/api/v1/plugins/analytical/'))
                delete doc.paths[p];
        await route.fulfill({response: res, json: doc});
    });
    await context.route('**/api/v1/plugins/analytical/**', (route) => route.fulfill({
        status: 404, contentType: 'application/problem+json',
        body: JSON.stringify({type: 'about:blank', title: 'Not Found', status: 404,
                              detail: 'no such path'})}));
    await signIn(page, 'ana', 'a long password');
    await go(page, '#customer/' + ids.sara);
    await page.waitForSelector('#customer-no-analytics');
    check((await page.textContent('#customer-no-analytics')).includes('not loaded'),
          'without the analytical plugin the customer page says so');
    await go(page, '#analytics/rfm');
    await page.waitForSelector('#analytics-body .error');
    check((await page.textContent('#analytics-body .error')).includes('analytical plugin is not loaded'),
          'and so does the analytics page');
    check(w.errors.length === 0 && w.failed.length === 0, 'no error without the plugin',
          [w.errors, w.failed]);
    await context.close();
}

async function main() {
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        const ids = seed();
        const w = await watched(browser);
        await signIn(w.page, 'ana', 'a long password');
        await pipeline(w, ids);
        await customer(w, ids);
        await analytics(w, ids);
        await layout(w, ids);
        const csp = await w.page.evaluate(() => window.__csp);
        check(w.errors.length === 0, 'no script or console error', w.errors);
        check(csp.length === 0, 'no CSP violation (Chart.js included)', csp);
        check(w.failed.length === 0, 'no failed request', w.failed);
        check(w.bad.length === 1, 'no HTTP error but the expected 412', w.bad);
        await w.context.close();
        await restricted(browser, ids);
        await absent(browser, ids);
    } finally {
        await browser.close();
    }
    finish();
}

main().catch((e) => {
    console.error('FAIL: ' + (e && e.stack ? e.stack : e));
    process.exit(1);
});

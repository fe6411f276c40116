// console_records.test.js — the console's records pages in headless chromium. Ana (admin)
// picks contacts from the entities; a new contact with a bad email shows the store's refusal
// beside the email field and stores nothing (counted through the API), a good one opens its
// page; an edit made while another user (Bea, through the API with her token) changed the
// record shows "changed by user:bea since you opened it", and Reload shows Bea's value; delete
// and restore, from the record and from the list's deleted ones. The list: 50 a page, Next and
// Previous by the API's cursor, sort by a column, a filter typed by the field, columns chosen
// and kept after a reload; a field added with `rapport add-field` appears on reload, as a column
// and in the form. Search from the bar: the words found become <mark> elements, and a name
// holding markup stays text. Keyboard: / goes to the search box, j/k move in the list, Enter
// opens, Esc goes back. Kim, whose role hides contact.email, never sees it: not on the list,
// its column chooser, the record page, the edit form or in search results. No console error,
// no CSP violation, no failed request. Measures the list of 50's drawing after the API
// answered (performance.now() around it in records.js, layout included), with the default
// columns and with all of them, and prints both.
'use strict';
const {chromium} = require('playwright-core');

const base = process.env.RP_URL;
const {check, run, runMain} = require('./lib');
const {execFileSync} = require('child_process');

const addUser = (name, role, password) =>
    execFileSync(process.env.RAPPORT || 'build/rapport',
                 ['users', 'add', name, '--role', role, '--password-stdin'],
                 {input: password, encoding: 'utf8'});

function seed() {
    run('roles', 'set', 'clerk', JSON.stringify({
        entities: {contact: {read: 'all', create: true, update: 'all'}},
        fields: {'contact.email': 'hidden'}}));
    addUser('kim', 'clerk', 'kim staff password');
    addUser('bea', 'admin', 'bea long password');
    const out = run('eval', `
for i = 1, 119 do
  crm.create("contact", {first_name = "Filler", last_name = string.format("Person%03d", i),
                         email = string.format("p%03d@example.org", i)})
end
local h = crm.create("contact", {first_name = "Hilda", last_name = "Quokkason",
                                 email = "secretmailbox@hidden.example"})
return tostring(h.id)`);
    return {hilda: out.trim()};
}

async function main() {
    const ids = seed();
    const bea = run('tokens', 'create', '--user', 'bea').trim().split('\n').pop();
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    const problems = [];
    const watch = async (context) => {
        await context.addInitScript(() => {
            window.__csp = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
        });
        const page = await context.newPage();
        page.on('requestfailed', (r) => problems.push('failed ' + r.url()));
        page.on('pageerror', (e) => problems.push('script ' + e));
        page.on('console', (m) => {
            if (m.type() !== 'error')
                return;
            // The browser's own line for an answer the test asks for: signed out (401 from
            // /auth/me at load), the refused email (422), the conflict (412).
            const url = (m.location() || {}).url || '';
            if (/status of 401/.test(m.text()) && url.endsWith('/api/v1/auth/me'))
                return;
            if (/status of (412|422)/.test(m.text()))
                return;
            // The frame has no icon (web/console/index.html, not these pages'): the browser's
            // own guess at /favicon.ico is a 404.
            if (url.endsWith('/favicon.ico'))
                return;
            problems.push('console ' + m.text() + ' ' + url);
        });
        return page;
    };
    const signIn = async (page, user, password) => {
        await page.goto(base + '/console/');
        await page.waitForSelector('#signin:not([hidden])');
        await page.fill('#user', user);
        await page.fill('#password', password);
        await page.click('#signin-button');
        await page.waitForSelector('#signed-in:not([hidden])');
    };
    const api = (page, method, path, body, headers) =>
        page.evaluate(([m, p, b, h]) => Rapport.call(m, p, b === null ? undefined : b, h),
                      [method, path, body === undefined ? null : body, headers || {}]);
    const text = (page, sel) => page.textContent(sel);
    const pageIs = (page, n) => page.waitForFunction(
        (k) => ((document.getElementById('page-no') || {}).textContent || '').endsWith(' ' + k), n);
    const rowIds = (page) => page.$$eval('#records-list tbody tr', (rs) => rs.map((r) => r.dataset.id));

    try {
        const context = await browser.newContext({viewport: {width: 1280, height: 800}});
        const page = await watch(context);
        await signIn(page, 'ana', 'a long password');

        // The picker: contacts among the entities; its link opens the list.
        await page.click('#nav a[data-page="records"]');
        await page.waitForSelector('#records-entities a[href="#records/contact"]');
        const entities = await page.$$eval('#records-entities a', (as) => as.map((a) => a.textContent));
        check(entities.includes('contact') && entities.includes('deal') && entities.includes('pet'),
              'the picker lists the entities', entities);
        await page.click('#records-entities a[href="#records/contact"]');
        await page.waitForSelector('#records-list tbody tr');

        // ---- paging: 120 contacts, 50 a page -------------------------------------------------
        const first = await rowIds(page);
        check(first.length === 50, 'a page holds 50 records', first.length);
        const timing = await page.evaluate(() => window.RecordsTiming);
        // The 300 ms is a figure to report, not to assert: a shared machine's load
        // moves it (344 ms was seen in CI beside other browsers); bench/ is where speed is judged.
        check(timing && timing.rows === 50 && Number.isFinite(timing.ms) && timing.ms >= 0,
              'the list of 50 records how long it took to draw', timing);
        console.log(`MEASURE list of 50 contacts drawn in ${timing.ms.toFixed(1)} ms after the API answered`);
        await page.click('#next-page');
        await pageIs(page, 2);
        const second = await rowIds(page);
        check(second.length === 50 && !second.some((id) => first.includes(id)),
              'the next page is the next 50', second.slice(0, 3));
        await page.click('#next-page');
        await pageIs(page, 3);
        const third = await rowIds(page);
        check(third.length === 20, 'the third page holds the last 20', third.length);
        check(await page.isDisabled('#next-page'), 'no next page after the last');
        await page.click('#prev-page');
        await pageIs(page, 2);
        check(JSON.stringify(await rowIds(page)) === JSON.stringify(second),
              'Previous goes back to the same page');
        await page.click('#prev-page');
        await pageIs(page, 1);

        // ---- sort by a column ----------------------------------------------------------------
        await page.click('#records-list th button[data-col="last_name"]');
        await page.waitForSelector('#records-list th[aria-sort="ascending"]');
        let names = await page.$$eval('#records-list td[data-col="last_name"]', (tds) => tds.map((t) => t.textContent));
        check(names[0] === 'Person001' && names[1] === 'Person002', 'sorted by last name', names.slice(0, 3));
        await page.click('#records-list th button[data-col="last_name"]');
        await page.waitForSelector('#records-list th[aria-sort="descending"]');
        names = await page.$$eval('#records-list td[data-col="last_name"]', (tds) => tds.map((t) => t.textContent));
        check(names[0] === 'Quokkason' && names[1] === 'Person119', 'and the other way', names.slice(0, 3));

        // ---- keyboard: / to the search box, j/k in the list, Enter opens, Esc back ------------
        await page.keyboard.press('/');
        check(await page.evaluate(() => document.activeElement.id) === 'search', '/ focuses the search box');
        await page.keyboard.press('Escape');
        check(await page.evaluate(() => document.activeElement.id) !== 'search', 'Esc leaves the box');
        await page.keyboard.press('j');
        await page.keyboard.press('j');
        await page.keyboard.press('k');
        await page.keyboard.press('j');
        const sel = await page.$$eval('#records-list tbody tr', (rs) => rs.map((r) => r.getAttribute('aria-selected')));
        check(sel[1] === 'true' && sel.filter(Boolean).length === 1, 'j/k move the selection', sel.slice(0, 3));
        const second_id = (await rowIds(page))[1];
        await page.keyboard.press('Enter');
        await page.waitForSelector('#record-fields');
        check(page.url().endsWith(`#records/contact/${second_id}`), 'Enter opens the selected record', page.url());
        await page.keyboard.press('Escape');
        await page.waitForSelector('#records-list tbody tr');
        check(page.url().endsWith('#records/contact'), 'Esc goes back to the list', page.url());

        // ---- a filter typed by the field ----------------------------------------------------
        await page.selectOption('#filter-field', 'last_name');
        await page.fill('#filter-value', 'Person007');
        await page.click('#filter-form button[type="submit"]');
        await page.waitForSelector('.chip');
        await page.waitForFunction(() => document.querySelectorAll('#records-list tbody tr').length === 1);
        check((await page.textContent('#records-list td[data-col="last_name"]')) === 'Person007',
              'a filter by last name finds the one');
        await page.selectOption('#filter-field', 'do_not_contact');
        check(await page.$eval('#filter-value', (e) => e.tagName) === 'SELECT', 'a boolean filter is a choice');
        await page.click('.chip button');
        await page.waitForFunction(() => document.querySelectorAll('#records-list tbody tr').length === 50);
        check(true, 'removing the filter gives the whole list back');

        // ---- columns, kept per entity --------------------------------------------------------
        await page.click('#columns summary');
        await page.check('#columns input[data-col="city"]');
        await page.waitForSelector('#records-list th button[data-col="city"]');
        await page.click('#columns summary');
        await page.uncheck('#columns input[data-col="first_name"]');
        await page.waitForFunction(() => !document.querySelector('#records-list th button[data-col="first_name"]'));
        await page.reload();
        await page.waitForSelector('#records-list tbody tr');
        const heads = await page.$$eval('#records-list th button', (bs) => bs.map((b) => b.dataset.col));
        check(heads.includes('city') && !heads.includes('first_name'), 'the columns chosen are kept', heads);

        // The widest list: every column (some 40) of 50 contacts, measured the same way.
        const kept = await page.evaluate(() => localStorage.getItem('console.records.cols.contact'));
        await page.evaluate(() => localStorage.setItem('console.records.cols.contact', JSON.stringify(
            [...document.querySelectorAll('#columns input')].map((b) => b.dataset.col))));
        await page.reload();
        await page.waitForSelector('#records-list tbody tr');
        const wide = await page.evaluate(() => [window.RecordsTiming,
            document.querySelectorAll('#records-list thead th').length]);
        check(wide[0].rows === 50 && wide[1] > 30 && Number.isFinite(wide[0].ms),
              'the list of 50 with every column is drawn and timed', wide);
        console.log(`MEASURE list of 50 contacts with all ${wide[1]} columns drawn in ${wide[0].ms.toFixed(1)} ms`);
        await page.evaluate((k) => localStorage.setItem('console.records.cols.contact', k), kept);

        // ---- a field added by add-field appears on reload ------------------------------------
        run('add-field', 'contact', 'loyalty_tier', '{"type": "enum", "values": ["gold", "silver"]}');
        await page.reload();
        await page.waitForSelector('#records-list tbody tr');
        check(await page.$('#columns input[data-col="loyalty_tier"]') !== null,
              'the added field is a column one may choose');

        // ---- create: a bad email is refused beside its field, nothing stored ----------------
        const count = async (q) => (await api(page, 'GET', '/api/v1/contact?limit=1000&' + q)).data.data.length;
        await page.click('#new-record');
        await page.waitForSelector('#record-form');
        check(await page.$('#f-loyalty_tier option[value="gold"]') !== null, 'the added field is in the form');
        await page.fill('#f-last_name', 'Newman');
        await page.fill('#f-first_name', 'Nora');
        await page.fill('#f-email', 'not-an-email');
        await page.click('#save');
        await page.waitForFunction(() => document.getElementById('err-email').textContent !== '');
        const emailError = await text(page, '#err-email');
        check(/not an email address/.test(emailError), 'the refusal is shown beside the email field', emailError);
        check(await text(page, '#err-last_name') === '', 'and beside no other field');
        check(await count('last_name=Newman') === 0, 'the refused contact is not stored');
        await page.fill('#f-email', 'nora@example.org');
        await page.selectOption('#f-loyalty_tier', 'gold');
        await page.click('#save');
        await page.waitForSelector('#record-fields');
        const nora = page.url().split('/').pop();
        check(await count('last_name=Newman') === 1, 'the good contact is stored');
        check(await text(page, '#record-fields [data-field="email"] dd') === 'nora@example.org' &&
              await text(page, '#record-fields [data-field="loyalty_tier"] dd') === 'gold',
              'its page shows what was typed');

        // ---- a ref is a link to its record --------------------------------------------------
        const acct = await api(page, 'POST', '/api/v1/account', {name: 'Acme Linked'});
        await api(page, 'PATCH', `/api/v1/contact/${nora}`, {account: acct.data.id});
        await page.reload();
        await page.waitForSelector('#record-fields');
        await page.click('#record-fields [data-field="account"] a.ref');
        await page.waitForSelector('#record-fields [data-field="name"]');
        check(page.url().endsWith(`#records/account/${acct.data.id}`) &&
              await text(page, '#record-fields [data-field="name"] dd') === 'Acme Linked',
              'a ref opens the referenced record', page.url());

        // ---- an edit while Bea changed it: the conflict names her ---------------------------
        await page.goto(base + `/console/#records/contact/${nora}`);
        await page.waitForSelector('#edit');
        await page.click('#edit');
        await page.fill('#f-title', 'Mine');
        const other = await fetch(base + `/api/v1/contact/${nora}`, {method: 'PATCH',
            headers: {Authorization: 'Bearer ' + bea, 'Content-Type': 'application/json'},
            body: JSON.stringify({title: 'Bea was here'})});
        check(other.status === 200, 'Bea changes the record through the API', other.status);
        await page.click('#save');
        await page.waitForSelector('#conflict:not([hidden])');
        const conflict = await text(page, '#conflict-text');
        check(conflict.includes('Changed by user:bea since you opened it'), 'the conflict names who changed it', conflict);
        const stored = await api(page, 'GET', `/api/v1/contact/${nora}`);
        check(stored.data.title === 'Bea was here', 'the conflicting edit stored nothing', stored.data.title);
        await page.click('#reload');
        await page.waitForSelector('#conflict', {state: 'hidden'});
        check(await text(page, '#record-fields [data-field="title"] dd') === 'Bea was here',
              'Reload shows the record as it is now');
        await page.click('#edit');
        await page.fill('#f-title', 'Mine now');
        await page.click('#save');
        await page.waitForSelector('#record-fields');
        check(await text(page, '#record-fields [data-field="title"] dd') === 'Mine now' &&
              (await api(page, 'GET', `/api/v1/contact/${nora}`)).data.title === 'Mine now',
              'after the reload the edit goes through');

        // ---- delete and restore -------------------------------------------------------------
        await page.click('#delete');
        await page.click('#delete');
        await page.waitForSelector('#deleted-note');
        check(await count('last_name=Newman') === 0, 'deleted: the list no longer has it');
        await page.click('#restore');
        await page.waitForSelector('#edit');
        check(await count('last_name=Newman') === 1, 'restored from its page');
        await api(page, 'DELETE', `/api/v1/contact/${nora}`);
        await page.goto(base + '/console/#records/contact');
        await page.waitForSelector('#records-list tbody tr');
        await page.check('#show-deleted');
        await page.waitForSelector('#records-list button.restore');
        check(JSON.stringify(await rowIds(page)) === JSON.stringify([nora]), 'the deleted ones list it alone');
        await page.click('#records-list button.restore');
        await page.waitForFunction(() => !document.querySelector('#records-list button.restore'));
        check(await count('last_name=Newman') === 1, 'restored from the list of deleted ones');
        await page.uncheck('#show-deleted');

        // ---- search with marks, markup kept as text ----------------------------------------
        await api(page, 'POST', '/api/v1/contact', {last_name: '<img src=x id=evil>Zanzibarian', first_name: 'Odd'});
        await page.fill('#search', 'Zanzibarian');
        await page.press('#search', 'Enter');
        await page.waitForSelector('#search-results li');
        const marks = await page.$$eval('#search-results mark', (ms) => ms.map((m) => m.textContent));
        check(marks.some((m) => m.includes('Zanzibarian')), 'the word found is a <mark>', marks);
        check(await page.$('#search-results img, #evil') === null &&
              (await text(page, '#search-results')).includes('<img src=x id=evil>'),
              'markup in a record is shown as text');
        await page.keyboard.press('j');
        await page.keyboard.press('Enter');
        await page.waitForSelector('#record-fields');
        check(/#records\/contact\/\d+$/.test(page.url()), 'Enter opens a search result', page.url());

        // ---- Persian: right to left ---------------------------------------------------------
        await page.selectOption('#lang', 'fa');
        await page.waitForFunction(() => document.documentElement.dir === 'rtl');
        check(await page.textContent('#nav a[data-page="records"]') === 'رکوردها', 'the nav in Persian');
        await page.selectOption('#lang', 'en');
        await page.waitForFunction(() => document.documentElement.dir === 'ltr');

        // ---- a role that hides a field never shows it --------------------------------------
        const kimContext = await browser.newContext({viewport: {width: 800, height: 1000}});
        const kp = await watch(kimContext);
        await signIn(kp, 'kim', 'kim staff password');
        await kp.goto(base + '/console/#records/contact');
        await kp.waitForSelector('#records-list tbody tr');
        const kimCols = await kp.$$eval('#columns input', (bs) => bs.map((b) => b.dataset.col));
        check(kimCols.length > 5 && !kimCols.includes('email'), 'no email column to choose', kimCols);
        const kimFilter = await kp.$$eval('#filter-field option', (os) => os.map((o) => o.value));
        check(!kimFilter.includes('email'), 'no email to filter by');
        check(!(await kp.textContent('#view')).includes('@'), 'no address on the list');
        await kp.goto(base + `/console/#records/contact/${ids.hilda}`);
        await kp.waitForSelector('#record-fields');
        check(await kp.$('#record-fields [data-field="email"]') === null &&
              !(await kp.textContent('#view')).includes('secretmailbox'),
              'the record page has no email');
        check(await kp.$('#delete') === null, 'no delete for a role without it');
        await kp.click('#edit');
        await kp.waitForSelector('#record-form');
        check(await kp.$('#f-email') === null && await kp.$('#f-last_name') !== null,
              'the edit form has no email field');
        await kp.fill('#search', 'Quokkason');
        await kp.press('#search', 'Enter');
        await kp.waitForSelector('#search-results li');
        check(!(await kp.textContent('#search-results')).includes('secretmailbox'),
              'a search result shows no email', await kp.textContent('#search-results'));
        await kp.goto(base + '/console/#search/secretmailbox');
        await kp.waitForSelector('#search-none');
        check(true, 'the hidden email finds nothing');
        const kimRaw = await api(kp, 'GET', `/api/v1/contact/${ids.hilda}`);
        check(kimRaw.status === 200 && !('email' in kimRaw.data), 'the API itself leaves it out');

        for (const p of [page, kp]) {
            const v = await p.evaluate(() => window.__csp);
            check(v.length === 0, 'no CSP violation', v);
        }
        check(problems.length === 0, 'no console error, script error or failed request', problems);
        await kimContext.close();
    } finally {
        await browser.close();
    }
}

runMain(main);

// portal_orders.test.js — an order's tracking and the portal's search in headless chromium.
// Sara's order moves placed → paid → shipped with a carrier and a tracking URL; signed in
// through the mailed link (aiosmtpd), she opens it and sees the three steps with their times
// and the carrier's page as a link (an order whose tracking address is not http(s) shows it as
// text, never a link); the search box finds her ticket (by a word of its description) and a
// help article, and none of Omid's (the other customer's) records; in Persian, the status as
// the page names it finds the shipped order. No CSP violation and no
// script error on any page.
'use strict';
const {chromium} = require('playwright-core');
const path = require('path');

const base = process.env.RP_URL;
const mbox = path.join(process.env.RP_TMP, 'mbox');
const {check, run, freePort, until, tokenInMail, shot, runMain, smtpStart} = require('./lib');

function seed() {
    const out = run('eval', `
local s = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org"})
local o = crm.create("contact", {first_name = "Omid", last_name = "Other", email = "omid@example.org"})
local so = crm.create("order", {contact = s.id, currency = "EUR"})
crm.create("order_line", {order = so.id, description = "Kettle", unit_price = "40.00"})
crm.update("order", so.id, {status = "paid"})
crm.update("order", so.id, {status = "shipped", carrier = "Post Express", tracking_number = "PX123",
  tracking_url = "https://track.example/PX123"})
local odd = crm.create("order", {contact = s.id, tracking_url = "ftp://files.example/x"})
local oo = crm.create("order", {contact = o.id, tracking_number = "OMID999"})
local t = crm.create("ticket", {subject = "Kettle whistles", description = "a loud kettlezz", contact = s.id})
crm.create("ticket", {subject = "Omid kettlezz", contact = o.id})
crm.create("article", {title = "Descaling a kettle", slug = "descale", language = "en", published = true,
  body = "Use vinegar on the kettlezz."})
return table.concat({s.id, o.id, so.id, odd.id, oo.id, t.id}, " ")`);
    const [sara, omid, order, odd, omidOrder, ticket] = out.trim().split(' ');
    return {sara, omid, order, odd, omidOrder, ticket};
}

async function main() {
    const port = await freePort();
    const smtp = smtpStart(port, mbox);
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        run('config', 'set', 'mail.smtp.url', JSON.stringify(`smtp://127.0.0.1:${port}`));
        run('config', 'set', 'mail.from', '"Support <support@example.com>"');
        run('config', 'set', 'plugin.portal.url', JSON.stringify(base));
        const ids = seed();
        run('portal', 'grant', ids.sara);
        run('portal', 'grant', ids.omid);

        const context = await browser.newContext();
        await context.addInitScript(() => {
            window.__csp = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
        });
        const page = await context.newPage();
        const pageErrors = [], consoleErrors = [];
        page.on('pageerror', (e) => pageErrors.push(String(e)));
        page.on('console', (m) => {
            if (m.type() === 'error' || /Content Security Policy/i.test(m.text()))
                consoleErrors.push(m.text());
        });
        const clean = async (where) => {
            const v = await page.evaluate(() => window.__csp);
            check(v.length === 0, 'no CSP violation ' + where, v);
            check(consoleErrors.length === 0 && pageErrors.length === 0,
                  'no console or script error ' + where, consoleErrors.concat(pageErrors));
        };

        await page.goto(base + '/portal/');
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        await page.fill('#link-email', 'sara@example.org');
        await page.click('#link-button');
        const token = await until('the mail', () => tokenInMail(mbox));
        await page.goto(base + '/portal/#token=' + token);
        await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});
        await page.waitForSelector('#orders:not([hidden]) #orders-table tbody tr', {timeout: 5000});
        // Before signing in, GET auth/me answers 401 (and the browser asks for a favicon): the
        // console's resource errors count from here.
        consoleErrors.length = 0;

        // ---- the order's history and tracking ----
        await page.click(`#orders-table a[href="#order/${ids.order}"]`);
        await page.waitForSelector('#order:not([hidden]) #order-history li', {timeout: 5000});
        await page.waitForFunction(() => document.querySelectorAll('#order-history li').length === 3);
        await shot(page, 'order-history');
        const steps = await page.$$eval('#order-history li', (lis) => lis.map((li) => ({
            status: li.dataset.status, label: li.querySelector('strong').textContent,
            at: li.querySelector('time').getAttribute('datetime'),
            shown: li.querySelector('time').textContent})));
        check(JSON.stringify(steps.map((s) => s.status)) === '["placed","paid","shipped"]',
              'the history: placed, paid, shipped', steps);
        check(steps.map((s) => s.label).join() === 'Placed,Paid,Shipped', 'the steps\' names', steps);
        check(steps.every((s) => /^\d{4}-\d\d-\d\dT/.test(s.at) && s.shown && s.shown !== '—'),
              'each step with its time', steps);
        const link = await page.$('#order-tracking-link a');
        check(link !== null, 'the tracking URL is a link');
        if (link) {
            check(await link.getAttribute('href') === 'https://track.example/PX123', 'the link goes to the carrier',
                  await link.getAttribute('href'));
            check(await link.getAttribute('rel') === 'noopener noreferrer', 'the link leaks no referrer');
        }
        check(await page.textContent('#order-carrier') === 'Post Express', 'the carrier');
        check(await page.textContent('#order-tracking-number') === 'PX123', 'the tracking number');
        await clean('on the order');

        // An address that is not http(s) is shown, never followed.
        await page.goto(base + '/portal/#order/' + ids.odd);
        await page.waitForFunction(() => document.getElementById('order-tracking-link').textContent ===
                                   'ftp://files.example/x');
        check(await page.$('#order-tracking-link a') === null, 'an ftp: address is not a link');
        check((await page.textContent('#order-title')).includes(ids.odd), 'the other order\'s page');
        await page.waitForFunction(() => document.querySelectorAll('#order-history li').length === 1);
        check(await page.$eval('#order-history li', (li) => li.dataset.status) === 'placed', 'a new order\'s one step');

        // ---- search ----
        await page.click('#tabs a[data-tab="search"]');
        await page.waitForSelector('#search:not([hidden])', {timeout: 5000});
        await page.fill('#search-q', 'kettlezz');
        await page.click('#search-button');
        await page.waitForSelector('#search-group-tickets:not([hidden]) li', {timeout: 5000});
        await page.waitForSelector('#search-group-articles:not([hidden]) li', {timeout: 5000});
        await shot(page, 'search');
        const tickets = await page.$$eval('#search-tickets a', (as) => as.map((a) => [a.getAttribute('href'), a.textContent]));
        check(JSON.stringify(tickets) === JSON.stringify([['#ticket/' + ids.ticket, 'Kettle whistles']]),
              'the search finds her ticket only', tickets);
        const articles = await page.$$eval('#search-articles a', (as) => as.map((a) => [a.getAttribute('href'), a.textContent]));
        check(JSON.stringify(articles) === JSON.stringify([['#article/descale', 'Descaling a kettle']]),
              'the search finds the article', articles);
        check(!(await page.textContent('#search')).includes('Omid'), 'nothing of the other customer');
        check(page.url().endsWith('#search/kettlezz'), 'the results have an address', page.url());
        await page.click('#search-articles a');
        await page.waitForSelector('#article:not([hidden])', {timeout: 5000});
        check(await page.textContent('#article-title') === 'Descaling a kettle', 'a result opens its page');
        // The other customer's tracking number finds nothing.
        await page.goto(base + '/portal/#search/OMID999');
        await page.waitForSelector('#search-none:not([hidden])', {timeout: 5000});
        check(await page.$$eval('#search li', (lis) => lis.length) === 0, 'another\'s order by its tracking number');
        // In Persian, an order's status as the page names it finds it.
        await page.selectOption('#lang', 'fa');
        await page.waitForFunction(() => document.documentElement.dir === 'rtl');
        await page.goto(base + '/portal/#search/' + encodeURIComponent('ارسال شده'));
        await page.waitForSelector('#search-group-orders:not([hidden]) li', {timeout: 5000});
        const found = await page.$$eval('#search-orders a', (as) => as.map((a) => a.getAttribute('href')));
        check(JSON.stringify(found) === JSON.stringify(['#order/' + ids.order]),
              'a Persian status word finds her shipped order only', found);
        await clean('on the search');
    } finally {
        await browser.close();
        smtp.kill();
    }
}

runMain(main);

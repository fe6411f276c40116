// portal_pages.test.js — the portal's pages in headless chromium. Sara, a customer with two
// orders (lines; an invoice on one) and a ticket, signs in through the mailed link (aiosmtpd)
// beside Omid, another customer of the same database: she sees exactly her orders, opens one
// and its invoice (the print stylesheet keeps only the invoice), opens a ticket and sees it
// listed, closes it, switches to Persian (dir=rtl, Persian labels and digits), searches the FAQ
// with Arabic letter forms (ي for ی) and reads the article; her ticket's subject, which looks
// like HTML, stays text. The business's name and colour come from the settings. No CSP
// violation and no script error on any page.
'use strict';
const {chromium} = require('playwright-core');
const path = require('path');

const base = process.env.RP_URL;
const mbox = path.join(process.env.RP_TMP, 'mbox');
const {check, run, freePort, until, tokenInMail, shot, runMain, smtpStart} = require('./lib');


// The customers, their orders, lines, invoice and ticket, and two articles.
function seed() {
    const out = run('eval', `
local s = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org"})
local o = crm.create("contact", {first_name = "Omid", last_name = "Other", email = "omid@example.org", language = "fa"})
local s1 = crm.create("order", {contact = s.id, status = "shipped", currency = "EUR"})
crm.create("order_line", {order = s1.id, description = "Green tea", quantity = "2", unit_price = "4.50"})
crm.create("order_line", {order = s1.id, description = "Teapot", quantity = "1", unit_price = "30.00"})
local inv = crm.create("invoice", {order = s1.id})
local s2 = crm.create("order", {contact = s.id, status = "placed", currency = "EUR"})
crm.create("order_line", {order = s2.id, description = "Black tea", quantity = "3", unit_price = "5.00"})
local o1 = crm.create("order", {contact = o.id, status = "paid", currency = "EUR"})
crm.create("order_line", {order = o1.id, description = "Omid's secret order", unit_price = "99.00"})
local t = crm.create("ticket", {subject = "<img src=x id=injected> where is my tea?", contact = s.id})
crm.create("ticket", {subject = "Omid's ticket", contact = o.id})
crm.create("article", {title = "پیگیری سفارش", slug = "track-fa", language = "fa", published = true,
  category = "سفارش", body = "برای **پیگیری** سفارش به بخش سفارش‌ها بروید.\\n\\n<script>window.__bad = 1</script>"})
crm.create("article", {title = "Tracking an order", slug = "track-en", language = "en", published = true,
  body = "Open **Orders**."})
return table.concat({s.id, o.id, s1.id, s2.id, o1.id, inv.id, crm.get("invoice", inv.id).number, t.id}, " ")`);
    const [sara, omid, s1, s2, o1, inv, invNumber, ticket] = out.trim().split(' ');
    return {sara, omid, s1, s2, o1, inv, invNumber, ticket};
}


const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

async function main() {
    const port = await freePort();
    const smtp = smtpStart(port, mbox);
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        run('config', 'set', 'mail.smtp.url', JSON.stringify(`smtp://127.0.0.1:${port}`));
        run('config', 'set', 'mail.from', '"Support <support@example.com>"');
        run('config', 'set', 'plugin.portal.url', JSON.stringify(base));
        // The acknowledgement of a portal ticket is portal_thread's: off here, where the mails
        // counted are links.
        run('config', 'set', 'plugin.portal.acknowledge', 'false');
        run('config', 'set', 'plugin.portal.brand_name', '"Acme Tea"');
        run('config', 'set', 'plugin.portal.brand_color', '"#0a7f5c"');
        run('config', 'set', 'plugin.portal.messages', '{"fa": {"tab.help": "پرسش‌ها"}}');
        const ids = seed();
        run('portal', 'grant', ids.sara);
        run('portal', 'grant', ids.omid);

        const context = await browser.newContext();
        // Every CSP violation the page reports, kept where the test reads it.
        await context.addInitScript(() => {
            window.__csp = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
        });
        const page = await context.newPage();
        const pageErrors = [], cspConsole = [];
        page.on('pageerror', (e) => pageErrors.push(String(e)));
        page.on('console', (m) => {
            if (/Content Security Policy/i.test(m.text()))
                cspConsole.push(m.text());
        });
        const csp = async (where) => {
            const v = await page.evaluate(() => window.__csp);
            check(v.length === 0 && cspConsole.length === 0, 'no CSP violation ' + where, v.concat(cspConsole));
        };

        await page.goto(base + '/portal/');
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        check(await page.textContent('#brand-name') === 'Acme Tea', 'the business name from the settings',
              await page.textContent('#brand-name'));
        const accent = await page.evaluate(() => getComputedStyle(document.querySelector('.bar')).backgroundColor);
        check(accent === 'rgb(10, 127, 92)', 'the business colour from the settings', accent);
        await page.fill('#link-email', 'sara@example.org');
        await page.click('#link-button');
        const token = await until('the mail', () => tokenInMail(mbox));
        await page.goto(base + '/portal/#token=' + token);
        await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});

        // ---- orders: exactly hers ----
        await page.waitForSelector('#orders:not([hidden]) #orders-table tbody tr', {timeout: 5000});
        const orderLinks = await page.$$eval('#orders-table tbody a', (as) => as.map((a) => a.getAttribute('href')));
        check(JSON.stringify(orderLinks.sort()) === JSON.stringify(['#order/' + ids.s1, '#order/' + ids.s2].sort()),
              'the list holds exactly her two orders', orderLinks);
        const ordersText = await page.textContent('#orders-table');
        check(ordersText.includes('Shipped') && ordersText.includes('Placed'), 'the orders\' statuses', ordersText);
        check(ordersText.includes('€39.00') && ordersText.includes('€15.00'), 'the orders\' totals as money', ordersText);
        check(!ordersText.includes('99'), 'nothing of the other customer\'s order', ordersText);
        await shot(page, '1-orders');
        await csp('on the orders');

        // ---- an order, its lines and its invoice ----
        await page.click(`#orders-table a[href="#order/${ids.s1}"]`);
        await page.waitForSelector('#order:not([hidden]) #order-lines tbody tr', {timeout: 5000});
        check(JSON.stringify(await texts(page, '#order-lines tbody td:first-child')) ===
              JSON.stringify(['Green tea', 'Teapot']), 'the order\'s lines', await texts(page, '#order-lines tbody td:first-child'));
        check(await page.textContent('#order-status') === 'Shipped', 'the order\'s status');
        check(await page.textContent('#order-total') === '€39.00', 'the order\'s total', await page.textContent('#order-total'));
        await shot(page, '2-order');
        await page.click('#order-invoices a');
        await page.waitForFunction(() => document.getElementById('invoice-title').textContent !== '' &&
                                   !document.getElementById('invoice').hidden);
        check((await page.textContent('#invoice-title')).includes(ids.invNumber), 'the invoice page',
              await page.textContent('#invoice-title'));
        await page.waitForSelector('#invoice-lines tbody tr');
        check(await page.textContent('#invoice-total') === '€39.00', 'the invoice\'s total');
        await page.emulateMedia({media: 'print'});
        const printed = await page.evaluate(() => ({
            tabs: getComputedStyle(document.getElementById('tabs')).display,
            button: getComputedStyle(document.getElementById('invoice-print')).display,
            invoice: getComputedStyle(document.getElementById('invoice')).display,
            brand: document.getElementById('invoice-brand').textContent,
        }));
        check(printed.tabs === 'none' && printed.button === 'none' && printed.invoice !== 'none' &&
              printed.brand === 'Acme Tea', 'printed: the invoice alone, with the business name', printed);
        await shot(page, '3-invoice-print');
        await page.emulateMedia({media: 'screen'});

        // ---- tickets: the value stays text; a new one; closing it ----
        await page.click('#tabs a[data-tab="tickets"]');
        await page.waitForSelector('#tickets:not([hidden]) #tickets-table tbody tr', {timeout: 5000});
        check(await page.$('#injected') === null, 'a subject that looks like HTML is not HTML');
        check((await page.textContent('#tickets-table')).includes('<img src=x id=injected>'),
              'the subject shown as typed');
        const due = await page.textContent('#tickets-table tbody tr td:nth-child(3)');
        check(due && due !== '—', 'the promised response time is shown', due);
        check(!(await page.textContent('#tickets-table')).includes('Omid'), 'not the other customer\'s ticket');
        await page.fill('#ticket-subject', 'The teapot leaks');
        await page.fill('#ticket-text', 'Since Monday, from the spout.');
        await page.click('#ticket-send');
        await page.waitForFunction(() => document.querySelectorAll('#tickets-table tbody tr').length === 2);
        check((await page.textContent('#notice')).includes('Your ticket is open'), 'the page says the ticket is open',
              await page.textContent('#notice'));
        await page.click('#tickets-table a:text("The teapot leaks")');
        await page.waitForFunction(() => document.getElementById('ticket-text-view').textContent !== '');
        check(await page.textContent('#ticket-text-view') === 'Since Monday, from the spout.', 'the ticket\'s text');
        check(await page.textContent('#ticket-status') === 'New', 'the new ticket\'s status');
        await page.click('#ticket-close');
        await page.waitForFunction(() => document.getElementById('ticket-status').textContent === 'Closed');
        const stored = run('eval', 'local rows = crm.find("ticket", {where = {subject = "The teapot leaks"}}) ' +
                           'return #rows .. " " .. rows[1].status .. " " .. rows[1].contact').trim();
        check(stored === '1 closed ' + ids.sara, 'the ticket is stored as hers, closed', stored);
        await shot(page, '4-ticket');
        await csp('on the tickets');

        // ---- Persian ----
        await page.click('#tabs a[data-tab="orders"]');
        await page.waitForSelector('#orders:not([hidden]) #orders-table tbody tr');
        await page.selectOption('#lang', 'fa');
        await page.waitForFunction(() => document.documentElement.dir === 'rtl');
        check(await page.getAttribute('html', 'lang') === 'fa', 'html lang is fa');
        check(await page.textContent('#tabs a[data-tab="orders"]') === 'سفارش‌ها', 'the Persian tab label',
              await page.textContent('#tabs a[data-tab="orders"]'));
        await page.waitForFunction(() => document.getElementById('orders-table').textContent.includes('ارسال شده'));
        const faOrders = await page.textContent('#orders-table tbody');
        check(/[۰-۹]/.test(faOrders), 'Persian digits in the orders', faOrders);
        const inlineStart = await page.evaluate(() => {
            const bar = document.querySelector('.bar').getBoundingClientRect();
            const name = document.getElementById('brand-name').getBoundingClientRect();
            return name.right > bar.right - bar.width / 2; // the name sits on the right
        });
        check(inlineStart, 'the layout mirrors: the business name on the right');
        check(await page.textContent('#tabs a[data-tab="help"]') === 'پرسش‌ها',
              'an administrator\'s word from plugin.portal.messages', await page.textContent('#tabs a[data-tab="help"]'));

        await shot(page, '5-orders-fa');
        // ---- the FAQ, searched with Arabic letter forms ----
        await page.click('#tabs a[data-tab="help"]');
        await page.waitForSelector('#help:not([hidden])');
        await page.fill('#help-q', 'پيگيري'); // ي (Arabic yeh) for ی
        await page.click('#help-form button');
        await page.waitForFunction(() => document.querySelectorAll('#help-results li').length > 0);
        const found = await texts(page, '#help-results a');
        check(found.length === 1 && found[0] === 'پیگیری سفارش', 'the Persian article found', found);
        await page.click('#help-results a');
        await page.waitForSelector('#article:not([hidden]) #article-body strong');
        check(await page.textContent('#article-body strong') === 'پیگیری', 'the article\'s Markdown rendered');
        check(await page.evaluate(() => window.__bad === undefined && !document.querySelector('#article-body script')),
              'the article\'s raw HTML left out');
        await shot(page, '6-article-fa');
        await csp('on the help pages');

        // The language stays chosen in this browser, over the contact's own.
        await page.reload();
        await page.waitForFunction(() => document.documentElement.dir === 'rtl');
        await csp('after a reload');

        // Omid, whose contact says Persian, gets Persian without choosing, and his order only.
        const omidContext = await browser.newContext();
        const omid = await omidContext.newPage();
        omid.on('pageerror', (e) => pageErrors.push(String(e)));
        await omid.goto(base + '/portal/');
        await omid.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        check(await omid.getAttribute('html', 'dir') === 'ltr', 'a visitor gets English first');
        await omid.fill('#link-email', 'omid@example.org');
        await omid.click('#link-button');
        const token2 = await until('the second mail', () => tokenInMail(mbox, 2));
        await omid.goto(base + '/portal/#token=' + token2);
        await omid.waitForSelector('#orders:not([hidden]) #orders-table tbody tr', {timeout: 5000});
        check(await omid.getAttribute('html', 'dir') === 'rtl', 'the contact\'s language: Persian, right to left');
        const omidLinks = await omid.$$eval('#orders-table tbody a', (as) => as.map((a) => a.getAttribute('href')));
        check(JSON.stringify(omidLinks) === JSON.stringify(['#order/' + ids.o1]), 'Omid sees his order only', omidLinks);
        // Sara's order by its address: the page shows the server's refusal, none of her data.
        await omid.goto(base + '/portal/#order/' + ids.s1);
        await omid.waitForFunction(() => document.getElementById('error').textContent !== '');
        check(!(await omid.textContent('#order')).includes('Green tea'), 'Sara\'s order is not shown to Omid');
        check(await omid.$eval('#order', (e) => e.hidden), 'no order page for a refused order');
        await omidContext.close();
        check(pageErrors.length === 0, 'no script error on the pages', pageErrors);
    } finally {
        await browser.close();
        smtp.kill();
    }
}

runMain(main);

// portal_thread.test.js — a ticket's conversation in headless chromium. Sara signs in through
// the mailed link (aiosmtpd) and opens a ticket with a file; the portal acknowledges it by
// mail; staff answer by mail (crm.collaborative.send_email related to the ticket) and write an
// internal note; Sara sees the answer in the thread and never the note, downloads her file
// (the same bytes, as a download), answers with another file, and the page refuses a file over
// the limit before sending anything. Omid, another customer, gets nothing of her ticket by its
// address. No CSP violation and no script error on any page.
'use strict';
const {chromium} = require('playwright-core');
const fs = require('fs');
const path = require('path');

const base = process.env.RP_URL;
const mbox = path.join(process.env.RP_TMP, 'mbox');
const {check, run, freePort, until, tokenInMail, shot, runMain, smtpStart} = require('./lib');

// The subjects of the delivered mails.
function subjects() {
    const dir = path.join(mbox, 'new');
    if (!fs.existsSync(dir))
        return [];
    return fs.readdirSync(dir).map((f) => {
        const m = /^Subject: (.*)$/m.exec(fs.readFileSync(path.join(dir, f), 'latin1'));
        return m ? m[1] : '';
    });
}

// Signs CONTEXT's page in as ADDRESS through the mailed link (the Nth mail).
async function signIn(context, address, n) {
    const page = await context.newPage();
    await page.goto(base + '/portal/');
    await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
    await page.fill('#link-email', address);
    await page.click('#link-button');
    const token = await until('the link mail ' + n, () => tokenInMail(mbox, n));
    await page.goto(base + '/portal/#token=' + token);
    await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});
    return page;
}

// Watches PAGE for script errors and CSP violations (kept in window.__csp by an init script).
function watch(page, errors) {
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text()))
            errors.push(m.text());
    });
}

const count = (entity) => Number(run('count', entity).trim());

async function main() {
    const port = await freePort();
    const smtp = smtpStart(port, mbox);
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        run('config', 'set', 'mail.smtp.url', JSON.stringify(`smtp://127.0.0.1:${port}`));
        run('config', 'set', 'mail.from', '"Support <support@example.com>"');
        run('config', 'set', 'plugin.portal.url', JSON.stringify(base));
        run('config', 'set', 'plugin.portal.attachment_max_bytes', '50000');
        const [sara, omid] = run('eval', `
local s = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org"})
local o = crm.create("contact", {first_name = "Omid", last_name = "Other", email = "omid@example.org"})
crm.portal.grant(s.id) crm.portal.grant(o.id)
return s.id .. " " .. o.id`).trim().split(' ');

        const context = await browser.newContext({acceptDownloads: true});
        await context.addInitScript(() => {
            window.__csp = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
        });
        const errors = [];
        const page = await signIn(context, 'sara@example.org', 1);
        watch(page, errors);

        // A ticket with a file, from the tickets page.
        const photo = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
                                     Buffer.from('a photo of the leak '.repeat(50))]);
        await page.goto(base + '/portal/#tickets');
        await page.waitForSelector('#tickets:not([hidden])');
        await page.fill('#ticket-subject', 'The kettle leaks');
        await page.fill('#ticket-text', 'Water everywhere.');
        await page.setInputFiles('#ticket-files', {name: 'leak.png', mimeType: 'image/png',
                                                   buffer: photo});
        await page.click('#ticket-send');
        await page.waitForFunction(() => document.getElementById('notice').textContent !== '');
        const ticket = run('eval', 'return crm.find("ticket", {where = {subject = "The kettle ' +
                           'leaks"}})[1].id').trim();
        check(/^\d+$/.test(ticket), 'the ticket was opened', ticket);
        check(run('eval', `return crm.count("attachment", {filename = "leak.png"})`).trim() === '1',
              'its file was stored with it');
        await until('the acknowledgement', () =>
            subjects().some((s) => s.includes('We received your request #' + ticket)));
        check(true, 'the portal acknowledged the ticket by mail');

        // Staff answer by mail, and write a note the customer must not see.
        run('eval', `crm.collaborative.send_email{to = "sara@example.org", subject = "About your kettle",
  body = "We are sending a new kettle today.", related = {"ticket", ${ticket}}}`);
        run('note', 'ticket', ticket, 'INTERNAL: check the warranty first');

        await page.goto(base + '/portal/#ticket/' + ticket);
        await page.waitForSelector('#thread:not([hidden])', {timeout: 5000});
        await page.waitForFunction(() =>
            document.getElementById('thread-items').textContent.includes('new kettle'))
            .catch(async (e) => {
                console.error(await page.evaluate(() => [location.hash,
                    document.getElementById('thread').outerHTML,
                    document.getElementById('error').textContent]));
                throw e;
            });
        await shot(page, 'ticket-thread');
        const thread = await page.textContent('#thread-items');
        check(thread.includes('We are sending a new kettle today.'), 'staff\'s answer is in the thread', thread);
        check(!thread.includes('INTERNAL'), 'the internal note is not', thread);
        const who = await page.$$eval('#thread-items li.message strong', (e) => e.map((x) => x.textContent));
        check(who.includes('You') && who.includes('Our team'), 'each message says who wrote it', who);

        // Her file downloads as a download, the same bytes.
        const [download] = await Promise.all([page.waitForEvent('download'),
                                              page.click('#thread-items a:text("leak.png")')]);
        check(download.suggestedFilename() === 'leak.png', 'the download keeps the name',
              download.suggestedFilename());
        const got = fs.readFileSync(await download.path());
        check(Buffer.compare(got, photo) === 0, 'the downloaded bytes are the file\'s', got.length);

        // A file over the limit is refused by the page: nothing is sent.
        const before = count('interaction');
        await page.fill('#thread-text', 'too big');
        await page.setInputFiles('#thread-files', {name: 'huge.bin', mimeType: 'application/octet-stream',
                                                   buffer: Buffer.alloc(60000)});
        await page.click('#thread-send');
        await page.waitForFunction(() => document.getElementById('error').textContent !== '');
        check((await page.textContent('#error')).includes('huge.bin is larger than'),
              'the page says the file is too large', await page.textContent('#error'));
        check(count('interaction') === before, 'nothing was stored for it');

        // She answers with a file.
        await page.fill('#thread-text', 'Thank you! Here is the receipt.');
        await page.setInputFiles('#thread-files', {name: 'receipt.txt', mimeType: 'text/plain',
                                                   buffer: Buffer.from('receipt 42')});
        await page.click('#thread-send');
        await page.waitForFunction(() =>
            document.getElementById('thread-items').textContent.includes('Here is the receipt'));
        check((await page.textContent('#notice')).includes('sent'), 'the page says the answer is sent');
        check((await page.textContent('#thread-items')).includes('receipt.txt'), 'with its file');
        const mine = run('eval', `local i = crm.find("interaction", {where = {body = "Thank you! Here is the receipt."}})[1]
return i.channel .. " " .. i.direction .. " " .. i.contact`).trim();
        check(mine === 'portal in ' + sara, 'the answer is the customer\'s portal interaction', mine);
        check((await page.evaluate(() => window.__csp)).length === 0, 'no CSP violation for Sara');

        // Omid opens Sara's ticket by its address: nothing of it.
        const other = await browser.newContext();
        await other.addInitScript(() => {
            window.__csp = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
        });
        const page2 = await signIn(other, 'omid@example.org', subjects().length + 1);
        watch(page2, errors);
        await page2.goto(base + '/portal/#ticket/' + ticket);
        await page2.waitForFunction(() => document.getElementById('error').textContent !== '');
        check(await page2.isHidden('#thread'), 'Omid sees no thread of Sara\'s ticket');
        const text2 = await page2.textContent('main');
        check(!text2.includes('kettle') && !text2.includes('receipt'), 'nothing of it shows', text2);
        const files = await page2.evaluate(async (t) => {
            const r = await Rapport.call('GET', '/api/v1/ticket/' + t + '/thread');
            const ids = [];
            for (let id = 1; id <= 5; id++)
                ids.push((await fetch('/api/v1/plugins/collaborative/attachments/' + id)).status);
            return {thread: r.status, ids};
        }, ticket);
        check(files.thread === 404 && files.ids.every((s) => s === 404),
              'Omid gets 404 for the thread and every attachment', files);
        check((await page2.evaluate(() => window.__csp)).length === 0, 'no CSP violation for Omid');
        check(errors.length === 0, 'no script error nor CSP report in the console', errors);
        check(Number(omid) > 0, 'Omid exists', omid);
    } finally {
        await browser.close();
        smtp.kill();
    }
}

runMain(main);

// portal_account.test.js — the portal's Account tab in headless chromium. Sara signs in through
// the mailed link (aiosmtpd) beside Omid, another customer: she changes her city and sees it
// stored (origin portal); a bad phone and a bad mobile show the server's error beside their
// field and store nothing; her email address is read-only; she leaves the public newsletter
// and the membership is stored with its time and source, and the page says when; the private
// list is not offered; she downloads her data (a JSON file of hers, none of Omid's); asks to
// be forgotten (one task for staff); the language chosen in the menu is saved to her contact;
// the privacy page, public, shows the setting's Persian text right to left with its <script>
// left out. No CSP violation and no script error on any page.
'use strict';
const {chromium} = require('playwright-core');
const fs = require('fs');
const path = require('path');

const base = process.env.RP_URL;
const mbox = path.join(process.env.RP_TMP, 'mbox');
const {check, run, freePort, until, tokenInMail, shot, runMain, smtpStart} = require('./lib');

function seed() {
    const out = run('eval', `
local s = crm.create("contact", {first_name = "Sara", last_name = "Ahmadi", email = "sara@example.org", city = "Tehran"})
local o = crm.create("contact", {first_name = "Omid", last_name = "Other", email = "omid@example.org"})
crm.create("order", {contact = s.id, currency = "EUR"})
local oo = crm.create("order", {contact = o.id, currency = "EUR"})
crm.create("order_line", {order = oo.id, description = "Omid's secret order", unit_price = "9.00"})
local news = crm.create("mailing_list", {name = "Tea news", description = "Monthly", public = true})
crm.create("mailing_list", {name = "Staff only list"})
crm.create("list_member", {list = news.id, contact = s.id, source = "shop checkout"})
return table.concat({s.id, o.id, news.id}, " ")`);
    const [sara, omid, news] = out.trim().split(' ');
    return {sara, omid, news};
}

const contact = (id) => JSON.parse(run('get', 'contact', String(id)));

async function main() {
    const port = await freePort();
    const smtp = smtpStart(port, mbox);
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        run('config', 'set', 'mail.smtp.url', JSON.stringify(`smtp://127.0.0.1:${port}`));
        run('config', 'set', 'mail.from', '"Support <support@example.com>"');
        run('config', 'set', 'plugin.portal.url', JSON.stringify(base));
        run('config', 'set', 'plugin.portal.privacy_policy', JSON.stringify({
            en: '# Privacy\n\nWe keep **little** about you.',
            fa: '# حریم خصوصی\n\nما **کم** نگه می‌داریم.<script>window.__bad = 1</script>',
        }));
        const ids = seed();
        run('portal', 'grant', ids.sara);
        run('portal', 'grant', ids.omid);

        const context = await browser.newContext({acceptDownloads: true});
        await context.addInitScript(() => {
            window.__csp = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
        });
        const page = await context.newPage();
        const pageErrors = [], consoleErrors = [];
        page.on('pageerror', (e) => pageErrors.push(String(e)));
        page.on('console', (m) => {
            // A refused request is the browser's own console line: the 422 the test asks for.
            if (m.type() === 'error' && !/status of 4\d\d/.test(m.text()))
                consoleErrors.push(m.text());
        });
        const csp = async (where) => {
            const v = await page.evaluate(() => window.__csp);
            check(v.length === 0, 'no CSP violation ' + where, v);
        };

        // ---- the privacy page, before signing in ----
        await page.goto(base + '/portal/#privacy');
        await page.waitForSelector('#privacy:not([hidden]) #privacy-body strong', {timeout: 5000});
        await shot(page, 'privacy');
        check(await page.textContent('#privacy-body strong') === 'little', 'the policy from the setting, to a visitor');
        check(await page.isVisible('#tabs a[data-tab="privacy"]'), 'the privacy tab shown to a visitor');
        check(await page.isHidden('#tabs a[data-tab="account"]'), 'no account tab for a visitor');

        // ---- sign in ----
        await page.goto(base + '/portal/#orders');
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        await page.fill('#link-email', 'sara@example.org');
        await page.click('#link-button');
        const token = await until('the mail', () => tokenInMail(mbox));
        await page.goto(base + '/portal/#token=' + token);
        await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});

        // ---- details ----
        await page.click('#tabs a[data-tab="account"]');
        await page.waitForFunction(() => document.getElementById('acc-city').value === 'Tehran');
        check(await page.inputValue('#acc-email') === 'sara@example.org', 'her email shown');
        check(await page.getAttribute('#acc-email', 'readonly') !== null, 'her email is read-only');
        await page.fill('#acc-city', 'Shiraz');
        await page.click('#details-save');
        await page.waitForFunction(() => document.getElementById('notice').textContent !== '');
        check(contact(ids.sara).city === 'Shiraz', 'the city is stored', contact(ids.sara).city);
        const origin = run('eval', `local o for _, e in ipairs(crm.events({entity = "contact", limit = 1000})) do
  if e.record_id == ${ids.sara} and e.type == "contact.updated" and e.changes.city then o = e.origin end end return o`).trim();
        check(origin === 'portal', 'the change is the portal\'s', origin);
        await page.fill('#acc-phone', 'call me maybe');
        await page.fill('#acc-address', 'Hafez street 1');
        await page.click('#details-save');
        await page.waitForFunction(() => document.getElementById('acc-phone-error').textContent !== '');
        const phoneErr = await page.textContent('#acc-phone-error');
        check(/phone/.test(phoneErr) && /call me maybe/.test(phoneErr), 'the phone\'s error beside it', phoneErr);
        check(await page.textContent('#error') === '', 'the error is not only at the top');
        check(contact(ids.sara).address === null, 'nothing of the refused change stored', contact(ids.sara).address);
        await page.fill('#acc-phone', '');
        await page.fill('#acc-mobile', 'abc');
        await page.click('#details-save');
        await page.waitForFunction(() => document.getElementById('acc-mobile-error').textContent !== '');
        check(await page.textContent('#acc-phone-error') === '', 'the phone\'s old error is gone');
        await page.fill('#acc-mobile', '+98 912 000 0000');
        await page.click('#details-save');
        await page.waitForFunction(() => document.getElementById('acc-mobile-error').textContent === '' &&
                                   document.getElementById('notice').textContent !== '');
        check(contact(ids.sara).address === 'Hafez street 1' && /^\+98/.test(contact(ids.sara).mobile),
              'the corrected details stored', contact(ids.sara));
        await csp('on the details');

        // ---- consent ----
        const box = `#consent-lists input[data-list="${ids.news}"]`;
        await page.waitForSelector(box);
        check(await page.isChecked(box), 'she is on the newsletter');
        check(!(await page.textContent('#consent-lists')).includes('Staff only'), 'the private list is not offered');
        await page.uncheck(box);
        await page.waitForFunction(() => /\(/.test(document.querySelector('#consent-lists .when').textContent));
        const m = JSON.parse(run('find', 'list_member', '--where', JSON.stringify({contact: Number(ids.sara)})).trim());
        check(m.opt_out_source === 'portal' && /^20/.test(m.opted_out_at || ''), 'the opt-out stored with time and source', m);
        const events = run('eval', 'return #crm.events({type = "portal.consent_changed"})').trim();
        check(events === '1', 'one consent event', events);
        // A switch is a box beside its words, not a field stretched across the page.
        const boxWidth = await page.$eval('#consent-email', (e) => e.getBoundingClientRect().width);
        check(boxWidth < 40, 'the consent box is a box beside its label', boxWidth);
        await page.uncheck('#consent-email');
        await page.waitForFunction(() => document.getElementById('notice').textContent.includes(':'));
        await until('email opt-out stored', () => contact(ids.sara).email_opt_out === true);
        check(contact(ids.sara).email_opt_out === true, 'the email opt-out stored');

        // ---- download my data ----
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-data')]);
        check(download.suggestedFilename() === `contact-${ids.sara}.json`, 'the file\'s name', download.suggestedFilename());
        const data = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
        check(data.entity === 'contact' && String(data.id) === ids.sara && data.record.city === 'Shiraz',
              'the download is her data', {entity: data.entity, id: data.id});
        const text = JSON.stringify(data);
        check(!text.includes('Omid') && !text.includes('omid@'), 'nothing of Omid in her download');
        check(Array.isArray(data.related.list_member), 'her memberships in her download', Object.keys(data.related));

        // ---- forget me ----
        await page.click('#forget-button');
        await page.click('#forget-yes');
        await page.waitForSelector('#forget-done:not([hidden])');
        await shot(page, 'account-forget');
        const tasks = run('count', 'activity', '--where', JSON.stringify({kind: 'task', related_id: Number(ids.sara)})).trim();
        check(tasks === '1', 'one task for staff', tasks);
        check(run('eval', 'return #crm.events({type = "portal.forget_requested"})').trim() === '1', 'one forget event');

        // ---- Persian: saved to her contact, right to left, the policy in Persian ----
        await page.selectOption('#lang', 'fa');
        await page.waitForFunction(() => document.documentElement.dir === 'rtl');
        await until('the language saved', () => contact(ids.sara).language === 'fa');
        check(contact(ids.sara).language === 'fa', 'the chosen language saved to her contact');
        await page.waitForFunction(() => document.querySelector('[data-i18n="account.details.title"]').textContent === 'اطلاعات شما');
        await page.click('#tabs a[data-tab="privacy"]');
        await page.waitForSelector('#privacy:not([hidden]) #privacy-body strong');
        await page.waitForFunction(() => document.querySelector('#privacy-body strong').textContent === 'کم');
        check(await page.getAttribute('html', 'dir') === 'rtl', 'the Persian page is right to left');
        check(await page.evaluate(() => window.__bad === undefined && !document.querySelector('#privacy-body script')),
              'the policy\'s <script> left out');
        await csp('on the Persian privacy page');

        // Omid sees his own details only, and Sara's membership is not his to see.
        const omidContext = await browser.newContext();
        const omid = await omidContext.newPage();
        omid.on('pageerror', (e) => pageErrors.push(String(e)));
        await omid.goto(base + '/portal/');
        await omid.fill('#link-email', 'omid@example.org');
        await omid.click('#link-button');
        const token2 = await until('the second mail', () => tokenInMail(mbox, 2));
        await omid.goto(base + '/portal/#token=' + token2);
        await omid.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});
        await omid.goto(base + '/portal/#account');
        await omid.waitForFunction(() => document.getElementById('acc-email').value !== '');
        check(await omid.inputValue('#acc-email') === 'omid@example.org', 'Omid sees his own details');
        await omid.waitForSelector(box);
        check(!(await omid.isChecked(box)), 'Sara\'s membership is not his');
        await omidContext.close();

        check(pageErrors.length === 0, 'no script error on the pages', pageErrors);
        check(consoleErrors.length === 0, 'no console error', consoleErrors);
    } finally {
        await browser.close();
        smtp.kill();
    }
}

runMain(main);

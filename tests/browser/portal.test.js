// portal.test.js — a customer signs in to the portal in headless chromium: asks for a link on
// the page, the link arrives at a real SMTP server (aiosmtpd, started here), opening it signs
// in (the page shows the contact's name, the cookie is HttpOnly, the token leaves the address
// bar and does not work twice), and signing out shows the sign-in forms again.
'use strict';
const {chromium} = require('playwright-core');
const path = require('path');

const base = process.env.RP_URL;
const mbox = path.join(process.env.RP_TMP, 'mbox');
const {check, run, freePort, until, tokenInMail, runMain, smtpStart} = require('./lib');


async function main() {
    const port = await freePort();
    const smtp = smtpStart(port, mbox);
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        run('config', 'set', 'mail.smtp.url', JSON.stringify(`smtp://127.0.0.1:${port}`));
        run('config', 'set', 'mail.from', '"Support <support@example.com>"');
        run('config', 'set', 'plugin.portal.url', JSON.stringify(base));
        const id = run('eval', 'return crm.create("contact", {first_name = "Sara", ' +
                       'last_name = "Ahmadi", email = "sara@example.org"}).id').trim();
        run('portal', 'grant', id);

        const context = await browser.newContext();
        const page = await context.newPage();
        const pageErrors = [];
        page.on('pageerror', (e) => pageErrors.push(String(e)));
        await page.goto(base + '/portal/');
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        await page.fill('#link-email', 'sara@example.org');
        await page.click('#link-button');
        await page.waitForFunction(() => document.getElementById('notice').textContent !== '');
        check((await page.textContent('#notice')).includes('on its way'), 'the page says a link is on its way');

        const token = await until('the mail', () => tokenInMail(mbox));
        check(token.length === 43, 'the mail holds a link', token);
        await page.goto(base + '/portal/#token=' + token);
        await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});
        check(await page.textContent('#who') === 'Sara Ahmadi', 'the page shows the customer',
              await page.textContent('#who'));
        check(!page.url().includes('token'), 'the token left the address bar', page.url());
        const session = (await context.cookies()).find((c) => c.name === 'rp_session');
        check(session && session.httpOnly && session.sameSite === 'Strict',
              'the session cookie is HttpOnly and SameSite=Strict', session);
        const me = await page.evaluate(() => Rapport.call('GET', '/api/v1/auth/me'));
        check(me.status === 200 && me.data.principal === 'contact:' + id && me.data.role === 'portal',
              'the API sees the contact with the portal role', me);

        // The same link in another browser: used already.
        const other = await browser.newContext();
        const page2 = await other.newPage();
        await page2.goto(base + '/portal/#token=' + token);
        await page2.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        await page2.waitForFunction(() => document.getElementById('error').textContent !== '');
        check((await page2.textContent('#error')).includes('used already'),
              'a used link is refused on the page', await page2.textContent('#error'));

        // A password set on the Account tab: the server opens this session again, and the page
        // takes its new CSRF token, so the next write goes through.
        await page.goto(base + '/portal/#account');
        await page.fill('#new-password', 'a long new password');
        await page.click('#new-password-form button[type="submit"]');
        await page.waitForFunction(() => document.getElementById('notice').textContent !== '');
        const write = await page.evaluate(() => Rapport.call('POST', '/api/v1/ticket',
                                                             {subject: 'after the password'}));
        check(write.status === 201, 'a write after setting the password', write);

        await page.click('#signout-button');
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        const after = await page.evaluate(() => fetch('/api/v1/auth/me').then((r) => r.status));
        check(after === 401, 'the API refuses the browser after signing out', after);
        check(pageErrors.length === 0, 'no script error on the page', pageErrors);
    } finally {
        await browser.close();
        smtp.kill();
    }
}

runMain(main);

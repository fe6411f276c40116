// console.test.js — the console's sign-in page in headless chromium: the page and its files
// load under the CSP with no failed request, a wrong password is shown, the right one opens a
// session whose user the page reads back from the API, the cookie is HttpOnly and
// SameSite=Strict, a write without the CSRF token is refused and one with it goes through,
// the CSP blocks an inline script, and after signing out the API refuses the browser.
'use strict';
const {chromium} = require('playwright-core');

const base = process.env.RP_URL;
const {check, runMain} = require('./lib');

async function main() {
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        const context = await browser.newContext();
        const page = await context.newPage();
        const requestsFailed = [], pageErrors = [];
        page.on('requestfailed',
                (r) => requestsFailed.push(r.url() + ' ' + (r.failure() || {}).errorText));
        page.on('pageerror', (e) => pageErrors.push(String(e)));

        const res = await page.goto(base + '/console/');
        check(res.status() === 200, 'the console loads', res.status());
        const csp = res.headers()['content-security-policy'] || '';
        check(csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'none'"),
              'the page comes with the CSP', csp);
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        const styled = await page.evaluate(() => [
            getComputedStyle(document.querySelector('.bar')).display,
            getComputedStyle(document.querySelector('button')).borderRadius]);
        check(styled[0] === 'flex' && styled[1] === '4px',
              'the shared and the console\'s style sheets apply', styled);

        // A wrong password: the API's words on the page, no session.
        await page.fill('#user', 'ana');
        await page.fill('#password', 'not the password');
        await page.click('#signin-button');
        await page.waitForFunction(() => document.getElementById('error').textContent !== '');
        const error = await page.textContent('#error');
        check(error.includes('wrong user name or password'), 'a wrong password is shown', error);

        // Persian: the frame's words from its catalogue, right to left; back to English.
        await page.selectOption('#lang', 'fa');
        await page.waitForFunction(() => document.documentElement.dir === 'rtl');
        check((await page.textContent('#signin-button')) === 'ورود', 'the sign-in in Persian',
              await page.textContent('#signin-button'));
        await page.selectOption('#lang', 'en');
        await page.waitForFunction(() => document.documentElement.dir === 'ltr');

        // The right one: the page shows who the API says is signed in.
        await page.fill('#password', 'a long password');
        await page.click('#signin-button');
        await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});
        check(await page.textContent('#who') === 'ana', 'the signed-in user is shown',
              await page.textContent('#who'));
        check(await page.textContent('#role') === 'admin', 'the role is shown');

        // The cookie: the browser keeps it HttpOnly and SameSite=Strict; the page cannot read it.
        const cookies = await context.cookies();
        const session = cookies.find((c) => c.name === 'rp_session');
        check(session && session.httpOnly && session.sameSite === 'Strict' && session.path === '/',
              'the session cookie is HttpOnly, SameSite=Strict, Path=/', session);
        const visible = await page.evaluate(() => document.cookie);
        check(!visible.includes('rp_session') && !visible.includes('rps_'),
              'document.cookie does not show the session', visible);

        // A write with the cookie but without the CSRF token is refused; with it, it is done.
        const bare = await page.evaluate(async () => {
            const r = await fetch('/api/v1/pet', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: '{"name": "Rex"}'});
            return {status: r.status, body: await r.text()};
        });
        check(bare.status === 403 && bare.body.includes('X-CSRF-Token'),
              'a write without the CSRF token is refused', bare);
        const made = await page.evaluate(() => Rapport.call('POST', '/api/v1/pet', {name: 'Rex'}));
        check(made.status === 201 && made.data.created_by === 'user:ana',
              'a write with the CSRF token acts as the user', made);

        // The CSP: an inline script does not run, and the browser reports the violation.
        const violation = page.evaluate(() => new Promise((resolve) => {
            document.addEventListener('securitypolicyviolation',
                                      (e) => resolve(e.violatedDirective), {once: true});
            setTimeout(() => resolve(null), 3000);
        }));
        await page.evaluate(() => {
            const s = document.createElement('script');
            s.textContent = 'window.inlineRan = true;';
            document.body.appendChild(s);
        });
        check(await violation !== null, 'the CSP reports the inline script', await violation);
        check(await page.evaluate(() => window.inlineRan) === undefined,
              'the CSP keeps an inline script from running');

        // Signing out: the form again, and the API refuses the browser from then on.
        await page.click('#signout');
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        const after = await page.evaluate(async () => {
            const r = await fetch('/api/v1/auth/me');
            await r.text(); /* read whole, so the reload below aborts nothing */
            return r.status;
        });
        check(after === 401, 'the API refuses the browser after signing out', after);
        const left = (await context.cookies()).find((c) => c.name === 'rp_session');
        check(!left, 'the cookie is gone after signing out', left);

        // Reloaded, signed out, the page asks to sign in; its files come back as 304s.
        const revalidated = [];
        page.on('response', (r) => r.status() === 304 && revalidated.push(r.url()));
        await page.reload();
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        check(revalidated.some((u) => u.endsWith('/shared/api.js')),
              'the browser revalidates a file by its ETag (304)', revalidated);

        check(requestsFailed.length === 0, 'no request failed', requestsFailed);
        check(pageErrors.length === 0, 'no script error on the page', pageErrors);
    } finally {
        await browser.close();
    }
}

runMain(main);

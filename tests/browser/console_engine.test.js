// console_engine.test.js — the engine room and the rules page in headless chromium, signed in
// as ana (admin): an event written by another process arrives in the live log; a dead letter
// (a webhook whose receiver here answers 404 once) is replayed from its page and delivered;
// a Lua line run dry shows its diff and stores nothing (counted through the API); run for
// real it asks first, then saves; the scripts are listed. Rita (a reader) is offered neither
// page and the admin routes answer her 403. No script error, no CSP violation, no failed
// request (closing the live log's stream on leaving the page is the one abort allowed).
'use strict';
const http = require('http');
const {chromium} = require('playwright-core');

const base = process.env.RP_URL;
const {check, run, until, sleep, runMain} = require('./lib');

// A webhook receiver: 404 to the first delivery (a dead letter at once), 200 after.
function receiver() {
    const got = [];
    const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', () => {
            got.push(body);
            res.writeHead(got.length === 1 ? 404 : 200);
            res.end();
        });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
        resolve({got, port: server.address().port, close: () => server.close()})));
}

async function signIn(page, user, password) {
    await page.goto(base + '/console/');
    await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
    await page.fill('#user', user);
    await page.fill('#password', password);
    await page.click('#signin-button');
    await page.waitForSelector('#signed-in:not([hidden])', {timeout: 5000});
}

async function main() {
    const rx = await receiver();
    run('eval', 'for i = 1, 60 do crm.create("pet", {name = "Pet " .. i}) end');
    run('config', 'set', 'webhooks.allow_networks', '127.0.0.1/32');
    run('webhooks', 'add', `http://127.0.0.1:${rx.port}/hook`, '--events', 'pet.created',
        '--user', 'ana', '--secret', 'browser-test-secret-0123456789');
    const browser = await chromium.launch({executablePath: process.env.RP_CHROMIUM});
    try {
        const context = await browser.newContext({viewport: {width: 1280, height: 800}});
        const page = await context.newPage();
        const failed = [], errors = [], violations = [];
        page.on('requestfailed', (r) => {
            const why = (r.failure() || {}).errorText || '';
            if (!(r.url().includes('/api/v1/admin/events/stream') && why.includes('ERR_ABORTED')))
                failed.push(r.url() + ' ' + why);
        });
        page.on('pageerror', (e) => errors.push(String(e)));
        const statuses = [];
        page.on('response', (r) => r.status() >= 400 && statuses.push(r.status() + ' ' + r.url()));
        page.on('console', (m) => {
            if (m.type() === 'error')
                errors.push(m.text());
            if (/Content Security Policy/i.test(m.text()))
                violations.push(m.text());
        });

        await signIn(page, 'ana', 'a long password');
        const nav = await page.$$eval('#nav a', (as) => as.map((a) => a.dataset.page));
        check(nav.includes('engine') && nav.includes('rules'), 'an admin is offered both pages', nav);

        // The live log: the newest 50 events, then an event written by another process
        // arrives without a reload.
        await page.goto(base + '/console/#engine/log');
        await page.waitForFunction(() => /Live/.test(document.querySelector('.live-state').textContent),
                                   null, {timeout: 5000});
        const rows = await page.$$eval('#live-rows tr', (trs) => trs.length);
        check(rows === 50, 'the live log opens with the newest 50 events', rows);
        const renderMs = Number(await page.getAttribute('#engine-log', 'data-render-ms'));
        console.log(`MEASURE live log: 50 events drawn ${renderMs} ms after the API answered`);
        check(Number.isFinite(renderMs) && renderMs >= 0, 'the 50 rows record how long they took', renderMs);
        const t0 = Date.now();
        run('create', 'pet', '{"name": "Streamed Sam"}');
        await page.waitForFunction(() => [...document.querySelectorAll('#live-rows tr')]
            .some((tr) => tr.textContent.includes('Streamed Sam')), null, {timeout: 5000});
        const ms = Date.now() - t0;
        // Arriving within the 5 s wait above, without a reload, is what is checked; how soon is
        // reported (the CLI's start included), since a loaded machine moves it.
        console.log(`MEASURE live log: another process's event shown after ${ms} ms`);
        const top = await page.textContent('#live-rows tr:first-child');
        check(top.includes('pet.created'), 'the newest event is on top', top);

        // The dead letter: the receiver refused the delivery once.
        await until('the webhook delivery', () => rx.got.length >= 1);
        await page.goto(base + '/console/#engine/dead');
        await page.waitForSelector('#dead button.replay', {timeout: 10000}).catch(async () => {
            for (let i = 0; i < 40 && !(await page.$('#dead button.replay')); i++) {
                await page.goto(base + '/console/#engine/jobs');
                await page.goto(base + '/console/#engine/dead');
                await sleep(250);
            }
        });
        const row = await page.textContent('#dead tbody tr');
        check(row.includes('pet.created') && row.includes('webhook'), 'the dead letter is listed', row);
        await page.click('#dead button.replay');
        await page.waitForFunction(() => /queued for replay/.test(document.getElementById('notice').textContent));
        await until('the replayed delivery', () => rx.got.length >= 2);
        check(rx.got[1].includes('Streamed Sam'), 'the replay delivered the event', rx.got[1]);

        // Settings and tokens show no secret.
        await page.goto(base + '/console/#engine/settings');
        await page.waitForSelector('#settings');
        const settings = await page.textContent('#settings');
        check(settings.includes('webhooks.allow_networks') && !settings.includes('browser-test-secret'),
              'the settings, without the webhook secret', settings.slice(0, 200));
        // Set one: a bad value is refused naming the field, a good one is stored.
        await page.fill('#setting-key', 'roles.clerk');
        await page.fill('#setting-value', '{"entities": {"pet": {"read": "sometimes"}}}');
        await page.click('#setting-form button');
        await page.waitForFunction(() => document.getElementById('setting-error').textContent !== '');
        check((await page.textContent('#setting-error')).startsWith('value:'), 'a bad role is refused naming the value',
              await page.textContent('#setting-error'));
        await page.fill('#setting-key', 'http.session_idle_s');
        await page.fill('#setting-value', '900');
        await page.click('#setting-form button');
        await page.waitForFunction(() => /http.session_idle_s is set/.test(document.getElementById('notice').textContent));
        check(run('config', 'get', 'http.session_idle_s').trim() === '900', 'the setting is stored');
        await page.goto(base + '/console/#engine/webhooks');
        await page.waitForSelector('#deliveries');
        const log = await page.textContent('#deliveries');
        check(log.includes('dead') && log.includes('delivered'), 'the deliveries: the failed one and the replayed one', log);

        // The Lua line, dry: the diff, and nothing stored.
        const countOf = (name) => page.evaluate(async (n) =>
            (await Rapport.call('GET', '/api/v1/pet?name=' + encodeURIComponent(n))).data.data.length, name);
        await page.goto(base + '/console/#rules');
        await page.waitForSelector('#scripts');
        check((await page.$$('#scripts tbody tr')).length > 0, 'the scripts are listed');
        await page.fill('#repl-code', 'crm.create("pet", {name = "Dry Dora"}) return 41 + 1');
        await page.click('#repl-run');
        await page.waitForSelector('#repl-diff');
        const dry = await page.textContent('#repl-out');
        check(dry.includes('nothing was saved') && dry.includes('42') && dry.includes('Dry Dora') &&
              dry.includes('pet'), 'a dry line shows its result and its diff', dry);
        check(await countOf('Dry Dora') === 0, 'a dry line stored nothing', await countOf('Dry Dora'));

        // For real: asked first; cancel stores nothing, yes stores it.
        await page.fill('#repl-code', 'crm.create("pet", {name = "Real Rex"})');
        await page.check('#repl-real');
        await page.click('#repl-run');
        await page.waitForSelector('#repl-confirm:not([hidden])');
        await page.click('#repl-no');
        check(await countOf('Real Rex') === 0, 'cancelling the confirm runs nothing');
        await page.click('#repl-run');
        await page.click('#repl-yes');
        await page.waitForSelector('#repl-mode.real');
        check(await countOf('Real Rex') === 1, 'run for real, the line saved its record');
        const real = await page.textContent('#repl-diff');
        check(real.includes('Real Rex'), 'the real run lists what it changed', real);

        // Users and tokens: the roles beside them, admin's saying it grants everything.
        await page.goto(base + '/console/#engine/access');
        await page.waitForSelector('#roles tr[data-role="admin"]', {timeout: 5000});
        const adminRole = await page.textContent('#roles tr[data-role="admin"]');
        check(adminRole.includes('grants everything'), 'the roles are listed', adminRole);

        // A tablet's width: nothing wider than the window (wide tables scroll in their box).
        await page.setViewportSize({width: 800, height: 1000});
        for (const hash of ['#engine/jobs', '#engine/access', '#engine/settings', '#rules']) {
            await page.goto(base + '/console/' + hash);
            await page.waitForSelector('main h1');
            await page.waitForLoadState('networkidle');
            const wide = await page.evaluate(() => document.documentElement.scrollWidth);
            check(wide <= 800, `${hash} fits a tablet's width`, wide);
        }
        await page.setViewportSize({width: 1280, height: 800});

        // Persian lays the page out right to left.
        await page.selectOption('#lang', 'fa');
        await page.waitForFunction(() => document.documentElement.dir === 'rtl');
        await page.goto(base + '/console/#engine/jobs');
        await page.waitForSelector('#engine-jobs');
        check((await page.textContent('main h1')) === 'موتورخانه', 'the engine room in Persian',
              await page.textContent('main h1'));
        await page.selectOption('#lang', 'en');
        await page.waitForFunction(() => document.documentElement.dir === 'ltr');

        // A reader: neither page offered, and the routes refuse her.
        await page.click('#signout');
        await page.waitForSelector('#signin:not([hidden])', {timeout: 5000});
        await signIn(page, 'rita', 'rita password 1');
        const rnav = await page.$$eval('#nav a', (as) => as.map((a) => a.dataset.page));
        check(!rnav.includes('engine') && !rnav.includes('rules'), 'a reader is offered neither page', rnav);
        const refused = await page.evaluate(async () => {
            const out = [];
            for (const [m, p] of [['GET', 'events'], ['GET', 'dead'], ['GET', 'engine'],
                                  ['POST', 'eval'], ['GET', 'tokens']])
                out.push((await Rapport.call(m, '/api/v1/admin/' + p, m === 'POST' ? {code: 'return 1'} : undefined)).status);
            return out;
        });
        check(refused.every((s) => s === 403), 'the admin routes refuse a reader', refused);
        await page.goto(base + '/console/#engine');
        await page.waitForFunction(() => document.getElementById('error').textContent !== '', null, {timeout: 5000});
        check(/admins/.test(await page.textContent('#error')), 'the page says the server refused', await page.textContent('#error'));

        check(failed.length === 0, 'no request failed', failed);
        check(violations.length === 0, 'no CSP violation', violations);
        // The reader's refusals above are 403s the browser logs as console errors: expected.
        // Every refusal was one we meant: the frame's /auth/me while signed out (401), the
        // reader's admin calls (403), the bad role (422). The browser logs each as a console error, and its own
        // /favicon.ico (404, not a page request): those are the only console errors allowed.
        const odd = statuses.filter((x) => !/^401 .*\/api\/v1\/auth\/me$/.test(x) &&
                                           !/^403 .*\/api\/v1\/admin\//.test(x) &&
                                           !/^422 .*\/api\/v1\/admin\/settings$/.test(x));
        check(odd.length === 0, 'no answer refused but those meant', odd);
        const unexpected = errors.filter((e) =>
            !/^Failed to load resource: the server responded with a status of (401|403|404|422)/.test(e));
        check(unexpected.length === 0, 'no script error on the pages', unexpected);
    } finally {
        await browser.close();
        rx.close();
    }
}

runMain(main);

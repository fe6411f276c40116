// lib.js — what the browser tests share: counting checks, running rapport, waiting for a
// condition, a free loopback port, and the sign-in link in the mail the test's SMTP server
// (aiosmtpd with a Maildir) received. Not a test itself (run.sh runs *.test.js).
'use strict';
const {execFileSync} = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');

const rapport = process.env.RAPPORT || 'build/rapport';
const counts = {passed: 0, failed: 0};

function check(cond, what, detail) {
    if (cond) {
        counts.passed++;
    } else {
        counts.failed++;
        console.error('FAIL: ' + what + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
    }
}

// Prints the tally and ends the process, failing when a check failed.
function finish() {
    console.log(`${counts.passed} passed, ${counts.failed} failed`);
    process.exit(counts.failed ? 1 : 0);
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const run = (...args) => execFileSync(rapport, args, {encoding: 'utf8'});

function freePort() {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, '127.0.0.1', () => {
            const p = s.address().port;
            s.close(() => resolve(p));
        });
    });
}

async function until(what, fn, ms = 10000) {
    for (let waited = 0; waited < ms; waited += 50) {
        const v = fn();
        if (v)
            return v;
        await sleep(50);
    }
    throw new Error('timed out waiting for ' + what);
}

// The sign-in token in the Nth message (1 the first) delivered to Maildir @p mbox, oldest
// first, or null before it arrives; the message is read by Python's email package.
function tokenInMail(mbox, n = 1) {
    const dir = path.join(mbox, 'new');
    const files = (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
        .sort((a, b) => fs.statSync(path.join(dir, a)).mtimeMs - fs.statSync(path.join(dir, b)).mtimeMs);
    if (files.length < n)
        return null;
    const out = execFileSync('python3', ['-c', `import sys, email, email.policy, re
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
t = re.findall(r"/portal/#token=([A-Za-z0-9_-]+)", m.get_body(("plain",)).get_content())
print(t[0] if t else "")`, path.join(dir, files[n - 1])], {encoding: 'utf8'}).trim();
    return out || null;
}

// RP_SHOTS=DIR keeps a screenshot of each main page there (never in the repository).
async function shot(page, name) {
    if (process.env.RP_SHOTS)
        await page.screenshot({path: require('path').join(process.env.RP_SHOTS, name + '.png'),
                               fullPage: true});
}

// smtpStart(port, maildir): a real SMTP server (Debian's aiosmtpd) delivering to the Maildir;
// the caller kills it when done.
function smtpStart(port, maildir) {
    return require('child_process').spawn('/usr/bin/python3',
        ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox',
         maildir], {stdio: 'ignore'});
}

// runMain(main): runs a test's main, then says the counts; an exception fails the test.
function runMain(main) {
    main().then(() => finish(), (e) => {
        console.error('FAIL: ' + (e && e.stack || e));
        process.exit(1);
    });
}

module.exports = {check, finish, sleep, run, freePort, until, tokenInMail, shot, smtpStart, runMain};

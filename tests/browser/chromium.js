// What the console scripts share: headless Chromium started the way the
// tests need it, the shell that runs a script and reports, and reading the
// environment it is given.
'use strict';

const { chromium } = require('playwright-core');

/** An environment variable the script needs (an error when unset). */
function env(k) {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
}

/** Headless Chromium (Debian `chromium`, or $CHROMIUM). */
function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic', '--no-first-run'],
  });
}

/**
 * Run `body(browser)` on a fresh browser, closed afterwards; print what it
 * returns as one JSON line, or exit non-zero with `what` and the error.
 */
function run(what, body) {
  (async () => {
    const browser = await launch();
    try {
      return await body(browser);
    } finally {
      await browser.close();
    }
  })().then(
    (seen) => console.log(JSON.stringify(seen)),
    (e) => {
      console.error(`${what} failed: ${e.stack || e}`);
      process.exit(1);
    },
  );
}

/**
 * A new page of the size the console tests use (20 s default timeout) whose
 * script errors, CSP violations and console errors are pushed to `problems`,
 * except the console's report of a request that failed with one of the
 * `expected` HTTP statuses.
 */
async function watchedPage(browser, problems, expected) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.setDefaultTimeout(20000);
  const allowed = new RegExp(`status of (${expected.join('|')}) `);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !allowed.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  return page;
}

module.exports = { env, launch, run, watchedPage };

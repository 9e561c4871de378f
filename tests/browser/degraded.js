// The web console of a medic node in degraded mode (etcd without quorum),
// in real headless Chromium, driven by tests/e2e/ha.rs.
//
// Environment:
//   MEDIC_URL   the node's base URL
//   SHOT        where the screenshot goes
// Prints one JSON line: the banner's text, the rows listed and the spooled
// events' rows; exits
// non-zero when the banner does not show or the page fails.
'use strict';

const { run } = require('./chromium');

run('degraded console test', async (browser) => {
  const problems = [];
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(process.env.MEDIC_URL + '/');
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForSelector('#degraded:not([hidden])');
  // What this node spooled: listed as rows under the banner.
  await page.waitForSelector('#spooled:not([hidden]) #spool-rows tr');
  const seen = {
    banner: await page.locator('#degraded').innerText(),
    rows: await page.locator('#rows .tr').count(),
    spooled: await page.locator('#spool-rows tr').allInnerTexts(),
  };
  if (process.env.SHOT) await page.screenshot({ path: process.env.SHOT });
  if (problems.length) throw new Error(problems.join('\n'));
  return seen;
});

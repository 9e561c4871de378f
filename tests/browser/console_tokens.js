// The web console against a medic with API tokens (real 401 and 403 from
// medic, not a stand-in), driven by tests/e2e/console.rs.
//
// Environment:
//   MEDIC_URL        medic's base URL
//   ACK_ID           a firing incident to acknowledge
//   VIEWER_TOKEN     a token with role viewer
//   RESPONDER_TOKEN  a token with role responder
//   SHOT_DIR         where the screenshot goes
// Prints one JSON line with what it saw; exits non-zero with a message on
// the first thing that is wrong.
'use strict';

const path = require('path');
const { env, run, watchedPage } = require('./chromium');

run('console token test', async (browser) => {
  const base = env('MEDIC_URL');
  const ackId = env('ACK_ID');
  const seen = {};
  const problems = [];
  const page = await watchedPage(browser, problems, [401, 403]);
  const useToken = async (t) => {
    if (!(await page.locator('#settings[open]').count())) await page.click('#settings summary');
    await page.fill('#token', t);
    await page.click('#settings-save');
  };

  // No token: medic answers 401 and the console asks for one.
  await page.goto(base + '/console/#/');
  await page.waitForSelector('#auth:not([hidden])');
  seen.without = await page.locator('#auth').innerText();
  if (!/401/.test(seen.without)) throw new Error(`without a token: ${seen.without}`);

  // A viewer reads, but medic refuses its acknowledgement.
  await useToken(env('VIEWER_TOKEN'));
  await page.waitForSelector('#auth', { state: 'hidden' });
  await page.goto(`${base}/console/#/incidents/${ackId}`);
  await page.waitForSelector(`#incident[data-id="${ackId}"][data-loaded="1"]`);
  await page.click('#ack');
  await page.waitForFunction(() => /refused \(403\)/.test(document.querySelector('#action-result')?.textContent || ''));
  seen.viewerAck = await page.locator('#action-result').innerText();
  seen.stateAfterViewer = await page.locator('#inc-state').innerText();

  // A responder acknowledges, with no name typed: medic records the token's owner.
  await useToken(env('RESPONDER_TOKEN'));
  await page.goto(`${base}/console/#/incidents/${ackId}`);
  await page.waitForSelector(`#incident[data-id="${ackId}"][data-loaded="1"]`);
  await page.click('#ack');
  await page.waitForFunction(() => document.querySelector('#inc-state')?.textContent === 'acknowledged');
  seen.holder = await page.locator('#holder').innerText();
  await page.screenshot({ path: path.join(env('SHOT_DIR'), 'console-token-ack.png') });
  if (problems.length) throw new Error(problems.join('\n'));
  return seen;
});

// The web console in real headless Chromium (playwright-core), driven by
// tests/e2e/console.rs, which starts medic and produces the incidents.
//
// Environment:
//   MEDIC_URL      medic's base URL
//   ACK_ID         a firing incident with series points: open it, check the
//                  chart, acknowledge it as WHO, silence it
//   ANOMALY_ID     an incident from the anomaly detector: its chart has the band
//   EVIL_ID        an incident whose labels and summary are HTML: shown as text
//   FLAPPING_ID    an incident marked flapping: the list shows it
//   MIN_ROWS       rows the list must show at least
//   WHO            the name typed into the console
//   SHOT_DIR       where screenshots go
// Prints one JSON line with what it saw; exits non-zero with a message on
// the first thing that is wrong.
'use strict';

const path = require('path');
const { env, run, watchedPage } = require('./chromium');

run('console test', async (browser) => {
  const base = env('MEDIC_URL');
  const ackId = env('ACK_ID');
  const anomalyId = env('ANOMALY_ID');
  const evilId = env('EVIL_ID');
  const flappingId = env('FLAPPING_ID');
  const minRows = Number(env('MIN_ROWS'));
  const who = env('WHO');
  const shots = env('SHOT_DIR');
  const seen = { screenshots: [] };
  const problems = [];

  // Script errors and CSP violations are failures; 400 (the bad silence),
  // 401 and 403 (the token checks below) are expected.
  const page = await watchedPage(browser, problems, [400, 401, 403]);
  const shot = async (name) => {
    const p = path.join(shots, name);
    await page.screenshot({ path: p });
    seen.screenshots.push(p);
  };

  // The list: `/` leads to the console, which marks the body once rendered.
  await page.goto(base + '/');
  await page.waitForSelector('body[data-ready="1"]');
  seen.url = page.url();
  seen.rows = await page.locator('#rows .tr').count();
  if (seen.rows < minRows) throw new Error(`the list shows ${seen.rows} rows, expected at least ${minRows}`);
  seen.firstRowState = await page.locator('#rows .tr').first().getAttribute('class');
  if (!/st-firing/.test(seen.firstRowState)) throw new Error(`firing incidents are not listed first: ${seen.firstRowState}`);

  // Attacker-controlled labels are text, never markup.
  const evilRow = page.locator(`#rows .tr[data-id="${evilId}"]`);
  seen.evilLabels = await evilRow.locator('.labels').innerText();
  seen.evilSummary = await evilRow.locator('.summary').innerText();
  if (!seen.evilLabels.includes('<img src=x onerror=')) throw new Error(`the HTML label is not shown as text: ${seen.evilLabels}`);
  if (!seen.evilSummary.includes('<script>')) throw new Error(`the HTML summary is not shown as text: ${seen.evilSummary}`);
  if (await page.locator('#incidents img, #incidents script').count()) throw new Error('a label became an element');
  seen.flappingMarked = await page.locator(`#rows .tr[data-id="${flappingId}"] .badge.flapping`).count();
  if (!seen.flappingMarked) throw new Error(`incident ${flappingId} is not marked flapping in the list`);
  await shot('console-list.png');

  // The anomaly incident: the chart with the expected band and the detection.
  await page.goto(`${base}/console/#/incidents/${anomalyId}`);
  await page.waitForSelector(`#incident[data-id="${anomalyId}"][data-loaded="1"]`);
  seen.anomalyBand = await page.locator('#series-chart rect.band').count();
  seen.anomalyEvidence = await page.locator('#evidence').innerText();
  if (!seen.anomalyBand) throw new Error('the anomaly chart has no band');
  if (!/Anomaly score/.test(seen.anomalyEvidence)) throw new Error(`no anomaly evidence: ${seen.anomalyEvidence}`);

  // The Alertmanager incident has no series: the page says so.
  await page.goto(`${base}/console/#/incidents/${evilId}`);
  await page.waitForSelector(`#incident[data-id="${evilId}"][data-loaded="1"]`);
  seen.evilNoPoints = await page.locator('#chart .no-points').count();
  if (!seen.evilNoPoints) throw new Error('no "no points" message for an incident without series');

  // Back to the list, open the firing incident by clicking its row.
  await page.goto(base + '/console/');
  await page.waitForSelector('body[data-ready="1"]');
  await page.click(`#rows .tr[data-id="${ackId}"] .summary`);
  await page.waitForSelector(`#incident[data-id="${ackId}"][data-loaded="1"]`);
  seen.stateBefore = await page.locator('#inc-state').innerText();
  seen.chartPath = (await page.locator('#series-chart path.line').getAttribute('d') || '').length;
  seen.detectionMarked = await page.locator('#series-chart line.detected').count();
  if (!seen.chartPath) throw new Error('the chart has no line');
  if (!seen.detectionMarked) throw new Error('the chart does not mark the detection');

  // Acknowledging needs a name (no tokens configured): type it, then ack.
  await page.click('#settings summary');
  await page.fill('#who', who);
  await page.click('#settings summary');
  await page.fill('#ack-comment', 'looking at it from the console');
  await page.click('#ack');
  await page.waitForFunction(() => document.querySelector('#inc-state')?.textContent === 'acknowledged');
  seen.stateAfter = await page.locator('#inc-state').innerText();
  seen.holder = await page.locator('#holder').innerText();
  seen.ackResult = await page.locator('#action-result').innerText();
  if (seen.holder !== who) throw new Error(`held by ${seen.holder}, expected ${who}`);
  await shot('console-incident.png');

  // A silence from the incident's labels, then a bad one, refused with the API's reason.
  await page.selectOption('#sil-duration', '1h');
  await page.fill('#sil-comment', 'deploy in progress');
  await page.click('#silence');
  await page.waitForFunction(() => /^Silence \d+ created/.test(document.querySelector('#action-result')?.textContent || ''));
  seen.silenceResult = await page.locator('#action-result').innerText();
  await page.fill('#sil-matchers', '{job=~"("}');
  await page.click('#silence');
  await page.waitForFunction(() => /refused/.test(document.querySelector('#action-result')?.textContent || ''));
  seen.badSilenceResult = await page.locator('#action-result').innerText();

  // The token contract, answered by a stand-in for medic's API (this medic
  // has no tokens): 401 → the token prompt; a pasted token goes on every
  // request; 403 on an action → said plainly.
  await page.route('**/api/v1/incidents?**', (r) => r.fulfill({
    status: 401, contentType: 'application/json', body: JSON.stringify({ error: 'missing API token' }) }));
  await page.goto(base + '/console/#/');
  await page.waitForSelector('#auth:not([hidden])');
  seen.auth401 = await page.locator('#auth').innerText();
  if (!/401/.test(seen.auth401) || !/missing API token/.test(seen.auth401)) throw new Error(`401 shown as: ${seen.auth401}`);
  if (!(await page.locator('#settings[open]').count())) throw new Error('no token prompt on 401');
  await page.unroute('**/api/v1/incidents?**');
  await page.fill('#token', 'tok-e2e');
  const [req] = await Promise.all([
    page.waitForRequest((q) => q.url().includes('/api/v1/incidents?')),
    page.click('#settings-save'),
  ]);
  seen.authorization = req.headers().authorization;
  if (seen.authorization !== 'Bearer tok-e2e') throw new Error(`sent Authorization: ${seen.authorization}`);
  await page.waitForSelector('#auth', { state: 'hidden' });
  await page.route('**/api/v1/incidents/*/ack', (r) => r.fulfill({
    status: 403, contentType: 'application/json', body: JSON.stringify({ error: 'token of alice has role viewer; responder needed' }) }));
  await page.goto(`${base}/console/#/incidents/${ackId}`);
  await page.waitForSelector(`#incident[data-id="${ackId}"][data-loaded="1"]`);
  await page.click('#ack');
  await page.waitForFunction(() => /refused \(403\)/.test(document.querySelector('#action-result')?.textContent || ''));
  seen.ack403 = await page.locator('#action-result').innerText();
  if (!/responder needed/.test(seen.ack403)) throw new Error(`403 shown as: ${seen.ack403}`);
  if (await page.locator('#auth[hidden]').count()) throw new Error('no token prompt on 403');
  await page.unroute('**/api/v1/incidents/*/ack');
  await page.click('#token-forget');

  seen.pwned = await page.evaluate(() => window.__pwned === undefined ? null : window.__pwned);
  if (seen.pwned !== null) throw new Error('injected script ran');
  if (problems.length) throw new Error(problems.join('\n'));
  return seen;
});

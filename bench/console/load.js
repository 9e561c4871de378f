// bench/console/run.sh's measuring half: seeds INCIDENTS open incidents into
// a running medic through its Alertmanager webhook, then times the console
// in headless Chromium N times and /api/v1/incidents from Node. Writes
// bench/results/console.md (medians, with min and max).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execSync } = require('child_process');
const { chromium } = require('playwright-core');

const BASE = process.env.MEDIC_URL;
const N = Number(process.env.N || 10);
const INCIDENTS = Number(process.env.INCIDENTS || 1000);
const LIST = '/api/v1/incidents?state=open&limit=5000'; // what the console asks

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function post(p, body) {
  const r = await fetch(BASE + p, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`POST ${p}: ${r.status} ${await r.text()}`);
  return r.json();
}

// Alerts shaped like a real fleet's: a dozen rules over 200 services.
function alerts(n) {
  const rules = ['HighLatency', 'HighErrorRate', 'DiskFull', 'InstanceDown', 'CertExpiring', 'QueueBacklog',
    'MemoryPressure', 'ReplicaLag', 'PodCrashLooping', 'SLOBurn', 'TargetMissing', 'NTPDrift'];
  const sev = ['critical', 'warning', 'warning', 'info'];
  const out = [];
  for (let i = 0; i < n; i++) {
    const rule = rules[i % rules.length];
    const service = `svc-${String(i % 200).padStart(3, '0')}`;
    out.push({
      status: 'firing',
      labels: { alertname: rule, service, instance: `host-${i}:9100`, env: i % 5 ? 'prod' : 'staging',
        team: `team-${i % 9}`, severity: sev[i % sev.length] },
      annotations: { summary: `${rule} on ${service} (host-${i}): above its limit for 5m` },
    });
  }
  return out;
}

async function seed() {
  const t0 = Date.now();
  const r = await post('/api/v1/alertmanager', { version: '4', status: 'firing', receiver: 'medic', alerts: alerts(INCIDENTS) });
  let open = [];
  for (let i = 0; i < 600; i++) {
    open = (await (await fetch(BASE + LIST)).json()).incidents;
    if (open.length >= INCIDENTS) break;
    await sleep(100);
  }
  if (open.length < INCIDENTS) throw new Error(`only ${open.length} of ${INCIDENTS} incidents opened: ${JSON.stringify(r)}`);
  const seeded = Date.now() - t0;
  // Every tenth is held by someone, as on a real night.
  for (const i of open.filter((x) => x.id % 10 === 0)) {
    await post(`/api/v1/incidents/${i.id}/ack`, { who: `oncall-${i.id % 3}`, comment: 'looking' });
  }
  return { seeded, open: open.length };
}

async function apiTimes() {
  const list = [], bytes = [], flapping = [];
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    const text = await (await fetch(BASE + LIST)).text();
    list.push(performance.now() - t);
    bytes.push(Buffer.byteLength(text));
    t = performance.now();
    await (await fetch(BASE + '/api/v1/incidents/flapping')).text();
    flapping.push(performance.now() - t);
  }
  return { list, bytes, flapping };
}

// N loads of the console, each expecting `rows` rows.
async function browserTimes(rows) {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  const runs = [];
  try {
    for (let i = 0; i < N; i++) {
      // A fresh context: empty cache, so the assets are fetched too.
      const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      const page = await ctx.newPage();
      await page.goto(BASE + '/console/');
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60000 });
      await page.waitForFunction(() => window.medicTimings && window.medicTimings.firstFrameAt, null, { timeout: 60000 });
      const r = await page.evaluate(async () => {
        const t = window.medicTimings;
        const api = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/v1/incidents?'));
        // A full re-render, as every refresh does, with layout forced.
        const f = document.getElementById('filter');
        let s = performance.now();
        f.value = 'x'; f.dispatchEvent(new Event('input'));
        f.value = ''; f.dispatchEvent(new Event('input'));
        void document.body.offsetHeight;
        const rerender = (performance.now() - s) / 2;
        return {
          rows: document.querySelectorAll('#rows .tr').length,
          ready: t.firstRenderAt, frame: t.firstFrameAt, fetch: t.listFetchMs, build: t.listRenderMs,
          apiDuration: api ? api.duration : null, apiTransfer: api ? api.encodedBodySize : null,
          rerender, heap: performance.memory ? performance.memory.usedJSHeapSize : null,
        };
      });
      if (r.rows !== rows) throw new Error(`run ${i + 1}: ${r.rows} rows rendered, expected ${rows}`);
      runs.push(r);
      await ctx.close();
    }
    return { runs, version: browser.version() };
  } finally {
    await browser.close();
  }
}

// A table row: the median (min–max), and the empty list's median if given.
function row(name, xs, unit, empty) {
  const f = (v) => v.toFixed(1);
  const base = empty ? ` ${f(median(empty))} ${unit} |` : '';
  return `| ${name} | **${f(median(xs))} ${unit}** (${f(Math.min(...xs))}–${f(Math.max(...xs))}) |${base}`;
}

async function main() {
  // The same loads with no incidents first: what the page costs anyway.
  const e = await browserTimes(0);
  const seed0 = await seed();
  const api = await apiTimes();
  const b = await browserTimes(INCIDENTS);
  const col = (k, scale) => b.runs.map((r) => r[k] / (scale || 1));
  const ecol = (k, scale) => e.runs.map((r) => r[k] / (scale || 1));
  const bin = process.env.MEDIC_BIN || '';
  const profile = /\/release\//.test(bin) ? 'release' : /\/debug\//.test(bin) ? 'debug' : 'unknown';
  let commit = '';
  try { commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim(); } catch (e) { commit = '?'; }
  const md = `# Web console with ${INCIDENTS} open incidents

Script: \`bench/console/run.sh\` (this file is its output). medic (${profile} build,
\`${path.basename(bin)}\` at commit ${commit}) with an Alertmanager webhook source;
${INCIDENTS} alerts in one webhook POST open ${INCIDENTS} incidents (${seed0.seeded} ms until all were
listed), every tenth is then acknowledged through the API. Each alert has 6 labels and a
one-line summary. Headless Chromium ${b.version} (Debian) through playwright-core, viewport
1000×700, ${N} page loads of \`/console/\`, each in a fresh browser context (empty cache: the
embedded assets are fetched too). Machine: ${os.cpus().length} shared cores, load average
${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end (other builds were running);
medic, Chromium and the script share it. ${new Date().toISOString().slice(0, 10)}.

## In the browser (${N} loads each)

| what | ${INCIDENTS} open incidents: median (min–max) | no incidents: median |
|---|---|---|
${row('navigation start → list in the DOM (`data-ready`)', col('ready'), 'ms', ecol('ready'))}
${row('navigation start → next frame after it', col('frame'), 'ms', ecol('frame'))}
${row('both list requests (incidents + flapping), as the app saw them', col('fetch'), 'ms', ecol('fetch'))}
${row('building and inserting the rows (one innerHTML)', col('build'), 'ms', ecol('build'))}
${row('a full re-render, as a refresh with changes does (layout forced)', col('rerender'), 'ms', ecol('rerender'))}
${row('`/api/v1/incidents` resource timing', col('apiDuration'), 'ms', ecol('apiDuration'))}
${row('`/api/v1/incidents` body', col('apiTransfer', 1024), 'KiB', ecol('apiTransfer', 1024))}
${b.runs[0].heap ? row('JS heap after load', col('heap', 1048576), 'MiB', ecol('heap', 1048576)) : ''}

Rows rendered each time: ${b.runs[0].rows}. Rows are laid out and painted only when on screen
(CSS \`content-visibility: auto\`), so the frame after the list costs about what fifty rows do.

## The API from Node (${N} requests, keep-alive)

| what | median (min–max) |
|---|---|
${row('`GET ' + LIST + '`', api.list, 'ms')}
${row('its body', api.bytes.map((x) => x / 1024), 'KiB')}
${row('`GET /api/v1/incidents/flapping`', api.flapping, 'ms')}

The list is one request and one table build; the console makes no request per row.
The body is plain JSON (no compression).
`;
  const out = path.join(__dirname, '..', 'results', 'console.md');
  fs.writeFileSync(out, md.replace(/\n\n\n/g, '\n\n'));
  process.stdout.write(md);
  console.log(`\nwrote ${out}`);
}

main().catch((e) => { console.error(`console bench failed: ${e.stack || e}`); process.exit(1); });

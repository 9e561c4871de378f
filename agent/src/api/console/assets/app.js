// medic's web console. Plain JavaScript, no dependencies, served by medic.
//
// Every string that comes from the API (labels, summaries, names, messages)
// goes through esc() before it becomes markup: labels are written by
// whoever can send an alert. Tables are built as one string and set with
// one innerHTML; the incident list's rows are laid out and painted only
// when scrolled into view (CSS content-visibility), so a thousand render
// about as fast as fifty.
'use strict';

(function () {
  const REFRESH_MS = 5000;
  const OPEN_LIMIT = 5000;
  const ALL_LIMIT = 2000;

  // --- small helpers -----------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  function esc(v) {
    return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, (c) => ESC[c]);
  }
  // A class name from API data: only known shapes, never raw text.
  function cls(v) {
    return /^[a-z_]{1,20}$/.test(String(v)) ? String(v) : 'other';
  }

  const saved = {
    get(k, d) {
      try { const v = localStorage.getItem(k); return v === null ? d : v; } catch (e) { return d; }
    },
    set(k, v) {
      try { if (v === '' || v === null) localStorage.removeItem(k); else localStorage.setItem(k, v); } catch (e) { /* private mode */ }
    },
  };

  const settings = {
    who: saved.get('medic.who', ''),
    token: saved.get('medic.token', ''),
    all: saved.get('medic.all', '0') === '1',
  };

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtClock(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtSpan(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s}s`;
    let m = Math.floor(s / 60); s %= 60;
    if (m < 60) return `${m}m ${s}s`;
    let h = Math.floor(m / 60); m %= 60;
    if (h < 24) return `${h}h ${m}m`;
    const d = Math.floor(h / 24); h %= 24;
    return `${d}d ${h}h`;
  }
  function fmtNum(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return '—';
    if (typeof v !== 'number') return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e7 || a < 1e-3)) return v.toExponential(2);
    return String(Number(v.toPrecision(5)));
  }
  function timeCell(ms) {
    return ms === null || ms === undefined ? '—'
      : `<time title="${esc(new Date(ms).toISOString())}">${esc(fmtTime(ms))}</time>`;
  }
  function labelsHtml(labels) {
    let h = '';
    for (const k of Object.keys(labels || {})) {
      h += `<span class="label"><b>${esc(k)}</b>=${esc(labels[k])}</span> `;
    }
    return h;
  }
  // `k=v` joined by `sep`; with `row`, without what the row shows already.
  function labelText(labels, sep, row) {
    return Object.keys(labels || {})
      .filter((k) => !row || !((k === 'alertname' && labels[k] === row.detector) || (k === 'severity' && labels[k] === row.severity)))
      .map((k) => `${k}=${labels[k]}`).join(sep);
  }
  // Label matchers in the selector syntax medic parses (quotes escaped).
  function matchersOf(labels) {
    const q = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')
      .replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
    return '{' + Object.keys(labels || {}).map((k) => `${k}="${q(labels[k])}"`).join(', ') + '}';
  }

  // --- the API -----------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (settings.token) headers.Authorization = 'Bearer ' + settings.token;
    let r;
    try {
      r = await fetch(path, {
        method: opts.method || 'GET',
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new ApiError(0, `cannot reach medic (${e.message})`);
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!r.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : (text.trim().slice(0, 300) || r.statusText);
      throw new ApiError(r.status, msg);
    }
    if (data === null) throw new ApiError(r.status, 'medic answered with something that is not JSON');
    return { data, text, bytes: text.length };
  }

  // 401/403 get the token prompt; other errors go where they happened.
  function showError(e, el) {
    if (e.status === 401 || e.status === 403) {
      showAuth(e, 'read');
      if (el) { el.hidden = true; }
      return;
    }
    if (el) {
      el.textContent = e.status ? `Error ${e.status}: ${e.message}` : e.message;
      el.hidden = false;
    }
  }
  // What the banner is about: a refused 'read' goes once a read succeeds;
  // a refused 'action' stays until an action succeeds or the token changes.
  let authScope = null;
  function showAuth(e, scope) {
    authScope = scope;
    const a = $('auth');
    const what = e.status === 401
      ? 'medic needs an API token for this (401): '
      : 'Your API token may not do this (403): ';
    const hint = e.status === 401
      ? ' Paste a token below (role viewer to read; responder to acknowledge and silence).'
      : ' Reading needs role viewer; acknowledging and silencing need responder. Paste a token with that role below.';
    a.textContent = what + e.message + '.' + hint;
    a.hidden = false;
    $('settings').open = true;
    $('token').focus();
  }
  function clearAuth(scope) {
    if (scope === 'read' && authScope === 'action') return;
    $('auth').hidden = true;
    authScope = null;
  }

  // --- settings ------------------------------------------------------------------

  function showSettings() {
    $('who').value = settings.who;
    $('token').value = settings.token;
    $('whoami').textContent = (settings.who || 'name not set') + (settings.token ? ' · token set' : '');
    $('token-state').textContent = settings.token ? 'a token is saved' : 'no token';
  }

  // --- routing and refresh -------------------------------------------------------

  let view = null; // { kind: 'list' } | { kind: 'incident', id }
  let seq = 0; // bumps on every load; an older answer arriving late is dropped
  let timer = null;
  let listScroll = 0;

  function route() {
    const h = location.hash || '#/';
    const m = /^#\/incidents\/([^/?]+)$/.exec(h);
    if (view && view.kind === 'list') listScroll = window.scrollY;
    if (m) {
      view = { kind: 'incident', id: decodeURIComponent(m[1]) };
      $('list').hidden = true;
      $('incident').hidden = false;
      openIncident(view.id);
    } else {
      view = { kind: 'list' };
      $('incident').hidden = true;
      $('list').hidden = false;
      document.title = 'medic: incidents';
      window.scrollTo(0, listScroll);
    }
    refresh();
  }

  function refresh() {
    clearTimeout(timer);
    const mine = ++seq;
    const done = () => {
      if (mine === seq) { clearTimeout(timer); timer = setTimeout(tick, REFRESH_MS); }
    };
    const p = view.kind === 'list' ? loadList(mine) : loadIncident(view.id, mine);
    p.then(done, done);
    loadStatus();
  }

  // Degraded mode: the store (etcd) does not answer. Said plainly, on every
  // view; what the page shows meanwhile may be stale.
  async function loadStatus() {
    const el = $('degraded');
    try {
      const s = (await api('/api/v1/status')).data;
      if (s.store === 'degraded') {
        const lines = [s.message || 'Store unreachable: automated actions are paused; notifications are sent from this node directly'];
        if (s.node) lines.push(`This node: ${s.node}.`);
        if (s.spool) lines.push(`Incidents seen meanwhile and not yet in the store: ${s.spool.events_not_in_store}; notifications waiting: ${s.spool.notifications_pending}.`);
        lines.push('Incidents below are as last read from the store and may be out of date.');
        if (s.store_detail) lines.push(`(${s.store_detail})`);
        el.textContent = lines.join('\n');
        el.hidden = false;
      } else {
        el.hidden = true;
      }
      if (s.spool && s.spool.events_not_in_store > 0) await loadSpool();
      else $('spooled').hidden = true;
    } catch (e) {
      // 401/403 are the token prompt's; anything else shows in the list.
      el.hidden = true;
      $('spooled').hidden = true;
    }
  }

  // What this node spooled while the store was out of reach: each event
  // and where its notifications stand.
  async function loadSpool() {
    const events = (await api('/api/v1/spool')).data.events || [];
    let h = '';
    for (const e of events) {
      const sends = (e.notifications || [])
        .map((n) => `<span class="send ${cls(n.state)}">${esc(n.notifier)}: ${esc(n.state)}</span>`)
        .join(' ') || '<span class="muted">none planned yet</span>';
      h += `<tr class="sr"><td><span class="badge st-${e.event === 'opened' ? 'firing' : 'resolved'}">${esc(e.event)}</span></td>` +
        `<td class="sev sev-${cls(e.severity)}">${esc(e.severity)}</td>` +
        `<td>${esc(e.detector)}</td><td>${labelsHtml(e.labels)}</td>` +
        `<td>${timeCell(e.spooled_at)}</td><td>${sends}</td></tr>`;
    }
    $('spool-rows').innerHTML = h;
    $('spooled').hidden = events.length === 0;
  }
  function tick() {
    // A hidden tab does not poll; it refreshes when shown again.
    if (document.hidden) { timer = setTimeout(tick, REFRESH_MS); return; }
    refresh();
  }

  // --- the incident list ---------------------------------------------------------

  const STATE_RANK = { firing: 0, recovering: 1, acknowledged: 2, resolved: 3 };
  let lastList = null; // { incidents, flapping: Set, limited }

  async function loadList(mine) {
    const t0 = performance.now();
    const q = settings.all ? `state=all&limit=${ALL_LIMIT}` : `state=open&limit=${OPEN_LIMIT}`;
    try {
      const [inc, fl] = await Promise.all([
        api(`/api/v1/incidents?${q}`),
        api('/api/v1/incidents/flapping'),
      ]);
      if (mine !== seq) return;
      const fetched = performance.now();
      const incidents = inc.data.incidents || [];
      // Nothing changed (the usual refresh): only the ages move.
      const key = `${settings.all}\n${fl.text}\n${inc.text}`;
      if (lastList && lastList.key === key) {
        refreshAges();
      } else {
        lastList = {
          key,
          incidents,
          flapping: new Set(fl.data.flapping || []),
          limited: incidents.length >= (settings.all ? ALL_LIMIT : OPEN_LIMIT),
        };
        renderList();
      }
      clearAuth('read');
      $('list-error').hidden = true;
      $('updated').textContent = 'updated ' + fmtClock(Date.now());
      const t = window.medicTimings || (window.medicTimings = {});
      t.listFetchMs = fetched - t0;
      t.listRenderMs = performance.now() - fetched;
      t.listBytes = inc.bytes;
      t.rows = incidents.length;
      if (!document.body.dataset.ready) {
        // Marks for bench/console: the table is in the DOM, then drawn.
        t.firstRenderAt = performance.now();
        document.body.dataset.ready = '1';
        requestAnimationFrame(() => setTimeout(() => { t.firstFrameAt = performance.now(); }, 0));
      }
    } catch (e) {
      if (mine !== seq) return;
      showError(e, $('list-error'));
      if (lastList) $('updated').textContent = 'refresh failed at ' + fmtClock(Date.now());
    }
  }

  function refreshAges() {
    const now = Date.now();
    for (const td of $('rows').querySelectorAll('.age')) {
      td.textContent = fmtSpan(now - Number(td.dataset.t));
    }
  }

  function renderList() {
    if (!lastList) return;
    const now = Date.now();
    const needle = $('filter').value.trim().toLowerCase();
    const all = lastList.incidents.slice().sort((a, b) =>
      (STATE_RANK[a.state] ?? 9) - (STATE_RANK[b.state] ?? 9) || b.opened_at - a.opened_at || b.id - a.id);
    const counts = {};
    const parts = [];
    let shown = 0;
    for (const i of all) {
      counts[i.state] = (counts[i.state] || 0) + 1;
      if (needle) {
        let hay = `${i.id} ${i.detector} ${i.summary} ${i.acked_by || ''} ${i.state} ${i.severity}`;
        for (const k in i.labels) hay += ` ${k}=${i.labels[k]}`;
        if (!hay.toLowerCase().includes(needle)) continue;
      }
      shown++;
      const st = cls(i.state);
      const flap = lastList.flapping.has(i.id)
        ? ' <span class="badge flapping" title="keeps changing state; held open until it settles">flapping</span>' : '';
      const holder = i.acked_by
        ? `<span role="cell" title="acknowledged ${esc(fmtTime(i.acked_at))}">${esc(i.acked_by)}</span>`
        : '<span role="cell" class="muted">—</span>';
      parts.push(
        `<div role="row" class="tr st-${st}" data-id="${i.id}">` +
        `<span role="cell" class="num"><a href="#/incidents/${i.id}">${i.id}</a></span>` +
        `<span role="cell" class="state"><span class="badge st-${st}">${esc(i.state)}</span>${flap}</span>` +
        `<span role="cell" class="sev sev-${cls(i.severity)}">${esc(i.severity)}</span>` +
        `<span role="cell" class="age" data-t="${Number(i.opened_at)}" title="opened ${esc(fmtTime(i.opened_at))}">${esc(fmtSpan(now - i.opened_at))}</span>` +
        `<span role="cell">${esc(i.detector)}</span>` +
        `<span role="cell" class="summary" title="${esc(i.summary)}">${esc(i.summary)}</span>` +
        // Labels as one text node: fewer nodes to style than chips.
        `<span role="cell" class="labels" title="${esc(labelText(i.labels, '\n'))}">${esc(labelText(i.labels, '  ', i))}</span>` +
        `${holder}</div>`);
    }
    $('rows').innerHTML = parts.join('');
    const order = ['firing', 'recovering', 'acknowledged', 'resolved'];
    const byState = order.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(', ');
    $('counts').textContent = `${all.length} ${settings.all ? 'incidents' : 'open'}` +
      (byState ? ` (${byState})` : '') + (needle ? ` · ${shown} match` : '') +
      (lastList.limited ? ' · only the newest are listed' : '');
    const empty = $('list-empty');
    empty.hidden = shown > 0;
    empty.textContent = all.length === 0
      ? (settings.all ? 'No incidents recorded.' : 'No open incidents. All quiet.')
      : 'No incident matches the filter.';
  }

  // --- one incident --------------------------------------------------------------

  let current = null; // the loaded incident id, to fill the forms once
  let pickedSeries = 0;

  function openIncident(id) {
    current = null;
    pickedSeries = 0;
    const sec = $('incident');
    sec.dataset.id = id;
    delete sec.dataset.loaded;
    for (const k of ['inc-head', 'chart', 'evidence', 'timeline', 'notifications', 'runs']) $(k).innerHTML = '';
    $('inc-error').hidden = true;
    $('action-result').hidden = true;
    $('ack-comment').value = '';
    $('sil-comment').value = '';
    $('sil-matchers').value = '';
    document.title = `medic: incident ${id}`;
    window.scrollTo(0, 0);
  }

  async function loadIncident(id, mine) {
    if (!/^[0-9]+$/.test(id)) {
      showError(new ApiError(0, `"${id}" is not an incident number`), $('inc-error'));
      return;
    }
    try {
      const [d, s] = await Promise.all([
        api(`/api/v1/incidents/${id}`),
        api(`/api/v1/incidents/${id}/series`).catch((e) => ({ error: e })),
      ]);
      if (mine !== undefined && mine !== seq) return;
      renderIncident(d.data, s);
      clearAuth('read');
      $('inc-error').hidden = true;
      $('inc-updated').textContent = 'updated ' + fmtClock(Date.now());
      $('incident').dataset.loaded = '1';
    } catch (e) {
      if (mine !== undefined && mine !== seq) return;
      showError(e, $('inc-error'));
    }
  }

  function renderIncident(d, seriesAnswer) {
    const i = d.incident;
    const now = Date.now();
    const timeline = d.timeline || [];
    const flapping = timeline.some((e) => e.kind === 'flapping') && i.state !== 'resolved';
    const st = cls(i.state);
    $('incident').dataset.state = st;
    const holder = i.acked_by
      ? `acknowledged by <b id="holder">${esc(i.acked_by)}</b> at ${timeCell(i.acked_at)}`
      : '<span id="holder" class="muted">nobody has acknowledged it</span>';
    $('inc-head').innerHTML =
      `<h1>#${i.id} ${esc(i.detector)}</h1>` +
      `<p class="summary-line">${esc(i.summary)}</p>` +
      `<p><span id="inc-state" class="badge st-${st}">${esc(i.state)}</span> ` +
      `<span class="sev sev-${cls(i.severity)}">${esc(i.severity)}</span>` +
      (flapping ? ' <span class="badge flapping">flapping</span>' : '') +
      ` · ${holder}</p>` +
      `<p class="labels">${labelsHtml(i.labels)}</p>` +
      `<p class="facts">opened ${timeCell(i.opened_at)} (${esc(fmtSpan(now - i.opened_at))} ago)` +
      ` · updated ${timeCell(i.updated_at)}` +
      (i.resolved_at ? ` · resolved ${timeCell(i.resolved_at)}` : '') +
      ` · ${esc(i.occurrences)} occurrence${i.occurrences === 1 ? '' : 's'}` +
      ` · fingerprint <code>${esc(i.fingerprint)}</code></p>`;

    // The forms: filled once per incident, so a refresh never eats typing.
    if (current !== i.id) {
      current = i.id;
      $('sil-matchers').value = matchersOf(i.labels);
    }
    const resolved = i.state === 'resolved';
    $('ack').disabled = resolved;
    $('ack-note').textContent = resolved
      ? 'Resolved: there is nothing to acknowledge.'
      : i.acked_by
        ? `${i.acked_by} holds it; acknowledging again makes you the holder.`
        : 'Says "I have it": escalation stops and approval steps may go on.';

    $('chart').innerHTML = chartHtml(seriesAnswer, i, timeline);
    bindPick(seriesAnswer, i, timeline);
    $('evidence').innerHTML = evidenceHtml(timeline);
    $('timeline').innerHTML = timelineHtml(timeline);
    $('notifications').innerHTML = notificationsHtml(d.notifications || []);
    $('runs').innerHTML = runsHtml(d.runs || [], d.actions || []);
  }
  // The series picker (more than one series) redraws the chart in place.
  function bindPick(seriesAnswer, i, timeline) {
    const pick = $('series-pick');
    if (!pick) return;
    pick.addEventListener('change', () => {
      pickedSeries = Number(pick.value) || 0;
      $('chart').innerHTML = chartHtml(seriesAnswer, i, timeline);
      bindPick(seriesAnswer, i, timeline);
    });
  }

  // The detection's evidence: the `opened` event's data (the anomaly
  // detector adds its expected band, score and model).
  function openedEvidence(timeline) {
    const e = timeline.find((x) => x.kind === 'opened');
    return e && e.data && typeof e.data === 'object' ? e.data : null;
  }

  const EVIDENCE_KEYS = [
    ['reason', 'Reason'], ['observed', 'Observed'], ['threshold', 'Threshold'], ['expected', 'Expected'],
    ['lower', 'Band lower'], ['upper', 'Band upper'], ['score', 'Anomaly score'], ['model', 'Model'],
    ['warming_up', 'Warming up'], ['at', 'Judged at'], ['since', 'Condition since'],
  ];
  function evidenceHtml(timeline) {
    const items = timeline.filter((e) => (e.kind === 'opened' || e.kind === 'evidence') && e.data && typeof e.data === 'object');
    if (!items.length) return '<p class="muted">No detector evidence recorded.</p>';
    // The first detection and, if it fired again, the latest.
    const show = items.length > 1 ? [items[0], items[items.length - 1]] : [items[0]];
    return show.map((e, n) => {
      let rows = '';
      const rest = Object.assign({}, e.data);
      for (const [k, label] of EVIDENCE_KEYS) {
        if (!(k in rest)) continue;
        const v = rest[k];
        delete rest[k];
        if (v === null || v === undefined) continue;
        const shown = (k === 'at' || k === 'since') && typeof v === 'number' ? timeCell(v) : esc(typeof v === 'number' ? fmtNum(v) : v);
        rows += `<tr><th>${esc(label)}</th><td>${shown}</td></tr>`;
      }
      for (const k of Object.keys(rest)) {
        const v = rest[k];
        rows += `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : typeof v === 'number' ? fmtNum(v) : v)}</td></tr>`;
      }
      const title = n === 0 ? `At detection (${esc(fmtTime(e.at))})` : `Latest (${esc(fmtTime(e.at))})`;
      return `<table class="kv evidence"><caption>${title}</caption>${rows}</table>`;
    }).join('');
  }

  function timelineHtml(timeline) {
    if (!timeline.length) return '<p class="muted">Nothing recorded yet.</p>';
    const rows = timeline.map((e) => {
      const hasData = e.data !== null && e.data !== undefined && !(typeof e.data === 'object' && Object.keys(e.data).length === 0);
      const data = hasData
        ? `<details><summary>data</summary><pre>${esc(JSON.stringify(e.data, null, 2))}</pre></details>` : '';
      return `<tr class="k-${cls(e.kind)}"><td class="nowrap">${timeCell(e.at)}</td>` +
        `<td><span class="kind k-${cls(e.kind)}">${esc(e.kind)}</span></td>` +
        `<td>${esc(e.actor)}</td><td>${esc(e.message)}${data}</td></tr>`;
    });
    return `<table class="grid timeline"><thead><tr><th>When</th><th>What</th><th>Who</th><th>Message</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  }

  function notificationsHtml(ns) {
    if (!ns.length) return '<p class="muted">No notifications for this incident (no route matched, muted, or not due yet).</p>';
    const rows = ns.map((n) =>
      `<tr><td class="nowrap">${timeCell(n.created_at)}</td><td>${esc(n.notifier)}</td>` +
      `<td>${esc(n.event)}${n.level ? ` (level ${esc(n.level)})` : ''}</td>` +
      `<td><span class="badge d-${cls(n.state)}">${esc(n.state)}</span></td>` +
      `<td class="num">${esc(n.attempts)}</td><td class="nowrap">${timeCell(n.finished_at)}</td>` +
      `<td>${esc(n.detail || '')}</td></tr>`);
    return `<table class="grid"><thead><tr><th>Queued</th><th>Notifier</th><th>Event</th><th>Delivery</th><th>Attempts</th><th>Finished</th><th>Detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  }

  function runsHtml(runs, actions) {
    if (!runs.length && !actions.length) return '<p class="muted">No runbook ran for this incident.</p>';
    let h = '';
    for (const r of runs) {
      h += `<h3>Run ${esc(r.id)}: ${esc(r.runbook)} <span class="badge r-${cls(r.state)}">${esc(r.state)}</span></h3>` +
        `<p class="muted">started ${timeCell(r.started_at)}${r.finished_at ? `, finished ${timeCell(r.finished_at)}` : ''}` +
        `${r.detail ? ' · ' + esc(r.detail) : ''}</p>`;
      const mine = actions.filter((a) => a.run_id === r.id);
      if (mine.length) h += actionsTable(mine);
    }
    const orphans = actions.filter((a) => !runs.some((r) => r.id === a.run_id));
    if (orphans.length) h += actionsTable(orphans);
    return h;
  }
  function actionsTable(actions) {
    const rows = actions.map((a) => {
      const verified = a.verified === true ? 'passed' : a.verified === false ? 'failed' : '—';
      return `<tr><td class="nowrap">${timeCell(a.intended_at)}</td><td>${esc(a.step_name || a.step)}</td>` +
        `<td>${esc(a.executor)}</td><td>${esc(a.target)}</td><td class="num">${esc(a.attempt)}</td>` +
        `<td><span class="badge a-${cls(a.state)}">${esc(a.state)}</span></td><td>${esc(verified)}</td>` +
        `<td>${esc(a.detail || '')}</td></tr>`;
    });
    return `<table class="grid"><thead><tr><th>Intended</th><th>Step</th><th>Executor</th><th>Target</th><th>Attempt</th><th>Result</th><th>Verify</th><th>Detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  }

  // --- the chart -----------------------------------------------------------------

  function seriesName(s) {
    return s.name + matchersOf(s.labels);
  }

  function chartHtml(answer, incident, timeline) {
    if (answer && answer.error) {
      return `<p class="muted">Series unavailable: ${esc(answer.error.message)}</p>`;
    }
    const list = (answer && answer.data && answer.data.series) || [];
    if (!list.length) {
      return '<p class="muted no-points">No points available for this incident: medic keeps recent points only for series a detector watches ' +
        '(an incident from Alertmanager has none), and drops series it has not seen for 15 minutes.</p>';
    }
    if (pickedSeries >= list.length) pickedSeries = 0;
    const s = list[pickedSeries];
    let pick = '';
    if (list.length > 1) {
      pick = '<label class="pick">Series <select id="series-pick">' +
        list.map((x, n) => `<option value="${n}"${n === pickedSeries ? ' selected' : ''}>${esc(seriesName(x))}</option>`).join('') +
        '</select></label>';
    } else {
      pick = `<p class="series-name"><code>${esc(seriesName(s))}</code></p>`;
    }
    const ev = openedEvidence(timeline) || {};
    return pick + svgChart(s.points, incident.opened_at, ev);
  }

  function svgChart(points, detectedAt, ev) {
    const W = 760, H = 210, L = 64, R = 16, T = 14, B = 30;
    const pts = points.filter((p) => p[1] !== null && Number.isFinite(p[1]));
    if (!pts.length) return '<p class="muted no-points">The series has no finite values to draw.</p>';
    let t0 = pts[0][0];
    let t1 = pts[pts.length - 1][0];
    const span0 = Math.max(t1 - t0, 1000);
    // Stretch the time axis to the detection unless it is far older than the points kept.
    const detShown = detectedAt >= t0 - span0 && detectedAt <= t1 + span0;
    if (detShown) { t0 = Math.min(t0, detectedAt); t1 = Math.max(t1, detectedAt); }
    if (t1 === t0) { t0 -= 1000; t1 += 1000; }
    const band = typeof ev.lower === 'number' && typeof ev.upper === 'number' && Number.isFinite(ev.lower) && Number.isFinite(ev.upper);
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) { if (p[1] < lo) lo = p[1]; if (p[1] > hi) hi = p[1]; }
    if (band) { lo = Math.min(lo, ev.lower); hi = Math.max(hi, ev.upper); }
    if (hi === lo) { const d = Math.abs(hi) * 0.1 || 1; lo -= d; hi += d; }
    const padY = (hi - lo) * 0.06;
    lo -= padY; hi += padY;
    const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
    const y = (v) => T + (hi - v) / (hi - lo) * (H - T - B);
    const f = (n) => n.toFixed(1);
    let g = '';
    // Grid and axis labels.
    for (let k = 0; k <= 4; k++) {
      const v = lo + (hi - lo) * k / 4;
      g += `<line class="grid" x1="${L}" x2="${W - R}" y1="${f(y(v))}" y2="${f(y(v))}"/>` +
        `<text class="axis" x="${L - 6}" y="${f(y(v) + 4)}" text-anchor="end">${esc(fmtNum(v))}</text>`;
    }
    g += `<text class="axis" x="${L}" y="${H - 8}">${esc(fmtClock(t0))}</text>` +
      `<text class="axis" x="${W - R}" y="${H - 8}" text-anchor="end">${esc(fmtClock(t1))}</text>`;
    if (band) {
      const y1 = y(ev.upper), y2 = y(ev.lower);
      g += `<rect class="band" x="${L}" y="${f(y1)}" width="${W - L - R}" height="${f(Math.max(y2 - y1, 1))}"><title>expected band at detection: ${esc(fmtNum(ev.lower))} … ${esc(fmtNum(ev.upper))}</title></rect>`;
      if (typeof ev.expected === 'number' && Number.isFinite(ev.expected)) {
        g += `<line class="expected" x1="${L}" x2="${W - R}" y1="${f(y(ev.expected))}" y2="${f(y(ev.expected))}"/>`;
      }
    }
    // The series, broken where a value is missing.
    let d = '';
    let pen = false;
    for (const p of points) {
      if (p[1] === null || !Number.isFinite(p[1])) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${f(x(p[0]))} ${f(y(p[1]))} `;
      pen = true;
    }
    g += `<path class="line" d="${d.trim()}"/>`;
    if (pts.length <= 2) {
      for (const p of pts) g += `<circle class="pt" cx="${f(x(p[0]))}" cy="${f(y(p[1]))}" r="3"/>`;
    }
    if (detShown) {
      const xd = f(x(detectedAt));
      const anchor = x(detectedAt) > W - 150 ? 'end' : 'start';
      const dx = anchor === 'end' ? -4 : 4;
      g += `<line class="detected" x1="${xd}" x2="${xd}" y1="${T}" y2="${H - B}"/>` +
        `<text class="detected-label" x="${f(x(detectedAt) + dx)}" y="${H - B - 6}" text-anchor="${anchor}">detected ${esc(fmtClock(detectedAt))}</text>`;
      if (band && typeof ev.observed === 'number' && Number.isFinite(ev.observed) && typeof ev.at === 'number') {
        g += `<circle class="anomaly" cx="${f(x(ev.at))}" cy="${f(y(ev.observed))}" r="4"><title>observed ${esc(fmtNum(ev.observed))}</title></circle>`;
      }
    }
    const caption = detShown
      ? `${pts.length} points from ${fmtTime(pts[0][0])} to ${fmtTime(pts[pts.length - 1][0])}; the red line marks the detection` +
        (band ? ', the shaded band the range the anomaly model expected then.' : '.')
      : `${pts.length} points from ${fmtTime(pts[0][0])} to ${fmtTime(pts[pts.length - 1][0])}. The detection (${fmtTime(detectedAt)}) is outside the points medic still keeps.`;
    return `<svg id="series-chart" class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(caption)}">${g}</svg>` +
      `<p class="muted chart-caption">${esc(caption)}</p>`;
  }

  // --- acknowledge and silence ---------------------------------------------------

  function result(ok, text) {
    const r = $('action-result');
    r.className = ok ? 'banner ok' : 'banner error';
    r.textContent = text;
    r.hidden = false;
  }
  // The author: the name field; with a token medic takes its owner instead.
  function author() {
    const who = settings.who.trim();
    if (!who && !settings.token) {
      result(false, 'Enter your name first (top right): medic records who acknowledged or silenced.');
      $('settings').open = true;
      $('who').focus();
      return null;
    }
    return who;
  }
  function actionError(e, what) {
    if (e.status === 401 || e.status === 403) showAuth(e, 'action');
    result(false, `${what} refused${e.status ? ` (${e.status})` : ''}: ${e.message}`);
  }

  // One button press: check the author, call, show the outcome, refresh.
  async function act(ev, button, pending, what, call) {
    ev.preventDefault();
    if (!view || view.kind !== 'incident') return;
    const who = author();
    if (who === null) return;
    const btn = $(button);
    btn.disabled = true;
    result(true, pending);
    try {
      result(true, await call(view.id, who));
      clearAuth();
    } catch (e) {
      actionError(e, what);
    } finally {
      btn.disabled = false;
      refresh();
    }
  }

  function acknowledge(ev) {
    return act(ev, 'ack', 'Acknowledging…', 'Acknowledgement', async (id, who) => {
      const body = { comment: $('ack-comment').value.trim() };
      if (who) body.who = who;
      const r = await api(`/api/v1/incidents/${encodeURIComponent(id)}/ack`, { method: 'POST', body });
      const i = r.data.incident;
      $('ack-comment').value = '';
      return `Incident ${i.id} acknowledged by ${i.acked_by} at ${fmtTime(i.acked_at)}.`;
    });
  }

  function silence(ev) {
    return act(ev, 'silence', 'Creating the silence…', 'Silence', async (id, who) => {
      const body = {
        matchers: $('sil-matchers').value.trim(),
        duration: $('sil-duration').value,
        comment: $('sil-comment').value.trim(),
      };
      if (who) body.created_by = who;
      const r = await api('/api/v1/silences', { method: 'POST', body });
      const s = r.data.silence;
      return `Silence ${s.id} created by ${s.created_by} for ${s.matchers} until ${fmtTime(s.ends_at)}.`;
    });
  }

  // --- start ---------------------------------------------------------------------

  function start() {
    showSettings();
    $('show-all').checked = settings.all;
    $('show-all').addEventListener('change', () => {
      settings.all = $('show-all').checked;
      saved.set('medic.all', settings.all ? '1' : '0');
      refresh();
    });
    $('filter').addEventListener('input', renderList);
    $('who').addEventListener('input', () => {
      settings.who = $('who').value.trim();
      saved.set('medic.who', settings.who);
      showSettings();
    });
    $('settings-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      settings.who = $('who').value.trim();
      settings.token = $('token').value.trim();
      saved.set('medic.who', settings.who);
      saved.set('medic.token', settings.token);
      showSettings();
      clearAuth();
      $('settings').open = false;
      refresh();
    });
    $('token-forget').addEventListener('click', () => {
      settings.token = '';
      saved.set('medic.token', '');
      showSettings();
      refresh();
    });
    // A click anywhere on a row opens it (the number is the real link).
    $('rows').addEventListener('click', (ev) => {
      if (ev.target.closest('a') || String(window.getSelection())) return;
      const tr = ev.target.closest('.tr[data-id]');
      if (tr) location.hash = `#/incidents/${tr.dataset.id}`;
    });
    $('ack-form').addEventListener('submit', acknowledge);
    $('silence-form').addEventListener('submit', silence);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
    window.addEventListener('hashchange', route);
    route();
  }

  start();
})();

// Outpost supervisor dashboard. Plain JavaScript, no library. Every piece of data from the
// server goes into the page through textContent or an attribute set by the DOM API, never as
// HTML. The server checks the session, the teams and the CSRF token on every call; this file
// only shows what the server returns.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { me: null, view: 'devices', socket: null, retry: 0, refreshTimer: null };
const TITLES = {
  devices: 'Workers and devices',
  records: 'Recent contacts',
  perday: 'Contacts per day per worker',
  conflicts: 'Conflict queue',
  audit: 'Audit log',
};

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function showError(where, message) {
  $(where).textContent = message || '';
}

async function api(path, options) {
  const opts = Object.assign({ credentials: 'same-origin', headers: {} }, options || {});
  if (state.me && state.me.csrf) opts.headers['X-CSRF-Token'] = state.me.csrf;
  const res = await fetch(path, opts);
  if (res.status === 401 && path !== '/api/login') {
    loggedOut('Your session ended (logged out, or 30 minutes without activity). Log in again.');
    throw new Error('not logged in');
  }
  return res;
}

async function apiJson(path, options) {
  const res = await api(path, options);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || ('HTTP ' + res.status));
  return body;
}

function form(params) {
  return new URLSearchParams(params).toString();
}

function loggedOut(message) {
  state.me = null;
  closeLive();
  $('app-view').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('login-view').hidden = false;
  showError('login-error', message || '');
}

function loggedIn(me) {
  state.me = me;
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = me.user + ' (' + me.role + ': ' + me.teams.join(', ') + ')';
  $('nav-audit').hidden = me.role !== 'admin';
  const sel = $('f-team');
  while (sel.options.length > 1) sel.remove(1);
  for (const t of me.teams) {
    const o = el('option', t);
    o.value = t;
    sel.appendChild(o);
  }
  openLive();
  show(state.view);
}

async function login(ev) {
  ev.preventDefault();
  showError('login-error', '');
  const res = await fetch('/api/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Requested-With': 'outpost' },
    body: form({ name: $('login-name').value, password: $('login-password').value }),
  });
  $('login-password').value = '';
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    showError('login-error', (body && body.error) || ('login failed (HTTP ' + res.status + ')'));
    return;
  }
  loggedIn(body);
}

async function logout() {
  try { await api('/api/logout', { method: 'POST' }); } catch (e) { /* ending anyway */ }
  loggedOut('Logged out.');
}

function filters() {
  const f = {};
  for (const [k, id] of [['team', 'f-team'], ['worker', 'f-worker'], ['from', 'f-from'],
                         ['to', 'f-to'], ['q', 'f-q']]) {
    const v = $(id).value.trim();
    if (v) f[k] = v;
  }
  return f;
}

function since(ms, now) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' days ago';
}

function when(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
}

function table(headers) {
  const t = el('table');
  const tr = el('tr');
  for (const h of headers) tr.appendChild(el('th', h));
  const thead = el('thead');
  thead.appendChild(tr);
  t.appendChild(thead);
  const tbody = el('tbody');
  t.appendChild(tbody);
  return { t, tbody };
}

function row(cells, cls) {
  const tr = el('tr', null, cls);
  for (const c of cells) {
    if (c instanceof Node) {
      const td = el('td');
      td.appendChild(c);
      tr.appendChild(td);
    } else {
      tr.appendChild(el('td', c));
    }
  }
  return tr;
}

async function viewDevices(content) {
  const data = await apiJson('/api/devices');
  if (!data.devices.length) { content.appendChild(el('p', 'No devices in your teams yet.')); return; }
  const { t, tbody } = table(['Worker', 'Teams', 'Device', 'Name', 'Last sync', 'Since', 'Status']);
  for (const d of data.devices) {
    const ago = el('span', since(d.last_seen_ms, data.now_ms));
    if (!d.last_seen_ms || data.now_ms - d.last_seen_ms > 86400000) ago.className = 'stale';
    tbody.appendChild(row([d.worker, d.teams, d.device_id, d.name, when(d.last_seen_ms) || 'never',
                           ago, d.revoked ? 'revoked' : 'active']));
  }
  content.appendChild(t);
}

function query(params) {
  const q = new URLSearchParams(params).toString();
  return q ? '?' + q : '';
}

async function viewRecords(content, previous) {
  const data = await apiJson('/api/records' + query(filters()));
  if (!data.rows.length) { content.appendChild(el('p', 'No contacts match.')); return; }
  const idIdx = data.columns.indexOf('id');
  const { t, tbody } = table(data.columns);
  for (const r of data.rows) {
    const id = idIdx >= 0 ? r[idIdx] : r[0];
    const tr = row(r.map((v) => (v === null ? '' : v)),
                   'clickable' + (previous && !previous.has(id) ? ' fresh' : ''));
    tr.dataset.id = id;
    tr.addEventListener('click', () => openRecord(id));
    tbody.appendChild(tr);
  }
  content.appendChild(t);
}

async function openRecord(id) {
  const data = await apiJson('/api/record' + query({ id }));
  const t = $('record-table');
  t.replaceChildren();
  data.columns.forEach((c, i) => {
    const tr = el('tr');
    tr.appendChild(el('th', c));
    tr.appendChild(el('td', data.values[i] === null ? '' : data.values[i], 'value'));
    t.appendChild(tr);
  });
  $('record-panel').hidden = false;
}

const COLORS = ['#23395d', '#d1495b', '#edae49', '#00798c', '#66a182', '#8d5a97', '#2e4057', '#c17c74'];

async function viewPerDay(content) {
  const f = filters();
  const params = {};
  if (f.from) params.from = f.from;
  if (f.team) params.team = f.team;
  const data = await apiJson('/api/perday' + query(params));
  if (!data.days.length) { content.appendChild(el('p', 'No contacts to chart.')); return; }
  const days = [...new Set(data.days.map((d) => d.day))];
  const workers = [...new Set(data.days.map((d) => d.worker))];
  const max = Math.max(...data.days.map((d) => d.count));
  const groupW = Math.max(24, workers.length * 14 + 10);
  const W = 50 + days.length * groupW, H = 240, base = 200;
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'contacts per day per worker');
  const text = (x, y, s, anchor) => {
    const t = document.createElementNS(NS, 'text');
    t.setAttribute('x', String(x));
    t.setAttribute('y', String(y));
    if (anchor) t.setAttribute('text-anchor', anchor);
    t.textContent = s;
    svg.appendChild(t);
  };
  text(40, 14, String(max), 'end');
  text(40, base, '0', 'end');
  days.forEach((day, di) => {
    const x0 = 50 + di * groupW;
    text(x0 + groupW / 2, base + 16, day.slice(5), 'middle');
    workers.forEach((w, wi) => {
      const d = data.days.find((e) => e.day === day && e.worker === w);
      if (!d) return;
      const h = Math.round((d.count / max) * (base - 20));
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', String(x0 + 5 + wi * 14));
      r.setAttribute('y', String(base - h));
      r.setAttribute('width', '12');
      r.setAttribute('height', String(h));
      r.setAttribute('fill', COLORS[wi % COLORS.length]);
      r.setAttribute('data-worker', w);
      r.setAttribute('data-day', day);
      r.setAttribute('data-count', String(d.count));
      const title = document.createElementNS(NS, 'title');
      title.textContent = w + ', ' + day + ': ' + d.count;
      r.appendChild(title);
      svg.appendChild(r);
    });
  });
  const legend = el('div', null, 'legend');
  workers.forEach((w, wi) => {
    const s = el('span', w);
    s.style.setProperty('--c', COLORS[wi % COLORS.length]);
    legend.appendChild(s);
  });
  content.appendChild(legend);
  content.appendChild(svg);
  const { t, tbody } = table(['Day', 'Worker', 'Contacts']);
  for (const d of data.days) tbody.appendChild(row([d.day, d.worker, String(d.count)]));
  content.appendChild(t);
}

async function decide(id, action, button) {
  button.disabled = true;
  try {
    await apiJson('/api/decide', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form({ id: String(id), action }),
    });
    await show('conflicts');
  } catch (e) {
    showError('app-error', e.message);
    button.disabled = false;
  }
}

async function viewConflicts(content) {
  const data = await apiJson('/api/conflicts');
  if (!data.conflicts.length) { content.appendChild(el('p', 'No conflicts waiting for a decision.')); return; }
  const { t, tbody } = table(['#', 'Record', 'Column', 'Team', 'Kept value (winner)',
                              'Losing value', 'Lost by', 'When', 'Decision']);
  for (const c of data.conflicts) {
    const tr = el('tr');
    tr.dataset.conflict = String(c.id);
    tr.appendChild(el('td', c.id));
    tr.appendChild(el('td', c.table + ' ' + c.row));
    tr.appendChild(el('td', c.column || '(whole row)'));
    tr.appendChild(el('td', c.team));
    if (c.refused) {
      // A change the server refused: nothing of it is in the store; the worker keeps it in
      // the device's quarantine. Values aimed at another team are never sent here.
      tr.appendChild(el('td', 'refused: ' + c.refused.message, 'value refused'));
      tr.appendChild(el('td', c.losing === null ? '(not shown: outside the worker\'s teams)'
                                                : c.losing, 'value losing'));
    } else {
      tr.appendChild(el('td', c.winning === null ? '(empty)' : c.winning, 'value winning'));
      tr.appendChild(el('td', c.losing === null ? '(empty)' : c.losing, 'value losing'));
    }
    tr.appendChild(el('td', c.loser_worker + ' ' + c.loser_device.slice(0, 8)));
    tr.appendChild(el('td', when(c.time_ms)));
    const td = el('td');
    const keep = el('button', 'Keep');
    keep.type = 'button';
    keep.dataset.action = 'keep';
    keep.addEventListener('click', () => decide(c.id, 'keep', keep));
    td.appendChild(keep);
    if (c.reversible) {
      const rev = el('button', 'Reverse');
      rev.type = 'button';
      rev.dataset.action = 'reverse';
      rev.addEventListener('click', () => decide(c.id, 'reverse', rev));
      td.appendChild(rev);
    }
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  content.appendChild(t);
}

async function viewAudit(content) {
  const data = await apiJson('/api/audit');
  const { t, tbody } = table(['#', 'When', 'Who', 'Action', 'What', 'From']);
  for (const a of data.audit) tbody.appendChild(row([a.id, when(a.time_ms), a.actor, a.action, a.target, a.address]));
  content.appendChild(t);
}

const VIEWS = { devices: viewDevices, records: viewRecords, perday: viewPerDay,
                conflicts: viewConflicts, audit: viewAudit };

async function show(view, live) {
  state.view = view;
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.view === view);
  $('view-title').textContent = TITLES[view];
  $('filters').hidden = view !== 'records' && view !== 'perday';
  for (const id of ['f-worker', 'f-to', 'f-q']) $(id).parentElement.hidden = view === 'perday';
  showError('app-error', '');
  const content = $('content');
  let previous = null;
  if (live && view === 'records') {
    previous = new Set([...content.querySelectorAll('tr[data-id]')].map((r) => r.dataset.id));
  }
  const next = el('div');
  try {
    await VIEWS[view](next, previous);
    content.replaceChildren(...next.childNodes);
    content.dataset.view = view;
    $('updated').textContent = live ? 'updated ' + new Date().toLocaleTimeString() : '';
  } catch (e) {
    if (state.me) showError('app-error', e.message);
  }
}

async function exportCsv() {
  const params = Object.assign({ view: state.view }, state.view === 'records' || state.view === 'perday' ? filters() : {});
  try {
    const res = await api('/api/export' + query(params));
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      throw new Error((body && body.error) || ('HTTP ' + res.status));
    }
    const blob = await res.blob();
    const a = el('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'outpost-' + state.view + '.csv';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) {
    showError('app-error', e.message);
  }
}

function closeLive() {
  if (state.socket) {
    state.socket.onclose = null;
    state.socket.close();
    state.socket = null;
  }
  $('live').className = 'live off';
  $('live').textContent = 'offline';
}

function openLive() {
  closeLive();
  const ws = new WebSocket('wss://' + location.host + '/live', 'outpost.live');
  state.socket = ws;
  ws.onopen = () => {
    state.retry = 0;
    $('live').className = 'live on';
    $('live').textContent = 'live';
  };
  ws.onmessage = (ev) => {
    let msg = null;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    const events = (msg && msg.events) || [];
    const relevant = {
      devices: ['sync', 'records'], records: ['records'], perday: ['records'],
      conflicts: ['conflicts', 'records'], audit: [],
    }[state.view];
    if (events.some((e) => relevant.includes(e))) {
      clearTimeout(state.refreshTimer);
      state.refreshTimer = setTimeout(() => show(state.view, true), 150);
    }
  };
  ws.onclose = () => {
    $('live').className = 'live off';
    $('live').textContent = 'offline';
    if (!state.me) return;
    const delay = Math.min(30000, 1000 * 2 ** state.retry++) * (0.5 + Math.random() / 2);
    setTimeout(async () => {
      if (!state.me) return;
      try { await apiJson('/api/me'); openLive(); } catch (e) { /* loggedOut() ran */ }
    }, delay);
  };
}

document.addEventListener('DOMContentLoaded', async () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('export').addEventListener('click', exportCsv);
  $('record-close').addEventListener('click', () => { $('record-panel').hidden = true; });
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); show(state.view); });
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => show(b.dataset.view));
  try {
    const res = await fetch('/api/me', { credentials: 'same-origin' });
    if (res.ok) loggedIn(await res.json());
    else loggedOut('');
  } catch (e) {
    loggedOut('The server cannot be reached.');
  }
});

// Outpost supervisor dashboard. Plain JavaScript, no library. Every piece of data from the
// server goes into the page through textContent or an attribute set by the DOM API, never as
// HTML. The server checks the session, the teams and the CSRF token on every call; this file
// only shows what the server returns.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { me: null, view: 'watch', socket: null, retry: 0, refreshTimer: null,
                forms: null, sort: '', dir: 'desc', offset: 0, pageSize: 100 };
const TITLES = {
  devices: 'Workers and devices',
  records: 'Records',
  perday: 'Contacts per day per worker',
  conflicts: 'Conflict queue',
  audit: 'Audit log',
  people: 'People',
};

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// Forms (GET /api/forms, the schema package's form definitions) give labels, choice labels and
// the columns a list shows first. Without them (an older server, a table with no form) the
// page falls back to column names and values as stored.
const LANG = (navigator.language || 'en').slice(0, 2);

function text(t) {
  if (t === null || t === undefined) return '';
  if (typeof t === 'string') return t;
  return t[LANG] || t.en || Object.values(t)[0] || '';
}

async function loadForms() {
  state.forms = {};
  try {
    const res = await api('/api/forms');
    if (!res.ok) return;
    const list = await res.json();
    for (const f of Array.isArray(list) ? list : []) {
      const fields = {};
      for (const s of f.sections || []) {
        for (const fd of s.fields || []) fields[fd.column] = Object.assign({ section: s.title }, fd);
      }
      state.forms[f.table] = { form: f, fields };
    }
  } catch (e) { /* no forms: column names */ }
}

function formOf(table) {
  return (state.forms && state.forms[table]) || null;
}

function label(table, column) {
  const f = formOf(table);
  const fd = f && f.fields[column];
  if (fd) return text(fd.label);
  // The time the form fills by itself is named after the form: "Time of contact".
  if (f && (f.form.auto || {})[column] === 'now') return 'Time of ' + text(f.form.title).toLowerCase();
  // A column the form does not name: its name in words.
  if (f) return (column.charAt(0).toUpperCase() + column.slice(1)).replace(/_/g, ' ');
  return column;
}

// A stored value in words: choice codes become their labels ("a,b" for several).
function shown(table, column, value) {
  if (value === null || value === undefined) return '';
  // An ISO 8601 time reads "2026-12-06 14:05+01:00": no "T", no seconds.
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) {
    return value.replace(/^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(:\d\d(\.\d+)?)?/, '$1 $2');
  }
  const f = formOf(table);
  const fd = f && f.fields[column];
  const list = fd && fd.choices && f.form.choices && f.form.choices[fd.choices];
  if (!list) return String(value);
  const one = (v) => {
    const c = list.find((x) => String(x.value) === v);
    return c ? text(c.label) : v;
  };
  if (fd.widget === 'multiselect') return String(value).split(',').filter((v) => v).map(one).join(', ');
  return one(String(value));
}

// The columns a list shows, in order: the form's summary, else the young person's alias and
// the contact time first, then the rest; never the key or scope ids (they are in the detail).
function listColumns(table, columns) {
  const f = formOf(table);
  if (f && Array.isArray(f.form.summary) && f.form.summary.length) {
    return f.form.summary.filter((c) => columns.includes(c));
  }
  const first = ['alias', 'name', state.me && state.me.date_column, 'contacted_at'].filter((c) => c && columns.includes(c));
  const rest = columns.filter((c) => !first.includes(c) && c !== 'id' && !/_id$/.test(c) && c !== 'notes');
  return [...new Set(first.concat(rest))].slice(0, 6);
}

// What names a record in a sentence: its first summary column (the alias), else its key.
function recordName(rec) {
  if (!rec) return '';
  const cols = listColumns(rec.table, rec.columns);
  const i = cols.length ? rec.columns.indexOf(cols[0]) : -1;
  const v = i >= 0 ? rec.values[i] : null;
  return v ? shown(rec.table, cols[0], v) : rec.id.slice(0, 8);
}

function recordHref(table, id) {
  return '#/record/' + encodeURIComponent(table) + '/' + encodeURIComponent(id);
}

function showError(where, message) {
  $(where).textContent = message || '';
}

async function api(path, options) {
  const opts = Object.assign({ credentials: 'same-origin', headers: {} }, options || {});
  if (state.me && state.me.csrf) opts.headers['X-CSRF-Token'] = state.me.csrf;
  // What the page does by itself (a live refresh, a reconnect check) does not count as
  // activity: the server then leaves the 30-minute idle clock alone.
  if (state.background) opts.headers['X-Outpost-Background'] = '1';
  const res = await fetch(path, opts);
  if (res.status === 403 && path !== '/api/password' && !state.changingPassword) {
    let body = null;
    try { body = await res.clone().json(); } catch (e) { body = null; }
    if (body && body.must_change) {
      await changePassword();
      return api(path, options);
    }
  }
  if (res.status === 401 && path !== '/api/login') {
    loggedOut('Your session ended (logged out, account disabled, or 30 minutes without activity). Log in again.');
    throw new Error('not logged in');
  }
  return res;
}

// An administrator reset this account's password: the user chooses their own before anything
// else is shown.
async function changePassword() {
  state.changingPassword = true;
  try {
    for (;;) {
      const current = window.prompt('Your password was reset by an administrator. Enter the password you were given:');
      if (current === null) { await logout(); throw new Error('password not changed'); }
      const next = window.prompt('Choose a new password (12 characters or more):');
      if (next === null) { await logout(); throw new Error('password not changed'); }
      const res = await api('/api/password', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: form({ current, password: next }),
      });
      if (res.ok) return;
      let body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      window.alert((body && body.error) || ('HTTP ' + res.status));
    }
  } finally {
    state.changingPassword = false;
  }
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
  // Nothing of the last session stays in the page, not even hidden.
  $('content').replaceChildren();
  $('record-panel').hidden = true;
  for (const id of ['record-table', 'record-history', 'record-conflicts', 'record-links']) $(id).replaceChildren();
  state.forms = null;
  state.offset = 0;
  state.view = 'watch'; // the next person starts at the first view, not an admin's
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
  $('nav-people').hidden = me.role !== 'admin';
  const sel = $('f-team');
  while (sel.options.length > 1) sel.remove(1);
  for (const t of me.teams) {
    const o = el('option', t);
    o.value = t;
    sel.appendChild(o);
  }
  openLive();
  loadForms().finally(() => { show(state.view); route(); });
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

// Each cell carries its column's heading, which a phone-width card shows before the value.
function cardify(t) {
  const heads = [...t.querySelectorAll('thead th')].map((th) => th.textContent);
  for (const tr of t.querySelectorAll('tbody tr')) {
    [...tr.children].forEach((td, i) => { if (heads[i] && !td.dataset.label) td.dataset.label = heads[i]; });
  }
  t.classList.add('cards');
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
  // What is stuck: entries the device said were waiting to be sent (at its last connection)
  // that the server has not recorded since, changes the server refused (they wait in the
  // device's quarantine), the device's own last sync error and the newest refusal.
  const { t, tbody } = table(['Worker', 'Device', 'Last sync', 'Waiting to send', 'Refused',
                              'Last error', 'App version', 'Teams', 'Status']);
  t.classList.add('cards');
  for (const d of data.devices) {
    const ago = el('span', since(d.last_seen_ms, data.now_ms));
    if (!d.last_seen_ms || data.now_ms - d.last_seen_ms > 86400000) ago.className = 'stale';
    const name = el('span', d.name || d.device_id.slice(0, 8));
    name.title = d.device_id;
    const pending = el('span', d.reported_ms ? String(d.pending) : 'not reported', d.pending > 0 ? 'stale' : '');
    if (d.reported_ms) pending.title = 'reported ' + when(d.reported_ms);
    const refused = el('span', String(d.refused), d.refused > 0 ? 'stale' : '');
    const errors = [d.last_error, d.last_refusal ? 'refused: ' + d.last_refusal : ''].filter((e) => e);
    const status = el('span', d.revoked ? 'revoked' : 'active');
    if (!d.revoked && state.me.role === 'admin') {
      status.appendChild(revokeButton('Revoke', d, false));
      status.appendChild(revokeButton('Revoke and wipe', d, true));
    }
    const tr = row([d.worker, name, ago, pending, refused, errors.join('; '), d.app || 'not reported',
                    d.teams, status]);
    tr.dataset.device = d.device_id;
    tbody.appendChild(tr);
  }
  cardify(t);
  content.appendChild(t);
}

// An administrator's two revokes: a plain one keeps what the device has not sent yet (it is
// refused, and its entries wait there); a wipe destroys them, so it asks first, as Reverse does.
function revokeButton(label, d, wipe) {
  const b = el('button', label);
  b.type = 'button';
  b.dataset.act = wipe ? 'revoke-wipe' : 'revoke';
  b.addEventListener('click', async () => {
    const what = (d.name || d.device_id.slice(0, 8)) + ' (' + d.worker + ')';
    if (wipe && !window.confirm('Revoke and wipe ' + what + '? Unsent records on the device ' +
        'will be destroyed: entries written there and not yet delivered never reach the office.')) return;
    b.disabled = true;
    try {
      await apiJson('/api/people/act', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: form({ kind: 'device', id: d.device_id, action: 'revoke', wipe: wipe ? '1' : '0' }),
      });
      show('devices');
    } catch (e) {
      b.disabled = false;
      showError('app-error', e.message);
    }
  });
  return b;
}

function query(params) {
  const q = new URLSearchParams(params).toString();
  return q ? '?' + q : '';
}

function recordParams() {
  const p = filters();
  if (state.sort) { p.sort = state.sort; p.dir = state.dir; }
  if (state.offset) p.offset = String(state.offset);
  p.limit = String(state.pageSize);
  return p;
}

// Sorting and paging are the server's (the sort column is checked there, every value bound):
// a click on a heading sorts by it, again reverses; pages go past any number of records.
async function viewRecords(content, previous) {
  const data = await apiJson('/api/records' + query(recordParams()));
  const tableName = (state.me && state.me.table) || 'contacts';
  if (!data.rows.length) {
    content.appendChild(el('p', state.offset ? 'No more records.' : 'No records match.'));
  } else {
    const idIdx = Math.max(0, data.columns.indexOf('id'));
    const cols = listColumns(tableName, data.columns);
    const { t, tbody } = table([]);
    t.classList.add('cards', 'records');
    const head = t.querySelector('thead tr');
    for (const c of cols) {
      const th = el('th');
      const b = el('button', label(tableName, c), 'sort');
      b.type = 'button';
      b.dataset.sort = c;
      if (state.sort === c) {
        b.classList.add(state.dir);
        b.setAttribute('aria-sort', state.dir === 'asc' ? 'ascending' : 'descending');
      }
      b.addEventListener('click', () => {
        state.dir = state.sort === c && state.dir === 'asc' ? 'desc' : 'asc';
        state.sort = c;
        state.offset = 0;
        show('records');
      });
      th.appendChild(b);
      head.appendChild(th);
    }
    for (const r of data.rows) {
      const id = r[idIdx];
      const tr = el('tr', null, 'clickable' + (previous && !previous.has(id) ? ' fresh' : ''));
      cols.forEach((c) => {
        const td = el('td', shown(tableName, c, r[data.columns.indexOf(c)]));
        td.dataset.label = label(tableName, c);
        tr.appendChild(td);
      });
      tr.dataset.id = id;
      tr.addEventListener('click', () => { location.hash = recordHref(tableName, id); });
      tbody.appendChild(tr);
    }
    content.appendChild(t);
  }
  const pager = el('p', null, 'pager');
  const first = state.offset + 1, last = state.offset + data.rows.length;
  pager.appendChild(el('span', data.rows.length ? `records ${first}–${last}` : '', 'range'));
  if (state.offset > 0) {
    const prev = el('button', 'Previous page');
    prev.type = 'button';
    prev.dataset.page = 'prev';
    prev.addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.pageSize); show('records'); });
    pager.appendChild(prev);
  }
  if (data.more) {
    const next = el('button', 'Next page');
    next.type = 'button';
    next.dataset.page = 'next';
    next.addEventListener('click', () => { state.offset += data.rows.length; show('records'); });
    pager.appendChild(next);
  }
  content.appendChild(pager);
}

// The record detail is a panel over the page with its own URL (#/record/TABLE/ID): it opens
// where the supervisor is looking, the back button closes it, and a link can be shared with a
// colleague (who sees it only if it is in their teams).
function route() {
  const m = location.hash.match(/^#\/record\/([^/]+)\/(.+)$/);
  if (!m || !state.me) { $('record-panel').hidden = true; return; }
  openRecord(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
}

function closeRecord() {
  $('record-panel').hidden = true;
  if (location.hash.startsWith('#/record/')) history.pushState(null, '', location.pathname + location.search);
}

// linked: {column: record} for the record's outgoing links, shown by name instead of by id.
// With a form: the summary first (the alias, the contact time), then the sections, then columns
// the form does not name; the key, team and worker (automatic ids) go to the ids line below.
const ID_KINDS = ['uuid', 'team', 'worker'];
function fieldRows(rec, into, linked) {
  const f = formOf(rec.table);
  const order = [];
  if (f) {
    const auto = f.form.auto || {};
    const first = listColumns(rec.table, rec.columns).filter((c) => !ID_KINDS.includes(auto[c]));
    for (const c of first) order.push({ column: c });
    for (const s of f.form.sections || []) {
      const cols = (s.fields || []).map((fd) => fd.column).filter((c) => rec.columns.includes(c) && !first.includes(c));
      if (!cols.length) continue;
      order.push({ heading: text(s.title) });
      for (const c of cols) order.push({ column: c });
    }
    const rest = rec.columns.filter((c) => !f.fields[c] && !first.includes(c) && !ID_KINDS.includes(auto[c]));
    if (rest.length) order.push({ heading: 'Other fields' });
    for (const c of rest) order.push({ column: c });
  } else {
    for (const c of rec.columns) order.push({ column: c });
  }
  for (const o of order) {
    const tr = el('tr');
    if (o.heading) {
      const th = el('th', o.heading, 'section');
      th.colSpan = 2;
      tr.appendChild(th);
    } else {
      const v = rec.values[rec.columns.indexOf(o.column)];
      tr.appendChild(el('th', label(rec.table, o.column)));
      const to = linked && linked[o.column];
      if (to) {
        const td = el('td', null, 'value');
        const a = el('a', recordName(to));
        a.href = recordHref(to.table, to.id);
        td.appendChild(a);
        tr.appendChild(td);
      } else {
        tr.appendChild(el('td', shown(rec.table, o.column, v), 'value'));
      }
      tr.dataset.column = o.column;
    }
    into.appendChild(tr);
  }
}

// "contacts 0f3c…, team team-a, worker alice": the automatic ids, out of the fields.
function recordIds(rec) {
  const f = formOf(rec.table);
  const auto = (f && f.form.auto) || {};
  const parts = [rec.table + ' ' + rec.id];
  for (const kind of ['team', 'worker']) {
    const c = Object.keys(auto).find((k) => auto[k] === kind);
    const i = c ? rec.columns.indexOf(c) : -1;
    if (i >= 0 && rec.values[i]) parts.push(kind + ' ' + rec.values[i]);
  }
  return parts.join(', ');
}

function whoDid(h) {
  if (!h.device) return h.by ? 'supervisor ' + h.by + ' (reversal)' : 'the server';
  return h.worker + ' on ' + (h.device_name || h.device.slice(0, 8));
}

async function openRecord(table, id) {
  const panel = $('record-panel');
  let data;
  try {
    data = await apiJson('/api/record' + query({ table, id }));
  } catch (e) {
    showError('app-error', e.message);
    panel.hidden = true;
    return;
  }
  const rec = data.record;
  $('record-title').textContent = (formOf(table) ? text(formOf(table).form.title) : table) + ': ' + recordName(rec);
  const t = $('record-table');
  t.replaceChildren();
  const linked = {};
  for (const l of data.links) if (l.outgoing && l.records.length) linked[l.column] = l.records[0];
  fieldRows(rec, t, linked);

  const hist = $('record-history');
  hist.replaceChildren();
  data.history.forEach((h, i) => {
    const what = i === 0 && h.op === 'insert' ? 'created' : h.op === 'delete' ? 'deleted' : 'changed';
    const li = el('li', when(h.time_ms) + ': ' + what + ' by ' + whoDid(h) + (h.altered ? ' (merged)' : ''));
    li.dataset.op = h.op;
    hist.appendChild(li);
  });
  if (!data.history.length) hist.appendChild(el('li', 'No changes recorded.'));

  const conf = $('record-conflicts');
  conf.replaceChildren();
  for (const c of data.conflicts) {
    const col = c.column ? label(table, c.column) : 'the whole record';
    const kept = c.winning === null ? '(empty)' : shown(table, c.column, c.winning);
    const lost = c.losing === null ? '(empty)' : shown(table, c.column, c.losing);
    const li = el('li', when(c.time_ms) + ': ' + col + ': kept "' + kept + '" from ' +
      (c.winner_worker || 'the server') + ', "' + lost + '" from ' + (c.loser_worker || '?') +
      ' lost; ' + (c.decision ? c.decision + ' by ' + c.decided_by : 'waiting for a decision'));
    li.dataset.conflict = String(c.id);
    conf.appendChild(li);
  }
  if (!data.conflicts.length) conf.appendChild(el('li', 'No conflicts.'));

  const links = $('record-links');
  links.replaceChildren();
  for (const l of data.links) {
    for (const r of l.records) {
      const li = el('li');
      const a = el('a', (formOf(r.table) ? text(formOf(r.table).form.title) : r.table) + ': ' + recordName(r));
      a.href = recordHref(r.table, r.id);
      a.dataset.table = r.table;
      li.appendChild(a);
      li.appendChild(el('span', l.outgoing ? ' (' + label(table, l.column) + ')' : ' (refers to this record)'));
      links.appendChild(li);
    }
  }
  if (!links.children.length) links.appendChild(el('li', 'No linked records.'));
  $('record-id').textContent = recordIds(rec);
  panel.hidden = false;
  panel.scrollTop = 0;
  $('record-close').focus();
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

async function decide(id, action, button, what) {
  if (action === 'reverse' && !window.confirm('Reverse this decision? ' + what +
      '\nThe losing value is written back and sent to every device of the team.')) return;
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
  const { t, tbody } = table(['Record', 'Field', 'Kept value', 'Kept from', 'Losing value',
                              'Lost by', 'When', 'Decision']);
  t.classList.add('cards');
  for (const c of data.conflicts) {
    const tr = el('tr');
    tr.dataset.conflict = String(c.id);
    const name = el('td', null, 'name');
    if (c.record) {
      const a = el('a', recordName(c.record));
      a.href = recordHref(c.table, c.row);
      a.className = 'record-link';
      name.appendChild(a);
    } else {
      name.textContent = c.refused ? '(refused change)' : '(record not available)';
    }
    name.appendChild(el('small', ' ' + (formOf(c.table) ? text(formOf(c.table).form.title) : c.table) + ', ' + c.team));
    tr.appendChild(name);
    tr.appendChild(el('td', c.column ? label(c.table, c.column) : '(whole record)'));
    const val = (v) => (v === null ? '(empty)' : shown(c.table, c.column, v));
    if (c.refused) {
      // A change the server refused: nothing of it is in the store; the worker keeps it in
      // the device's quarantine. Values aimed at another team are never sent here.
      tr.appendChild(el('td', 'refused: ' + c.refused.message, 'value refused'));
    } else {
      tr.appendChild(el('td', val(c.winning), 'value winning'));
    }
    tr.appendChild(el('td', c.refused ? '' : c.winner_worker || 'the server', 'winner'));
    if (c.refused) {
      tr.appendChild(el('td', c.losing === null ? '(not shown: outside the worker\'s teams)'
                                                : val(c.losing), 'value losing'));
    } else {
      tr.appendChild(el('td', val(c.losing), 'value losing'));
    }
    tr.appendChild(el('td', c.loser_worker || '?', 'loser'));
    tr.appendChild(el('td', when(c.time_ms)));
    const td = el('td');
    const keep = el('button', 'Keep');
    keep.type = 'button';
    keep.dataset.action = 'keep';
    keep.addEventListener('click', () => decide(c.id, 'keep', keep, ''));
    td.appendChild(keep);
    if (c.reversible) {
      const rev = el('button', 'Reverse');
      rev.type = 'button';
      rev.dataset.action = 'reverse';
      const what = (c.record ? recordName(c.record) + ', ' : '') +
        (c.column ? label(c.table, c.column) : 'record') + ': "' + val(c.losing) + '" (' +
        (c.loser_worker || '?') + ') replaces "' + val(c.winning) + '" (' + (c.winner_worker || 'the server') + ').';
      rev.addEventListener('click', () => decide(c.id, 'reverse', rev, what));
      td.appendChild(rev);
    } else if (c.reverse_refused) {
      // The server would refuse a reversal (a record deleted since, a team you do not hold).
      td.appendChild(el('small', ' Cannot be reversed: ' + c.reverse_refused, 'reverse-refused'));
    }
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  cardify(t);
  content.appendChild(t);
}

// The audit view pages through the whole log (newest first) and filters by person, action (or
// a family such as "login") and days; the export takes the same filters.
function auditFilters() {
  const f = state.auditFilter || {};
  const out = {};
  for (const k of ['actor', 'action', 'from', 'to']) if (f[k]) out[k] = f[k];
  return out;
}

function auditFilterForm() {
  const formEl = el('form', null, 'audit-filters');
  const f = state.auditFilter || {};
  for (const [k, label, type] of [['actor', 'Person', 'text'], ['action', 'Action', 'text'],
                                  ['from', 'From', 'date'], ['to', 'To', 'date']]) {
    const lab = el('label', label + ' ');
    const input = el('input');
    input.type = type;
    input.name = k;
    input.value = f[k] || '';
    lab.appendChild(input);
    formEl.appendChild(lab);
  }
  formEl.appendChild(el('button', 'Filter'));
  formEl.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = {};
    for (const k of ['actor', 'action', 'from', 'to']) next[k] = formEl.elements[k].value.trim();
    state.auditFilter = next;
    state.auditBefore = 0;
    show('audit');
  });
  return formEl;
}

async function viewAudit(content) {
  const params = Object.assign({ limit: 100 }, auditFilters());
  if (state.auditBefore) params.before = state.auditBefore;
  const data = await apiJson('/api/audit' + query(params));
  content.appendChild(auditFilterForm());
  const { t, tbody } = table(['#', 'When', 'Who', 'Action', 'What', 'Records shown', 'From']);
  for (const a of data.audit) {
    tbody.appendChild(row([a.id, when(a.time_ms), a.actor, a.action, a.target, a.ids || '', a.address]));
  }
  if (!data.audit.length) content.appendChild(el('p', 'No entries match.'));
  else content.appendChild(t);
  const nav = el('p', null, 'pager');
  if (state.auditBefore) {
    const newest = el('button', 'Newest');
    newest.addEventListener('click', () => { state.auditBefore = 0; show('audit'); });
    nav.appendChild(newest);
  }
  if (data.next_before) {
    const older = el('button', 'Older entries');
    older.addEventListener('click', () => { state.auditBefore = data.next_before; show('audit'); });
    nav.appendChild(older);
  }
  content.appendChild(nav);
}

// The admin section: accounts and workers with what an administrator does to them (the same
// acts as outpost-admin, audited under the administrator's account).
async function peopleAct(kind, id, action, teams) {
  const body = { kind, id, action };
  if (action === 'teams') body.teams = teams || '';
  await apiJson('/api/people/act', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form(body),
  });
  show('people');
}

function actButton(label, kind, id, action, ask) {
  const b = el('button', label);
  b.type = 'button';
  b.dataset.act = action;
  b.dataset.id = id;
  b.addEventListener('click', async () => {
    let teams = '';
    if (ask) {
      teams = window.prompt(ask);
      if (teams === null) return;
    } else if (action === 'remove' && !window.confirm('Remove ' + kind + ' ' + id + ' for good?')) {
      return;
    }
    try { await peopleAct(kind, id, action, teams); } catch (e) { showError('app-error', e.message); }
  });
  return b;
}

// An enrollment code and its QR code, drawn as SVG squares from the server's modules.
async function enrollWorker(id) {
  const data = await apiJson('/api/people/act', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form({ kind: 'worker', id, action: 'enroll' }),
  });
  const NS = 'http://www.w3.org/2000/svg';
  const quiet = 4, size = data.qr_width + 2 * quiet;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('width', String(size * 6));
  svg.setAttribute('height', String(size * 6));
  svg.setAttribute('id', 'enroll-qr');
  const bg = document.createElementNS(NS, 'rect');
  bg.setAttribute('width', String(size));
  bg.setAttribute('height', String(size));
  bg.setAttribute('fill', '#fff');
  svg.appendChild(bg);
  for (let y = 0; y < data.qr_width; y++) {
    for (let x = 0; x < data.qr_width; x++) {
      if (data.qr[y * data.qr_width + x] !== '1') continue;
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', String(x + quiet));
      r.setAttribute('y', String(y + quiet));
      r.setAttribute('width', '1');
      r.setAttribute('height', '1');
      r.setAttribute('fill', '#000');
      svg.appendChild(r);
    }
  }
  const box = $('enroll-box') || el('div');
  box.id = 'enroll-box';
  box.replaceChildren(
    el('p', `Enrollment code for ${id} (single use, expires ${when(data.expires_ms)}):`),
    el('p', data.code, 'enroll-code'),
    svg,
    el('p', data.text));
  $('content').prepend(box);
}

async function viewPeople(content) {
  const data = await apiJson('/api/people');
  content.appendChild(el('h3', 'Dashboard accounts'));
  const users = table(['Account', 'Role', 'Teams', 'State', '']);
  for (const u of data.users) {
    const acts = el('span');
    acts.appendChild(actButton(u.disabled ? 'Enable' : 'Disable', 'user', u.id, u.disabled ? 'enable' : 'disable'));
    acts.appendChild(actButton('Teams', 'user', u.id, 'teams', 'Teams for ' + u.id + ' (comma separated)'));
    if (u.id !== state.me.user) acts.appendChild(actButton('Remove', 'user', u.id, 'remove'));
    const tr = row([u.id, u.role, u.teams, u.disabled ? 'disabled' : 'active', acts]);
    tr.dataset.user = u.id;
    users.tbody.appendChild(tr);
  }
  content.appendChild(users.t);
  content.appendChild(el('h3', 'Workers'));
  const workers = table(['Worker', 'Teams', 'Devices', 'State', '']);
  for (const w of data.workers) {
    const acts = el('span');
    acts.appendChild(actButton(w.disabled ? 'Enable' : 'Disable', 'worker', w.id, w.disabled ? 'enable' : 'disable'));
    acts.appendChild(actButton('Move', 'worker', w.id, 'teams', 'Teams for ' + w.id + ' (comma separated)'));
    const enroll = el('button', 'Enroll a device');
    enroll.type = 'button';
    enroll.dataset.act = 'enroll';
    enroll.addEventListener('click', () => enrollWorker(w.id).catch((e) => showError('app-error', e.message)));
    acts.appendChild(enroll);
    acts.appendChild(actButton('Remove', 'worker', w.id, 'remove'));
    const tr = row([w.id, w.teams, String(w.devices), w.disabled ? 'disabled' : 'active', acts]);
    tr.dataset.worker = w.id;
    workers.tbody.appendChild(tr);
  }
  content.appendChild(workers.t);
  content.appendChild(el('h3', 'Teams'));
  const teams = table(['Team', 'Name', 'Workers']);
  for (const t of data.teams) teams.tbody.appendChild(row([t.id, t.name, t.workers]));
  content.appendChild(teams.t);
}

const VIEWS = { devices: viewDevices, records: viewRecords, perday: viewPerDay,
                conflicts: viewConflicts, audit: viewAudit, people: viewPeople };

async function show(view, live) {
  state.view = view;
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.view === view);
  $('view-title').textContent = TITLES[view];
  $('filters').hidden = view !== 'records' && view !== 'perday';
  $('export').hidden = view === 'people' || view === 'watch';
  for (const id of ['f-worker', 'f-to', 'f-q']) $(id).parentElement.hidden = view === 'perday';
  showError('app-error', '');
  const content = $('content');
  let previous = null;
  if (live && view === 'records') {
    previous = new Set([...content.querySelectorAll('tr[data-id]')].map((r) => r.dataset.id));
  }
  const next = el('div');
  state.background = !!live;
  try {
    await VIEWS[view](next, previous);
    content.replaceChildren(...next.childNodes);
    content.dataset.view = view;
    $('updated').textContent = live ? 'updated ' + new Date().toLocaleTimeString() : '';
  } catch (e) {
    if (state.me) showError('app-error', e.message);
  } finally {
    state.background = false;
  }
}

async function exportCsv() {
  // Each view takes only the filters it applies (the server refuses others).
  const f = filters();
  const perday = {};
  if (f.team) perday.team = f.team;
  if (f.from) perday.from = f.from;
  const params = Object.assign({ view: state.view },
    state.view === 'records' ? f : state.view === 'perday' ? perday :
    state.view === 'audit' ? auditFilters() : {});
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
      conflicts: ['conflicts', 'records'], audit: [], people: [], watch: ['records'],
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
      state.background = true;
      try { await apiJson('/api/me'); openLive(); } catch (e) { /* loggedOut() ran */ }
      state.background = false;
    }, delay);
  };
}

document.addEventListener('DOMContentLoaded', async () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('export').addEventListener('click', exportCsv);
  $('record-close').addEventListener('click', closeRecord);
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && !$('record-panel').hidden) closeRecord(); });
  // hashchange alone: a change of hash fires popstate as well, and routing on both opened
  // (and audited) every record twice. closeRecord's pushState fires neither.
  window.addEventListener('hashchange', route);
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); state.offset = 0; show(state.view); });
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => {
    state.offset = 0;
    if (!$('record-panel').hidden) closeRecord();
    show(b.dataset.view);
  });
  try {
    const res = await fetch('/api/me', { credentials: 'same-origin' });
    if (res.ok) loggedIn(await res.json());
    else loggedOut('');
  } catch (e) {
    loggedOut('The server cannot be reached.');
  }
});

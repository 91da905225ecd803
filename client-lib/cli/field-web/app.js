// Outpost field app: forms and records over the device's replica, served by `outpost field`
// on 127.0.0.1. Plain JavaScript, no framework, nothing fetched from the network: every URL
// here is relative to the page, whose path carries this run's token.
'use strict';

const UI = {
  en: {
    new: 'New', search: 'Search', save: 'Save', cancel: 'Cancel', discard: 'Discard',
    syncNow: 'Sync now', refusedTab: 'Refused', none: 'No records yet.', noMatch: 'Nothing matches.',
    pending: 'waiting to send', synced: 'synced', refused: 'refused', conflict: 'in conflict',
    required: 'is required', number: 'must be a whole number', between: 'must be between {0} and {1}',
    atLeast: 'must be {0} or more', atMost: 'must be {0} or less', oneOf: 'must be one of: {0}',
    orEmpty: 'may be left empty', fix: 'Fix and send again', team: 'Team', worker: 'Worker',
    filled: 'Filled in by the app', newRecord: 'New {0}', editRecord: '{0}',
    fixRecord: 'Fix refused {0}', refusedBecause: 'The office refused this record: {0}',
    notEnrolled: 'Not enrolled: records stay on this device', offline: 'Offline',
    retry: 'next try in {0} s', waiting: '{0} waiting to send', allSent: 'everything sent',
    lastSync: 'last sync {0}', never: 'never synced', refusedCount: '{0} refused: needs you',
    connecting: 'Connecting…', pushing: 'Sending…', pulling: 'Receiving…', idle: 'Online',
    stopped: 'Sync stopped', confirmDiscard: 'Discard this record for good? What was typed is lost.',
    saved: 'Saved on this device.', resubmitted: 'Sent again.', discarded: 'Discarded.',
    fixErrors: 'Please fix the fields marked below.', conflicts: 'Decided by the office',
    kept: 'the office kept', yours: 'yours was', noRefused: 'Nothing refused.', newId: 'A new id (the old one is taken)',
    notYourTeam: 'You are no longer in team {0}: choose one of your teams.',
    otherTeamRow: 'The office has this record in a team you are not in, so it cannot take this change. Discard it, or ask your supervisor.',
    refusedValue: '{0} (refused)',
    needsAttention: 'Needs attention', dueSince: 'due since {0}',
    high: 'high', medium: 'medium', low: 'low',
  },
  es: {
    new: 'Nuevo', search: 'Buscar', save: 'Guardar', cancel: 'Cancelar', discard: 'Descartar',
    syncNow: 'Sincronizar', refusedTab: 'Rechazados', none: 'Todavía no hay registros.',
    noMatch: 'Nada coincide.', pending: 'pendiente de envío', synced: 'sincronizado',
    refused: 'rechazado', conflict: 'en conflicto', required: 'es obligatorio',
    number: 'debe ser un número entero', between: 'debe estar entre {0} y {1}',
    atLeast: 'debe ser {0} o más', atMost: 'debe ser {0} o menos', oneOf: 'debe ser uno de: {0}',
    orEmpty: 'puede quedar vacío', fix: 'Corregir y reenviar', team: 'Equipo', worker: 'Trabajador/a',
    filled: 'Rellenado por la aplicación', newRecord: 'Nuevo: {0}', editRecord: '{0}',
    fixRecord: 'Corregir {0} rechazado', refusedBecause: 'La oficina rechazó este registro: {0}',
    notEnrolled: 'Sin inscribir: los registros se quedan en este dispositivo', offline: 'Sin conexión',
    retry: 'próximo intento en {0} s', waiting: '{0} pendientes de envío', allSent: 'nada pendiente de envío',
    lastSync: 'última sincronización {0}', never: 'nunca sincronizado',
    refusedCount: '{0} rechazados: requieren atención', connecting: 'Conectando…',
    pushing: 'Enviando…', pulling: 'Recibiendo…', idle: 'En línea', stopped: 'Sincronización detenida',
    confirmDiscard: '¿Descartar este registro para siempre? Lo escrito se perderá.',
    saved: 'Guardado en este dispositivo.', resubmitted: 'Reenviado.', discarded: 'Descartado.',
    fixErrors: 'Corrige los campos marcados abajo.', conflicts: 'Decidido por la oficina',
    kept: 'la oficina conservó', yours: 'el tuyo era', noRefused: 'Nada rechazado.',
    newId: 'Un identificador nuevo (el anterior está ocupado)',
    notYourTeam: 'Ya no estás en el equipo {0}: elige uno de tus equipos.',
    otherTeamRow: 'La oficina tiene este registro en un equipo al que no perteneces, así que no puede aceptar este cambio. Descártalo o consulta a tu supervisor/a.',
    refusedValue: '{0} (rechazado)',
    needsAttention: 'Requiere atención', dueSince: 'pendiente desde {0}',
    high: 'alta', medium: 'media', low: 'baja',
  },
};

const app = {
  lang: localStorage.getItem('outpost.lang') || ((navigator.language || 'en').startsWith('es') ? 'es' : 'en'),
  info: null, // api/info
  forms: {}, // table -> form (given or made from the columns)
  table: null, // the tab shown
  view: 'list',
  editing: null, // {mode: 'new'|'edit'|'fix', table, key, values, rejected}
  status: null,
  refused: [],
  watch: [], // api/watch
  linkRows: {}, // table -> rows, for link fields
};

const $ = (id) => document.getElementById(id);

function say(key, ...args) {
  const text = (UI[app.lang] && UI[app.lang][key]) || UI.en[key] || key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)]));
}

// A form "text" ({lang: string}) or a plain string, in the chosen language.
function tr(text) {
  if (text == null) return '';
  if (typeof text === 'string') return text;
  return text[app.lang] || text.en || Object.values(text)[0] || '';
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null) node.append(c.nodeType ? c : String(c));
  return node;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch { data = { error: res.statusText }; }
  if (!res.ok) {
    const err = new Error((data && data.error) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

// ---- tables, forms and the CHECK constraints in words ------------------------------------

function tableOf(name) {
  return app.info.tables.find((t) => t.name === name);
}

// The CHECK expression written on a column's line of CREATE TABLE, if any.
function columnCheck(table, column) {
  const sql = table.sql || '';
  const re = new RegExp(`(^|[,(\\s])"?${column}"?\\s+[A-Za-z]+[^,]*?CHECK\\s*\\(`, 'm');
  const m = re.exec(sql);
  if (!m) return null;
  let i = m.index + m[0].length, depth = 1;
  const start = i;
  while (i < sql.length && depth > 0) {
    if (sql[i] === '(') depth++;
    else if (sql[i] === ')') depth--;
    i++;
  }
  return sql.slice(start, i - 1);
}

// What a CHECK allows, when it is one of the shapes schemas use: a range or a list.
function parseCheck(expr, column) {
  if (!expr) return null;
  const rule = { orNull: new RegExp(`${column}\\s+IS\\s+NULL\\s+OR`, 'i').test(expr) };
  const between = new RegExp(`${column}\\s+BETWEEN\\s+(-?\\d+)\\s+AND\\s+(-?\\d+)`, 'i').exec(expr);
  if (between) { rule.min = Number(between[1]); rule.max = Number(between[2]); }
  const inList = new RegExp(`${column}\\s+IN\\s*\\(([^)]*)\\)`, 'i').exec(expr);
  if (inList) {
    rule.values = inList[1].split(',').map((v) => v.trim()).map((v) =>
      (/^'.*'$/.test(v) ? v.slice(1, -1).replace(/''/g, "'") : Number(v)));
  }
  const ge = new RegExp(`${column}\\s*>=\\s*(-?\\d+)`, 'i').exec(expr);
  if (ge && rule.min === undefined) rule.min = Number(ge[1]);
  const le = new RegExp(`${column}\\s*<=\\s*(-?\\d+)`, 'i').exec(expr);
  if (le && rule.max === undefined) rule.max = Number(le[1]);
  return rule.min !== undefined || rule.max !== undefined || rule.values ? rule : null;
}

function choiceLabel(form, field, value) {
  const list = (form.choices || {})[field.choices] || [];
  const c = list.find((x) => String(x.value) === String(value));
  return c ? tr(c.label) : String(value);
}

// The rule of a field in words: "must be between 5 and 30", "must be one of: ...".
function ruleWords(form, field) {
  const rule = field.rule;
  if (!rule && field.min === undefined && field.max === undefined) return '';
  const min = field.min ?? (rule && rule.min);
  const max = field.max ?? (rule && rule.max);
  let words = '';
  if (min !== undefined && max !== undefined) words = say('between', min, max);
  else if (min !== undefined) words = say('atLeast', min);
  else if (max !== undefined) words = say('atMost', max);
  else if (rule && rule.values) words = say('oneOf', rule.values.map((v) => choiceLabel(form, field, v)).join(', '));
  return words;
}

// A form for every synced table: the one the server sent, or one made from the columns.
function buildForms() {
  app.forms = {};
  for (const t of app.info.tables) {
    const given = (app.info.forms || []).find((f) => f.table === t.name);
    const pk = t.columns.find((c) => c.pk > 0);
    const form = given ? structuredClone(given) : {
      table: t.name, title: t.name, auto: pk ? { [pk.name]: 'uuid' } : {},
      summary: t.columns.filter((c) => !c.pk).slice(0, 3).map((c) => c.name),
      sections: [{
        title: t.name,
        fields: t.columns.filter((c) => !c.pk).map((c) => ({
          column: c.name, label: c.name, required: c.notnull && c.dflt == null,
          widget: /INT/i.test(c.type) ? 'integer' : 'text',
        })),
      }],
    };
    form.auto = form.auto || {};
    for (const s of form.sections) {
      for (const f of s.fields) {
        const col = t.columns.find((c) => c.name === f.column);
        f.notnull = !!(col && col.notnull && col.dflt == null);
        f.rule = parseCheck(columnCheck(t, f.column), f.column);
      }
    }
    app.forms[t.name] = form;
  }
}

// ---- the sync status line ----------------------------------------------------------------

function timeText(ms) {
  if (!ms) return say('never');
  return say('lastSync', new Date(ms).toLocaleTimeString(app.lang, { hour: '2-digit', minute: '2-digit', second: '2-digit' }));
}

function statusText(st) {
  const parts = [];
  if (!st.enrolled) parts.push(say('notEnrolled'));
  else if (st.activity === 'offline') parts.push(say('offline') + (st.retry_in_ms ? ` (${say('retry', Math.ceil(st.retry_in_ms / 1000))})` : ''));
  else parts.push(say(st.activity) || st.activity);
  parts.push(st.pending ? say('waiting', st.pending) : say('allSent'));
  if (st.rejected) parts.push(say('refusedCount', st.rejected));
  if (st.enrolled) parts.push(timeText(st.last_sync_ms));
  return parts.join(' · ');
}

async function pollStatus() {
  try {
    const st = await api('api/status');
    const before = app.status;
    app.status = st;
    $('sync-line').textContent = statusText(st);
    $('sync').dataset.activity = st.enrolled ? st.activity : 'not enrolled';
    $('sync').dataset.refused = st.rejected ? 'yes' : 'no';
    $('sync-now').hidden = !st.enrolled;
    renderTabs();
    // The states beside the records follow the engine by themselves.
    if (before && (before.pending !== st.pending || before.rejected !== st.rejected ||
                   before.last_sync_ms !== st.last_sync_ms || before.conflicts !== st.conflicts)) {
      if (app.view === 'list') loadRecords();
      if (app.view === 'refused') loadRefused();
    }
  } catch (e) {
    $('sync-line').textContent = e.message;
  }
}

// ---- tabs and the record list ------------------------------------------------------------

function renderTabs() {
  const nav = $('tabs');
  nav.replaceChildren();
  for (const t of app.info.tables) {
    nav.append(el('button', {
      type: 'button', 'data-table': t.name, 'aria-current': app.view !== 'refused' && app.table === t.name ? 'page' : null,
      onclick: () => { app.table = t.name; notice(''); show('list'); loadRecords(); },
    }, tr(app.forms[t.name].title)));
  }
  const n = app.status ? app.status.rejected : 0;
  nav.append(el('button', {
    type: 'button', id: 'tab-refused', 'aria-current': app.view === 'refused' ? 'page' : null,
    onclick: () => { notice(''); show('refused'); loadRefused(); },
  }, `${say('refusedTab')}${n ? ` (${n})` : ''}`));
}

function show(view) {
  app.view = view;
  $('watch-box').hidden = view !== 'list' || !app.watch.length;
  $('list-view').hidden = view !== 'list';
  $('refused-view').hidden = view !== 'refused';
  $('form-view').hidden = view !== 'form';
  renderTabs();
}

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function displayValue(form, column, value) {
  if (value == null || value === '') return '';
  if (form && form.auto && form.auto[column] === 'now') {
    const d = new Date(value);
    if (!Number.isNaN(d.getTime())) return d.toLocaleString(app.lang, { dateStyle: 'medium', timeStyle: 'short' });
  }
  if (!form) return String(value);
  for (const s of form.sections) {
    const f = s.fields.find((x) => x.column === column);
    if (f && f.choices) return String(value).split(f.widget === 'multiselect' ? ',' : '\u0000').map((v) => choiceLabel(form, f, v)).join(', ');
    if (f && f.widget === 'datetime') return new Date(value).toLocaleString(app.lang, { dateStyle: 'medium', timeStyle: 'short' });
  }
  return String(value);
}

function stateBadge(state) {
  return el('span', { class: `state state-${state}`, 'data-state': state }, say(state));
}

async function loadRecords() {
  const table = app.table;
  const q = $('q').value.trim();
  let data;
  try {
    data = await api(`api/records?table=${encodeURIComponent(table)}&q=${encodeURIComponent(q)}`);
  } catch (e) { notice(e.message); return; }
  if (table !== app.table) return;
  loadWatch();
  const form = app.forms[table];
  const summary = form.summary && form.summary.length ? form.summary : Object.keys(data.rows[0]?.values || {}).slice(0, 3);
  const list = $('records');
  list.replaceChildren();
  if (!data.rows.length) list.append(el('li', { class: 'empty' }, q ? say('noMatch') : say('none')));
  for (const row of data.rows) {
    const [first, ...rest] = summary;
    list.append(el('li', { 'data-key': row.key, 'data-state': row.state, onclick: () => openRecord(table, row.key) },
      el('div', {}, el('span', { class: 'title' }, displayValue(form, first, row.values[first]) || row.key), stateBadge(row.state)),
      el('div', { class: 'meta' }, rest.map((c) => displayValue(form, c, row.values[c])).filter(Boolean).join(' · '))));
  }
}

// The device's own Needs attention items (the watch rules the office sent with the schema,
// evaluated on this replica): shown above the list, oldest due first within each rule.
async function loadWatch() {
  try { app.watch = await api('api/watch'); } catch (e) { notice(e.message); return; }
  const list = $('watch-items');
  list.replaceChildren();
  for (const it of app.watch) {
    const form = app.forms[it.table];
    list.append(el('li', { 'data-key': it.key, 'data-rule': it.rule, onclick: () => openRecord(it.table, it.key) },
      el('div', {}, el('span', { class: 'title' }, it.alias || it.key),
        el('span', { class: `sev sev-${it.severity}` }, say(it.severity))),
      el('div', { class: 'meta' }, `${tr(it.title)} · ${say('dueSince', new Date(`${it.due.replace(' ', 'T')}Z`).toLocaleString(app.lang, { dateStyle: 'medium', timeStyle: 'short' }))}` +
        `${form ? ` · ${tr(form.title)}` : ''}`)));
  }
  $('watch-box').hidden = app.view !== 'list' || !app.watch.length;
}

async function loadRefused() {
  await refreshInfo(); // the teams the refusals are explained against may have changed
  try { app.refused = await api('api/rejected'); } catch (e) { notice(e.message); return; }
  const list = $('refused');
  list.replaceChildren();
  if (!app.refused.length) list.append(el('li', { class: 'empty' }, say('noRefused')));
  for (const q of app.refused) {
    const form = app.forms[q.table];
    const summary = (form && form.summary && form.summary.length) ? form.summary : Object.keys(q.values).slice(0, 2);
    list.append(el('li', { 'data-id': q.id, onclick: () => openRefused(q.id) },
      el('div', {}, el('span', { class: 'title' }, displayValue(form, summary[0], q.values[summary[0]]) || q.pk.join(', ')), stateBadge('refused')),
      el('div', { class: 'meta', title: `${q.code_name}: ${q.message}` }, `${form ? tr(form.title) : q.table} · ${form ? refusalWords(form, q) : q.message}`)));
  }
}

// ---- the form ----------------------------------------------------------------------------

function nowText() {
  const d = new Date();
  const pad = (n) => String(Math.abs(n)).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${off >= 0 ? '+' : '-'}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

// "2026-12-06T14:05:00+01:00" <-> the datetime-local input's "2026-12-06T14:05"
function toLocalInput(value) {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})/.exec(value || '');
  return m ? m[1] : '';
}

function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  const off = -d.getTimezoneOffset();
  const pad = (n) => String(Math.abs(n)).padStart(2, '0');
  return `${value.length === 16 ? `${value}:00` : value}${off >= 0 ? '+' : '-'}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

// The fields the worker sees; in "fix" mode also the automatic ones, since what the office
// refused is often one of them (the team, a key another team holds).
function formFields(form, mode) {
  const sections = form.sections.map((s) => ({ title: tr(s.title), fields: s.fields }));
  const autoFields = [];
  for (const [column, kind] of Object.entries(form.auto)) {
    const table = tableOf(form.table);
    const col = table.columns.find((c) => c.name === column);
    const teams = app.info.teams || [];
    // set once, at creation: an edit never shows or changes them
    if (mode === 'fix' || (mode === 'new' && ((kind === 'team' && teams.length !== 1) || (kind === 'worker' && !app.info.worker)))) {
      autoFields.push({
        column, auto: kind, required: !!(col && col.notnull), notnull: !!(col && col.notnull),
        label: kind === 'team' ? say('team') : kind === 'worker' ? say('worker') : columnWords(column),
        widget: kind === 'team' && teams.length ? 'team' : kind === 'now' ? 'datetime' : 'text',
      });
    }
  }
  if (autoFields.length) sections.push({ title: say('filled'), fields: autoFields });
  return sections;
}

// A column with no label in the form, in words: contacted_at -> "Contacted at".
function columnWords(column) {
  const w = column.replace(/_/g, ' ');
  return w.charAt(0).toUpperCase() + w.slice(1);
}

// Why the office refused a record, in the worker's words. Out of scope is nearly always a team
// the worker has left (moved while away); else the row sits in another team at the office.
function refusalWords(form, q) {
  if (q.code === 20) { // OUT_OF_SCOPE (docs/protocol.md 7.2)
    const teamColumn = Object.keys(form.auto || {}).find((c) => form.auto[c] === 'team');
    const team = teamColumn ? q.values[teamColumn] : null;
    if (team != null && !(app.info.teams || []).includes(String(team))) return say('notYourTeam', String(team));
    return say('otherTeamRow');
  }
  return say('refusedBecause', q.message);
}

function renderField(form, f, value) {
  const id = `f-${f.column}`;
  const required = f.required || f.notnull;
  const label = el('label', { for: id }, tr(f.label), required ? el('span', { class: 'req' }, ' *') : null);
  let input;
  if (f.widget === 'multiselect') {
    const chosen = new Set(value == null ? [] : String(value).split(','));
    input = el('div', { class: 'choices', id, role: 'group' },
      ((form.choices || {})[f.choices] || []).map((c) => el('label', {},
        el('input', { type: 'checkbox', name: f.column, value: String(c.value), checked: chosen.has(String(c.value)) }), tr(c.label))));
    label.replaceWith(el('span', { class: 'label' }, tr(f.label)));
  } else if (f.widget === 'select' || f.widget === 'team') {
    const list = f.widget === 'team' ? (app.info.teams || []).map((t) => ({ value: t, label: t })) : ((form.choices || {})[f.choices] || []);
    // a value no longer offered (the team the worker left, for a refused record) stays visible
    const stray = value != null && value !== '' && !list.some((c) => String(c.value) === String(value));
    input = el('select', { id, name: f.column },
      el('option', { value: '' }, ''),
      list.map((c) => el('option', { value: String(c.value), selected: value != null && String(value) === String(c.value) }, tr(c.label))),
      stray ? el('option', { value: String(value), selected: true }, say('refusedValue', String(value))) : null);
  } else if (f.widget === 'link') {
    // the rows of the linked table on this device, named by their form's summary
    const target = app.forms[f.link];
    const rows = app.linkRows[f.link] || [];
    const name = (r) => (target && target.summary ? target.summary : []).slice(0, 2)
      .map((c) => displayValue(target, c, r.values[c])).filter(Boolean).join(' · ') || r.key;
    input = el('select', { id, name: f.column },
      el('option', { value: '' }, ''),
      rows.map((r) => el('option', { value: r.key, selected: value != null && String(value) === r.key }, name(r))),
      value != null && !rows.some((r) => r.key === String(value)) ? el('option', { value: String(value), selected: true }, String(value)) : null);
  } else if (f.widget === 'textarea') {
    input = el('textarea', { id, name: f.column, rows: 3 });
    input.value = value ?? '';
  } else {
    const type = f.widget === 'integer' ? 'number' : f.widget === 'date' ? 'date' : f.widget === 'datetime' ? 'datetime-local' : 'text';
    input = el('input', { id, name: f.column, type, inputmode: f.widget === 'integer' ? 'numeric' : null, step: f.widget === 'integer' ? 1 : null });
    input.value = value == null ? '' : (f.widget === 'datetime' ? toLocalInput(value) : String(value));
  }
  const words = ruleWords(form, f);
  const wrap = el('div', { class: 'field', 'data-column': f.column },
    f.widget === 'multiselect' ? el('span', { class: 'label' }, tr(f.label), required ? el('span', { class: 'req' }, ' *') : null) : label,
    input,
    f.help ? el('p', { class: 'help' }, tr(f.help)) : null,
    words ? el('p', { class: 'rule' }, words) : null,
    el('p', { class: 'error', id: `err-${f.column}`, hidden: true }));
  return wrap;
}

// The worker's teams and the forms change with a sync (a move, a schema upgrade): read them
// again before a form is drawn.
async function refreshInfo() {
  try {
    app.info = await api('api/info');
    buildForms();
  } catch (e) { notice(e.message); }
}

// The rows a form's link fields can name, fetched before the form is drawn.
async function loadLinkRows(form) {
  for (const s of form.sections) {
    for (const f of s.fields) {
      if (f.widget !== 'link' || !f.link || !tableOf(f.link)) continue;
      try {
        app.linkRows[f.link] = (await api(`api/records?table=${encodeURIComponent(f.link)}&q=`)).rows;
      } catch { app.linkRows[f.link] = []; }
    }
  }
}

function renderForm() {
  const ed = app.editing;
  const form = app.forms[ed.table];
  $('form-title').textContent = ed.mode === 'new' ? say('newRecord', tr(form.title))
    : ed.mode === 'fix' ? say('fixRecord', tr(form.title)) : say('editRecord', tr(form.title));
  $('form-refusal').hidden = ed.mode !== 'fix';
  if (ed.mode === 'fix') {
    $('form-refusal').textContent = refusalWords(form, ed.rejected);
    $('form-refusal').title = `${ed.rejected.code_name}: ${ed.rejected.message}`; // the office's own words
  }
  $('discard').hidden = ed.mode !== 'fix';
  $('save').textContent = ed.mode === 'fix' ? say('fix') : say('save');
  $('cancel').textContent = say('cancel');
  $('discard').textContent = say('discard');
  $('form-errors').hidden = true;
  const box = $('fields');
  box.replaceChildren();
  for (const s of formFields(form, ed.mode)) {
    box.append(el('fieldset', {}, el('legend', {}, s.title), s.fields.map((f) => renderField(form, f, ed.values[f.column]))));
  }
  const conflicts = $('conflicts');
  conflicts.replaceChildren();
  conflicts.hidden = !(ed.conflicts && ed.conflicts.length);
  if (!conflicts.hidden) {
    conflicts.append(el('h2', {}, say('conflicts')));
    const fields = allFields(form, ed.mode);
    for (const c of ed.conflicts) {
      const f = fields.find((x) => x.column === c.column);
      const name = f ? tr(f.label) : (c.column || '');
      conflicts.append(el('div', { class: 'conflict', 'data-column': c.column || '' },
        `${name}: ${say('kept')} "${displayValue(form, c.column, c.winner) || '—'}", ${say('yours')} "${displayValue(form, c.column, c.mine) || '—'}" (${c.reason})`));
    }
  }
  show('form');
  window.scrollTo(0, 0);
}

function allFields(form, mode) {
  return formFields(form, mode).flatMap((s) => s.fields);
}

// Reads the inputs into {column: value}, the way the form says each is stored.
function readInputs(form, mode) {
  const values = {};
  for (const f of allFields(form, mode)) {
    if (f.widget === 'multiselect') {
      const picked = [...document.querySelectorAll(`input[name="${f.column}"]:checked`)].map((i) => i.value);
      const order = ((form.choices || {})[f.choices] || []).map((c) => String(c.value));
      picked.sort((a, b) => order.indexOf(a) - order.indexOf(b));
      values[f.column] = picked.length ? picked.join(',') : null;
      continue;
    }
    const input = $(`f-${f.column}`);
    let v = input.value.trim();
    if (v === '') { values[f.column] = null; continue; }
    if (f.widget === 'integer') v = /^-?\d+$/.test(v) ? Number(v) : v;
    else if (f.widget === 'datetime') {
      const before = app.editing.values[f.column];
      v = toLocalInput(before) === v ? before : fromLocalInput(v);
    }
    else if (f.widget === 'select') {
      const c = ((form.choices || {})[f.choices] || []).find((x) => String(x.value) === v);
      if (c) v = c.value;
    }
    values[f.column] = v;
  }
  return values;
}

function showError(column, text) {
  const p = $(`err-${column}`);
  if (!p) return false;
  p.textContent = text;
  p.hidden = false;
  p.closest('.field').classList.add('invalid');
  return true;
}

function clearErrors() {
  for (const p of document.querySelectorAll('#fields .error')) { p.hidden = true; p.textContent = ''; }
  for (const f of document.querySelectorAll('#fields .invalid')) f.classList.remove('invalid');
  $('form-errors').hidden = true;
}

// Required fields, whole numbers, and the column's CHECK in words, before anything is saved.
function validate(form, mode, values) {
  const errors = [];
  for (const f of allFields(form, mode)) {
    const v = values[f.column];
    const name = tr(f.label);
    if (v == null) {
      if (f.required || f.notnull) errors.push([f.column, `${name} ${say('required')}`]);
      continue;
    }
    if (f.widget === 'integer' && typeof v !== 'number') { errors.push([f.column, `${name} ${say('number')}`]); continue; }
    const min = f.min ?? (f.rule && f.rule.min);
    const max = f.max ?? (f.rule && f.rule.max);
    if (typeof v === 'number' && ((min !== undefined && v < min) || (max !== undefined && v > max))) {
      errors.push([f.column, `${name} ${ruleWords(form, f)}`]);
    }
    if (f.rule && f.rule.values && !f.rule.values.some((a) => String(a) === String(v))) {
      errors.push([f.column, `${name} ${say('oneOf', f.rule.values.map((a) => choiceLabel(form, f, a)).join(', '))}`]);
    }
  }
  return errors;
}

// The database's own refusal in words: "CHECK constraint failed: age_estimate BETWEEN 5 AND 30".
function explainServerError(form, mode, message) {
  const fields = allFields(form, mode);
  const notNull = /NOT NULL constraint failed: \w+\.(\w+)/.exec(message);
  if (notNull) {
    const f = fields.find((x) => x.column === notNull[1]);
    return [[notNull[1], `${f ? tr(f.label) : notNull[1]} ${say('required')}`]];
  }
  const check = /CHECK constraint failed: (.*)/.exec(message);
  if (check) {
    const f = fields.find((x) => new RegExp(`\\b${x.column}\\b`).test(check[1]));
    if (f) {
      const rule = parseCheck(check[1], f.column);
      const words = rule ? ruleWords(form, { ...f, rule }) : check[1];
      return [[f.column, `${tr(f.label)} ${words}`]];
    }
  }
  return [];
}

function reportErrors(errors, fallback) {
  const box = $('form-errors');
  box.replaceChildren(el('p', {}, say('fixErrors')));
  let shown = false;
  for (const [column, text] of errors) {
    box.append(el('p', {}, text));
    shown = showError(column, text) || shown;
  }
  if (!errors.length && fallback) box.replaceChildren(el('p', {}, fallback));
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
}

async function submitForm(event) {
  event.preventDefault();
  const ed = app.editing;
  const form = app.forms[ed.table];
  clearErrors();
  const typed = readInputs(form, ed.mode);
  const errors = validate(form, ed.mode, typed);
  if (errors.length) { reportErrors(errors); return; }
  // Only what changed is written: another device's edit of another field then merges cleanly.
  const values = {};
  for (const [k, v] of Object.entries(typed)) {
    const before = ed.values[k] ?? null;
    if (ed.mode === 'new' || String(before) !== String(v ?? null) || (before === null) !== (v === null)) values[k] = v;
  }
  try {
    if (ed.mode === 'new') {
      for (const [column, kind] of Object.entries(form.auto)) {
        if (column in values) continue;
        const col = tableOf(form.table).columns.find((c) => c.name === column);
        if (kind === 'team' && app.info.teams.length === 1) values[column] = app.info.teams[0];
        else if (kind === 'worker' && app.info.worker) values[column] = app.info.worker;
        else if (kind === 'now') values[column] = nowText();
        else if (kind === 'uuid' && !(col && col.pk)) values[column] = crypto.randomUUID();
      }
      const res = await api('api/save', { table: ed.table, key: null, values });
      notice(say('saved'));
      app.lastSaved = res.key;
    } else if (ed.mode === 'edit') {
      if (Object.keys(values).length) await api('api/save', { table: ed.table, key: ed.key, values });
      notice(say('saved'));
    } else {
      await api('api/rejected/resubmit', { id: ed.rejected.id, values });
      notice(say('resubmitted'));
    }
  } catch (e) {
    reportErrors(explainServerError(form, ed.mode, e.message), e.message);
    return;
  }
  app.table = ed.table;
  app.editing = null;
  show('list');
  await loadRecords();
  pollStatus();
}

async function openRecord(table, key) {
  try {
    const rec = await api(`api/record?table=${encodeURIComponent(table)}&key=${encodeURIComponent(key)}`);
    app.editing = { mode: 'edit', table, key, values: rec.values, conflicts: rec.conflicts };
    notice('');
    await refreshInfo();
    await loadLinkRows(app.forms[table]);
    renderForm();
  } catch (e) { notice(e.message); }
}

async function openRefused(id) {
  const q = app.refused.find((x) => x.id === id);
  if (!q) return;
  app.editing = { mode: 'fix', table: q.table, key: null, values: { ...q.values }, rejected: q };
  notice('');
  await refreshInfo();
  await loadLinkRows(app.forms[q.table]);
  renderForm();
}

// A column's DEFAULT as the form's value: 'made' -> "made", 0 -> 0; NULL or an expression -> none.
function defaultValue(dflt) {
  if (dflt == null) return undefined;
  if (/^'.*'$/s.test(dflt)) return dflt.slice(1, -1).replace(/''/g, "'");
  if (/^-?\d+(\.\d+)?$/.test(dflt)) return Number(dflt);
  return undefined;
}

async function newRecord() {
  await refreshInfo();
  const values = {};
  for (const c of tableOf(app.table).columns) {
    const v = defaultValue(c.dflt);
    if (v !== undefined) values[c.name] = v;
  }
  app.editing = { mode: 'new', table: app.table, key: null, values };
  notice('');
  await loadLinkRows(app.forms[app.table]);
  renderForm();
}

async function discardRefused() {
  const ed = app.editing;
  if (!ed || ed.mode !== 'fix' || !confirm(say('confirmDiscard'))) return;
  try {
    await api('api/rejected/discard', { id: ed.rejected.id });
    notice(say('discarded'));
  } catch (e) { notice(e.message); return; }
  app.editing = null;
  show('refused');
  loadRefused();
  pollStatus();
}

function applyLanguage() {
  document.documentElement.lang = app.lang;
  $('lang').value = app.lang;
  $('q').placeholder = say('search');
  $('new').textContent = say('new');
  $('sync-now').textContent = say('syncNow');
  $('watch-heading').textContent = say('needsAttention');
  document.querySelector('#search button[type=submit]').textContent = say('search');
}

async function start() {
  applyLanguage();
  try {
    app.info = await api('api/info');
  } catch (e) { notice(e.message); return; }
  buildForms();
  const withForm = app.info.tables.filter((t) => (app.info.forms || []).some((f) => f.table === t.name));
  app.table = (withForm[0] || app.info.tables[0] || {}).name;
  $('lang').addEventListener('change', () => {
    app.lang = $('lang').value;
    localStorage.setItem('outpost.lang', app.lang);
    applyLanguage();
    renderTabs();
    if (app.view === 'form') renderForm();
    else if (app.view === 'refused') loadRefused();
    else loadRecords();
    if (app.status) $('sync-line').textContent = statusText(app.status);
  });
  $('search').addEventListener('submit', (e) => { e.preventDefault(); loadRecords(); });
  $('new').addEventListener('click', newRecord);
  $('record-form').addEventListener('submit', submitForm);
  $('cancel').addEventListener('click', () => {
    const back = app.editing && app.editing.mode === 'fix' ? 'refused' : 'list';
    app.editing = null;
    show(back);
    if (back === 'refused') loadRefused(); else loadRecords();
  });
  $('discard').addEventListener('click', discardRefused);
  $('sync-now').addEventListener('click', async () => { try { await api('api/sync', {}); } catch (e) { notice(e.message); } pollStatus(); });
  show('list');
  await pollStatus();
  await loadRecords();
  setInterval(pollStatus, 1000);
}

start();

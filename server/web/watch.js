// Needs attention: the watch rules' open items (GET /api/watch) and how the duties were met
// week by week (GET /api/watch/counts). Loaded after app.js, whose helpers it uses (el, table,
// row, apiJson, recordHref, LANG); it registers itself as the dashboard's first view. As in
// app.js, data goes into the page through textContent and attributes only.
'use strict';

function watchTitle(title) {
  if (!title) return '';
  return title[LANG] || title.en || '';
}

// "2026-12-02 10:00:00" (UTC, as the server sends it) -> ms since the epoch.
function watchMs(text) {
  return Date.parse(text.replace(' ', 'T') + 'Z');
}

function watchOverdue(due, now) {
  const h = Math.max(0, Math.floor((watchMs(now) - watchMs(due)) / 3600000));
  if (h < 1) return 'due now';
  if (h < 48) return h + ' h overdue';
  return Math.floor(h / 24) + ' days overdue';
}

async function viewWatch(content) {
  const [data, history] = await Promise.all([apiJson('/api/watch'), apiJson('/api/watch/counts')]);
  const rules = {};
  for (const r of history.rules) rules[r.id] = r.title;
  const perTeam = {};
  for (const t of state.me.teams) perTeam[t] = 0;
  for (const it of data.items) {
    perTeam[it.team] = (perTeam[it.team] || 0) + 1;
  }

  const summary = el('p', null, 'watch-summary');
  summary.id = 'watch-summary';
  for (const [team, n] of Object.entries(perTeam)) {
    const chip = el('span', team + ': ' + n + ' open', n ? 'watch-chip open' : 'watch-chip');
    chip.dataset.team = team;
    summary.appendChild(chip);
  }
  content.appendChild(summary);

  if (!data.items.length) {
    content.appendChild(el('p', 'Nothing needs attention in your teams.', 'watch-empty'));
  } else {
    const { t, tbody } = table(['Young person', 'What is due', 'Since', 'Team', 'Record']);
    t.id = 'watch-items';
    for (const it of data.items) {
      const since = el('span', it.due + ' UTC');
      since.appendChild(el('small', ' ' + watchOverdue(it.due, data.now)));
      const link = el('a', 'Open record');
      link.href = recordHref(it.table, it.id);
      const what = el('span', watchTitle(it.title), 'sev-' + it.severity);
      const tr = row([it.alias || '(no alias)', what, since, it.team, link]);
      tr.dataset.rule = it.rule;
      tr.dataset.id = it.id;
      tbody.appendChild(tr);
    }
    content.appendChild(t);
    if (data.truncated) content.appendChild(el('p', 'Only the oldest 500 items are shown.'));
  }

  content.appendChild(el('h3', 'Duties met, week by week (last ' + history.weeks + ' weeks)'));
  if (!history.counts.length) {
    content.appendChild(el('p', 'No duty has fallen due in this period.'));
    return;
  }
  const { t, tbody } = table(['Week of', 'Team', 'Duty', 'Fell due', 'Met', 'Still open']);
  t.id = 'watch-counts';
  for (const c of history.counts) {
    const label = rules[c.rule] ? watchTitle(rules[c.rule]) : c.rule;
    const open = el('span', c.open, c.open ? 'stale' : '');
    tbody.appendChild(row([c.week, c.team, label, c.due, c.due - c.open, open]));
  }
  content.appendChild(t);
}

VIEWS.watch = viewWatch;
TITLES.watch = 'Needs attention';

// Duties fall due with time as well as with data: while the view is open it also refreshes
// itself every minute (as a background call, which leaves the idle clock alone).
setInterval(() => {
  if (state.me && state.view === 'watch' && !document.hidden) show('watch', true);
}, 60000);

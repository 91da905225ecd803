// The Needs attention view in the browser (issue 19), called by dashboard.test.mjs right after
// the supervisor logs in: it is the first view; an overdue duty recorded on a device appears by
// itself as the device syncs, only for the supervisor's team, links to its record, and leaves
// by itself when the worker records the duty; the weekly counts show it met. outpostd runs with
// the test-only watch clock (OUTPOSTD_TEST_WATCH_CLOCK) set to the real time at the start.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';

export function watchClock(file) {
  fs.writeFileSync(file, new Date().toISOString().slice(0, 19).replace('T', ' '));
}

export async function watchSteps({ page, step, dev, shot, adm }) {
  step('Needs attention is the first view, and empty for this team');
  await page.waitForSelector('#content[data-view=watch]');
  assert.equal(await page.textContent('#view-title'), 'Needs attention');
  assert.match(await page.textContent('#watch-summary'), /team-a: 0 open/);

  step('a missing episode unreported after 24 h appears by itself as the device syncs');
  const wentMissing = new Date(Date.now() - 30 * 3600000).toISOString().slice(0, 19) + 'Z';
  const episode = randomUUID();
  const other = randomUUID();
  const insert = (who, id, team, alias) => dev(who, 'exec', `INSERT INTO missing_episodes
      (id, team_id, worker_id, alias, went_missing_at, police_reported_at)
      VALUES ('${id}', '${team}', '${who}', '${alias}', '${wentMissing}', '${wentMissing}')`);
  insert('carol', other, 'team-b', 'C-runaway');
  dev('carol', 'sync');
  insert('alice', episode, 'team-a', 'A-runaway');
  await page.waitForSelector('#live.on');
  dev('alice', 'sync');
  const item = `#watch-items tr[data-id="${episode}"][data-rule=missing_not_reported]`;
  await page.waitForSelector(item, { timeout: 30000 });
  const text = await page.textContent(item);
  assert.match(text, /^A-runaway/, 'the young person first');
  assert.match(text, /Missing 24 h: report to law enforcement and NCMEC/);
  assert.match(text, /h overdue/);
  assert.doesNotMatch(await page.textContent('#content'), /C-runaway/, "another team's item is not shown");
  assert.match(await page.textContent('#watch-summary'), /team-a: 1 open/);
  await shot(page, 'watch-open');

  step('the item links to its record');
  assert.equal(await page.getAttribute(`${item} a`, 'href'), `#/record/missing_episodes/${episode}`);
  await page.click(`${item} a`);
  await page.waitForSelector('#record-panel:not([hidden])');
  await page.waitForFunction(() => /A-runaway/.test(document.querySelector('#record-table').textContent));
  await page.click('#record-close');
  await page.waitForSelector('#record-panel', { state: 'hidden' });

  step('the worker records the NCMEC report: the item leaves by itself');
  dev('alice', 'exec', `UPDATE missing_episodes SET ncmec_reported_at = '${new Date().toISOString().slice(0, 19)}Z',
      ncmec_case_number = 'NCMEC-0001' WHERE id = '${episode}'`);
  dev('alice', 'sync');
  await page.waitForSelector(item, { state: 'detached', timeout: 30000 });
  await page.waitForSelector('#content .watch-empty');
  const counts = await page.textContent('#watch-counts');
  assert.match(counts, /team-a/);
  assert.match(counts, /Missing 24 h: report to law enforcement and NCMEC/);
  assert.doesNotMatch(counts, /team-b/);
  await shot(page, 'watch-cleared');
  assert.match(adm('audit', 'list', '--limit', '50'), /sara\twatch\.list/);

  await page.click('nav button[data-view=devices]');
}

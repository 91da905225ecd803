// The field app (`outpost field`) in a real browser at phone size: Debian's headless Chromium
// driven by playwright-core, against the CLI on an encrypted replica and a real outpostd that is
// stopped and started around it. Run by run.sh; exits non-zero on the first failed check.
// Screenshots go to OUTPOST_ARTIFACTS (field-*.png). The synced contact is then checked on the
// supervisors' dashboard (field-dashboard.steps.mjs).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { fieldOnDashboard } from './field-dashboard.steps.mjs';
import { artifacts, bin, browserOptions, freePort, Office, step, waitFor } from './harness.mjs';

const office = new Office('field');
let field = null;
let fieldOut = '';
let fieldExpectedExit = 0;
let browser = null;
let profile = null;

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `field-${name}.png`), fullPage: true });
}

// No sideways scroll at this width: nothing is wider than the viewport.
async function assertNoSidewaysScroll(page, what) {
  // Against the phone's width, not window.innerWidth: a mobile browser widens its layout
  // viewport to fit content that is too wide, and the page then reads as fitting.
  const widths = await page.evaluate(() => ({
    doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
  }));
  widths.view = page.viewportSize().width;
  assert.ok(widths.doc <= widths.view && widths.body <= widths.view,
            `${what}: page is ${widths.doc}px wide in a ${widths.view}px viewport`);
}

const appPorts = new Set(); // every port outpost field listened on in this run

function startField(device) {
  fieldOut = '';
  // No --forms: the forms are the ones outpost-admin init took from examples/outreach/forms/
  // and the server sent with the schema at enrollment.
  // No --worker: the device learnt its worker at enrollment (protocol `wkr`).
  field = spawn(bin.outpost, device.args('field'), { stdio: ['ignore', 'pipe', 'pipe'] });
  field.stdout.on('data', (d) => { fieldOut += d; });
  field.stderr.on('data', (d) => { fieldOut += d; });
  return waitFor('outpost field to print its address', () => {
    const m = fieldOut.match(/field app: (http:\/\/127\.0\.0\.1:(\d+)\/([0-9a-f]+)\/)/);
    if (m) appPorts.add(Number(m[2]));
    return m && { url: m[1], port: Number(m[2]), token: m[3] };
  });
}

async function stateOf(page, alias) {
  return page.evaluate((a) => {
    const li = [...document.querySelectorAll('#records li[data-key]')].find((x) => x.textContent.includes(a));
    return li ? li.dataset.state : null;
  }, alias);
}

// A GET with a Host header of our choosing (fetch does not let a page or a test set Host).
function getWithHost(url, host) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { host } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  });
}

async function postApi(app, what, body) {
  const res = await fetch(`${app.url}api/${what}`, { method: 'POST', body });
  return { status: res.status, body: await res.text() };
}

async function test() {
  step('a central store, worker alice in two teams, bob in team-a; both devices enrolled');
  office.admin('team', 'add', 'team-a');
  office.admin('team', 'add', 'team-b');
  office.admin('worker', 'add', 'alice', '--team', 'team-a', '--team', 'team-b');
  office.admin('worker', 'add', 'bob', '--team', 'team-a');
  const port = await office.start(await freePort());
  const alice = office.enroll('alice');
  const bob = office.enroll('bob');
  await office.stop();

  step('outpost field on alice\'s replica, with no server to reach');
  let app = await startField(alice);

  step('a request without the token is refused');
  // the token with its last hex digit changed (to one it is not: a token ending in 0 was once
  // "wrong" by becoming itself, 1 run in 16)
  const wrongLast = app.token.endsWith('0') ? '1' : '0';
  for (const p of ['/', '/index.html', '/api/info', `/${app.token.slice(0, -1)}${wrongLast}/api/info`, `/${app.token}x/`]) {
    const res = await fetch(`http://127.0.0.1:${app.port}${p}`);
    assert.equal(res.status, 403, `${p} without the token`);
    assert.match(await res.text(), /forbidden/);
  }
  const post = await fetch(`http://127.0.0.1:${app.port}/api/save`, { method: 'POST', body: '{}' });
  assert.equal(post.status, 403, 'a POST without the token');
  assert.equal((await fetch(`${app.url}api/info`)).status, 200, 'the same request with the token');

  step('the API: another Host is refused, the CSP allows this app only, bad requests are named');
  const tokenPath = new URL(app.url).pathname;
  for (const host of [`attacker.example:${app.port}`, `127.0.0.1:${app.port + 1}`, '127.0.0.1']) {
    const res = await getWithHost(`http://127.0.0.1:${app.port}${tokenPath}api/info`, host);
    assert.equal(res.status, 403, `Host ${host} with the token`);
    assert.match(res.body, /answers only to 127\.0\.0\.1 or localhost/);
  }
  assert.equal((await getWithHost(`http://127.0.0.1:${app.port}${tokenPath}api/info`, `localhost:${app.port}`)).status, 200);
  const csp = (await fetch(app.url)).headers.get('content-security-policy');
  assert.match(csp, /connect-src 'self';/, csp);
  assert.doesNotMatch(csp, /ws:|wss:/, csp);
  const noBody = await fetch(`${app.url}api/sync`, { method: 'POST' });
  assert.equal(noBody.status, 200, 'POST api/sync with no body is answered');
  assert.deepEqual(await postApi(app, 'save', '{"table":"contacts",'), { status: 400, body: '{"error":"the request is not valid JSON"}' });
  assert.deepEqual(await postApi(app, 'save', '[1]'), { status: 400, body: '{"error":"the request must be a JSON object"}' });
  assert.deepEqual(await postApi(app, 'save', '{"table":"contacts","key":null,"values":"x"}'),
                   { status: 400, body: '{"error":"\\"values\\" must be an object of column: value (it is text)"}' });
  assert.deepEqual(await postApi(app, 'rejected/resubmit', '{"id":"1 OR 1=1","values":{}}'),
                   { status: 400, body: '{"error":"\\"id\\" must be a quarantine id: a whole number above 0"}' });
  const asBob = await postApi(app, 'save', JSON.stringify({ table: 'contacts', key: null,
    values: { team_id: 'team-a', worker_id: 'bob', alias: 'Not mine', contacted_at: '2026-12-05T10:00:00+00:00' } }));
  assert.equal(asBob.status, 400, asBob.body);
  assert.match(asBob.body, /worker_id: this device records work as alice; the office refuses a record in another worker's name/);
  assert.equal((await (await fetch(`${app.url}api/info`)).json()).worker, 'alice', 'the worker the office enrolled the device for');
  const wrongWorker = spawnSync(bin.outpost, alice.args('field', '--worker', 'bob'), { encoding: 'utf8', timeout: 10000 });
  assert.equal(wrongWorker.status, 1, wrongWorker.stderr);
  assert.match(wrongWorker.stderr, /--worker bob, but the office enrolled this device for worker alice/);
  const badTime = await postApi(app, 'save', JSON.stringify({ table: 'contacts', key: null,
    values: { team_id: 'team-a', worker_id: 'alice', alias: 'When?', contacted_at: 'x' } }));
  assert.deepEqual(badTime, { status: 400, body: '{"error":"contacted_at: a date and time is needed, such as 2026-12-05T22:30:00+01:00"}' });
  const twice = spawnSync(bin.outpost, alice.args('field', '--port', String(app.port)), { encoding: 'utf8', timeout: 10000 });
  assert.equal(twice.status, 2, twice.stderr);
  assert.equal(twice.stderr.trim(), `outpost: field: cannot listen on 127.0.0.1 port ${app.port}`, 'a port in use: outpost\'s own words only');

  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    ...browserOptions, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
  });
  const page = await browser.newPage();
  // Offline for real: the page may reach nothing but the app itself.
  const outside = [];
  await page.route('**/*', (route) => {
    const u = new URL(route.request().url());
    // the app restarts on a new port; the page may still poll the old one before it moves
    if (u.hostname === '127.0.0.1' && appPorts.has(Number(u.port))) return route.continue();
    outside.push(u.href);
    return route.abort();
  });
  const cspViolations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });
  await page.goto(app.url);
  await page.waitForSelector('#tabs button[data-table=contacts][aria-current=page]');
  await page.waitForFunction(() => /Not enrolled|Offline|waiting|Connecting/i.test(document.querySelector('#sync-line').textContent));
  await assertNoSidewaysScroll(page, 'the list');
  await shot(page, 'list-empty');

  step('the contact form: labels from the form, the rules in words, checked before saving');
  await page.click('#new');
  await page.waitForSelector('#form-view:not([hidden]) #f-alias');
  assert.match(await page.textContent('.field[data-column=alias] label'), /Name they gave/);
  assert.match(await page.textContent('.field[data-column=age_estimate]'), /must be between 5 and 30/);
  // alice has two teams: the form asks which one; one team would be filled in silently
  assert.equal(await page.locator('#f-team_id option').count(), 3);
  assert.equal(await page.locator('#f-id').count(), 0, 'the id is never shown on a new record');
  await assertNoSidewaysScroll(page, 'the form');
  await shot(page, 'form-new');
  await page.fill('#f-age_estimate', '40');
  await page.click('#save');
  await page.waitForSelector('#form-errors:not([hidden])');
  assert.match(await page.textContent('#err-alias'), /Name they gave is required/);
  assert.match(await page.textContent('#err-age_estimate'), /Age \(estimate\) must be between 5 and 30/);
  assert.match(await page.textContent('#err-team_id'), /Team is required/);
  await shot(page, 'form-errors');
  await assertNoSidewaysScroll(page, 'the form with its errors');

  step('record a contact offline: saved on the device, pending');
  await page.fill('#f-alias', 'Maya');
  await page.fill('#f-age_estimate', '15');
  await page.selectOption('#f-risk_level', 'medium');
  await page.check('.field[data-column=risk_indicators] input[value=older_partner]');
  await page.check('.field[data-column=risk_indicators] input[value=no_id_documents]');
  await page.check('.field[data-column=needs] input[value=food]');
  await page.check('.field[data-column=needs] input[value=shelter]');
  await page.fill('#f-location', 'bus station');
  await page.selectOption('#f-team_id', 'team-a');
  await page.click('#save');
  await page.waitForSelector('#list-view:not([hidden]) #records li[data-key]');
  assert.equal(await stateOf(page, 'Maya'), 'pending');
  assert.match(await page.textContent('#records'), /Medium/, 'the choice label, not the code');
  await page.waitForFunction(() => /1 waiting to send/.test(document.querySelector('#sync-line').textContent));
  await shot(page, 'list-pending');

  step('the office comes back: the record syncs by itself and reaches the server');
  await office.start(port);
  await page.click('#sync-now'); // the engine is in its offline back-off; the worker need not wait
  await waitFor('Maya to be synced', async () => (await stateOf(page, 'Maya')) === 'synced', 30000);
  await page.waitForFunction(() => /everything sent/.test(document.querySelector('#sync-line').textContent));
  await shot(page, 'list-synced');
  bob.cli('sync');
  assert.deepEqual(bob.query("SELECT alias || '|' || needs || '|' || team_id || '|' || worker_id FROM contacts"),
                   ['Maya|shelter,food|team-a|alice']);
  const [contactedAt] = bob.query('SELECT contacted_at FROM contacts');
  assert.match(contactedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/, 'the time of contact, local with its offset');
  const [mayaId] = bob.query("SELECT id FROM contacts WHERE alias = 'Maya'");
  await fieldOnDashboard({ office, step, id: mayaId, worker: 'alice', team: 'team-a', expect: {
    alias: 'Maya', riskLevel: 'Medium', riskIndicators: 'No identity documents, Much older partner', needs: 'Shelter, Food' } });

  step('a referral, then the contact edited to link it: only the changed fields are written');
  await page.click('#tabs button[data-table=referrals]');
  await page.click('#new');
  await page.waitForSelector('#form-view:not([hidden]) #f-service');
  await page.fill('#f-alias', 'Maya');
  await page.selectOption('#f-service', 'shelter');
  await page.selectOption('#f-status', 'made');
  await page.selectOption('#f-team_id', 'team-a');
  await page.click('#save');
  await page.waitForSelector('#list-view:not([hidden]) #records li[data-key]');
  const referralKey = await page.getAttribute('#records li[data-key]', 'data-key');
  await page.click('#tabs button[data-table=contacts]');
  await page.waitForSelector('#records li[data-key]');
  await page.click('#records li[data-key]');
  await page.waitForSelector('#form-view:not([hidden]) #f-alias');
  assert.equal(await page.inputValue('#f-alias'), 'Maya');
  assert.match(await page.textContent('#f-referral_id'), /Maya · Shelter/, 'the referral by its summary, not its id');
  await page.selectOption('#f-referral_id', referralKey);
  await page.fill('#f-location', 'night shelter');
  await page.click('#save');
  await page.waitForSelector('#list-view:not([hidden])');
  await waitFor('the edit to be pending', async () => (await stateOf(page, 'Maya')) === 'pending');
  await waitFor('the edit to be synced', async () => (await stateOf(page, 'Maya')) === 'synced', 30000);
  bob.cli('sync');
  assert.deepEqual(bob.query("SELECT location || '|' || referral_id || '|' || contacted_at FROM contacts"),
                   [`night shelter|${referralKey}|${contactedAt}`], 'the edit wrote only what changed');

  step('one field changed on two devices: the later edit wins, and alice sees hers lost');
  await office.stop();
  await page.click('#records li[data-key]');
  await page.waitForSelector('#form-view:not([hidden]) #f-location');
  await page.fill('#f-location', 'market');
  await page.click('#save');
  await page.waitForSelector('#list-view:not([hidden])');
  await waitFor('alice\'s edit pending', async () => (await stateOf(page, 'Maya')) === 'pending');
  await stopField(); // so that bob's later edit reaches the office first, whatever the timing
  bob.cli('exec', "UPDATE contacts SET location = 'park' WHERE alias = 'Maya'");
  await office.start(port);
  bob.cli('sync');
  app = await startField(alice);
  await page.goto(app.url);
  await waitFor('Maya in conflict', async () => (await stateOf(page, 'Maya')) === 'conflict', 30000);
  await page.click('#records li[data-key]');
  await page.waitForSelector('#conflicts:not([hidden])');
  assert.match(await page.textContent('#conflicts'), /Where you met: the office kept "park", yours was "market"/);
  assert.equal(await page.locator('#f-team_id').count(), 0, 'an edit does not show the automatic columns');
  assert.equal(await page.inputValue('#f-location'), 'park', 'the form shows the value kept');
  await shot(page, 'conflict');
  await page.click('#cancel');

  step('a record the office refuses is kept, fixed and resubmitted');
  // alice leaves team-b while her device is away; it still believes she is in it
  await office.stop();
  office.admin('worker', 'move', 'alice', '--team', 'team-a');
  await page.click('#new');
  await page.fill('#f-alias', 'Noor');
  await page.selectOption('#f-team_id', 'team-b');
  await page.click('#save');
  await waitFor('Noor pending', async () => (await stateOf(page, 'Noor')) === 'pending');
  await office.start(port);
  await page.click('#sync-now');
  await page.waitForFunction(() => /1 refused/.test(document.querySelector('#sync-line').textContent), null, { timeout: 30000 });
  await page.click('#tab-refused');
  await page.waitForSelector('#refused li[data-id]');
  assert.match(await page.textContent('#refused'), /Noor/);
  assert.match(await page.textContent('#refused'), /You are no longer in team team-b: choose one of your teams/);
  await shot(page, 'refused-list');
  await page.click('#refused li[data-id]');
  await page.waitForSelector('#form-refusal:not([hidden])');
  assert.equal(await page.inputValue('#f-alias'), 'Noor', 'what the worker typed is still there');
  assert.equal(await page.inputValue('#f-team_id'), 'team-b', 'the refused team is shown, not an empty choice');
  assert.match(await page.textContent('#f-team_id option:checked'), /team-b \(refused\)/);
  assert.equal(await page.textContent('#form-refusal'), 'You are no longer in team team-b: choose one of your teams.');
  assert.match(await page.textContent('#form-view'), /Contacted at/, 'an automatic column with no label, in words');
  await assertNoSidewaysScroll(page, 'the fix form');
  await shot(page, 'refused-fix');
  await page.selectOption('#f-team_id', 'team-a');
  await page.click('#save');
  await page.waitForSelector('#list-view:not([hidden])');
  await waitFor('Noor to be back, pending', async () => (await stateOf(page, 'Noor')) === 'pending');
  await waitFor('Noor to be synced', async () => (await stateOf(page, 'Noor')) === 'synced', 30000);
  await page.waitForFunction(() => !/refused/.test(document.querySelector('#sync-line').textContent));
  bob.cli('sync');
  assert.deepEqual(bob.query("SELECT alias || '|' || team_id FROM contacts ORDER BY alias"), ['Maya|team-a', 'Noor|team-a']);
  const afterFix = await (await fetch(`${app.url}api/status`)).json();
  assert.equal(afterFix.conflicts, 1, 'conflicts counts what is in conflict (Maya), not the refusal fixed since');

  step('the example policy (author=worker_id): the office refuses a record in another worker\'s name');
  bob.cli('exec', "INSERT INTO contacts (id, team_id, worker_id, contacted_at, alias) VALUES " +
                  "('0000forged-by-bob', 'team-a', 'alice', '2026-12-05T10:00:00+00:00', 'Forged')");
  const forged = spawnSync(bin.outpost, bob.args('sync'), { encoding: 'utf8' });
  assert.equal(forged.status, 5, `bob's sync: ${forged.stdout}${forged.stderr}`);
  assert.match(forged.stdout + forged.stderr, /1 change refused by the server/);
  const bobRefused = bob.cli('rejected');
  assert.match(bobRefused, /worker_id names worker alice, but this device belongs to worker bob/);
  bob.cli('rejected', 'discard', bobRefused.match(/^\s*#?(\d+)/m)[1]); // bob's later syncs start clean

  step('a missing episode: the column defaults preset, one team filled in silently');
  await page.click('#tabs button[data-table=missing_episodes]');
  await page.click('#new');
  await page.waitForSelector('#form-view:not([hidden]) #f-went_missing_at');
  assert.equal(await page.inputValue('#f-reported_to_police'), '0', 'DEFAULT 0 preset as "No"');
  assert.equal(await page.locator('#f-team_id').count(), 0, 'alice has one team now: not asked');
  assert.equal(await page.locator('#f-worker_id').count(), 0, 'the worker is known: never asked');
  await page.fill('#f-alias', 'Sam');
  await page.fill('#f-went_missing_at', '2026-12-05T22:30');
  await page.check('.field[data-column=run_factors] input[value=peer_pull]');
  await assertNoSidewaysScroll(page, 'the missing episode form');
  await shot(page, 'form-missing-episode');
  await page.click('#save');
  await page.waitForSelector('#list-view:not([hidden]) #records li[data-key]');
  await waitFor('Sam to be synced', async () => (await stateOf(page, 'Sam')) === 'synced', 30000);
  bob.cli('sync');
  const [episode] = bob.query("SELECT alias || '|' || typeof(reported_to_police) || reported_to_police || '|' || " +
                              "went_missing_at || '|' || run_factors || '|' || team_id FROM missing_episodes");
  assert.match(episode, /^Sam\|integer0\|2026-12-05T22:30:00[+-]\d\d:\d\d\|peer_pull\|team-a$/);
  await page.click('#tabs button[data-table=contacts]');

  step('search, and the form in Spanish');
  await page.fill('#q', 'noo');
  await page.click('#search button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#records li[data-key]').length === 1);
  await page.selectOption('#lang', 'es');
  await page.click('#new');
  await page.waitForSelector('#form-view:not([hidden]) #f-alias');
  assert.match(await page.textContent('.field[data-column=alias] label'), /Nombre que dio/);
  assert.match(await page.textContent('.field[data-column=age_estimate]'), /debe estar entre 5 y 30/);
  await assertNoSidewaysScroll(page, 'the Spanish form');
  await shot(page, 'form-es');

  step("the device's own Needs attention: an old episode never reported is listed, and opens");
  await page.click('#cancel');
  await page.selectOption('#lang', 'en');
  await page.click('#tabs button[data-table=missing_episodes]');
  await page.click('#new');
  await page.waitForSelector('#form-view:not([hidden]) #f-went_missing_at');
  await page.fill('#f-alias', 'Old');
  await page.fill('#f-went_missing_at', '2020-01-01T10:00'); // due long before any clock this runs on
  await page.check('.field[data-column=run_factors] input[value=peer_pull]');
  await page.click('#save');
  await page.waitForSelector('#watch-box:not([hidden]) #watch-items li[data-rule=missing_not_reported]');
  const item = page.locator('#watch-items li', { hasText: 'Old' });
  assert.match(await item.textContent(), /Missing 24 h: report to law enforcement and NCMEC/);
  assert.match(await item.textContent(), /due since .*2020/);
  await assertNoSidewaysScroll(page, 'the Needs attention list');
  await shot(page, 'needs-attention');
  await item.click();
  await page.waitForSelector('#form-view:not([hidden]) #f-alias');
  assert.equal(await page.inputValue('#f-alias'), 'Old');
  assert.equal(await page.isHidden('#watch-box'), true, 'the list shows on the record list only');
  await page.click('#cancel');

  assert.deepEqual(outside, [], 'the page asked for nothing outside the app');
  assert.deepEqual(cspViolations, [], 'no Content-Security-Policy violations');

  step('revoked with a wipe while the app is open, online and idle: it stops within seconds, the replica gone');
  const { device } = await (await fetch(`${app.url}api/info`)).json();
  await waitFor('the app connected and idle', async () => {
    const st = await (await fetch(`${app.url}api/status`)).json();
    return st.activity === 'idle' && st.pending === 0;
  });
  office.admin('revoke', device, '--wipe'); // outpostd keeps running; nobody presses Sync now
  await waitFor('outpost field to stop', () => field.exitCode !== null, 10000);
  assert.equal(field.exitCode, 4, fieldOut);
  assert.match(fieldOut, /ordered this device wiped/);
  assert.equal(fs.existsSync(alice.db), false, 'the replica is gone');
  fieldExpectedExit = 4;
  step('all field app checks passed');
}

async function stopField() {
  if (!field) return;
  const f = field;
  field = null;
  if (f.exitCode === null) {
    f.kill('SIGTERM');
    await new Promise((r) => (f.exitCode !== null ? r() : f.once('exit', r)));
  }
  // A clean stop: under ASan a leak or error at exit makes this non-zero.
  if (f.exitCode !== fieldExpectedExit) throw new Error(`outpost field exited with ${f.exitCode} (signal ${f.signalCode})\n${fieldOut}`);
}

let failed = false;
try {
  await test();
} catch (e) {
  failed = true;
  console.error(e);
  console.error(`outpost field said:\n${fieldOut}`);
  console.error(office.logTail());
}
for (const stop of [() => browser && browser.close(), stopField, () => office.stop()]) {
  try { await stop(); } catch (e) { failed = true; console.error(e.message); }
}
office.remove();
if (profile) fs.rmSync(profile, { recursive: true, force: true });
process.exit(failed ? 1 : 0);

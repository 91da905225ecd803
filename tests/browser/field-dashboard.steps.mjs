// Issue 15, end to end: a contact recorded offline in the field app, once synced, is on the
// supervisors' dashboard of the same outpostd, in the words of its form. Called by
// field.test.mjs right after the contact is synced; its own desktop-sized browser context.
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { artifacts, browserOptions, dashboardLogin } from './harness.mjs';

// office: the harness Office with outpostd running; id: the contact's key; expect: the labels
// the form gives its values ({ alias, riskLevel, riskIndicators, needs }).
export async function fieldOnDashboard({ office, step, id, worker, team, expect }) {
  step(`a supervisor of ${team} finds the contact on the dashboard, in the form's words`);
  const password = 'supervisor passphrase 1';
  office.addUser('sofia', 'supervisor', team, password);
  const browser = await chromium.launch({ executablePath: browserOptions.executablePath, args: browserOptions.args });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: browserOptions.viewport });
    const page = await context.newPage();
    await page.goto(office.dashboardUrl);
    await dashboardLogin(page, 'sofia', password);
    assert.match(await page.textContent('#who'), new RegExp(`sofia \\(supervisor: ${team}\\)`));
    await page.click('nav button[data-view=records]');
    const row = `#content tr[data-id="${id}"]`;
    await page.waitForSelector(row);
    const heads = await page.$$eval('#content thead th', (ths) => ths.map((t) => t.textContent));
    const cells = await page.$$eval(`${row} td`, (tds) => tds.map((t) => t.textContent));
    assert.equal(heads[0], 'Name they gave', `the alias first, by its label: ${heads}`);
    assert.equal(cells[0], expect.alias, 'the young person first');
    const risk = heads.findIndex((h) => /^Risk level/.test(h));
    assert.ok(risk > 0, `the risk level is in the list: ${heads}`);
    assert.equal(cells[risk], expect.riskLevel, 'the risk level by its choice label');

    step('its detail: every choice by its label');
    await page.click(row);
    await page.waitForSelector('#record-panel:not([hidden])');
    assert.equal(new URL(page.url()).hash, `#/record/contacts/${id}`);
    await page.waitForFunction((a) => document.querySelector('#record-table').textContent.includes(a), expect.alias);
    const cell = (column) => page.textContent(`#record-table tr[data-column=${column}] th`).then(async (th) =>
      [th, await page.textContent(`#record-table tr[data-column=${column}] td`)]);
    assert.deepEqual(await cell('alias'), ['Name they gave', expect.alias]);
    assert.deepEqual(await cell('risk_indicators'), ['Trafficking-risk indicators seen', expect.riskIndicators]);
    assert.deepEqual(await cell('risk_level'), ['Risk level', expect.riskLevel]);
    assert.deepEqual(await cell('needs'), ['Needs identified', expect.needs]);
    assert.match(await page.textContent('#record-id'), new RegExp(`${team}.*${worker}`), 'team and worker in the ids line');
    assert.match(await page.textContent('#record-history'), new RegExp(`created by ${worker}`));
    await page.screenshot({ path: path.join(artifacts, 'field-on-dashboard.png'), fullPage: true });
  } finally {
    await browser.close();
  }
}

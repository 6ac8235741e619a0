// Lifecycle operations as a customer runs them: confirmations, bounded forms, progress that
// updates without a reload, create and delete, the audit log, by keyboard and on a phone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, signIn, hydrated, shot } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const card = (page, name) =>
  page.getByRole('list', { name: 'Instances' }).getByRole('listitem').filter({
    has: page.getByRole('heading', { name, exact: true }),
  });

/// Uncaught errors, leaving out the refusals a test provoked on purpose (the browser logs every
/// 4xx answer as a console error).
const unexpected = (page) => page.errors.filter((e) => !/status of 422/.test(e));

/// Marks the document so a full reload would be noticed.
async function markDocument(page) {
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
}
async function assertNoReload(page) {
  assert.equal(await page.evaluate(() => window.__sameDocument === true), true, 'the page reloaded');
}

async function noHorizontalScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

test('an operator stops a running instance from the list and watches it reach stopped', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ops@globex.test');
  await hydrated(page);
  await markDocument(page);
  const api = card(page, 'globex-api');
  await api.getByRole('button', { name: 'Stop', exact: true }).click();
  const confirm = page.getByRole('region', { name: 'Stop globex-api' });
  await confirm.getByText('It stops serving').waitFor();
  await confirm.getByRole('button', { name: 'Stop globex-api' }).click();
  await api.getByText('Stopping', { exact: true }).waitFor({ timeout: 10000 });
  await api.getByRole('status').filter({ hasText: /Stop: (queued|running)/ }).waitFor();
  await api.getByText('Stopped', { exact: true }).waitFor({ timeout: 30000 });
  await assertNoReload(page);
  // The list reloaded in place: the stopped instance now offers Start.
  await api.getByRole('button', { name: 'Start', exact: true }).waitFor();
  assert.deepEqual(page.errors, []);
});

test('scale stays inside the plan: out-of-bounds values are refused, in-bounds ones applied', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ops@globex.test');
  await hydrated(page);
  await card(page, 'globex-dev').getByRole('link', { name: 'Scale…' }).click();
  await page.getByRole('heading', { name: 'globex-dev', level: 1 }).waitFor();
  await hydrated(page);
  const form = page.getByRole('region', { name: 'Scale globex-dev' });
  const replicas = form.getByLabel('Replicas');
  await form.getByText('1 to 5', { exact: true }).waitFor();

  // The browser refuses a value beyond the plan's limit before anything is sent.
  await replicas.fill('99');
  await form.getByRole('button', { name: 'Scale' }).click();
  assert.equal(await replicas.evaluate((el) => el.validity.rangeOverflow), true);
  assert.equal(await page.getByText('Scaling', { exact: true }).count(), 0);

  // Past the browser (as if the plan changed since the page loaded), the server refuses it
  // and the reason appears next to the field.
  await replicas.evaluate((el) => el.removeAttribute('max'));
  await form.getByRole('button', { name: 'Scale' }).click();
  await form.getByText('Replicas must be between 1 and 5 on this plan.').waitFor();
  assert.equal(await replicas.getAttribute('aria-invalid'), 'true');

  await replicas.fill('3');
  await markDocument(page);
  await form.getByRole('button', { name: 'Scale' }).click();
  await page.getByText('Scaling', { exact: true }).waitFor({ timeout: 10000 });
  await page.locator('.detail-head').getByText('Running', { exact: true }).waitFor({ timeout: 30000 });
  const resources = page.getByRole('region', { name: 'Resources' });
  await resources.getByText('3', { exact: true }).waitFor();
  await assertNoReload(page);
  assert.deepEqual(unexpected(page), []);
});

test('a viewer sees every action disabled, with the reason, on the list and the instance', async () => {
  const page = await newPage(browser);
  await signIn(page, 'viewer@globex.test');
  await hydrated(page);
  const web = card(page, 'globex-web');
  assert.equal(await web.getByRole('button', { name: /^(Start|Stop|Restart)$/ }).count(), 0, 'no action buttons for a viewer');
  await web.getByText(/^Not available: /).click();
  await web.getByText('Your role (viewer) may not stop.').waitFor();
  await web.getByRole('link', { name: 'globex-web' }).click();
  const actions = page.getByRole('list', { name: 'Actions' });
  await actions.waitFor();
  for (const name of ['Start', 'Stop', 'Restart', 'Scale', 'Update configuration', 'Delete']) {
    assert.equal(await actions.getByRole('button', { name, exact: true }).isDisabled(), true, name);
  }
  assert.equal(await page.getByRole('link', { name: 'Audit log' }).count(), 0, 'viewers do not read the audit log here');
});

test('the free plan offers no scale or delete anywhere', async () => {
  const page = await newPage(browser);
  await signIn(page, 'admin@initech.test');
  await hydrated(page);
  const sandbox = card(page, 'initech-sandbox');
  await sandbox.getByRole('button', { name: 'Restart', exact: true }).waitFor();
  assert.equal(await sandbox.getByRole('link', { name: /Scale|Delete/ }).count(), 0);
  await sandbox.getByText(/^Not available: .*Scale.*Delete/).waitFor();
  assert.match(await page.locator('.page-head').innerText(), /The Free plan does not include create instances\./);
});

test('an Enterprise admin creates an instance, then deletes it after typing its name', async () => {
  const page = await newPage(browser);
  await signIn(page, 'admin@umbrella.test');
  await hydrated(page);
  await page.getByRole('link', { name: 'New instance' }).click();
  await page.getByRole('heading', { name: 'New instance' }).waitFor();
  await page.locator('body[data-page-hydrated="create"]').waitFor({ timeout: 20000 });
  const env = page.getByLabel('Environment');
  const offered = (await env.locator('option').allTextContents()).map((s) => s.trim());
  assert.deepEqual(offered, ['Dev', 'Staging', 'Production']);
  await page.getByLabel('Name').fill('umbrella-e2e');
  await env.selectOption('staging');
  await page.getByLabel('Region').selectOption('us-east');
  await page.getByLabel('Log level').selectOption('debug');
  await page.getByRole('button', { name: 'Create instance' }).click();
  await page.getByRole('heading', { name: 'umbrella-e2e', level: 1 }).waitFor({ timeout: 10000 });
  await page.locator('.detail-head').getByText('Running', { exact: true }).waitFor({ timeout: 30000 });
  await page.getByRole('cell', { name: 'debug' }).waitFor();

  await page.getByRole('list', { name: 'Actions' }).getByRole('button', { name: 'Delete' }).click();
  const panel = page.getByRole('region', { name: 'Delete umbrella-e2e' });
  const confirmName = panel.getByLabel('Type umbrella-e2e to confirm');
  await confirmName.fill('umbrella');
  await panel.getByRole('button', { name: 'Delete umbrella-e2e' }).click();
  await panel.getByText("Type the instance's exact name to confirm deletion.").waitFor();
  await confirmName.fill('umbrella-e2e');
  await panel.getByRole('button', { name: 'Delete umbrella-e2e' }).click();
  await page.locator('.detail-head').getByText('Deleted', { exact: true }).waitFor({ timeout: 30000 });

  await page.getByRole('navigation', { name: 'Portico' }).getByRole('link', { name: 'Instances' }).click();
  await card(page, 'umbrella-core').waitFor();
  assert.equal(await card(page, 'umbrella-e2e').count(), 0, 'the deleted instance left the list');
  assert.deepEqual(unexpected(page), []);
});

test('restart works by keyboard alone, and focus follows the action', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ops@globex.test');
  await hydrated(page);
  const web = card(page, 'globex-web');
  await web.getByRole('button', { name: 'Restart', exact: true }).focus();
  await page.keyboard.press('Enter');
  const confirm = page.getByRole('region', { name: 'Restart globex-web' });
  await confirm.waitFor();
  // Focus moves into the confirmation; Escape closes it, Enter confirms.
  const confirmFocused = () =>
    page.waitForFunction(() => document.activeElement?.textContent.trim() === 'Restart globex-web');
  await confirmFocused();
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'detached' });
  await page.waitForFunction(() => document.activeElement?.textContent.trim() === 'Restart');
  await page.keyboard.press('Enter');
  await confirm.waitFor();
  await confirmFocused();
  await page.keyboard.press('Enter');
  await web.getByText('Restarting', { exact: true }).waitFor({ timeout: 10000 });
  // Focus lands on the progress line, which screen readers announce.
  await page.waitForFunction(() => document.activeElement?.getAttribute('role') === 'status');
  await web.getByText('Running', { exact: true }).waitFor({ timeout: 30000 });
});

test('the audit log lists what happened, filters it and exports the filtered lines', async () => {
  const page = await newPage(browser);
  await signIn(page, 'admin@globex.test');
  await hydrated(page);
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  // Rendered on the server only (its filters are a plain GET form): nothing to wait for but
  // the page.
  await hydrated(page);
  const entries = page.getByRole('region', { name: 'Audit entries' });
  await entries.getByRole('cell', { name: 'ops@globex.test' }).first().waitFor();
  await page.getByLabel('Outcome').selectOption('succeeded');
  await page.getByLabel('Operation').selectOption('stop');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/outcome=succeeded/);
  const rows = await entries.getByRole('row').allInnerTexts();
  assert.equal(rows.length, 2, rows.join('\n'));
  assert.match(rows[1], /globex-api/);
  const csv = await page.getByRole('link', { name: 'CSV' }).getAttribute('href');
  assert.match(csv, /format=csv.*operation=stop.*outcome=succeeded/);
  const res = await page.request.get(csv);
  assert.equal(res.status(), 200);
  const text = await res.text();
  assert.match(text, /globex-api/);
  assert.doesNotMatch(text, /requested|restart/);
});

for (const width of [360]) {
  test(`the action forms and the create form fit a ${width} px phone`, async () => {
    const page = await newPage(browser, { width, height: 740 });
    await signIn(page, 'admin@umbrella.test');
    await hydrated(page);
    await card(page, 'umbrella-lab').getByRole('link', { name: 'Update configuration…' }).click();
    await page.getByRole('region', { name: 'Update configuration umbrella-lab' }).waitFor();
    assert.ok((await noHorizontalScroll(page)) <= 0, 'configuration form overflows');
    await shot(page, `update-config-${width}px`);
    await page.goto('/instances/new');
    await hydrated(page);
    await page.getByLabel('Name').waitFor();
    assert.ok((await noHorizontalScroll(page)) <= 0, 'create form overflows');
    await shot(page, `create-${width}px`);
    await page.goto('/audit');
    await hydrated(page);
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    assert.ok((await noHorizontalScroll(page)) <= 0, 'audit page overflows (its table scrolls inside its own region)');
  });
}

// Webhook endpoints as an admin manages them on the portal's page, on a phone: the signing
// secret is shown once and works with the `standardwebhooks` package's idea of a secret; the
// endpoint can be tried, disabled and removed, and the API sees the same endpoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, signIn, shot, BASE_URL } from './helpers.mjs';

const ready = (page, name) => page.locator(`body[data-page-hydrated="${name}"]`).waitFor({ timeout: 20000 });

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('an admin adds a webhook endpoint on a phone, tries it, disables and removes it', async () => {
  const admin = await newPage(browser, { width: 375, height: 740 });
  await signIn(admin, 'admin@globex.test');
  await admin.getByRole('navigation', { name: 'Portico' }).getByRole('link', { name: 'Webhooks' }).click();
  await admin.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
  await ready(admin, 'webhooks');

  const form = admin.getByRole('region', { name: 'New endpoint' });
  const url = `https://hooks.example.com/portico-${Date.now()}`;
  await form.getByLabel('URL').fill(url);
  await form.getByLabel('Description').fill('ops pager');
  await form.getByLabel('operation.failed').check();
  await form.getByLabel('instance.status_changed').check();
  await form.getByRole('button', { name: 'Add endpoint' }).click();
  const box = admin.getByRole('textbox', { name: 'Signing secret' });
  await box.waitFor();
  const secret = await box.inputValue();
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
  const item = admin.getByRole('list', { name: 'Webhook endpoints' }).getByRole('listitem').filter({ hasText: url });
  await item.getByText('operation.failed, instance.status_changed').or(item.getByText('instance.status_changed, operation.failed')).waitFor();
  await item.getByText('Enabled', { exact: true }).waitFor();
  await shot(admin, 'webhooks-created');

  // A refused URL says why, next to nothing else changing.
  await form.getByLabel('URL').fill('http://hooks.example.com/plain');
  await form.getByRole('button', { name: 'Add endpoint' }).click();
  await admin.getByRole('alert').getByText(/https:\/\//).waitFor();

  // The secret is not on the page once it is reloaded.
  await admin.reload();
  await ready(admin, 'webhooks');
  assert.equal(await admin.getByRole('textbox', { name: 'Signing secret' }).count(), 0);
  assert.ok(!(await admin.content()).includes(secret));

  await item.getByRole('button', { name: 'Send test' }).click();
  await item.getByText(/1 waiting|webhook\.test/).first().waitFor();
  await item.getByRole('button', { name: 'Disable' }).click();
  await item.getByText('Disabled', { exact: true }).waitFor();
  await item.getByRole('button', { name: 'Rotate secret' }).click();
  const rotated = await admin.getByRole('textbox', { name: 'Signing secret' }).inputValue();
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, secret);
  await item.getByText(/The previous secret also signs until/).waitFor();
  await item.getByRole('button', { name: 'Remove' }).click();
  await item.waitFor({ state: 'detached' });
  // The one error is the refusal the test asked for.
  assert.deepEqual(admin.errors.filter((e) => !e.includes('422')), []);
  assert.equal(admin.errors.length, 1);
});

test('viewers are refused the page', async () => {
  const viewer = await newPage(browser, { width: 375, height: 740 });
  await signIn(viewer, 'viewer@globex.test');
  assert.equal(await viewer.getByRole('link', { name: 'Webhooks' }).count(), 0);
  const res = await viewer.goto(`${BASE_URL}/webhooks`);
  assert.equal(res.status(), 403);
});

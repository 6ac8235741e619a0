// API tokens as an admin manages them on the portal's page: the secret is shown once and works
// against /api/v1 at once; after revoking on the page it is refused.
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

const instances = (secret) =>
  fetch(`${BASE_URL}/api/v1/instances`, { headers: { authorization: `Bearer ${secret}` } });

test('an admin makes a token on a phone, a script uses it, and revoking it ends it', async () => {
  const admin = await newPage(browser, { width: 375, height: 740 });
  await signIn(admin, 'admin@globex.test');
  await admin.goto('/tokens');
  await admin.getByRole('heading', { name: 'API tokens', level: 1 }).waitFor();
  await ready(admin, 'tokens');

  const form = admin.getByRole('region', { name: 'New token' });
  await form.getByLabel('Name').fill('nightly dev stop');
  await form.getByLabel('Role').selectOption('operator');
  await form.getByLabel('Expires after (days)').fill('30');
  await form.getByRole('button', { name: 'Create token' }).click();
  const box = admin.getByRole('textbox', { name: 'New API token' });
  await box.waitFor();
  const secret = await box.inputValue();
  assert.match(secret, /^ptk_[0-9A-Za-z]{36}$/);
  const row = admin.getByRole('list', { name: 'API tokens' }).getByRole('listitem').filter({ hasText: 'nightly dev stop' });
  await row.getByText(/operator · created by admin@globex\.test/).waitFor();
  await shot(admin, 'tokens-created');

  // A script with it sees the tenant's instances, and only those.
  const res = await instances(secret);
  assert.equal(res.status, 200);
  const page = await res.json();
  assert.ok(page.items.length > 0 && page.items.every((i) => i.name.startsWith('globex-')));

  // The secret is not on the page once it is reloaded.
  await admin.reload();
  await ready(admin, 'tokens');
  assert.equal(await admin.getByRole('textbox', { name: 'New API token' }).count(), 0);
  assert.ok(!(await admin.content()).includes(secret));
  await row.getByText(/last used/).waitFor();

  await row.getByRole('button', { name: 'Revoke nightly dev stop' }).click();
  await row.getByText('Revoked or expired').waitFor();
  const refused = await instances(secret);
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get('content-type'), 'application/problem+json');
  assert.deepEqual(admin.errors, []);
});

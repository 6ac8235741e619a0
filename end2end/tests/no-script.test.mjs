// Signing in before the bundle has loaded, or in a browser that runs no script at all: the
// form posts as a plain HTML form and the server answers with redirects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, BASE_URL, PASSWORD, instanceNames } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function noScriptPage() {
  const context = await browser.newContext({
    javaScriptEnabled: false,
    baseURL: BASE_URL,
    viewport: { width: 360, height: 740 },
  });
  return context.newPage();
}

test('with JavaScript off, signing in lands on the instance list', async () => {
  const page = await noScriptPage();
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill('viewer@globex.test');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/instances');
  await page.getByRole('heading', { name: 'Instances' }).waitFor();
  const names = await instanceNames(page);
  assert.ok(names.includes('globex-web'), `the list shows the tenant's instances: ${names}`);
  assert.ok(!names.some((n) => /initech|umbrella/.test(n)), 'another tenant leaks into the list');
});

test('with JavaScript off, a wrong password shows the sign-in page again with the error', async () => {
  const page = await noScriptPage();
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill('admin@umbrella.test');
  await page.getByLabel('Password').fill('not-the-password');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/sign_in')),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  assert.equal(response.status(), 303, 'a plain form post is answered with a redirect');
  await page.waitForURL('**/sign-in?error=credentials');
  await page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Sign in' }).count(), 1);
  const text = await page.locator('body').innerText();
  assert.ok(!text.includes('BadCredentials'), 'no raw error code on the page');

  // The address carries a code, never text of its own.
  await page.goto('/sign-in?error=%3Cb%3Eyou%20have%20been%20hacked%3C%2Fb%3E');
  assert.equal(await page.getByRole('alert').count(), 0);
});

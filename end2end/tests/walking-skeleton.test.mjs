import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, hydrated, signIn, shot, instanceNames } from './helpers.mjs';

const GLOBEX = ['globex-api', 'globex-dev', 'globex-reports', 'globex-staging', 'globex-web'];

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('globex admin signs in, sees only Globex instances, opens one, filters, signs out', async () => {
  const page = await newPage(browser);
  await signIn(page, 'admin@globex.test');
  assert.deepEqual(await instanceNames(page), GLOBEX);
  const body = await page.locator('main').innerText();
  assert.ok(!/initech|umbrella/i.test(body), 'another tenant leaks into the list');
  await shot(page, 'instances-desktop');

  await page.getByRole('link', { name: 'globex-web' }).click();
  await page.getByRole('heading', { name: 'globex-web', level: 1 }).waitFor();
  assert.match(page.url(), /\/instances\/[0-9a-f-]{36}$/);
  await page.getByText('EU West (Dublin)').waitFor();
  await shot(page, 'instance-detail');

  await page.getByRole('link', { name: '← All instances' }).click();
  await page.getByLabel('Environment').selectOption('production');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/environment=production/);
  await page.getByText('2 instances').waitFor();
  assert.deepEqual(await instanceNames(page), ['globex-api', 'globex-web']);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/sign-in');
  await page.goto('/instances');
  await page.waitForURL('**/sign-in');
  assert.deepEqual(page.errors, []);
});

test('wrong password shows an error and stays on sign-in', async () => {
  const page = await newPage(browser);
  await page.goto('/sign-in');
  await hydrated(page);
  await page.getByLabel('Email').fill('admin@globex.test');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
  // The sign-in form is a plain form post, with or without the bundle: the server sends it back
  // to the sign-in page with the reason as a code.
  assert.match(page.url(), /\/sign-in\?error=credentials$/);
});

test('another tenant sees its own instances only', async () => {
  const page = await newPage(browser);
  await signIn(page, 'admin@initech.test');
  assert.deepEqual(await instanceNames(page), ['initech-sandbox', 'initech-trial']);
});

for (const width of [375, 360]) {
  test(`instance list fits a ${width} px wide phone without horizontal scrolling`, async () => {
    const page = await newPage(browser, { width, height: 740 });
    await signIn(page, 'admin@globex.test');
    assert.deepEqual(await instanceNames(page), GLOBEX);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
    await shot(page, `instances-${width}px`);

    await page.getByRole('link', { name: 'globex-api' }).click();
    await page.getByRole('heading', { name: 'globex-api', level: 1 }).waitFor();
    const detailOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(detailOverflow <= 0, `detail page is ${detailOverflow}px wider than the viewport`);
    await shot(page, `instance-detail-${width}px`);
  });
}

test('sign-in page fits a phone too', async () => {
  const page = await newPage(browser, { width: 360, height: 740 });
  await page.goto('/sign-in');
  await hydrated(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0);
  await shot(page, 'sign-in-360px');
});

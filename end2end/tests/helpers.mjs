import { chromium } from 'playwright-core';
import { join } from 'node:path';

export const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:3100';
export const PASSWORD = 'portico-demo';

export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      ...extraArgs,
    ],
  });
}

/// A page whose uncaught errors (for example a broken wasm bundle) fail the test.
export async function newPage(browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, baseURL: BASE_URL });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(m.text());
  });
  return page;
}

/// Waits until the wasm bundle has hydrated the page.
export async function hydrated(page) {
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 20000 });
}

export async function signIn(page, email) {
  await page.goto('/sign-in');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/instances');
  await page.getByRole('heading', { name: 'Instances' }).waitFor();
}

export function shot(page, name) {
  return page.screenshot({ path: join(process.env.ARTIFACTS ?? '.', `${name}.png`), fullPage: true });
}

export async function instanceNames(page) {
  const list = page.getByRole('list', { name: 'Instances' });
  await list.waitFor();
  return (await list.getByRole('heading').allTextContents()).map((s) => s.trim()).sort();
}

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/// A page whose uncaught errors (for example a broken wasm bundle) fail the test. `options`
/// adds to the browser context's (another portal's `baseURL`, say).
export async function newPage(browser, viewport = { width: 1280, height: 800 }, options = {}) {
  const context = await browser.newContext({ viewport, baseURL: BASE_URL, ...options });
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

/// Waits until the page has had no request in flight for `quiet` ms, leaving out its live
/// event stream (`/events`), which stays open for as long as the page does (Playwright's
/// 'networkidle' would wait for it forever). Call it before the page starts loading.
export function settled(page, quiet = 500) {
  const inFlight = new Set();
  const long = (r) => new URL(r.url()).pathname === '/events';
  page.on('request', (r) => {
    if (!long(r)) inFlight.add(r);
  });
  const done = (r) => inFlight.delete(r);
  page.on('requestfinished', done);
  page.on('requestfailed', done);
  return async () => {
    let since = Date.now();
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      if (inFlight.size > 0) since = Date.now();
      else if (Date.now() - since >= quiet) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`requests still in flight: ${[...inFlight].map((r) => r.url()).join(', ')}`);
  };
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

/// A portal of the test's own (the release build, the demo data, a throw-away database) on a
/// loopback port no other test uses; resolves once it is ready. `stop()` ends it. With
/// `dataDir`, it runs on that directory's database and leaves it in place, so a test can stop
/// it and start it again on the same data.
export async function startPortal(port, args = [], { dataDir } = {}) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), `portico-e2e-${port}-`));
  const child = spawn(process.env.PORTICO_BIN, ['serve', '--demo', ...args], {
    cwd: root,
    env: {
      ...process.env,
      PORTICO_DATA_DIR: dir,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: join(root, 'target', 'site'),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
    if (!dataDir) rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { url, stop };
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`the portal did not become ready at ${url}`);
}

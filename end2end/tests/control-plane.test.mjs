// The portal against the provider's control plane over control-plane API v1: a second portal,
// configured with the `http` driver, beside the reference control plane (asynchronous, with
// progress callbacks). The progress the control plane reports reaches the instance's card
// without a reload, and the operation ends by callback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, hydrated, PASSWORD } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const portalPort = process.env.E2E_CP_PORTAL_PORT ?? '3110';
const cpPort = process.env.E2E_CP_PORT ?? '3111';
const portal = `http://127.0.0.1:${portalPort}`;
const secret = () => `whsec_${randomBytes(32).toString('base64')}`;

let browser;
let cp;
let server;
let dataDir;

async function ready(url, proc, what) {
  for (let i = 0; i < 150; i++) {
    if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode})`);
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not answer at ${url}`);
}

before(async () => {
  // `cargo test --release` (run before the browser tests) builds it beside the server.
  const cpBin = join(dirname(process.env.PORTICO_BIN), 'portico-control-plane');
  assert.ok(existsSync(cpBin), `${cpBin} is missing: cargo build --release -p portico --bins`);
  const env = {
    ...process.env,
    PORTICO_CP_SECRET: secret(),
    PORTICO_CP_CALLBACK_SECRET: secret(),
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  };
  dataDir = mkdtempSync(join(tmpdir(), 'portico-e2e-cp-'));
  const config = join(dataDir, 'provider.toml');
  writeFileSync(
    config,
    readFileSync(join(root, 'app/src/server/demo-provider.toml'), 'utf8') +
      `\n[control_plane]\ndriver = "http"\nbase_url = "http://127.0.0.1:${cpPort}"\n` +
      'secret_env = "PORTICO_CP_SECRET"\ncallback_secret_env = "PORTICO_CP_CALLBACK_SECRET"\n' +
      'poll_interval_seconds = 30\n',
  );
  cp = spawn(
    cpBin,
    ['--listen', `127.0.0.1:${cpPort}`, '--portal-url', portal, '--mode', 'async',
     '--delay-ms', '6000', '--progress-steps', '3'],
    { env, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  server = spawn(process.env.PORTICO_BIN, ['serve', '--demo', '--config', config], {
    cwd: root,
    env: {
      ...env,
      PORTICO_DATA_DIR: dataDir,
      LEPTOS_SITE_ADDR: `127.0.0.1:${portalPort}`,
      LEPTOS_SITE_ROOT: join(root, 'target', 'site'),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await ready(`http://127.0.0.1:${cpPort}/_admin/commands`, cp, 'the reference control plane');
  await ready(`${portal}/readyz`, server, 'the portal');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.kill();
  cp?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("the control plane's progress reaches the instance without a reload, and its callback ends it", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: portal });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/sign-in');
  await hydrated(page);
  await page.getByLabel('Email').fill('ops@globex.test');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/instances');
  await hydrated(page);
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  const web = page.getByRole('list', { name: 'Instances' }).getByRole('listitem').filter({
    has: page.getByRole('heading', { name: 'globex-web', exact: true }),
  });
  await web.getByRole('button', { name: 'Restart', exact: true }).click();
  await page.getByRole('region', { name: 'Restart globex-web' })
    .getByRole('button', { name: 'Restart globex-web' })
    .click();
  await web.getByText('Restarting', { exact: true }).waitFor({ timeout: 10000 });
  // The control plane's own words and percentage, from its signed progress callbacks.
  const progress = web.getByRole('status');
  await progress.filter({ hasText: /Restart: running — Restarting globex-web \(\d+%\)/ })
    .waitFor({ timeout: 15000 });
  const seen = await progress.innerText();
  // Then its final callback: running again, in place.
  await web.getByText('Running', { exact: true }).waitFor({ timeout: 30000 });
  assert.equal(await page.evaluate(() => window.__sameDocument === true), true, 'the page reloaded');
  assert.match(seen, /\d+%/);
  // The control plane received the command once and ran it once.
  const commands = await (await fetch(`http://127.0.0.1:${cpPort}/_admin/commands`)).json();
  assert.equal(commands.length, 1, JSON.stringify(commands));
  assert.equal(commands[0].type, 'restart');
  assert.equal(commands[0].executions, 1);
  assert.deepEqual(errors, []);
  await context.close();
});

// Live updates: what one member does shows in every other open page of the tenant within a
// second, pushed by the server (no polling while the stream is up), and a page whose server
// went away catches up on what it missed when it comes back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, newPage, signIn, hydrated, startPortal, PASSWORD, BASE_URL } from './helpers.mjs';

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

/// Counts the page's calls to the server function that polls an operation.
function countPolls(page) {
  const seen = { n: 0 };
  page.on('request', (r) => {
    if (r.url().includes('/api/operation_status')) seen.n += 1;
  });
  return seen;
}

async function live(page) {
  await page.locator('#live-state[data-state="live"]').waitFor({ timeout: 10000 });
}

/// Signs in with a server function, as a script would: the session cookie.
async function apiSignIn(base, email) {
  const res = await fetch(`${base}/api/sign_in`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ email, password: PASSWORD }),
  });
  assert.equal(res.status, 200);
  return res.headers.get('set-cookie').split(';')[0];
}

async function apiRequest(base, cookie, instanceId, operation, key) {
  const res = await fetch(`${base}/api/request_operation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', cookie },
    body: JSON.stringify({ instance_id: instanceId, request: { operation }, idempotency_key: key }),
  });
  const body = await res.text();
  assert.equal(res.status, 200, body);
  return JSON.parse(body);
}

async function instanceId(page, name) {
  const href = await card(page, name).getByRole('link', { name, exact: true }).getAttribute('href');
  return href.split('/').pop();
}

test('an operation started in one browser shows in another within a second, without polling', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  await signIn(a, 'ops@globex.test');
  await signIn(b, 'viewer@globex.test');
  await Promise.all([hydrated(a), hydrated(b)]);
  await Promise.all([live(a), live(b)]);
  const pollsA = countPolls(a);
  const pollsB = countPolls(b);
  await b.evaluate(() => {
    window.__sameDocument = true;
  });

  const web = card(a, 'globex-web');
  await web.getByRole('button', { name: 'Restart', exact: true }).click();
  await a.getByRole('region', { name: 'Restart globex-web' })
    .getByRole('button', { name: 'Restart globex-web' }).click();
  await web.getByRole('status').filter({ hasText: /Restart: (queued|running)/ }).waitFor();
  // The other browser: the status and the progress line, within a second of the request.
  const other = card(b, 'globex-web');
  await other.getByText('Restarting', { exact: true }).waitFor({ timeout: 1000 });
  await other.getByRole('status').filter({ hasText: /Restart: (queued|running)/ }).waitFor({ timeout: 1000 });
  // And its end, as it happens.
  await other.getByText('Running', { exact: true }).waitFor({ timeout: 30000 });
  await web.getByText('Running', { exact: true }).waitFor({ timeout: 1000 });
  assert.equal(await b.evaluate(() => window.__sameDocument), true, 'the page reloaded');
  assert.equal(pollsA.n, 0, 'the page that started it polled');
  assert.equal(pollsB.n, 0, 'the page watching it polled');
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});

test('the audit log shows new lines as they are written', async () => {
  const audit = await newPage(browser);
  await signIn(audit, 'admin@globex.test');
  await audit.goto('/audit');
  await live(audit);
  const before = await audit.locator('#audit-results tbody tr').count();
  const ops = await newPage(browser);
  await signIn(ops, 'ops@globex.test');
  await hydrated(ops);
  const id = await instanceId(ops, 'globex-web');
  const cookie = await apiSignIn(BASE_URL, 'ops@globex.test');
  const op = await apiRequest(BASE_URL, cookie, id, 'restart', `audit-live-${Date.now()}`);
  assert.ok(op.operation_id);
  await audit.waitForFunction(
    (n) => document.querySelectorAll('#audit-results tbody tr').length > n,
    before,
    { timeout: 3000 },
  );
  await audit.locator('#audit-results tbody tr').first().getByText('restart', { exact: true }).waitFor();
  assert.deepEqual(audit.errors, []);
});

test('after the server restarts, the page catches up on what it missed', async () => {
  // Its own portal, on a database that outlives a restart.
  const dataDir = mkdtempSync(join(tmpdir(), 'portico-e2e-live-'));
  const port = 3117;
  let server = await startPortal(port, [], { dataDir });
  try {
    const page = await newPage(browser, undefined, { baseURL: server.url });
    await signIn(page, 'ops@globex.test');
    await hydrated(page);
    await live(page);
    const polls = countPolls(page);
    const id = await instanceId(page, 'globex-api');
    await page.evaluate(() => {
      window.__sameDocument = true;
    });

    // Stopping the server ends the stream: the page says so, with the last update's time.
    await server.stop();
    await page.locator('#live-state[data-state="reconnecting"]').waitFor({ timeout: 10000 });
    assert.match(await page.locator('#live-state').textContent(), /Reconnecting… last update \d/);

    // Back, and something changes before the page has reconnected.
    server = await startPortal(port, [], { dataDir });
    const cookie = await apiSignIn(server.url, 'admin@globex.test');
    await apiRequest(server.url, cookie, id, 'stop', 'while-away');

    // The page reconnects from the last event it saw and gets what happened meanwhile.
    await live(page);
    await card(page, 'globex-api').getByText(/Stopping|Stopped/).first().waitFor({ timeout: 5000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page reloaded');
    assert.equal(polls.n, 0, 'nothing was polled');
    // The browser logs the failed reconnects while the server was down; nothing else.
    assert.deepEqual(page.errors.filter((e) => !/events|ERR_CONNECTION_REFUSED|EventSource/.test(e)), []);
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

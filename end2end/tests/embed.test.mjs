// Embedded mode with two real origins: the provider's page at http://127.0.0.1:4100 frames
// Portico at http://localhost:3200 with a token its "backend" mints per page view. A second
// Portico, configured for embedding, runs for these tests alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, hydrated, shot } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = join(root, 'server', 'tests', 'fixtures', 'embed');
const PORTAL = 'http://localhost:3200';
const PROVIDER = 'http://127.0.0.1:4100';
const STRANGER = 'http://127.0.0.1:4200';
const ISSUER = 'https://www.acme.test';

// What a provider's backend does: sign the user's identity for a few minutes, once.
const privateKey = createPrivateKey(readFileSync(join(fixtures, 'ed25519.key')));
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function mint(claims = {}, header = {}) {
  const now = Math.floor(Date.now() / 1000);
  const h = b64({ alg: 'EdDSA', typ: 'portico-embed+jwt', kid: 'acme-1', ...header });
  const p = b64({
    iss: ISSUER, aud: 'portico', sub: 'acme-user-42', email: 'ops@globex.test',
    tenant: 'globex', role: 'operator', iat: now, exp: now + 120, jti: randomUUID(), ...claims,
  });
  return `${h}.${p}.${sign(null, Buffer.from(`${h}.${p}`), privateKey).toString('base64url')}`;
}

/// The token with one character of its signature changed.
function tamper(token) {
  const i = token.length - 10;
  return token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
}

/// The provider's console: frames the portal with a fresh token, or with `?token=` as given.
function providerSite(port) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    if (url.pathname === '/probe') {
      // A plain (unpartitioned) third-party cookie, to show whether the browser blocks them.
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<iframe title="Probe" src="${PORTAL}/healthz"></iframe>`);
      return;
    }
    const token = url.searchParams.get('token') ?? mint();
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!DOCTYPE html><html><head><title>Acme console</title>
      <script>
        window.portico = [];
        addEventListener('message', (e) => { if (e.origin === '${PORTAL}') window.portico.push(e.data); });
      </script></head><body>
      <h1>Acme console</h1>
      <iframe title="Portico" src="${PORTAL}/embed?token=${encodeURIComponent(token)}"
        style="width: 1100px; height: 900px; border: 1px solid #ccc"></iframe></body></html>`);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

let portal;
let dataDir;
let sites = [];

async function waitReady() {
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch('http://127.0.0.1:3200/readyz')).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the embedding portal did not become ready');
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'portico-embed-'));
  const config = join(dataDir, 'provider.toml');
  writeFileSync(
    config,
    `${readFileSync(join(root, 'app', 'src', 'server', 'demo-provider.toml'), 'utf8')}
[security]
frame_ancestors = ["${PROVIDER}"]

[embed]
issuer = "${ISSUER}"
audience = "portico"

[[embed.keys]]
kid = "acme-1"
algorithm = "EdDSA"
public_key = """
${readFileSync(join(fixtures, 'ed25519.pub'), 'utf8')}"""
`,
  );
  portal = spawn(process.env.PORTICO_BIN, ['serve', '--config', config, '--demo', '--sim-step-ms', '500'], {
    cwd: root,
    env: {
      ...process.env,
      PORTICO_DATA_DIR: dataDir,
      LEPTOS_SITE_ADDR: '127.0.0.1:3200',
      LEPTOS_SITE_ROOT: join(root, 'target', 'site'),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  sites = [await providerSite(4100), await providerSite(4200)];
  await waitReady();
});

after(async () => {
  for (const s of sites) s.close();
  portal?.kill('SIGTERM');
  if (portal && portal.exitCode === null) await new Promise((r) => portal.on('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
});

/// Chromium, optionally told to block third-party cookies the way browsers are moving to.
async function browserPage(blockThirdPartyCookies = false) {
  const browser = await launch(blockThirdPartyCookies ? ['--test-third-party-cookie-phaseout'] : []);
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.errors = [];
  page.log = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => page.log.push(`${m.type()}: ${m.text()}`));
  return { browser, page };
}

/// Waits until the frame's bundle has hydrated it; when it does not, the failure says what
/// the frame had got to (bundle started, islands counted, errors, what it loaded).
async function frameHydrated(page) {
  try {
    await portico(page).locator('body[data-hydrated="true"]').waitFor({ timeout: 20000 });
  } catch (e) {
    const frame = page.frames().find((f) => f.url().startsWith(PORTAL));
    const state = await frame?.evaluate(() => ({
      url: window.location.href,
      ready: window.__porticoReady ?? null,
      hydrateIsland: typeof window.__hydrateIsland,
      counted: window.__porticoIslands ?? null,
      islands: document.querySelectorAll('leptos-island').length,
      signIn: !!document.getElementById('frame-sign-in'),
      visibility: document.visibilityState,
      loaded: performance.getEntriesByType('resource')
        .map((r) => `${new URL(r.name).pathname} ${Math.round(r.duration)}ms`),
    })).catch((err) => `frame not readable: ${err.message}`);
    throw new Error(`${e.message}\nframe: ${JSON.stringify(state, null, 1)}\n` +
      `errors: ${JSON.stringify(page.errors)}\nconsole: ${JSON.stringify(page.log)}`);
  }
}

const portico = (page) => page.frameLocator('iframe[title="Portico"]');

/// Makes the browser keep no cookie at all for the portal: every request to it goes out
/// without a Cookie header and every answer comes back without Set-Cookie, the way a browser
/// behaves that refuses even partitioned third-party cookies.
async function refuseAllPortalCookies(context) {
  await context.route(`${PORTAL}/**`, async (route) => {
    const req = route.request();
    const headers = { ...req.headers() };
    for (const h of ['cookie', 'host', 'connection', 'content-length']) delete headers[h];
    const res = await fetch(req.url(), {
      method: req.method(),
      headers,
      body: req.postDataBuffer() ?? undefined,
      redirect: 'manual',
    });
    const out = {};
    res.headers.forEach((v, k) => {
      // fetch has already decoded the body.
      if (!['set-cookie', 'content-encoding', 'content-length', 'transfer-encoding'].includes(k)) out[k] = v;
    });
    await route.fulfill({ status: res.status, headers: out, body: Buffer.from(await res.arrayBuffer()) });
  });
}

async function stopsAnInstanceInsideTheFrame(blockThirdPartyCookies, noCookiesAtAll = false) {
  const { browser, page } = await browserPage(blockThirdPartyCookies);
  try {
    if (noCookiesAtAll) await refuseAllPortalCookies(page.context());
    await page.goto(PROVIDER);
    const frame = portico(page);
    await frame.getByRole('heading', { name: 'Instances' }).waitFor({ timeout: 20000 });
    await frameHydrated(page);
    const names = (await frame.getByRole('list', { name: 'Instances' }).getByRole('heading').allTextContents())
      .map((s) => s.trim());
    assert.ok(names.length > 0 && names.every((n) => n.startsWith('globex-')), names.join(', '));
    // The provider's page has the navigation: no header or sign-out of the portal's own.
    assert.equal(await frame.getByRole('button', { name: 'Sign out' }).count(), 0);
    // The portal told the page its height and where it is, and follows client-side navigation.
    await page.waitForFunction(() =>
      window.portico.some((m) => m.type === 'portico:navigate' && m.path === '/instances'));
    await page.waitForFunction(() =>
      window.portico.some((m) => m.type === 'portico:resize' && m.height > 300));
    await frame.getByRole('navigation', { name: 'Portico' }).getByRole('link', { name: 'Audit log' }).click();
    await frame.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.waitForFunction(() =>
      window.portico.some((m) => m.type === 'portico:navigate' && m.path.startsWith('/audit')));
    await frame.getByRole('navigation', { name: 'Portico' }).getByRole('link', { name: 'Instances' }).click();
    await frame.getByRole('heading', { name: 'Instances' }).waitFor();

    const card = frame.getByRole('list', { name: 'Instances' }).getByRole('listitem').filter({
      has: frame.getByRole('heading', { name: 'globex-dev', exact: true }),
    });
    await card.getByRole('button', { name: 'Stop', exact: true }).click();
    await frame.getByRole('region', { name: 'Stop globex-dev' })
      .getByRole('button', { name: 'Stop globex-dev' }).click();
    await card.getByText('Stopped', { exact: true }).waitFor({ timeout: 30000 });
    await shot(page, noCookiesAtAll ? 'embed-no-cookies' : blockThirdPartyCookies ? 'embed-no-third-party-cookies' : 'embed-provider-page');
    // Start it again, so the other run finds it running.
    await card.getByRole('button', { name: 'Start', exact: true }).click();
    await card.getByText('Running', { exact: true }).waitFor({ timeout: 30000 });
    assert.deepEqual(page.errors, []);
    // The session token left the frame's address as soon as the page loaded.
    const frameUrl = page.frames().find((f) => f.url().startsWith(PORTAL)).url();
    assert.ok(!frameUrl.includes('portico-session'), frameUrl);
    if (noCookiesAtAll) {
      assert.deepEqual(await page.context().cookies(PORTAL), [], 'the browser stored no cookie');
    }
  } finally {
    await browser.close();
  }
}

test('the provider page embeds Portico with a fresh token; the user stops one of their instances', async () => {
  await stopsAnInstanceInsideTheFrame(false);
});

test('the same works with third-party cookies blocked (the session cookie is partitioned)', async () => {
  const { browser, page } = await browserPage(true);
  try {
    // First show that this browser really blocks a plain third-party cookie…
    await fetch(`${PORTAL}/healthz`); // warm
    await page.goto(`${PROVIDER}/probe`);
    const probe = page.frames().find((f) => f.url().startsWith(PORTAL));
    await probe.waitForLoadState();
    const stored = await probe.evaluate(() => {
      document.cookie = 'plain=1; SameSite=None; Secure; Path=/';
      return document.cookie.includes('plain=1');
    });
    assert.equal(stored, false, 'this Chromium did not block a third-party cookie');
  } finally {
    await browser.close();
  }
  // …then that embedding still works there.
  await stopsAnInstanceInsideTheFrame(true);
});

test('the same works in a browser that keeps no cookie for the portal at all', async () => {
  await stopsAnInstanceInsideTheFrame(false, true);
});

test('a site that is not a configured frame ancestor cannot display Portico', async () => {
  const { browser, page } = await browserPage();
  const refused = [];
  page.on('console', (m) => {
    if (/frame-ancestors/.test(m.text())) refused.push(m.text());
  });
  try {
    await page.goto(STRANGER);
    const frame = portico(page);
    await page.waitForTimeout(3000);
    assert.equal(await frame.getByRole('heading', { name: 'Instances' }).count(), 0);
    assert.ok(refused.length > 0, 'Chromium reported no frame-ancestors refusal');
  } finally {
    await browser.close();
  }
});

test('replayed, expired, tampered and wrong-audience tokens show an error inside the frame', async () => {
  const { browser, page } = await browserPage();
  try {
    const used = mint();
    await page.goto(`${PROVIDER}/?token=${used}`);
    await portico(page).getByRole('heading', { name: 'Instances' }).waitFor({ timeout: 20000 });
    const now = Math.floor(Date.now() / 1000);
    const valid = mint();
    const cases = [
      [used, 'already used'],
      [mint({ iat: now - 600, exp: now - 400 }), 'expired'],
      [tamper(valid), 'not valid'],
      [mint({ aud: 'someone-else' }), 'not valid'],
    ];
    for (const [token, says] of cases) {
      // A fresh browser context: no session left over from the first sign-in.
      const context = await browser.newContext();
      const p = await context.newPage();
      await p.goto(`${PROVIDER}/?token=${token}`);
      const alert = portico(p).getByRole('alert');
      await alert.waitFor({ timeout: 10000 });
      assert.match(await alert.innerText(), new RegExp(says));
      assert.equal(await portico(p).getByRole('heading', { name: 'Instances' }).count(), 0);
      const cookies = await context.cookies(PORTAL);
      assert.equal(cookies.filter((c) => c.name === '__Host-portico_session').length, 0);
      await context.close();
    }
    await shot(page, 'embed-after-errors');
  } finally {
    await browser.close();
  }
});

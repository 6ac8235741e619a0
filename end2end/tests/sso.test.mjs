// Single sign-on with OpenID Connect: a real provider (oidc-provider, end2end/oidc/provider.mjs)
// at http://127.0.0.1:4300, and a second Portico at http://localhost:3300 configured to trust
// it, with rules that admit people by email domain or group. Both run for these tests alone.
// The browser goes through the provider's own sign-in form, as a person would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, hydrated, shot, instanceNames, signIn } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PORTAL = 'http://localhost:3300';
const PORTAL_ADDR = '127.0.0.1:3300';
const FIXTURE = 'http://127.0.0.1:4300';
const CLIENT_ID = 'portico-e2e';
const CLIENT_SECRET = 'e2e-client-secret-0123456789abcdef';
const CALLBACK = `${PORTAL}/sso/fixture/callback`;
const LINK = 'Sign in with Fixture ID';

// From app/src/server/demo.rs.
const GLOBEX = ['globex-api', 'globex-dev', 'globex-reports', 'globex-staging', 'globex-web'];
const INITECH = ['initech-sandbox', 'initech-trial'];
const UMBRELLA = ['umbrella-archive', 'umbrella-core', 'umbrella-lab', 'umbrella-research'];

let fixture;
let portal;
let dataDir;
let browser;

/** Resolves once the child printed a line matching `pattern`; rejects if it exits first. */
async function firstLine(child, pattern, what, ms = 20000) {
  const lines = createInterface({ input: child.stdout });
  let timer;
  try {
    return await Promise.race([
      (async () => {
        for await (const line of lines) {
          if (pattern.test(line)) return line;
          console.error(`${what}: ${line}`);
        }
        throw new Error(`${what} closed its output before it was ready`);
      })(),
      once(child, 'exit').then(([code]) => { throw new Error(`${what} exited with ${code} before it was ready`); }),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} was not ready after ${ms} ms`)), ms); }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitReady() {
  for (let i = 0; i < 300; i++) {
    if (portal.exitCode !== null) throw new Error(`the SSO portal exited with ${portal.exitCode}`);
    try {
      if ((await fetch(`http://${PORTAL_ADDR}/readyz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the SSO portal did not become ready');
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

before(async () => {
  assert.ok(process.env.PORTICO_BIN, 'PORTICO_BIN must point at the release binary');
  dataDir = mkdtempSync(join(tmpdir(), 'portico-sso-'));

  fixture = spawn(process.execPath, [
    join(root, 'end2end', 'oidc', 'provider.mjs'),
    '--port', '4300',
    '--issuer', FIXTURE,
    '--key', join(root, 'server', 'tests', 'fixtures', 'embed', 'rsa.key'),
    '--client-id', CLIENT_ID,
    '--client-secret', CLIENT_SECRET,
    '--redirect-uri', CALLBACK,
  ], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  await firstLine(fixture, /^oidc-provider listening on http:\/\/127\.0\.0\.1:4300$/, 'the OIDC fixture');

  const config = join(dataDir, 'provider.toml');
  writeFileSync(
    config,
    `${readFileSync(join(root, 'app', 'src', 'server', 'demo-provider.toml'), 'utf8')}
[[sso]]
id = "fixture"
issuer = "${FIXTURE}"
client_id = "${CLIENT_ID}"
client_secret_env = "PORTICO_SSO_FIXTURE_SECRET"
label = "${LINK}"
scopes = ["openid", "email", "profile", "groups"]
provider_wide = true

[[sso.rules]]
tenant = "initech"
role = "viewer"
email_domain = "initech.test"

[[sso.rules]]
tenant = "umbrella"
role = "operator"
claim = "groups"
value = "umbrella-ops"
`,
  );
  portal = spawn(process.env.PORTICO_BIN, ['serve', '--config', config, '--demo'], {
    cwd: root,
    env: {
      ...process.env,
      PORTICO_DATA_DIR: dataDir,
      PORTICO_PUBLIC_URL: PORTAL,
      PORTICO_SSO_FIXTURE_SECRET: CLIENT_SECRET,
      LEPTOS_SITE_ADDR: PORTAL_ADDR,
      LEPTOS_SITE_ROOT: join(root, 'target', 'site'),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitReady();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stop(portal);
  await stop(fixture);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A page in a fresh browser context (no cookies from other tests); closed afterwards. */
async function inFreshContext(name, viewport, body) {
  const context = await browser.newContext({ viewport, baseURL: PORTAL });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  try {
    await body(page, context);
    assert.deepEqual(page.errors, []);
  } catch (e) {
    await shot(page, `sso-${name}-failed`).catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

const isPortal = (path) => (url) => url.origin === PORTAL && url.pathname === path;

/**
 * From Portico's sign-in page through the provider's form; resolves with the response to
 * Portico's callback (a redirect on success, the no-access page otherwise).
 */
async function signInAtFixture(page, { email, groups = '', unverified = false, from = '/sign-in' }) {
  if (from === '/sign-in') {
    await page.goto('/sign-in');
    await hydrated(page);
    await page.getByRole('link', { name: LINK }).click();
  } else {
    await page.goto(from);
  }

  // The provider's own page, on its own origin.
  await page.waitForURL((url) => url.origin === FIXTURE && url.pathname.startsWith('/interaction/'));
  await page.getByRole('heading', { name: 'Fixture ID' }).waitFor();
  assert.equal(await page.title(), 'Fixture ID');
  await page.getByLabel('Email', { exact: true }).fill(email);
  if (groups) await page.getByLabel('Groups', { exact: true }).fill(groups);
  if (unverified) await page.getByLabel('Email not verified').check();

  const callback = page.waitForResponse((r) => r.url().startsWith(`${CALLBACK}?`));
  await page.getByRole('button', { name: 'Continue' }).click();
  return callback;
}

async function expectSignedInTo(page, callback, { tenant, email, role, instances }) {
  assert.ok(callback.status() >= 300 && callback.status() < 400, `callback answered ${callback.status()}`);
  await page.waitForURL(isPortal('/instances'));
  await page.getByRole('heading', { name: 'Instances' }).waitFor();
  assert.deepEqual(await instanceNames(page), instances);
  const banner = page.getByRole('banner');
  await banner.getByText(tenant, { exact: true }).waitFor();
  const escaped = email.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(await banner.innerText(), new RegExp(`${escaped}\\s*·\\s*${role}\\b`));
  const body = await page.locator('main').innerText();
  for (const other of ['globex', 'initech', 'umbrella'].filter((t) => t !== tenant.toLowerCase())) {
    assert.ok(!body.toLowerCase().includes(other), `${other} leaks into ${tenant}'s list`);
  }
}

async function expectNoAccess(page, context, callback) {
  assert.equal(callback.status(), 403);
  await page.waitForURL((url) => url.href.startsWith(`${CALLBACK}?`));
  await page.getByText(/no access/i).first().waitFor();
  await page.getByRole('link', { name: 'Back to sign-in' }).click();
  await page.waitForURL(isPortal('/sign-in'));
  await page.getByRole('link', { name: LINK }).waitFor();
  // No session started: the portal still wants a sign-in.
  assert.deepEqual(
    (await context.cookies(PORTAL)).filter((c) => c.name === '__Host-portico_session').map((c) => c.name),
    [],
  );
  await page.goto('/instances');
  await page.waitForURL(isPortal('/sign-in'));
}

test('an existing member links the identity provider once signed in with the password', async () => {
  await inFreshContext('member', { width: 1280, height: 800 }, async (page) => {
    // The account has a password: the identity provider's word alone does not open it.
    const refused = await signInAtFixture(page, { email: 'ops@globex.test' });
    assert.equal(refused.status(), 403);
    await page.getByText(/sign in with your password first/i).waitFor();
    await shot(page, 'sso-member-password-first');

    // Signed in with the password, the same browser links the identity…
    await signIn(page, 'ops@globex.test');
    const linked = await signInAtFixture(page, { email: 'ops@globex.test', from: '/sso/fixture/start' });
    await expectSignedInTo(page, linked, {
      tenant: 'Globex', email: 'ops@globex.test', role: 'operator', instances: GLOBEX,
    });
    // …and from then on the identity provider alone signs them in.
    await page.context().clearCookies();
    const again = await signInAtFixture(page, { email: 'ops@globex.test' });
    await expectSignedInTo(page, again, {
      tenant: 'Globex', email: 'ops@globex.test', role: 'operator', instances: GLOBEX,
    });
    await shot(page, 'sso-member');
  });
});

test('a newcomer from an allowed email domain joins that tenant, on a phone', async () => {
  await inFreshContext('newcomer', { width: 375, height: 740 }, async (page) => {
    const fits = async (where) => {
      const { scrollWidth, clientWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      }));
      assert.ok(scrollWidth <= clientWidth, `${where} is ${scrollWidth - clientWidth}px wider than the viewport`);
    };
    await page.goto('/sign-in');
    await hydrated(page);
    await page.getByRole('link', { name: LINK }).waitFor();
    await fits('the sign-in page');

    const callback = await signInAtFixture(page, { email: 'newcomer@initech.test' });
    await expectSignedInTo(page, callback, {
      tenant: 'Initech', email: 'newcomer@initech.test', role: 'viewer', instances: INITECH,
    });
    await fits('the instance list');
    await shot(page, 'sso-newcomer-375px');
  });
});

test('someone no rule admits gets a no-access page and no session', async () => {
  await inFreshContext('no-access', { width: 1280, height: 800 }, async (page, context) => {
    const callback = await signInAtFixture(page, { email: 'someone@elsewhere.test' });
    await expectNoAccess(page, context, callback);
    await shot(page, 'sso-no-access');
  });
});

test('a group claim admits someone from any domain to the tenant its rule names', async () => {
  await inFreshContext('group', { width: 1280, height: 800 }, async (page) => {
    const callback = await signInAtFixture(page, { email: 'stranger@elsewhere.test', groups: 'umbrella-ops' });
    await expectSignedInTo(page, callback, {
      tenant: 'Umbrella', email: 'stranger@elsewhere.test', role: 'operator', instances: UMBRELLA,
    });
  });
});

test('an unverified email does not satisfy an email-domain rule', async () => {
  await inFreshContext('unverified', { width: 1280, height: 800 }, async (page, context) => {
    const callback = await signInAtFixture(page, { email: 'unverified@initech.test', unverified: true });
    await expectNoAccess(page, context, callback);
  });
});

// Two `portico serve` processes on one PostgreSQL database behave as one portal: a page on
// replica B sees at once what was done on replica A, B's stream loses nothing when its LISTEN
// connection is killed mid-burst, and the sign-in limiter counts failures across both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { launch, newPage, signIn, hydrated, startPortal, PASSWORD } from './helpers.mjs';

const ADMIN_URL = new URL(process.env.PORTICO_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const DB = `portico_e2e_${randomUUID().replaceAll('-', '')}`;
const OWNER = 'portico_e2e_owner';
const APP = 'portico_e2e_app';

/// Runs SQL as the administrator (on `db`), returning psql's unaligned output.
function psql(sql, db = ADMIN_URL.pathname.slice(1)) {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${db}`;
  return execFileSync('psql', [url.href, '-v', 'ON_ERROR_STOP=1', '-Atc', sql], { encoding: 'utf8' }).trim();
}

function dbUrl(user, application) {
  const url = new URL(ADMIN_URL);
  url.username = user;
  url.password = '';
  url.pathname = `/${DB}`;
  url.search = application ? `?application_name=${application}` : '';
  return url.href;
}

let a;
let b;
let browser;

before(async () => {
  // The roles a provider sets up (see the README): an owner that migrates, and the portal's
  // login, a member of portico_app that cannot bypass row-level security.
  psql(`SELECT pg_advisory_lock(7305420017);
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${OWNER}') THEN
        CREATE ROLE ${OWNER} LOGIN CREATEROLE; END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portico_app') THEN
        CREATE ROLE portico_app NOLOGIN; END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP}') THEN
        CREATE ROLE ${APP} LOGIN IN ROLE portico_app; END IF;
    END $$;
    SELECT pg_advisory_unlock(7305420017);`);
  psql(`CREATE DATABASE ${DB} OWNER ${OWNER}`);
  execFileSync(process.env.PORTICO_BIN, ['migrate', '--migration-database-url', dbUrl(OWNER)], {
    env: { ...process.env, RUST_LOG: 'warn' },
    stdio: 'inherit',
  });
  // One after the other: the first loads the demo data, the second finds it there.
  a = await startPortal(3127, ['--database-url', dbUrl(APP, 'portico-a'), '--sim-step-ms', '1500']);
  b = await startPortal(3128, ['--database-url', dbUrl(APP, 'portico-b'), '--sim-step-ms', '1500']);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await a?.stop();
  await b?.stop();
  psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
});

async function apiSignIn(base, email, password = PASSWORD) {
  return fetch(`${base}/api/sign_in`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ email, password }),
  });
}

async function cookieFor(base, email) {
  const res = await apiSignIn(base, email);
  assert.equal(res.status, 200);
  return res.headers.get('set-cookie').split(';')[0];
}

async function request(base, cookie, instanceId, operation, key) {
  return fetch(`${base}/api/request_operation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', cookie },
    body: JSON.stringify({ instance_id: instanceId, request: { operation }, idempotency_key: key }),
  });
}

function instanceId(name) {
  return psql(`SELECT instance_id FROM instance WHERE name = '${name}'`, DB);
}

test('a page on replica B shows, within a second and without polling, an operation requested on replica A', async () => {
  const page = await newPage(browser, undefined, { baseURL: b.url });
  await signIn(page, 'viewer@globex.test');
  await hydrated(page);
  await page.locator('#live-state[data-state="live"]').waitFor({ timeout: 10000 });
  let polls = 0;
  page.on('request', (r) => {
    if (r.url().includes('/api/operation_status')) polls += 1;
  });
  const card = page.getByRole('list', { name: 'Instances' }).getByRole('listitem').filter({
    has: page.getByRole('heading', { name: 'globex-web', exact: true }),
  });
  await card.getByText('Running', { exact: true }).waitFor();

  const cookie = await cookieFor(a.url, 'ops@globex.test');
  const started = Date.now();
  const res = await request(a.url, cookie, instanceId('globex-web'), 'restart', 'replicas-1');
  assert.equal(res.status, 200, await res.text());
  await card.getByText('Restarting', { exact: true }).waitFor({ timeout: 5000 });
  const shown = Date.now() - started;
  assert.ok(shown < 1000, `replica B showed the operation after ${shown} ms`);
  await card.getByText('Running', { exact: true }).waitFor({ timeout: 30000 });
  assert.equal(polls, 0, 'nothing polled while the page was live');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

/// Reads a live stream's events (id and kind), as they come.
function readStream(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const events = [];
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = frame.match(/^id: ?(\d+)$/m)?.[1];
        const kind = frame.match(/^event: ?(.+)$/m)?.[1];
        if (id && kind) events.push({ id: Number(id), kind });
      }
    }
  })().catch(() => {});
  return { events, stop: () => reader.cancel().catch(() => {}), pump };
}

test("replica B's stream loses nothing when its LISTEN connection is killed mid-burst", async () => {
  // Signed in on A, read on B: the session is the database's, not a replica's.
  const cookie = await cookieFor(a.url, 'admin@globex.test');
  const res = await fetch(`${b.url}/events`, { headers: { cookie, accept: 'text/event-stream' } });
  assert.equal(res.status, 200);
  const stream = readStream(res);
  const from = Number(psql(`SELECT last_seq FROM event_sequence WHERE tenant_id = 'globex'`, DB));
  const api = instanceId('globex-api');
  let killed = 0;
  for (let i = 0; i < 30; i++) {
    // The first starts an operation; the others are refused (one is in flight) and audited,
    // up to 20 refusals a minute: the kills fall among those.
    const r = await request(a.url, cookie, api, 'restart', `burst-${i}`);
    assert.ok(r.status < 500, await r.text());
    if (i === 6 || i === 13) {
      killed += Number(psql(
        `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE application_name = 'portico-b' AND query ILIKE 'LISTEN%'`, DB));
    }
  }
  assert.ok(killed >= 1, "replica B's LISTEN connection was found and killed");
  const visible = `'instance.created','instance.changed','instance.deleted','operation.changed','audit.appended'`;
  const last = Number(psql(`SELECT last_seq FROM event_sequence WHERE tenant_id = 'globex'`, DB));
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline && !stream.events.some((e) => e.id >= last)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  stream.stop();
  const expected = psql(
    `SELECT seq FROM event WHERE tenant_id = 'globex' AND seq > ${from} AND seq <= ${last}
       AND kind IN (${visible}) ORDER BY seq`, DB).split('\n').map(Number);
  const got = stream.events.map((e) => e.id).filter((id) => id > from && id <= last);
  assert.ok(expected.length >= 20, `${expected.length} events in the burst`);
  assert.deepEqual(got, expected, 'every event once, in order');
});

test('the sign-in limiter counts failures spread across both replicas', async () => {
  const statuses = [];
  for (const base of [a.url, b.url, a.url, b.url, a.url]) {
    statuses.push((await apiSignIn(base, 'ops@globex.test', 'guess')).status);
  }
  assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
  // The sixth is refused on either replica, even with the right password.
  assert.equal((await apiSignIn(b.url, 'ops@globex.test')).status, 429);
  assert.equal((await apiSignIn(a.url, 'ops@globex.test')).status, 429);
});

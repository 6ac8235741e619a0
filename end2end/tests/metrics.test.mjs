// Prometheus metrics, as an operator's scraper reads them: GET /metrics on the address
// --metrics-addr names (never on the portal's own), read with the Prometheus project's own
// text-format parser (the Python package prometheus_client, through end2end/prometheus.py).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPortal, PASSWORD } from './helpers.mjs';

const PARSER = join(dirname(fileURLToPath(import.meta.url)), '..', 'prometheus.py');
const PYTHONPATH = process.env.PORTICO_PYTHON_TOOLS ?? join(homedir(), '.cache', 'portico', 'tools', 'python');

/// The families the parser read: { name: { type, help, samples: [{ name, labels, value }] } }.
function parse(text) {
  const out = execFileSync('python3', [PARSER], {
    input: text,
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH },
  });
  return Object.fromEntries(JSON.parse(out).map((f) => [f.name, f]));
}

const PORT = 3125;
const METRICS = 'http://127.0.0.1:3126/metrics';
let portal;

before(async () => {
  // No workers: a requested operation stays queued, so the queue has something to show.
  portal = await startPortal(PORT, ['--metrics-addr', '127.0.0.1:3126', '--workers', '0']);
});
after(async () => {
  await portal?.stop();
});

async function scrape() {
  const res = await fetch(METRICS);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

/// The value of the sample named `name` (the family's own name by default) whose labels
/// include `labels`; undefined without one.
function sample(family, labels = {}, name = family.name) {
  const m = family.samples.find((s) => s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return m?.value;
}

/// The series of a histogram family with `labels`: buckets never decrease, the +Inf bucket is
/// the count, and something was observed.
function assertHistogram(family, labels, what) {
  const buckets = family.samples
    .filter((s) => s.name === `${family.name}_bucket` &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => [s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
    .sort((a, b) => a[0] - b[0]);
  assert.ok(buckets.length > 1, `${what}: buckets`);
  const counts = buckets.map(([, n]) => n);
  assert.deepEqual(counts, [...counts].sort((a, b) => a - b), `${what}: buckets never decrease`);
  const count = sample(family, labels, `${family.name}_count`);
  assert.equal(counts.at(-1), count, `${what}: +Inf is the count`);
  assert.ok(count > 0, `${what}: observed`);
  assert.ok(sample(family, labels, `${family.name}_sum`) >= 0, what);
}

async function signIn(base, email, password) {
  return fetch(`${base}/api/sign_in`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ email, password }),
  });
}

test('an operator scrapes requests, operations, the queue, live streams and sign-in refusals', async () => {
  const base = portal.url;
  const families = await scrape();
  // Counters' families are named without _total, as the format's parsers name them.
  const expected = {
    portico_http_requests: 'counter',
    portico_http_request_duration_seconds: 'histogram',
    portico_operations: 'gauge',
    portico_operation_queue_depth: 'gauge',
    portico_operation_queue_oldest_age_seconds: 'gauge',
    portico_live_streams: 'gauge',
    portico_live_events: 'counter',
    portico_live_fanout_lag_seconds: 'histogram',
    portico_sign_in_refusals: 'counter',
  };
  for (const [name, type] of Object.entries(expected)) {
    assert.equal(families[name]?.type, type, `${name} is a ${type}`);
    assert.ok(families[name].help.length > 10, `${name} says what it counts`);
  }
  assert.equal(sample(families.portico_live_streams), 0);
  assert.equal(sample(families.portico_operation_queue_depth), 0);

  // A member signs in, opens the instance list and keeps its live stream open.
  const res = await signIn(base, 'ops@globex.test', PASSWORD);
  assert.equal(res.status, 200);
  const cookie = res.headers.get('set-cookie').split(';')[0];
  const list = await fetch(`${base}/instances`, { headers: { cookie } });
  assert.equal(list.status, 200);
  const html = await list.text();
  const id = html.match(/href="\/instances\/([0-9a-f-]{36})"/)[1];
  const stream = await fetch(`${base}/events`, { headers: { cookie, accept: 'text/event-stream' } });
  const reader = stream.body.getReader();
  await reader.read(); // hello

  // …and requests an operation, which waits: this portal has no workers.
  const op = await fetch(`${base}/api/request_operation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', cookie },
    body: JSON.stringify({ instance_id: id, request: { operation: 'restart' }, idempotency_key: 'metrics-1' }),
  });
  assert.equal(op.status, 200, await op.text());
  await new Promise((r) => setTimeout(r, 1100));

  // Six wrong passwords for one account from one client: the sixth is refused.
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await signIn(base, 'admin@globex.test', 'guess')).status);
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);

  const after = await scrape();
  const requests = after.portico_http_requests;
  const total = 'portico_http_requests_total';
  assert.ok(sample(requests, { route: '/instances', method: 'GET', status: '200' }, total) >= 1);
  assert.equal(sample(requests, { route: '/api/sign_in', method: 'POST', status: '401' }, total), 5);
  assert.equal(sample(requests, { route: '/api/sign_in', method: 'POST', status: '429' }, total), 1);
  assert.ok(requests.samples.every((s) => !/[0-9a-f]{8}-/.test(s.labels.route)),
    'routes as declared, never as requested');
  assertHistogram(after.portico_http_request_duration_seconds, { route: '/instances' }, '/instances latency');

  assert.equal(sample(after.portico_operations, { operation: 'restart', state: 'queued' }), 1);
  assert.equal(sample(after.portico_operation_queue_depth), 1);
  const age = sample(after.portico_operation_queue_oldest_age_seconds);
  assert.ok(age >= 1 && age < 60, `the queued operation waited ${age} s`);

  assert.equal(sample(after.portico_live_streams), 1);
  assert.ok(sample(after.portico_live_events, {}, 'portico_live_events_total') >= 1,
    'the request was fanned out');
  assertHistogram(after.portico_live_fanout_lag_seconds, {}, 'fan-out lag');

  const refusals = 'portico_sign_in_refusals_total';
  assert.equal(sample(after.portico_sign_in_refusals, { reason: 'password' }, refusals), 1);
  assert.equal(sample(after.portico_sign_in_refusals, { reason: 'sso_starts' }, refusals), 0);

  await reader.cancel();
  // The portal's own address serves no metrics.
  assert.equal((await fetch(`${base}/metrics`)).status, 404);
});

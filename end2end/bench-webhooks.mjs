// The benchmark of issue 17: how fast webhooks go out. It prints numbers; it asserts nothing.
//
//   scripts/run (or the build_release of scripts/lib.sh)          # the portal
//   node end2end/bench-webhooks.mjs [--events 1000] [--rate 50] [--port 3900]
//
// The portal runs `serve --demo` (SQLite, one process, its four delivery loops) with the demo
// provider plus `[webhooks] allow = ["127.0.0.1"]`, so it may deliver to a receiver here on
// loopback, which answers 204 at once and notes when each `webhook-id` arrived.
//
// 1. Backlog: `--events` test messages are queued while the endpoint is disabled; enabling it
//    starts the clock, which stops when the last one arrives: deliveries per second.
// 2. Live: with the endpoint enabled, `--events` test messages are requested one after another
//    at `--rate` a second (50, under the backlog's rate, so no queue builds up); for each, the
//    time from the API's answer (its message is committed then) to its arrival at the
//    receiver: p50 / p99 / max.
//
// PORTICO_BIN is the release binary (default ~/.cache/portico/target/release/portico);
// LEPTOS_SITE_ROOT the site root (default target/site).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { signIn } from './bench/load.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    events: { type: 'string', default: '1000' },
    port: { type: 'string', default: '3900' },
    rate: { type: 'string', default: '50' },
  },
});
const events = Number(opts.events);
const rate = Number(opts.rate);
const port = Number(opts.port);
const base = `http://127.0.0.1:${port}`;
const bin = process.env.PORTICO_BIN ?? join(homedir(), '.cache/portico/target/release/portico');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// The receiver: `arrived` maps a webhook-id to when it first arrived (ms since the epoch).
function receiver() {
  const arrived = new Map();
  const server = http.createServer((req, res) => {
    const id = req.headers['webhook-id'];
    req.resume();
    req.on('end', () => {
      if (!arrived.has(id)) arrived.set(id, performance.timeOrigin + performance.now());
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, arrived, url: `http://127.0.0.1:${server.address().port}` })),
  );
}

async function startPortal(dir) {
  const demo = readFileSync(join(root, 'app/src/server/demo-provider.toml'), 'utf8');
  const config = join(dir, 'provider.toml');
  writeFileSync(config, `${demo}\n[webhooks]\nallow = ["127.0.0.1"]\ndeliveries_per_hour = 1000000\n`);
  const proc = spawn(bin, ['serve', '--demo', '--config', config, '--api-rate-limit', '1000000'], {
    cwd: root,
    stdio: ['ignore', process.env.PORTICO_LOG ? 'inherit' : 'ignore', 'inherit'],
    env: {
      ...process.env,
      PORTICO_DATA_DIR: dir,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? join(root, 'target', 'site'),
      RUST_LOG: process.env.RUST_LOG ?? 'error',
    },
  });
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {}
    await sleep(200);
  }
  return {
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.on('exit', r));
    },
  };
}

/// An admin API token of globex, made through the portal's own server function.
async function adminToken() {
  const { cookie } = await signIn(base, 'admin@globex.test');
  const res = await fetch(`${base}/api/create_api_token`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: base, accept: 'application/json' },
    body: new URLSearchParams({ name: 'bench', role: 'admin' }),
  });
  if (!res.ok) throw new Error(`creating a token: ${res.status} ${await res.text()}`);
  return (await res.json()).secret;
}

function api(token) {
  return async (method, path, body) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

async function waitFor(arrived, ids, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (ids.some((id) => !arrived.has(id))) {
    if (Date.now() > deadline) throw new Error(`${ids.filter((id) => !arrived.has(id)).length} never arrived`);
    await sleep(5);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'portico-bench-webhooks-'));
const rx = await receiver();
const portal = await startPortal(dir);
try {
  const call = api(await adminToken());
  const { endpoint } = await call('POST', '/webhooks', { url: `${rx.url}/hook`, event_types: ['webhook.test'] });

  // 1. Backlog.
  await call('PATCH', `/webhooks/${endpoint.id}`, { enabled: false });
  const queued = [];
  for (let i = 0; i < events; i++) queued.push((await call('POST', `/webhooks/${endpoint.id}/test`)).message_id);
  const t0 = performance.timeOrigin + performance.now();
  await call('PATCH', `/webhooks/${endpoint.id}`, { enabled: true });
  await waitFor(rx.arrived, queued, 600);
  const last = Math.max(...queued.map((id) => rx.arrived.get(id)));
  const seconds = (last - t0) / 1000;
  console.log(`backlog: ${events} queued deliveries sent in ${seconds.toFixed(2)} s = ${(events / seconds).toFixed(0)} deliveries/s`);

  // 2. Live, at a pace the portal keeps up with.
  const committed = new Map();
  const gap = 1000 / rate;
  const start = performance.now();
  for (let i = 0; i < events; i++) {
    const wait = start + i * gap - performance.now();
    if (wait > 0) await sleep(wait);
    const { message_id } = await call('POST', `/webhooks/${endpoint.id}/test`);
    committed.set(message_id, performance.timeOrigin + performance.now());
  }
  const ids = [...committed.keys()];
  await waitFor(rx.arrived, ids, 600);
  const lat = ids.map((id) => Math.max(0, rx.arrived.get(id) - committed.get(id))).sort((a, b) => a - b);
  console.log(
    `live: ${ids.length} events at ${rate}/s, committed → delivered p50 ${pct(lat, 50).toFixed(0)} ms, ` +
      `p99 ${pct(lat, 99).toFixed(0)} ms, max ${lat[lat.length - 1].toFixed(0)} ms`,
  );
} finally {
  await portal.stop();
  rx.server.close();
  rmSync(dir, { recursive: true, force: true });
}

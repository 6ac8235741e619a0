// The benchmark of issue 15: what live streams cost the server. It prints numbers beside the
// issue's targets; it asserts nothing.
//
//   scripts/run (or the build_release of scripts/lib.sh)          # the portal
//   bash -c 'ulimit -n 65536; node end2end/bench-live.mjs [--streams 1000,10000] [--clients 1000]
//                                                          [--trials 10] [--idle 30] [--port 3800]'
//
// 1. Memory per open stream: the portal's resident memory before and after `--streams` idle
//    streams are open (one process, SQLite), divided by their number.
// 2. Fan-out: with `--clients` streams open, an operation is requested `--trials` times; for
//    each client, the time from sending the request to the client reading the first event it
//    caused (an upper bound on commit-to-client: the commit happens before the answer).
// 3. Requests the server receives from `--clients` idle open pages in `--idle` seconds (each
//    page's network behaviour: one stream, nothing else while nothing happens), from the
//    portal's own request counter (GET /metrics).
//
// PORTICO_BIN is the release binary (default ~/.cache/portico/target/release/portico);
// LEPTOS_SITE_ROOT the site root (default target/site). The portal runs `serve --demo
// --workers 0` (a requested operation stays queued, so each trial's events are its own) on
// 127.0.0.1:<port>, its metrics on <port>+1.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { memory } from './bench/servers.mjs';
import { signIn } from './bench/load.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    streams: { type: 'string', default: '1000,10000' },
    clients: { type: 'string', default: '1000' },
    trials: { type: 'string', default: '10' },
    idle: { type: 'string', default: '30' },
    port: { type: 'string', default: '3800' },
  },
});
const port = Number(opts.port);
const base = `http://127.0.0.1:${port}`;
const bin = process.env.PORTICO_BIN ?? join(homedir(), '.cache/portico/target/release/portico');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startPortal() {
  const dataDir = mkdtempSync(join(tmpdir(), 'portico-bench-live-'));
  const proc = spawn(bin, ['serve', '--demo', '--workers', '0', '--metrics-addr', `127.0.0.1:${port + 1}`], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      PORTICO_DATA_DIR: dataDir,
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
    pid: proc.pid,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.on('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/// One open stream, reading events as they come: `seen` maps an event id to when it arrived.
function openStream(cookie) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/events`, { headers: { cookie, accept: 'text/event-stream' }, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream answered ${res.statusCode}`));
        return;
      }
      const stream = { seen: new Map(), close: () => req.destroy() };
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const now = performance.now();
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const id = buffer.slice(0, end).match(/^id: ?(\d+)$/m)?.[1];
          buffer = buffer.slice(end + 2);
          if (id && !stream.seen.has(Number(id))) stream.seen.set(Number(id), now);
        }
      });
      res.on('error', () => {});
      resolve(stream);
    });
    req.on('error', reject);
  });
}

async function openStreams(cookie, n) {
  const streams = [];
  while (streams.length < n) {
    const batch = Math.min(200, n - streams.length);
    streams.push(...(await Promise.all(Array.from({ length: batch }, () => openStream(cookie)))));
  }
  return streams;
}

async function scrapeRequests() {
  const text = await (await fetch(`http://127.0.0.1:${port + 1}/metrics`)).text();
  return text.split('\n')
    .filter((l) => l.startsWith('portico_http_requests_total{'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

const portal = await startPortal();
try {
  const { cookie } = await signIn(base, 'admin@globex.test');
  const html = await (await fetch(`${base}/instances`, { headers: { cookie } })).text();
  const instance = html.match(/href="\/instances\/([0-9a-f-]{36})"/)[1];

  // 1. Memory per stream.
  for (const n of opts.streams.split(',').map(Number)) {
    await sleep(1000);
    const before = memory(portal.pid).rss;
    const streams = await openStreams(cookie, n);
    await sleep(3000);
    const after = memory(portal.pid).rss;
    const perStream = ((after - before) * 1024) / n;
    console.log(`memory: ${n} idle streams: RSS ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB, ` +
      `${perStream.toFixed(1)} KiB per stream (target: under 16 KiB)`);
    for (const s of streams) s.close();
    await sleep(2000);
  }

  // 2. Fan-out to many clients.
  const clients = await openStreams(cookie, Number(opts.clients));
  await sleep(2000);
  const lags = [];
  for (let t = 0; t < Number(opts.trials); t++) {
    const known = Math.max(0, ...clients.flatMap((c) => [...c.seen.keys()]));
    const sent = performance.now();
    const res = await fetch(`${base}/api/request_operation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', cookie },
      body: JSON.stringify({ instance_id: instance, request: { operation: 'restart' }, idempotency_key: `bench-${t}-${Date.now()}` }),
    });
    await res.text();
    await sleep(1500);
    const first = Math.min(...clients.flatMap((c) => [...c.seen.keys()].filter((id) => id > known)));
    for (const c of clients) {
      const at = c.seen.get(first);
      lags.push(at === undefined ? Infinity : at - sent);
    }
  }
  lags.sort((a, b) => a - b);
  const missed = lags.filter((l) => l === Infinity).length;
  console.log(`fan-out: ${opts.clients} clients x ${opts.trials} operations: request sent -> event read ` +
    `p50 ${percentile(lags, 50).toFixed(1)} ms, p99 ${percentile(lags, 99).toFixed(1)} ms, ` +
    `max ${lags[lags.length - 1 - missed]?.toFixed(1)} ms, missed ${missed} (target: p99 under 250 ms)`);

  // 3. Requests from idle open pages.
  const start = await scrapeRequests();
  await sleep(Number(opts.idle) * 1000);
  // The metrics listener counts no requests of its own.
  const received = (await scrapeRequests()) - start;
  console.log(`idle: ${opts.clients} open pages for ${opts.idle} s: ${received} requests received, ` +
    `${(received / Number(opts.idle)).toFixed(2)} per second`);
  for (const c of clients) c.close();
} finally {
  await portal.stop();
}

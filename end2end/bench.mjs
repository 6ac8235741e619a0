// The benchmark of issue 14: what a visitor downloads, how fast a slow phone gets a usable page,
// how fast the server renders compared with serving the same bytes from memory, and how much
// memory the portal holds. It prints numbers beside the issue's goals; it asserts nothing.
//
//   scripts/run (or the build_release of scripts/lib.sh)         # the portal and its site
//   cargo build --release -p portico --example ssr_baseline      # the plain-axum baseline
//   apt-get install wrk                                          # the load generator (Debian)
//   node end2end/bench.mjs [--duration 20] [--runs 5] [--only memory,transfer,phone,ssr,list]
//                          [--accept-encoding 'br, gzip'] [--port 3700]
//
// PORTICO_BIN is the release binary (default $CARGO_TARGET_DIR/release/portico, else
// ~/.cache/portico/target/release/portico); SSR_BASELINE_BIN the baseline (default: beside it,
// examples/ssr_baseline); LEPTOS_SITE_ROOT or --site the site root (default target/site).
// The portal runs `serve --demo` on a throw-away database on 127.0.0.1:<port>, the baseline on
// <port>+1; no test uses those. Chromium is /usr/bin/chromium (or CHROMIUM).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { launch, transfer, phoneRun, PHONE } from './bench/browser.mjs';
import { checkWrk, concurrentSignIns, createInstances, request, signIn, wrk } from './bench/load.mjs';
import { memory, startBaseline, startPortico } from './bench/servers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    runs: { type: 'string', default: '5' },
    only: { type: 'string', default: 'memory,transfer,phone,ssr,list' },
    port: { type: 'string', default: '3700' },
    site: { type: 'string' },
    'accept-encoding': { type: 'string' },
  },
});
const sections = new Set(opts.only.split(','));
const port = Number(opts.port);
const base = `http://127.0.0.1:${port}`;
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache/portico/target');
const bin = resolve(process.env.PORTICO_BIN ?? join(targetDir, 'release/portico'));
const baselineBin = resolve(process.env.SSR_BASELINE_BIN ?? join(dirname(bin), 'examples/ssr_baseline'));
const site = resolve(opts.site ?? process.env.LEPTOS_SITE_ROOT ?? join(root, 'target/site'));
const DEMO_EMAILS = ['admin@globex.test', 'ops@globex.test', 'viewer@globex.test', 'admin@initech.test', 'admin@umbrella.test'];

function need(path, what, how) {
  if (!existsSync(path)) {
    console.error(`${what} not found at ${path}: ${how}`);
    process.exit(2);
  }
}
need(bin, 'the portal (PORTICO_BIN)', 'build it with scripts/run');
need(join(site, 'pkg'), 'the site (LEPTOS_SITE_ROOT or --site)', 'build it with scripts/run');
if (sections.has('ssr')) {
  need(baselineBin, 'the baseline (SSR_BASELINE_BIN)', 'cargo build --release -p portico --example ssr_baseline');
  checkWrk();
}

const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
const mb = (n) => `${n.toFixed(0)} MB`;
const sec = (ms) => (ms === undefined ? '   -  ' : `${(ms / 1000).toFixed(2)} s`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pad = (s, n) => String(s).padEnd(n);
const heading = (s) => console.log(`\n${s}\n${'-'.repeat(s.length)}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

console.log(`Portico benchmark, ${new Date().toISOString()}`);
console.log(`portal ${bin}\nsite   ${site}`);
const portal = await startPortico({ bin, cwd: root, site, port });
let browser;
try {
  await sleep(2000);
  const idle = memory(portal.pid);
  const { cookie } = await signIn(base, 'admin@globex.test');
  if (!cookie) throw new Error('could not sign in as admin@globex.test');

  if (sections.has('memory')) {
    heading('Memory of the portal (VmRSS; peak is VmHWM)');
    console.log(`  idle after start                 ${pad(mb(idle.rss), 8)} peak ${pad(mb(idle.hwm), 8)} goal < 50 MB   (today 338 MB after a few dozen sign-ins)`);
    const { counts, seconds } = await concurrentSignIns(base, 200, DEMO_EMAILS);
    const after = memory(portal.pid);
    console.log(`  after 200 concurrent sign-ins    ${pad(mb(after.rss), 8)} peak ${pad(mb(after.hwm), 8)} goal < 100 MB`);
    const answers = Object.entries(counts).map(([k, v]) => `${v}x ${k}`).join(', ');
    console.log(`    (form posts from 200 loopback addresses over ${DEMO_EMAILS.length} accounts, ${seconds.toFixed(1)} s: ${answers})`);
  }

  if (sections.has('transfer') || sections.has('phone')) browser = await launch();

  if (sections.has('transfer')) {
    heading('Transfer (unthrottled; bytes over the wire incl. headers; goal: first visit <= 170 KB, repeat: no css/js/wasm)');
    console.log('  today (issue 14): /sign-in 1,089.7 KB, /instances 1,104.6 KB first visit, nothing compressed');
    for (const [path, who] of [['/sign-in', null], ['/instances', cookie]]) {
      const { first, repeat } = await transfer(browser, base, path, who);
      for (const [visit, r] of [['first', first], ['repeat', repeat]]) {
        const again = ['css', 'js', 'wasm'].reduce((n, k) => n + (r.kinds[k]?.network ?? 0), 0);
        const note = visit === 'first' ? `goal <= 170 KB${r.total > 170_000 ? '  MISSED' : ''}` : `css/js/wasm requests over the network: ${again} (goal 0)`;
        console.log(`  ${pad(path, 11)} ${pad(visit, 6)}  total ${kb(r.total).padStart(10)}   ${note}`);
        for (const [k, v] of Object.entries(r.kinds).sort()) {
          const how = v.network ? `${[...v.encodings].join('/')}, status ${[...v.statuses].join('/')}` : '';
          console.log(`      ${pad(k, 9)} ${kb(v.bytes).padStart(10)}  ${v.network} over network, ${v.cached} from cache  ${how}`);
        }
      }
    }
  }

  if (sections.has('phone')) {
    const runs = Number(opts.runs);
    const { width, height } = PHONE.viewport;
    heading(`Phone profile (${PHONE.cpuSlowdown}x CPU, 150 ms RTT, 1.6 Mbps down / 750 kbps up, ${width}x${height} @${PHONE.deviceScaleFactor}x, empty cache), median of ${runs}`);
    console.log(`  ${pad('page', 12)}${pad('', 18)}${pad('FCP', 10)}${pad('LCP', 10)}interactive (hydrated)`);
    const today = { '/sign-in': ['0.86 s', '   -  ', '5.8 s'], '/instances': ['1.09 s', '   -  ', '6.0 s'] };
    const goal = { '/sign-in': ['', '', 'signs in with no wasm'], '/instances': ['', '<= 2.0 s', '<= 3.0 s'] };
    for (const [path, who] of [['/sign-in', null], ['/instances', cookie]]) {
      const results = [];
      for (let i = 0; i < runs; i++) results.push(await phoneRun(browser, base, path, who));
      const m = (k) => median(results.map((r) => r[k]));
      const range = (k) => `${sec(Math.min(...results.map((r) => r[k])))}-${sec(Math.max(...results.map((r) => r[k])))}`;
      console.log(`  ${pad(path, 12)}${pad('measured', 18)}${pad(sec(m('fcp')), 10)}${pad(sec(m('lcp')), 10)}${sec(m('hydrated'))}   (range ${range('hydrated')})`);
      console.log(`  ${pad('', 12)}${pad('today (issue 14)', 18)}${pad(today[path][0], 10)}${pad(today[path][1], 10)}${today[path][2]}`);
      console.log(`  ${pad('', 12)}${pad('goal', 18)}${pad(goal[path][0], 10)}${pad(goal[path][1], 10)}${goal[path][2]}`);
    }
  }
  await browser?.close();
  browser = undefined;

  if (sections.has('ssr')) {
    const seconds = Number(opts.duration);
    const encoding = opts['accept-encoding'];
    const headers = { accept: 'text/html', ...(encoding ? { 'accept-encoding': encoding } : {}) };
    const pages = { '/sign-in': headers, '/instances': { ...headers, cookie } };
    // The baseline serves the very bytes (and content type and encoding) Portico answered.
    const dir = mkdtempSync(join(tmpdir(), 'portico-pages-'));
    const manifest = [];
    for (const [path, h] of Object.entries(pages)) {
      const res = await request(`${base}${path}`, { headers: h });
      if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
      const file = join(dir, `${path.slice(1)}.body`);
      writeFileSync(file, res.body);
      manifest.push({ path, content_type: res.headers['content-type'], content_encoding: res.headers['content-encoding'], file, size: res.body.length });
    }
    const baseline = await startBaseline({ bin: baselineBin, port: port + 1, pages: manifest });
    heading(`SSR throughput (wrk, 2 threads, 32 connections, ${seconds} s, loopback, accept-encoding: ${encoding ?? 'none'})`);
    console.log(`  ${pad('page', 12)}${pad('server', 10)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}  errors`);
    const today = { '/sign-in': '0.019x (862 vs 45,234 req/s, p99 50 ms)', '/instances': '0.020x (739 vs 37,245 req/s, p99 77 ms)' };
    try {
      for (const [path, h] of Object.entries(pages)) {
        const captured = manifest.find((p) => p.path === path);
        const row = {};
        for (const [name, url] of [['portico', base], ['baseline', `http://127.0.0.1:${port + 1}`]]) {
          const r = (row[name] = await wrk(`${url}${path}`, { seconds, headers: h }));
          const errors = r.bad || r.errors ? `${r.bad} non-2xx/3xx, ${r.errors} socket` : '0';
          console.log(`  ${pad(name === 'portico' ? path : '', 12)}${pad(name, 10)}${r.rps.toFixed(0).padStart(9)}${r.p50.toFixed(2).padStart(9)}${r.p99.toFixed(2).padStart(9)}  ${errors}`);
          await sleep(1000);
        }
        const ratio = row.portico.rps / row.baseline.rps;
        console.log(`  ${pad('', 12)}${pad('ratio', 10)}${`${ratio.toFixed(3)}x`.padStart(9)}   goal >= 0.25x and p99 < 20 ms; today ${today[path]}; page ${kb(captured.size)}`);
      }
    } finally {
      await baseline.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  if (sections.has('list')) {
    heading('A tenant with 50 instances (admin@umbrella.test, enterprise plan, quota 50)');
    const umbrella = (await signIn(base, 'admin@umbrella.test')).cookie;
    const created = await createInstances(base, umbrella, 50);
    await sleep(2000);
    // One request, as a browser sends it; the raw size is that answer decompressed.
    const res = await request(`${base}/instances`, { headers: { accept: 'text/html', cookie: umbrella, 'accept-encoding': 'br, gzip' } });
    const encoding = res.headers['content-encoding'] ?? 'identity';
    const raw = { br: brotliDecompressSync, gzip: gunzipSync }[encoding]?.(res.body) ?? res.body;
    const br = brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }).length;
    console.log(`  created ${created} instances (the plan's quota of 50 counts the demo's own)`);
    console.log(`  /instances HTML: ${kb(raw.length)} raw, ${kb(res.body.length)} as sent to a browser (${encoding}), brotli q5 ${kb(br)}, gzip ${kb(gzipSync(raw).length)}   goal <= 40 KB compressed`);
    console.log('  today (issue 14): 100-130 KB of HTML for 50 instances, not paginated');
  }

  if (sections.has('memory')) {
    const end = memory(portal.pid);
    console.log(`\nMemory of the portal at the end: ${mb(end.rss)} (peak ${mb(end.hwm)})`);
  }
} finally {
  await browser?.close();
  await portal.stop();
}

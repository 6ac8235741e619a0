// Starts the release build of Portico on a loopback port with a throw-away database and the
// demo data, waits until it is ready, runs every browser test against it, then stops it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const bin = process.env.PORTICO_BIN;
if (!bin) {
  console.error('PORTICO_BIN must point at the release binary (scripts/test sets it)');
  process.exit(2);
}
const port = process.env.E2E_PORT ?? '3100';
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), 'portico-e2e-'));
mkdirSync(join(here, 'artifacts'), { recursive: true });

const server = spawn(bin, ['serve', '--demo'], {
  cwd: root,
  env: {
    ...process.env,
    PORTICO_DATA_DIR: dataDir,
    LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
    LEPTOS_SITE_ROOT: join(root, 'target', 'site'),
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
let serverExited = false;
server.on('exit', (code) => {
  serverExited = true;
  if (code) console.error(`portico exited with ${code}`);
});

async function waitReady() {
  for (let i = 0; i < 150; i++) {
    if (serverExited) throw new Error('portico exited before it was ready');
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`portico did not become ready at ${base}`);
}

let code = 1;
try {
  await waitReady();
  const files = readdirSync(join(here, 'tests'))
    .filter((f) => f.endsWith('.test.mjs'))
    .map((f) => join(here, 'tests', f));
  const runner = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], {
    env: { ...process.env, BASE_URL: base, ARTIFACTS: join(here, 'artifacts') },
    stdio: 'inherit',
  });
  code = await new Promise((resolve) => runner.on('exit', (c) => resolve(c ?? 1)));
} catch (e) {
  console.error(e.message);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => (serverExited ? r() : server.on('exit', r)));
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(code);

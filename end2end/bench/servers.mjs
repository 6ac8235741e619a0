// Starting and stopping the servers the benchmark measures: Portico with the demo data on a
// throw-away database (as end2end/run.mjs starts it), and the plain-axum baseline
// (server/examples/ssr_baseline.rs). Also how much memory a process holds.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/// A child process that is stopped (SIGTERM) and whose temp directory is removed by `stop()`.
function child(name, bin, args, options, cleanup = () => {}) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'inherit'], ...options });
  let exited = false;
  proc.on('exit', (code, signal) => {
    exited = true;
    if (code) console.error(`${name} exited with ${code}`);
    else if (signal && signal !== 'SIGTERM') console.error(`${name} killed by ${signal}`);
  });
  proc.on('error', (e) => console.error(`${name}: ${e.message}`));
  return {
    pid: proc.pid,
    exited: () => exited,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        await new Promise((r) => (exited ? r() : proc.on('exit', r)));
      }
      cleanup();
    },
  };
}

async function waitFor(server, url, what) {
  for (let i = 0; i < 300; i++) {
    if (server.exited()) throw new Error(`${what} exited before it was ready`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not answer ${url}`);
}

/// Portico as `serve --demo` on 127.0.0.1:`port`, with a fresh data directory. `cwd` is the
/// repository (it reads Leptos.toml there); `site` is the site root (wasm, js, css).
export async function startPortico({ bin, cwd, site, port }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'portico-bench-'));
  const server = child(
    'portico',
    bin,
    ['serve', '--demo'],
    {
      cwd,
      env: {
        ...process.env,
        PORTICO_DATA_DIR: dataDir,
        LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
        LEPTOS_SITE_ROOT: site,
        // Operations settle quickly, so the 50-instance tenant is ready in seconds.
        PORTICO_SIM_STEP_MS: '50',
        RUST_LOG: process.env.RUST_LOG ?? 'warn',
      },
    },
    () => rmSync(dataDir, { recursive: true, force: true }),
  );
  await waitFor(server, `http://127.0.0.1:${port}/readyz`, 'portico');
  return server;
}

/// The baseline: answers each of `pages` ({path, content_type, file}) from memory.
export async function startBaseline({ bin, port, pages }) {
  const dir = mkdtempSync(join(tmpdir(), 'portico-baseline-'));
  const manifest = join(dir, 'pages.json');
  writeFileSync(manifest, JSON.stringify(pages));
  const server = child('ssr_baseline', bin, [String(port), manifest], {}, () =>
    rmSync(dir, { recursive: true, force: true }),
  );
  await waitFor(server, `http://127.0.0.1:${port}${pages[0].path}`, 'ssr_baseline');
  return server;
}

/// Resident memory and its high-water mark, in MB, from /proc/<pid>/status.
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

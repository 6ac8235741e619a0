// HTTP without a browser: signing in as a plain form would, many sign-ins at once, requests whose
// bytes are counted as sent (no automatic decompression), and wrk runs.
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';

export const PASSWORD = 'portico-demo';
const COOKIE = '__Host-portico_session';

/// One request with node:http; the body is returned as received (still compressed, if it was).
/// `localAddress` picks the client's loopback address, so the sign-in limiter sees many clients.
export function request(url, { method = 'GET', headers = {}, body, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, localAddress, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/// Posts the sign-in form the way a browser without JavaScript does; returns the answer and
/// the session cookie (`name=value`) it set, if any.
export async function signIn(base, email, localAddress) {
  const body = new URLSearchParams({ email, password: PASSWORD }).toString();
  const res = await request(`${base}/api/sign_in`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
      'content-length': Buffer.byteLength(body),
    },
    body,
    localAddress,
  });
  const cookie = (res.headers['set-cookie'] ?? [])
    .map((c) => c.split(';')[0])
    .find((c) => c.startsWith(`${COOKIE}=`) && c.length > COOKIE.length + 1);
  return { status: res.status, cookie };
}

/// `n` sign-ins at once, spread over the demo accounts, each from its own loopback address
/// (127.0.1.1, 127.0.1.2, ...) as `n` different visitors would be. Returns the count of each
/// status and the time the last one took.
export async function concurrentSignIns(base, n, emails) {
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      signIn(base, emails[i % emails.length], `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`)
        .then((r) => (r.cookie ? `${r.status} signed in` : `${r.status} refused`))
        .catch((e) => e.code ?? e.message),
    ),
  );
  const counts = {};
  for (const r of results) counts[r] = (counts[r] ?? 0) + 1;
  return { counts, seconds: (performance.now() - started) / 1000 };
}

export function checkWrk() {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (r.error?.code === 'ENOENT') {
    throw new Error('wrk is not installed; on Debian: apt-get install wrk');
  }
}

const toMs = (value, unit) => Number(value) * { us: 0.001, ms: 1, s: 1000 }[unit];

/// Runs wrk (2 threads, `connections`, `seconds`) on `url` and returns req/s, p50 and p99 in
/// ms, and how many answers were not 2xx/3xx or failed at the socket.
export async function wrk(url, { seconds, connections = 32, headers = {} }) {
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  const out = await new Promise((resolve, reject) => {
    const p = spawn('wrk', [...args, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text}`))));
  });
  const pct = (p) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm'));
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const socketErrors = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN),
    p50: pct(50),
    p99: pct(99),
    bad: Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0),
    errors: socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/// Fills the tenant whose admin holds `cookie` with instances until its plan's quota refuses
/// more (or `max` were created); returns how many were created.
export async function createInstances(base, cookie, max) {
  let created = 0;
  for (; created < max; created++) {
    const body = JSON.stringify({
      request: {
        name: `bench-${String(created).padStart(2, '0')}`,
        environment: 'dev',
        region: 'eu-west',
        resources: { replicas: 1, cpu_millicores: 500, memory_mib: 1024, storage_gib: 20 },
        parameters: {},
      },
      idempotency_key: `bench-${created}`,
    });
    const res = await request(`${base}/api/create_instance`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', cookie, 'content-length': Buffer.byteLength(body) },
      body,
    });
    if (res.status !== 200) break;
  }
  return created;
}

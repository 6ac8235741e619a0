// The bundle as the server sends it: every file under /pkg has its content hash in its name,
// is cached for a year without revalidation, and travels precompressed (brotli, else gzip);
// pages are compressed on the fly and never cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'node:http';
import { BASE_URL } from './helpers.mjs';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'site', 'pkg');
// The build step (scripts/site) names a file after a base64url MD5: 22 characters before the
// extension.
const HASHED = /(^|[._])[A-Za-z0-9_-]{22}\.[a-z]+$/;

/// GET with exactly the headers given (fetch would add its own Accept-Encoding and decode).
function get(path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(`${BASE_URL}${path}`, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function bundleFiles(dir = pkg, prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? bundleFiles(join(dir, e.name), `${prefix}${e.name}/`)
      : /\.(br|gz)$/.test(e.name)
        ? []
        : [`${prefix}${e.name}`],
  );
}

test('every file under /pkg is hashed, immutable and precompressed', async () => {
  const files = bundleFiles();
  assert.ok(files.some((f) => f.endsWith('.wasm')), `no wasm in ${pkg}: build the site first`);
  for (const f of files) {
    assert.match(f.split('/').pop(), HASHED, `${f} has no content hash in its name`);
    const original = readFileSync(join(pkg, f));

    const br = await get(`/pkg/${f}`, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.status, 200, f);
    assert.equal(br.headers['cache-control'], 'public, max-age=31536000, immutable', f);
    assert.equal(br.headers['content-encoding'], 'br', `${f} is not sent with brotli`);
    assert.match(br.headers.vary ?? '', /accept-encoding/i, f);
    assert.ok(brotliDecompressSync(br.body).equals(original), `${f}: brotli body differs from the file`);
    assert.ok(br.body.length < original.length, `${f}: brotli is no smaller`);

    const gz = await get(`/pkg/${f}`, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip', `${f} is not sent with gzip`);
    assert.ok(gunzipSync(gz.body).equals(original), `${f}: gzip body differs from the file`);

    const plain = await get(`/pkg/${f}`);
    assert.equal(plain.headers['content-encoding'], undefined, f);
    assert.ok(plain.body.equals(original), `${f}: identity body differs from the file`);
  }
});

test('pages name the hashed bundle and are compressed, never cached', async () => {
  const page = await get('/sign-in', { 'accept-encoding': 'br' });
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-encoding'], 'br');
  assert.equal(page.headers['cache-control'], 'no-store');
  const html = brotliDecompressSync(page.body).toString();
  const referenced = [...html.matchAll(/\/pkg\/([^"'\s)]+)/g)].map((m) => m[1]);
  for (const kind of ['.js', '.wasm', '.css']) {
    assert.ok(referenced.some((f) => f.endsWith(kind)), `the page links no ${kind} under /pkg`);
  }
  for (const f of referenced) {
    assert.match(f, HASHED, `the page links ${f}, which has no hash`);
    assert.equal((await get(`/pkg/${f}`)).status, 200, `the page links ${f}, which is missing`);
  }
  // The brand stylesheet is linked at an address that names its content, so it is cached too.
  const brand = html.match(/href="(\/brand\.css\?v=[0-9a-f]+)"/);
  assert.ok(brand, 'the page links the brand stylesheet with its version');
  const css = await get(brand[1]);
  assert.equal(css.headers['cache-control'], 'public, max-age=31536000, immutable');

  const small = await get('/healthz', { 'accept-encoding': 'br' });
  assert.equal(small.headers['content-encoding'], undefined, 'a tiny answer is sent as it is');
});

// Proves the fixture works on its own, and documents what a relying party sees: starts
// provider.mjs (directly, and behind a forwarding proxy that rewrites Host, with the proxy as
// the issuer), then drives a whole authorization-code flow with plain fetch, manual redirects
// and a tiny cookie jar.
//
//   node end2end/oidc/check.mjs
//
// Exits non-zero if anything is not as expected. Needs no browser and no Portico.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const CLIENT_ID = 'check-client';
const CLIENT_SECRET = 'check-secret-0123456789';
const REDIRECT_URI = 'http://localhost:65001/sso/check/callback';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

/** Starts the fixture; resolves with its process and listening URL once it printed its line. */
async function startFixture(extra = []) {
  const child = spawn(process.execPath, [
    join(here, 'provider.mjs'),
    '--port', '0',
    '--key', join(root, 'server', 'tests', 'fixtures', 'embed', 'rsa.key'),
    '--client-id', CLIENT_ID,
    '--client-secret', CLIENT_SECRET,
    '--redirect-uri', 'http://127.0.0.1:65001/other',
    '--redirect-uri', REDIRECT_URI,
    ...extra,
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const [line] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`fixture exited with ${code}`); }),
  ]);
  const m = /^oidc-provider listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
  assert.ok(m, `unexpected first line: ${line}`);
  lines.on('line', (l) => assert.fail(`the fixture printed a second line on stdout: ${l}`));
  return { child, url: m[1] };
}

/** A forwarding proxy that rewrites Host to the upstream's, like a naive reverse proxy would. */
async function startProxy() {
  let target;
  const server = createServer((req, res) => {
    const fwd = request({
      host: target.hostname, port: target.port, method: req.method, path: req.url,
      headers: { ...req.headers, host: target.host },
    }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    fwd.on('error', (e) => { res.writeHead(502); res.end(e.message); });
    req.pipe(fwd);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${server.address().port}`, forwardTo: (u) => { target = new URL(u); } };
}

/** fetch with redirect: 'manual' and a cookie jar (by name; fine for one host). */
function browser() {
  const jar = new Map();
  return async function go(url, init = {}) {
    const headers = { ...init.headers };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';').map((s) => s.trim());
      const i = pair.indexOf('=');
      const [name, value] = [pair.slice(0, i), pair.slice(i + 1)];
      const expired = attrs.some((a) => /^expires=/i.test(a) && new Date(a.slice(8)) < new Date())
        || attrs.some((a) => /^max-age=(0|-)/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
}

/** Follows redirects until one leaves for the client's redirect URI; returns that Location. */
async function follow(go, res, base) {
  for (let hops = 0; hops < 10; hops++) {
    if (res.status < 300 || res.status >= 400) return res;
    const location = new URL(res.headers.get('location'), base).href;
    if (location.startsWith(REDIRECT_URI)) return location;
    res = await go(location);
    base = location;
  }
  throw new Error('too many redirects');
}

async function flow(issuer, { email, groups = '', unverified = false }) {
  const go = browser();
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  assert.equal(discovery.issuer, issuer);
  for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint']) {
    assert.ok(discovery[k].startsWith(`${issuer}/`), `${k} ${discovery[k]} is not below ${issuer}`);
  }

  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const auth = new URL(discovery.authorization_endpoint);
  auth.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile groups',
    state,
    nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  });

  // /auth -> /interaction/<uid>: the login form.
  const form = await follow(go, await go(auth.href), auth.href);
  assert.equal(form.status, 200);
  const html = await form.text();
  assert.match(html, /<title>Fixture ID<\/title>/);
  const action = /<form method="post" action="([^"]+)"/.exec(html)[1];
  const body = new URLSearchParams({ email, groups });
  if (unverified) body.set('unverified', '1');
  const posted = await go(new URL(action, form.url || issuer).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  // login -> /auth/<uid> (resume) -> /interaction/<uid2> (consent, granted at once)
  // -> /auth/<uid2> -> the redirect URI with a code.
  const callback = await follow(go, posted, issuer);
  assert.equal(typeof callback, 'string', 'the flow did not end at the redirect URI');
  const params = new URL(callback).searchParams;
  assert.equal(params.get('state'), state);
  assert.equal(params.get('iss'), issuer, 'RFC 9207 iss parameter');
  const code = params.get('code');
  assert.ok(code);

  const basic = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`;
  const redeem = () => fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
    }),
  });
  const tokenRes = await redeem();
  const tokens = await tokenRes.json();
  assert.equal(tokenRes.status, 200, JSON.stringify(tokens));
  const [h, p] = tokens.id_token.split('.');
  const header = decode(h);
  const payload = decode(p);
  assert.equal(header.alg, 'RS256');
  assert.equal(header.kid, 'fixture-rsa');
  assert.equal(payload.iss, issuer);
  assert.equal(payload.aud, CLIENT_ID);
  assert.equal(payload.nonce, nonce);

  // The same code a second time.
  const replay = await redeem();
  const replayBody = await replay.json();
  assert.equal(replay.status, 400);
  assert.equal(replayBody.error, 'invalid_grant');

  return { header, payload, tokens, replay: { status: replay.status, body: replayBody }, discovery };
}

async function negatives(issuer) {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  // Without PKCE: the error goes back to the redirect URI.
  const auth = new URL(discovery.authorization_endpoint);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, scope: 'openid', state: 's',
  });
  const noPkce = await fetch(auth, { redirect: 'manual' });
  const err = new URL(noPkce.headers.get('location')).searchParams;
  assert.equal(err.get('error'), 'invalid_request');
  // A redirect URI that is not registered: an error page at the provider, no redirect.
  auth.searchParams.set('redirect_uri', 'http://localhost:65001/elsewhere');
  const badRedirect = await fetch(auth, { redirect: 'manual' });
  assert.equal(badRedirect.status, 400);
  // Wrong client secret.
  const bad = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:wrong`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: REDIRECT_URI, code_verifier: 'x'.repeat(43) }),
  });
  return {
    withoutPkce: Object.fromEntries(err),
    unregisteredRedirect: badRedirect.status,
    wrongSecret: { status: bad.status, body: await bad.json() },
  };
}

const stops = [];
try {
  const direct = await startFixture();
  stops.push(() => direct.child.kill('SIGTERM'));
  const a = await flow(direct.url, { email: 'Ops@Globex.test', groups: ' umbrella-ops, , auditors ' });
  assert.equal(a.payload.email, 'ops@globex.test');
  assert.equal(a.payload.email_verified, true);
  assert.equal(a.payload.name, 'ops');
  assert.deepEqual(a.payload.groups, ['umbrella-ops', 'auditors']);
  assert.equal(a.payload.sub, `user-${createHash('sha256').update('ops@globex.test').digest('hex').slice(0, 16)}`);
  console.log('ID token header:', JSON.stringify(a.header));
  console.log('ID token payload:', JSON.stringify(a.payload, null, 2));
  console.log('token response keys:', Object.keys(a.tokens).join(', '), `(token_type ${a.tokens.token_type}, scope "${a.tokens.scope}")`);
  console.log('replayed code:', a.replay.status, JSON.stringify(a.replay.body));

  const b = await flow(direct.url, { email: 'unverified@initech.test', unverified: true });
  assert.equal(b.payload.email_verified, false);
  assert.deepEqual(b.payload.groups, []);
  console.log('unverified, no groups:', JSON.stringify({ email: b.payload.email, email_verified: b.payload.email_verified, groups: b.payload.groups }));

  console.log('negatives:', JSON.stringify(await negatives(direct.url)));

  // Behind a proxy that rewrites Host, with the proxy's URL as the issuer.
  const proxy = await startProxy();
  stops.push(() => proxy.server.close());
  const fixture = await startFixture(['--issuer', proxy.url]);
  stops.push(() => fixture.child.kill('SIGTERM'));
  proxy.forwardTo(fixture.url);
  const c = await flow(proxy.url, { email: 'admin@umbrella.test' });
  assert.equal(c.payload.iss, proxy.url);
  console.log(`through a Host-rewriting proxy, issuer ${proxy.url}: ok (iss ${c.payload.iss})`);
  console.log('check: all good');
} finally {
  for (const stop of stops.reverse()) stop();
}

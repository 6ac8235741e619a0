// A real OpenID Connect provider (the `oidc-provider` package) for tests: one confidential
// client using the authorization-code flow with PKCE, and a sign-in page that takes whoever
// types an email. The Rust integration tests and the browser tests both spawn it:
//
//   node end2end/oidc/provider.mjs --port <N> [--issuer <URL>] --key <RSA PKCS#8 PEM> [--kid <kid>]
//     --client-id <id> --client-secret <secret> --redirect-uri <url> [--redirect-uri <url> ...]
//
// When it is ready it prints exactly one line to stdout,
//   oidc-provider listening on http://127.0.0.1:<port>
// and everything else (notices, errors) goes to stderr.
//
// `--issuer` may differ from the listening address (a proxy in front of the fixture): every URL
// the provider publishes or redirects to is built from the issuer, never from the Host header.
import { createServer } from 'node:http';
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

// oidc-provider prints its notices with console.info; stdout is reserved for the ready line.
console.info = console.error;
console.log = console.error;

// Exit cleanly on SIGTERM/SIGINT, also while still starting.
let server;
function stop(signal) {
  console.error(`oidc fixture: ${signal}, stopping`);
  if (!server?.listening) process.exit(0);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Should a connection hang on, do not wait for it.
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

const { default: Provider, interactionPolicy, errors } = await import('oidc-provider');

function usage(message) {
  console.error(`provider.mjs: ${message}
usage: node provider.mjs --port <N> [--issuer <URL>] --key <PEM> [--kid <kid>]
         --client-id <id> --client-secret <secret> --redirect-uri <url> [--redirect-uri <url> ...]`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      issuer: { type: 'string' },
      key: { type: 'string' },
      kid: { type: 'string', default: 'fixture-rsa' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  usage(e.message);
}
for (const name of ['key', 'client-id', 'client-secret', 'redirect-uri']) {
  if (!args[name]) usage(`--${name} is required`);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port ${args.port} is not a port`);

const jwk = {
  ...createPrivateKey(readFileSync(args.key, 'utf8')).export({ format: 'jwk' }),
  kid: args.kid,
  use: 'sig',
  alg: 'RS256',
};
if (jwk.kty !== 'RSA') usage(`--key ${args.key} is not an RSA private key`);

// ---- Accounts: whoever signs in, with the claims they typed into the form -----------------

/** accountId -> claims from that account's latest sign-in. */
const accounts = new Map();

function accountFor(form) {
  const email = String(form.get('email') ?? '').trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) return null;
  const accountId = `user-${createHash('sha256').update(email).digest('hex').slice(0, 16)}`;
  const groups = String(form.get('groups') ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
  accounts.set(accountId, {
    email,
    email_verified: !form.has('unverified'),
    name: email.slice(0, email.indexOf('@')),
    groups,
  });
  return accountId;
}

async function findAccount(_ctx, sub) {
  const claims = accounts.get(sub);
  if (!claims) return undefined;
  return {
    accountId: sub,
    // oidc-provider filters these down to what the granted scopes and claims allow.
    async claims() {
      return { sub, ...claims };
    },
  };
}

// ---- Interaction policy: ask who you are on every authorization request -------------------

const { Check, base } = interactionPolicy;
const policy = base();
// A fixture should not silently reuse the identity of an earlier sign-in from the same cookie
// jar: each authorization request shows the form again (prompt=none therefore answers
// login_required).
policy.get('login').checks.add(
  new Check('fixture_always_login', 'the fixture asks for an identity on every request', (ctx) =>
    ctx.oidc.result?.login ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT),
);

// ---- Small HTML helpers -------------------------------------------------------------------

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; padding: 2rem 1rem; background: #f4f4f6; color: #222; }
  main { max-width: 24rem; margin: 0 auto; background: #fff; padding: 1.5rem; border-radius: 8px; }
  label { display: block; margin: 1rem 0 0.25rem; }
  label.check { display: flex; gap: 0.5rem; align-items: center; }
  input[type=email], input[type=text] { box-sizing: border-box; width: 100%; padding: 0.5rem; font: inherit; }
  button { margin-top: 1.25rem; padding: 0.5rem 1.25rem; font: inherit; }
  .error { color: #b00020; }
  small { color: #555; }
</style></head>
<body><main>${body}</main></body></html>`;
}

function send(res, status, html, headers = {}) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(html);
}

function loginForm(action, clientId, error, form) {
  return page(
    'Fixture ID',
    `<h1>Fixture ID</h1>
<p>Sign in to <strong>${escape(clientId)}</strong>. This test provider accepts any email address.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="${escape(action)}" autocomplete="off">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" required autofocus value="${escape(form?.get('email') ?? '')}">
  <label for="groups">Groups</label>
  <input id="groups" name="groups" type="text" value="${escape(form?.get('groups') ?? '')}"
    aria-describedby="groups-hint">
  <small id="groups-hint">Comma-separated, for example: umbrella-ops, auditors</small>
  <label class="check"><input id="unverified" name="unverified" type="checkbox" value="1"${
    form?.has('unverified') ? ' checked' : ''
  }> Email not verified</label>
  <button type="submit">Continue</button>
</form>`,
  );
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    throw new Error(`expected a urlencoded form, got ${type || 'no content type'}`);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// ---- Interactions: the login form, and consent granted without asking ---------------------

async function grantEverything(interaction) {
  const { prompt: { details }, params, session } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  if (details.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return grant.save();
}

async function interactionRoute(req, res, path) {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(path);
  if (!match) return false;
  const [, uid, login] = match;
  const interaction = await provider.interactionDetails(req, res);
  if (interaction.uid !== uid) throw new errors.SessionNotFound('interaction does not match its cookie');
  const action = `${issuerPath}/interaction/${uid}/login`;

  if (!login && req.method === 'GET') {
    switch (interaction.prompt.name) {
      case 'login':
        send(res, 200, loginForm(action, interaction.params.client_id));
        return true;
      case 'consent': {
        const grantId = await grantEverything(interaction);
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        return true;
      }
      default:
        throw new Error(`unexpected prompt ${interaction.prompt.name}`);
    }
  }

  if (login && req.method === 'POST') {
    if (interaction.prompt.name !== 'login') throw new Error(`login posted during the ${interaction.prompt.name} prompt`);
    const form = await readForm(req);
    const accountId = accountFor(form);
    if (!accountId) {
      send(res, 400, loginForm(action, interaction.params.client_id, 'Enter an email address.', form));
      return true;
    }
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return true;
  }

  res.writeHead(405, { allow: login ? 'POST' : 'GET', 'content-type': 'text/plain' });
  res.end('method not allowed\n');
  return true;
}

// ---- The server ---------------------------------------------------------------------------

let provider;
let handle; // provider.callback(), once the provider exists
let issuer;
let issuerUrl;
let issuerPath;

server = createServer(async (req, res) => {
  try {
    // Everything the provider builds from the request (discovery, redirects, cookie paths)
    // comes out of the issuer, whatever address the request arrived at.
    for (const h of ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port']) {
      delete req.headers[h];
    }
    req.headers.host = issuerUrl.host;
    req.headers['x-forwarded-host'] = issuerUrl.host;
    req.headers['x-forwarded-proto'] = issuerUrl.protocol.slice(0, -1);

    // An issuer with a path (http://host/some/path) serves everything below that path.
    const original = req.url;
    const url = new URL(original, issuerUrl.origin);
    if (issuerPath) {
      if (url.pathname !== issuerPath && !url.pathname.startsWith(`${issuerPath}/`)) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
        return;
      }
      req.originalUrl = original;
      req.url = original.slice(issuerPath.length) || '/';
    }

    if (await interactionRoute(req, res, url.pathname.slice(issuerPath.length))) return;
    await handle(req, res);
  } catch (err) {
    console.error(`oidc fixture: ${req.method} ${req.url}: ${err.stack ?? err}`);
    if (!res.headersSent) {
      const status = err.statusCode ?? err.status ?? 500;
      send(res, status, page('Fixture ID — error', `<h1>Fixture ID</h1><p role="alert">${escape(err.error ?? 'error')}: ${escape(err.error_description ?? err.message)}</p>`));
    } else {
      res.end();
    }
  }
});

server.on('error', (err) => {
  console.error(`oidc fixture: ${err.message}`);
  process.exit(1);
});

await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const actualPort = server.address().port;
const listening = `http://127.0.0.1:${actualPort}`;
issuer = args.issuer ?? listening;
try {
  issuerUrl = new URL(issuer);
} catch {
  usage(`--issuer ${issuer} is not a URL`);
}
issuerPath = issuerUrl.pathname.replace(/\/+$/, '');

provider = new Provider(issuer, {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: args['redirect-uri'],
      // A confidential, server-side web application: http redirect URIs (localhost or
      // 127.0.0.1, any port) are accepted for 'web' clients that do not use the implicit
      // flow, and they are compared exactly, port included.
      application_type: 'web',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: {
    keys: ['portico-oidc-fixture-cookie-key-1', 'portico-oidc-fixture-cookie-key-0'],
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
    acr: null,
    auth_time: null,
    sid: null,
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // Put the claims of the granted scopes in the ID token itself, not only behind userinfo.
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  clientAuthMethods: ['client_secret_basic'],
  enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
  // S256 is the only method oidc-provider knows; this makes it mandatory for every client.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: false },
    userinfo: { enabled: true },
  },
  interactions: {
    policy,
    url: (_ctx, interaction) => `${issuerPath}/interaction/${interaction.uid}`,
  },
  findAccount,
  clientBasedCORS: () => false,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 3600,
    Grant: 3600,
  },
  async renderError(ctx, out, err) {
    ctx.type = 'html';
    ctx.body = page(
      'Fixture ID — error',
      `<h1>Fixture ID</h1><p role="alert">${escape(out.error)}${
        out.error_description ? `: ${escape(out.error_description)}` : ''
      }</p>`,
    );
    if (!(err instanceof errors.OIDCProviderError)) console.error(`oidc fixture: ${err.stack ?? err}`);
  },
});
provider.proxy = true;
handle = provider.callback();

// Client and request errors are expected in tests but worth a line in the log.
for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'discovery.error', 'jwks.error', 'introspection.error', 'revocation.error']) {
  provider.on(event, (ctx, err) => {
    const detail = err.error_detail ?? err.error_description ?? '';
    console.error(`oidc fixture: ${event}: ${err.error ?? err.message}${detail ? ` (${detail})` : ''}`);
  });
}
provider.on('server_error', (ctx, err) => console.error(`oidc fixture: server_error: ${err.stack ?? err}`));

process.stdout.write(`oidc-provider listening on ${listening}\n`);

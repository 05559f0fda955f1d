// An OAuth 2.0 authorization server that homehook does not control: panva's `oidc-provider`
// (npm, OpenID Certified), pinned in package.json beside this file and installed by `install`.
// The conformance test (functions/cli/tests/oauth_conformance.rs) connects homehook to it and
// counts what homehook asks of its token endpoint.
//
//   node server.mjs --modules DIR --redirect-uri URI --client-id ID --client-secret SECRET \
//        --password PASSWORD [--access-token-ttl SECS] [--client-auth basic|form]
//
// DIR holds the node_modules the package was installed into. The server listens on 127.0.0.1
// on a free port, prints its base URL (the issuer) as its first line, and exits when its
// standard input closes (printing its counters as one JSON line first), so a test that dies
// takes it along.
//
// What the server is configured to demand, each as the package documents it:
// - PKCE on every authorization request (`pkce.required`), S256 (the package's only default
//   method);
// - refresh-token rotation on every refresh (`rotateRefreshToken: true`): a refresh token works
//   once, and presenting a used one is refused with `invalid_grant` and revokes the whole grant
//   (the package's reuse detection), so a renewal that two callers raced would break the
//   connection for good;
// - access tokens of `--access-token-ttl` seconds (`ttl.AccessToken`), refresh tokens of 14 days;
// - refresh tokens only for grants that include `offline_access` (the package's default
//   `issueRefreshToken`), and, as OpenID Connect Core §11 says, the package drops
//   `offline_access` from an authorization request whose `prompt` lacks `consent` (a missing
//   `prompt` too): the client must send `prompt=consent` to get a refresh token;
// - a real sign-in and consent: the interaction pages below, written against the package's
//   interaction API (`interactionDetails`, `interactionFinished`, `Grant`), with one account
//   (`owner` and `--password`); a wrong password is refused.
//
// Besides the authorization server's own routes it serves:
// - `GET /api/ping`: a protected resource. It looks the bearer token up with the package's
//   `AccessToken.find` and answers 200 JSON while the token is valid, 401 `invalid_token`
//   (RFC 6750, with `WWW-Authenticate`) when it expired or is unknown.
// - `GET /_counts`: the counters, as JSON (below).

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (!name.startsWith('--') || value === undefined) {
      throw new Error(`usage: server.mjs --name value ...; got ${argv.join(' ')}`);
    }
    args[name.slice(2)] = value;
  }
  for (const required of ['modules', 'redirect-uri', 'client-id', 'client-secret', 'password']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const accessTokenTtl = Number(args['access-token-ttl'] ?? 10);
if (!Number.isInteger(accessTokenTtl) || accessTokenTtl < 1) {
  throw new Error('--access-token-ttl: whole seconds, at least 1');
}
const clientAuth = args['client-auth'] ?? 'basic';
if (!['basic', 'form'].includes(clientAuth)) throw new Error('--client-auth: basic or form');

// The package lives under target/tools, not beside this script: resolve it from there.
const require = createRequire(join(args.modules, 'package.json'));
const oidc = await import(pathToFileURL(require.resolve('oidc-provider')).href);
const { Provider } = oidc;

const ACCOUNT = 'owner';
const DAY = 24 * 3600;

// What the test reads: token-endpoint calls by grant type, errors by code, refresh-token
// reuse, resource calls by outcome, when each refresh grant succeeded (Unix ms), and each
// access token issued (`gty` ends with the grant that issued it; `iat`/`exp` in Unix seconds,
// whole seconds as the package counts them).
const counts = {
  access_token_ttl: accessTokenTtl,
  token_calls: {},
  token_errors: {},
  refresh_token_reused: 0,
  grants_revoked: 0,
  refresh_grants_at_ms: [],
  access_tokens: [],
  pings: { ok: 0, expired: 0, unknown: 0, missing: 0 },
  logins_refused: 0,
};
const bump = (map, key) => {
  map[key] = (map[key] ?? 0) + 1;
};

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: [args['redirect-uri']],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: clientAuth === 'basic' ? 'client_secret_basic' : 'client_secret_post',
    },
  ],
  scopes: ['openid', 'offline_access', 'ping'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * DAY,
    Grant: 14 * DAY,
    Session: DAY,
    Interaction: 600,
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});

// Counts every token-endpoint call by its grant type, and each refused one by its error code.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route !== 'token') return;
  const grantType = ctx.oidc.params?.grant_type ?? '(none)';
  bump(counts.token_calls, grantType);
  if (ctx.status >= 400) {
    bump(counts.token_errors, ctx.body?.error ?? String(ctx.status));
  } else if (grantType === 'refresh_token') {
    counts.refresh_grants_at_ms.push(Date.now());
  }
});
provider.on('grant.error', (_ctx, error) => {
  if (error?.error === 'invalid_grant' && /already used/.test(error.error_description ?? '')) {
    counts.refresh_token_reused += 1;
  }
});
// The token's `iat` and `exp` live in what was stored (the opaque format computes them there).
provider.on('access_token.saved', (token) => {
  const entry = { gty: token.gty, iat: 0, exp: 0 };
  counts.access_tokens.push(entry);
  provider.AccessToken.adapter.find(token.jti).then((stored) => {
    entry.iat = stored.iat;
    entry.exp = stored.exp;
  });
});
provider.on('grant.revoked', () => {
  counts.grants_revoked += 1;
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, body) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(`<!doctype html><html><head><title>${escape(title)}</title></head><body>
<h1>${escape(title)}</h1>
${body}
</body></html>`);
}

function json(res, status, value, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(value));
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginForm(uid, params, error) {
  return `${error ? `<p role="alert">${escape(error)}</p>` : ''}
<p>Sign in to let <b>${escape(params.client_id)}</b> act for you.</p>
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Login <input name="login" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>`;
}

function consentForm(uid, params, details) {
  const scopes = details.missingOIDCScope ?? [];
  return `<p><b>${escape(params.client_id)}</b> asks for:</p>
<ul>${scopes.map((s) => `<li>${escape(s)}</li>`).join('')}</ul>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort">
  <button type="submit">Deny</button>
</form>`;
}

// The sign-in and consent pages the authorization endpoint sends the browser to.
async function interaction(req, res, uid, step) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, 'Wrong interaction', '<p>Start again.</p>');
  const { prompt, params } = details;
  if (req.method === 'GET' && !step) {
    if (prompt.name === 'login') return page(res, 200, 'Sign in', loginForm(uid, params));
    if (prompt.name === 'consent') return page(res, 200, 'Allow access', consentForm(uid, params, prompt.details));
    return page(res, 501, 'Not implemented', `<p>${escape(prompt.name)}</p>`);
  }
  if (req.method !== 'POST') return page(res, 405, 'Method not allowed', '');
  if (step === 'login' && prompt.name === 'login') {
    const form = await formBody(req);
    if (form.get('login') !== ACCOUNT || form.get('password') !== args.password) {
      counts.logins_refused += 1;
      return page(res, 401, 'Sign in', loginForm(uid, params, 'Wrong login or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: ACCOUNT } }, { mergeWithLastSubmission: false });
  }
  if (step === 'confirm' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (step === 'abort') {
    return provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'The owner denied access' },
      { mergeWithLastSubmission: false },
    );
  }
  return page(res, 400, 'Unexpected step', `<p>${escape(step)} during ${escape(prompt.name)}</p>`);
}

// The protected resource: a valid access token with the `ping` scope gets 200.
async function ping(req, res) {
  const match = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '');
  if (!match) {
    counts.pings.missing += 1;
    return json(res, 401, { error: 'invalid_request' }, { 'www-authenticate': 'Bearer realm="ping"' });
  }
  const token = await provider.AccessToken.find(match[1], { ignoreExpiration: true });
  if (!token || token.isExpired) {
    const expired = Boolean(token);
    counts.pings[expired ? 'expired' : 'unknown'] += 1;
    const description = expired ? 'the access token expired' : 'unknown access token';
    return json(res, 401, { error: 'invalid_token', error_description: description }, {
      'www-authenticate': `Bearer realm="ping", error="invalid_token", error_description="${description}"`,
    });
  }
  if (!token.scopes.has('ping')) {
    return json(res, 403, { error: 'insufficient_scope' }, {
      'www-authenticate': 'Bearer realm="ping", error="insufficient_scope", scope="ping"',
    });
  }
  counts.pings.ok += 1;
  return json(res, 200, { pong: true, sub: token.accountId, expires_in: token.exp - Math.floor(Date.now() / 1000) });
}

const providerCallback = provider.callback();
server.on('request', (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const step = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(pathname);
  let handled;
  if (step) {
    handled = interaction(req, res, step[1], step[2]);
  } else if (pathname === '/api/ping' && req.method === 'GET') {
    handled = ping(req, res);
  } else if (pathname === '/_counts' && req.method === 'GET') {
    handled = Promise.resolve(json(res, 200, counts));
  } else {
    providerCallback(req, res);
    return;
  }
  handled.catch((error) => {
    console.error(error);
    if (!res.headersSent) page(res, 500, 'Server error', `<p>${escape(error.message)}</p>`);
  });
});

console.log(issuer);

// Stop with the test: standard input closing (the test ended or died) ends the server.
process.stdin.on('end', () => {
  console.log(JSON.stringify(counts));
  server.close();
  process.exit(0);
});
process.stdin.resume();

// An upstream OpenID Provider for idp's federation tests: oidc-provider (OpenID Certified),
// served on plain http on loopback, with its own small sign-in and consent pages.
//
// Usage: node upstream_op.mjs [CONFIG_JSON]   (without the argument, the JSON is read on stdin)
//
// Once listening it prints exactly one line on stdout, `READY <issuer>`; SIGTERM or SIGINT
// close it and exit 0. Everything else it has to say goes to stderr.
//
// Configuration (every key optional):
//   port       TCP port on 127.0.0.1; 0 (the default) lets the system choose, race-free.
//              The issuer is http://127.0.0.1:PORT.
//   password   the password every account signs in with (default "upstream-password");
//              an account may have its own `password`.
//   accounts   {login: claims}: sub (default: the login), email, email_verified, name, groups,
//              any other claim, plus `acr` and `amr` which the sign-in asserts in the ID token.
//   clients    [{client_id, client_secret, redirect_uris, ...any client metadata}]; defaults:
//              token_endpoint_auth_method client_secret_basic, id_token_signed_response_alg
//              RS256, grant_types authorization_code + refresh_token, response_types code.
//   consent    true: show a consent page (Allow / Deny) before the first grant for a client;
//              false (default): grant what a client asks for, like a first-party provider.
//   pkce       "required" (default: every client must send an S256 code_challenge) or
//              "public" (oidc-provider's default: only public clients must).
//   acr_values acr values to advertise (default: the accounts' acr values).
//   features   merged over this file's oidc-provider `features` (per feature).
//   ttl        merged over oidc-provider's `ttl`.
//
// Test control endpoints, on the same origin (only for tests, never part of a real OP):
//   PUT /__test/clients/{client_id}   JSON client metadata: create or replace a client
//   PUT /__test/accounts/{login}      JSON claims (as in `accounts`): create or replace one
//   GET /__test/events                what happened, in order: authorization requests accepted
//                                     (their parameters), sign-ins, denials, tokens issued

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { promisify } from 'node:util';

const DEFAULT_PASSWORD = 'upstream-password';

// Claims the account's own record holds but which are not user claims.
const NOT_CLAIMS = new Set(['password', 'acr', 'amr']);

function readConfig() {
  if (process.argv[2] !== undefined) {
    return Promise.resolve(JSON.parse(process.argv[2]));
  }
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (chunk) => chunks.push(chunk));
    process.stdin.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      try {
        resolve(text ? JSON.parse(text) : {});
      } catch (error) {
        reject(error);
      }
    });
    process.stdin.on('error', reject);
  });
}

// A Map-backed adapter. oidc-provider's own in-memory adapter is an LRU of 1000 entries,
// which a session-long provider could outgrow, silently evicting clients and sessions.
const store = new Map();
const grantKeys = new Map();

function storeGet(key) {
  const entry = store.get(key);
  if (entry === undefined) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.value;
}

function storeSet(key, value, expiresIn) {
  const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
  store.set(key, { value, expiresAt });
}

class TestAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    storeSet(key, payload, expiresIn);
    if (this.model === 'Session') storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    if (payload.grantId) {
      if (!grantKeys.has(payload.grantId)) grantKeys.set(payload.grantId, new Set());
      grantKeys.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantKeys.get(grantId) ?? []) store.delete(key);
    grantKeys.delete(grantId);
  }
}

// Fresh signing keys per run, made on libuv's thread pool while oidc-provider loads.
async function signingKeys() {
  const generate = promisify(crypto.generateKeyPair);
  const [rsa, ec, ed] = await Promise.all([
    generate('rsa', { modulusLength: 2048 }),
    generate('ec', { namedCurve: 'P-256' }),
    generate('ed25519'),
  ]);
  return [
    { ...rsa.privateKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...ec.privateKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    { ...ed.privateKey.export({ format: 'jwk' }), kid: 'ed-1', alg: 'Ed25519', use: 'sig' },
  ];
}
const keysMade = signingKeys();
const { default: Provider } = await import('oidc-provider');

function clientMetadata(clientId, metadata) {
  return {
    token_endpoint_auth_method: metadata.client_secret ? 'client_secret_basic' : 'none',
    id_token_signed_response_alg: 'RS256',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    ...metadata,
    client_id: clientId,
  };
}

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body, status = 200) {
  return {
    status,
    html: `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<main>
${body}
</main>
</body>
</html>
`,
  };
}

function loginPage(issuer, uid, params, { login = '', error = null } = {}) {
  const alert = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : '';
  return page('Upstream sign-in', `<h1>Sign in at ${escapeHtml(issuer)}</h1>
<p>for client <code>${escapeHtml(params.client_id)}</code></p>
${alert}<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label>Login <input type="text" name="login" value="${escapeHtml(login || params.login_hint || '')}"></label>
<label>Password <input type="password" name="password"></label>
<button type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="deny">Cancel</button>
</form>`);
}

function consentPage(issuer, uid, params, details) {
  const scopes = (details.missingOIDCScope ?? []).map((s) => `<li>${escapeHtml(s)}</li>`).join('');
  const claims = (details.missingOIDCClaims ?? []).map((c) => `<li>${escapeHtml(c)}</li>`).join('');
  return page('Upstream consent', `<h1>Authorize ${escapeHtml(params.client_id)}</h1>
<p>at ${escapeHtml(issuer)}</p>
<ul class="scopes">${scopes}</ul>
<ul class="claims">${claims}</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/consent">
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>`);
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function sendJson(res, status, value) {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function plain(object) {
  return Object.fromEntries(
    Object.entries(object ?? {}).filter(([, value]) => value !== undefined),
  );
}

const config = await readConfig();
const accounts = new Map(Object.entries(config.accounts ?? {}));
const events = [];
const askConsent = config.consent === true;
const sharedPassword = config.password ?? DEFAULT_PASSWORD;
const subjectOf = (login) => accounts.get(login)?.sub ?? login;

// Listen first (possibly on port 0), then build the provider for the issuer that port makes.
let handle = async (_req, res) => send(res, 503, 'text/plain', 'starting');
const server = http.createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error('upstream_op: unhandled', error);
    if (!res.headersSent) send(res, 500, 'text/plain', String(error));
    else res.end();
  });
});
server.keepAliveTimeout = 1000;
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const acrValues = new Set(config.acr_values ?? []);
if (config.acr_values === undefined) {
  for (const account of accounts.values()) if (account.acr) acrValues.add(account.acr);
}

const features = {
  devInteractions: { enabled: false }, // no password check and no amr/acr: our pages below
  claimsParameter: { enabled: true },
  introspection: { enabled: true },
  revocation: { enabled: true },
  rpInitiatedLogout: { enabled: true },
  userinfo: { enabled: true },
};
for (const [name, value] of Object.entries(config.features ?? {})) {
  features[name] = { ...(features[name] ?? {}), ...value };
}

const provider = new Provider(issuer, {
  adapter: TestAdapter,
  clients: [],
  jwks: { keys: await keysMade },
  cookies: {
    keys: [crypto.randomBytes(32).toString('base64url')],
    // Cookies ignore ports: two upstreams on 127.0.0.1 (and idp) share one cookie jar.
    names: {
      session: `_session_${port}`,
      interaction: `_interaction_${port}`,
      resume: `_interaction_resume_${port}`,
    },
  },
  acrValues: [...acrValues],
  claims: {
    openid: ['sub', 'acr', 'amr'],
    email: ['email', 'email_verified'],
    profile: [
      'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username',
      'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
    ],
    groups: ['groups'],
    sid: null,
    auth_time: null,
    iss: null,
  },
  conformIdTokenClaims: false, // scope-requested claims (email, …) go into the ID token too
  features,
  pkce: {
    required: config.pkce === 'public'
      ? (_ctx, client) => client.clientAuthMethod === 'none'
      : () => true,
  },
  ttl: { ...(config.ttl ?? {}) },
  // The accountId is the subject: oidc-provider puts it in the tokens' `sub`.
  async findAccount(_ctx, sub) {
    const login = [...accounts.keys()].find((key) => subjectOf(key) === sub);
    if (login === undefined) return undefined;
    const account = accounts.get(login);
    return {
      accountId: sub,
      async claims() {
        const claims = Object.fromEntries(
          Object.entries(account).filter(([key]) => !NOT_CLAIMS.has(key)),
        );
        return { ...claims, sub };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (askConsent || !oidc.session.accountId) return grant;
    grant ??= new oidc.provider.Grant({
      clientId: oidc.client.clientId,
      accountId: oidc.session.accountId,
    });
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    if (oidc.requestParamClaims.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
    await grant.save();
    return grant;
  },
  async renderError(ctx, out, error) {
    console.error('upstream_op: error page', out, error?.message);
    ctx.type = 'html';
    ctx.body = page('Upstream error', `<h1>Error</h1>
${Object.entries(out).map(([k, v]) => `<p class="${escapeHtml(k)}">${escapeHtml(v)}</p>`).join('\n')}`).html;
  },
});

provider.on('authorization.accepted', (ctx) => {
  events.push({ type: 'authorization', params: plain(ctx.oidc.params) });
});
provider.on('grant.success', (ctx) => {
  events.push({
    type: 'token',
    grant_type: ctx.oidc.params.grant_type,
    client_id: ctx.oidc.client?.clientId,
    client_auth_method: ctx.oidc.client?.clientAuthMethod,
  });
});
for (const name of ['authorization.error', 'grant.error', 'server_error', 'userinfo.error']) {
  provider.on(name, (_ctx, error) => {
    console.error(`upstream_op: ${name}: ${error?.name} ${error?.message} ${error?.error_detail ?? ''}`);
    events.push({ type: name, error: error?.error ?? error?.name, detail: error?.error_detail });
  });
}

async function putClient(clientId, metadata) {
  const full = clientMetadata(clientId, metadata);
  await provider.Client.validate(full);
  await provider.Client.adapter.upsert(clientId, full);
  return full;
}

for (const { client_id: clientId, ...metadata } of config.clients ?? []) {
  await putClient(clientId, metadata);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, 'text/plain', 'interaction mismatch');
    return;
  }
  const { prompt, params } = details;
  if (req.method === 'GET' && action === undefined) {
    const shown = prompt.name === 'login'
      ? loginPage(issuer, uid, params)
      : consentPage(issuer, uid, params, prompt.details);
    send(res, shown.status, 'text/html; charset=utf-8', shown.html);
    return;
  }
  if (req.method !== 'POST' || !['login', 'consent'].includes(action)) {
    send(res, 404, 'text/plain', 'not found');
    return;
  }
  const form = new URLSearchParams(await readBody(req));
  if (form.get('action') === 'deny') {
    events.push({ type: 'denied', prompt: prompt.name, client_id: params.client_id });
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (action !== prompt.name) {
    send(res, 400, 'text/plain', `expected the ${prompt.name} step`);
    return;
  }
  if (action === 'login') {
    const login = form.get('login') ?? '';
    const account = accounts.get(login);
    const expected = Buffer.from(account?.password ?? sharedPassword);
    const given = Buffer.from(form.get('password') ?? '');
    const ok = account !== undefined && given.length === expected.length
      && crypto.timingSafeEqual(given, expected);
    if (!ok) {
      events.push({ type: 'login_failed', login });
      const shown = loginPage(issuer, uid, params, { login, error: 'Invalid login or password.' });
      send(res, shown.status, 'text/html; charset=utf-8', shown.html);
      return;
    }
    events.push({ type: 'login', login, client_id: params.client_id });
    await provider.interactionFinished(req, res, {
      login: plain({ accountId: subjectOf(login), acr: account.acr, amr: account.amr }),
    }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  events.push({ type: 'consent', client_id: params.client_id });
  await provider.interactionFinished(req, res, {
    consent: { grantId: await grant.save() },
  }, { mergeWithLastSubmission: true });
}

async function control(req, res, path) {
  const [, kind, id] = path.split('/').map(decodeURIComponent).slice(1);
  if (req.method === 'GET' && kind === 'events' && id === undefined) {
    sendJson(res, 200, events);
    return;
  }
  if (req.method === 'PUT' && id && (kind === 'clients' || kind === 'accounts')) {
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      sendJson(res, 400, { error: 'invalid JSON' });
      return;
    }
    if (kind === 'accounts') {
      accounts.set(id, body);
      sendJson(res, 200, { login: id, ...body });
      return;
    }
    try {
      sendJson(res, 200, await putClient(id, body));
    } catch (error) {
      sendJson(res, 400, { error: error.error ?? error.name, error_description: error.message });
    }
    return;
  }
  sendJson(res, 404, { error: 'not found' });
}

const providerHandler = provider.callback();
handle = async (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const match = /^\/interaction\/([^/]+)(?:\/([a-z]+))?$/.exec(pathname);
  if (match) {
    try {
      await interaction(req, res, match[1], match[2]);
    } catch (error) {
      console.error('upstream_op: interaction', error?.name, error?.message);
      if (!res.headersSent) {
        const shown = page('Upstream error', `<h1>Error</h1>
<p class="error">${escapeHtml(error?.name)}: ${escapeHtml(error?.message)}</p>`, 400);
        send(res, shown.status, 'text/html; charset=utf-8', shown.html);
      }
    }
    return;
  }
  if (pathname.startsWith('/__test/')) {
    await control(req, res, pathname);
    return;
  }
  providerHandler(req, res);
};

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

process.stdout.write(`READY ${issuer}\n`);

// A relying party built on openid-client v6 (a certified OpenID Connect RP library),
// driven one step at a time by idp's interoperability tests (tests/interop/).
//
// Usage: node openid_client_rp.mjs STEP < input.json > output.json
//
// The process keeps no state between steps: everything an RP would keep in its own
// session (code_verifier, state, nonce, tokens) goes back to the caller, which passes
// it in again. Every step re-runs discovery, as a fresh RP process would.
//
// Input (JSON on stdin), common to every step:
//   issuer         the idp tenant's issuer URL (plain http on loopback in tests)
//   client_id
//   client_secret  present: client_secret_basic; absent: a public client (auth "none")
//   discovery      "oidc" (default: {issuer}/.well-known/openid-configuration) or "oauth2"
//                  (RFC 8414 §3: /.well-known/oauth-authorization-server inserted before the path)
// Output: one JSON object on stdout. On failure the exit status is 1 and the object is
// {"error": {...}} with the library's error name, code and any OAuth error fields,
// so a test can assert on exactly what the library refused.

import * as client from 'openid-client';

const steps = {
  /** Discovery, then an authorization URL with PKCE S256, state and nonce. */
  async 'discover+authorize-url'(config, input) {
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: input.redirect_uri,
      scope: input.scope ?? 'openid email profile offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(input.params ?? {}),
    });
    return {
      authorization_url: url.href,
      code_verifier: codeVerifier,
      state,
      nonce,
      server_metadata: config.serverMetadata(),
    };
  },

  /** The authorization response: iss/state checks, code exchange, ID token validation. */
  async callback(config, input) {
    const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
      pkceCodeVerifier: input.code_verifier,
      expectedState: input.state,
      expectedNonce: input.nonce,
      idTokenExpected: true,
    });
    return describeTokens(tokens);
  },

  /** RFC 6749 §6, validating any ID token that comes back. */
  async refresh(config, input) {
    return describeTokens(await client.refreshTokenGrant(config, input.refresh_token));
  },

  /** OIDC Core §5.3, with the §5.3.2 check that sub matches the ID token's. */
  async userinfo(config, input) {
    return { userinfo: await client.fetchUserInfo(config, input.access_token, input.sub) };
  },

  /** RP-Initiated Logout 1.0 §2: the URL the RP sends the browser to. */
  async 'logout-url'(config, input) {
    const parameters = {
      id_token_hint: input.id_token,
      post_logout_redirect_uri: input.post_logout_redirect_uri,
    };
    if (input.state) parameters.state = input.state;
    return { logout_url: client.buildEndSessionUrl(config, parameters).href };
  },
};

function describeTokens(tokens) {
  return {
    tokens: { ...tokens },
    claims: tokens.claims() ?? null,
    expires_in: tokens.expiresIn() ?? null,
  };
}

async function discover(input) {
  const auth = input.client_secret ? client.ClientSecretBasic() : client.None();
  const metadata = input.client_secret
    ? { client_secret: input.client_secret }
    : { token_endpoint_auth_method: 'none' };
  // The tests' issuer is http://127.0.0.1:PORT; v6 refuses plain http unless told.
  return client.discovery(new URL(input.issuer), input.client_id, metadata, auth, {
    algorithm: input.discovery ?? 'oidc',
    execute: [client.allowInsecureRequests],
  });
}

function describeError(err) {
  const out = { name: err?.name, message: err?.message, code: err?.code };
  for (const field of ['error', 'error_description', 'status']) {
    if (err?.[field] !== undefined) out[field] = err[field];
  }
  if (err?.cause !== undefined) {
    out.cause = err.cause instanceof Error ? describeError(err.cause) : safeJson(err.cause);
  }
  return out;
}

function safeJson(value) {
  try {
    return JSON.parse(JSON.stringify(value));
  } catch {
    return String(value);
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

async function main() {
  const step = steps[process.argv[2]];
  if (!step) {
    throw new Error(`unknown step ${process.argv[2]}; known: ${Object.keys(steps).join(', ')}`);
  }
  const input = await readStdin();
  return step(await discover(input), input);
}

try {
  process.stdout.write(JSON.stringify(await main()) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ error: describeError(err) }) + '\n');
  process.exitCode = 1;
}

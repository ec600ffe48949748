// node oidc-provider for `make bench`: its default configuration plus what the load needs.
//
// Usage: node oidc_provider_server.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// What differs from the defaults, and why:
// - one confidential client (client_secret_basic) with the code, refresh and
//   client-credentials grants: the clients the load needs;
// - features.clientCredentials and features.introspection enabled: two measured endpoints;
// - findAccount returns one fixed account, and the email scope maps to its email claims
//   (the default maps no scope to any claim; idp's userinfo answers email for that scope);
// - the interaction (login, then consent) is finished at once through the interaction API
//   (interactionDetails / interactionFinished) instead of devInteractions' HTML forms:
//   the benchmark mints codes before the timed loop, a person never signs in here;
// - the default MemoryAdapter over a larger LRU: the default one holds 1,000 entries, fewer
//   than the codes the benchmark pre-mints, so earlier codes (and the grant) would be evicted.
// Everything else (opaque access tokens, in-memory storage, dev signing keys, no refresh
// token rotation for confidential clients) is oidc-provider's default, and the results say so.

// ESM resolves bare names from this file's folder, and the package lives under tests/peers.
import Provider from '../tests/peers/node_modules/oidc-provider/lib/index.js';
import MemoryAdapter from '../tests/peers/node_modules/oidc-provider/lib/adapters/memory_adapter.js';
import LRU from '../tests/peers/node_modules/oidc-provider/lib/helpers/lru.js';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const ACCOUNT = 'bench-user';
const SCOPES = 'openid email profile offline_access';

const store = new LRU({ maxSize: 5_000_000 });

const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: 'bench@example.com', email_verified: true };
      },
    };
  },
});
provider.proxy = false;

// The interaction API: sign the fixed account in, then grant every scope asked for.
async function finishInteraction(ctx) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (details.prompt.name === 'login') {
    result = { login: { accountId: ACCOUNT } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: ACCOUNT, clientId: details.params.client_id });
    grant.addOIDCScope(SCOPES);
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: true,
  });
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
    ctx.respond = false;
    await finishInteraction(ctx);
    return;
  }
  await next();
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});

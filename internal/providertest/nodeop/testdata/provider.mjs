// A node-oidc-provider (npm oidc-provider) OpenID Provider for authgate's
// tests, with automatic login and consent for the one user, "alice".
//
// Usage: node provider.mjs CONFIG.json   (NODE_PATH is not used: the Go
// helper runs it with the cached node_modules next to a copy of it).
// It prints "listening <port>" once it serves.
//
// Beside the provider's own routes it serves a small test API under
// /__test/ (never part of a real deployment):
//   POST /__test/clients  body: a client's metadata  -> registers it
//   POST /__test/rotate   body: {"alg": "ES256"}     -> a new signing key,
//                                                      listed first (so used
//                                                      first), old keys kept
//   GET  /__test/keys                              -> the kids, newest first
// Both rebuild the Provider with the same in-memory storage and cookie keys, so sessions, grants and
// tokens survive, as they do at a real provider that rotates keys.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';
// The library's in-memory adapter; built without a store of its own it
// keeps everything in one module-global store, which every rebuilt
// Provider below then shares.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const clients = [...(cfg.clients ?? [])];
// pkceClients and jwtClients are per-client switches the Provider's
// configuration functions read.
const pkceClients = new Set(cfg.pkceClients ?? []);
const jwtClients = new Set(cfg.jwtClients ?? []);
const keys = [];

function newKey(alg) {
  let pair;
  switch (alg) {
    case 'ES256': pair = generateKeyPairSync('ec', { namedCurve: 'P-256' }); break;
    case 'EdDSA': pair = generateKeyPairSync('ed25519'); break;
    case 'RS256': case 'PS256': pair = generateKeyPairSync('rsa', { modulusLength: 2048 }); break;
    default: throw new Error(`unsupported alg ${alg}`);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  jwk.use = 'sig';
  jwk.alg = alg;
  jwk.kid = `${alg}-${randomUUID().slice(0, 8)}`;
  return jwk;
}
for (const alg of cfg.keyAlgs ?? ['RS256', 'ES256', 'PS256', 'EdDSA']) keys.push(newKey(alg));

const accounts = {
  alice: {
    sub: 'alice', email: 'alice@example.com', email_verified: true,
    name: 'Alice Example', preferred_username: 'alice', groups: ['admins', 'staff'],
  },
};

function build() {
  const provider = new Provider(cfg.issuer, {
    clients,
    adapter: (model) => new MemoryAdapter(model, undefined, 0),
    jwks: { keys },
    cookies: { keys: ['authgate-test-cookie-key'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: async (ctx, accountId, client) => createHash('sha256')
      .update(`${client.sectorIdentifier}|${accountId}|authgate-test-salt`).digest('base64url'),
    clientAuthMethods: cfg.clientAuthMethods ?? ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    findAccount: async (ctx, id) => (accounts[id] ? {
      accountId: id,
      claims: async () => accounts[id],
    } : undefined),
    pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' || pkceClients.has(client.clientId) },
    // Rotating refresh tokens: every refresh spends the token it redeems,
    // and a spent one redeemed again revokes the whole grant.
    rotateRefreshToken: true,
    ttl: {
      AccessToken: cfg.accessTokenTTL ?? 600,
      IdToken: 3600,
      RefreshToken: 86400,
      Session: 86400,
      Grant: 86400,
      Interaction: 600,
      AuthorizationCode: 60,
    },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Clients in jwtClients get JWT access tokens for cfg.resource; the
        // others get opaque ones for userinfo (no resource).
        defaultResource: async (ctx, client) => (jwtClients.has(client.clientId) ? cfg.resource : undefined),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resource, client) => ({
          scope: 'api',
          audience: resource,
          accessTokenTTL: cfg.accessTokenTTL ?? 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: client.idTokenSignedResponseAlg ?? 'RS256' } },
        }),
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // The SSRF guard refuses loopback targets ("special-use IP address");
    // the tests' relying parties all live on loopback.
    fetch: (url, options) => { delete options.dispatcher; return fetch(url, options); },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA', 'HS256'],
    },
  });
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_detail ?? ''));
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('backchannel.error', (ctx, err, client) => console.error('backchannel.error', client.clientId, err.message));
  provider.on('backchannel.success', (ctx, client) => console.log('backchannel.success', client.clientId));
  return provider;
}

let provider = build();

// interact accepts every login as alice and every consent in full.
async function interact(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: 'alice', remember: true } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

function readJSON(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { try { resolve(body ? JSON.parse(body) : {}); } catch (e) { reject(e); } });
  });
}

function reply(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, cfg.issuer).pathname;
    if (path.startsWith('/interaction/')) {
      await interact(req, res);
      return;
    }
    if (req.method === 'POST' && path === '/__test/clients') {
      const c = await readJSON(req);
      if (c.require_pkce) pkceClients.add(c.client_id);
      if (c.jwt_access_token) jwtClients.add(c.client_id);
      delete c.require_pkce;
      delete c.jwt_access_token;
      clients.push(c);
      provider = build();
      reply(res, 201, {});
      return;
    }
    if (req.method === 'POST' && path === '/__test/rotate') {
      const { alg } = await readJSON(req);
      const key = newKey(alg);
      keys.unshift(key);
      provider = build();
      reply(res, 200, { kid: key.kid });
      return;
    }
    if (req.method === 'GET' && path === '/__test/keys') {
      reply(res, 200, keys.map((k) => k.kid));
      return;
    }
    provider.callback()(req, res);
  } catch (err) {
    console.error('test server error', err);
    if (!res.headersSent) reply(res, 500, { error: String(err) });
  }
});

server.listen(cfg.port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

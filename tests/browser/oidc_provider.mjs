// A real OpenID provider (the npm package oidc-provider, OpenID-certified) on loopback, for the browser
// tests: one confidential client (authorization code, PKCE S256 required) and a few accounts with a
// `groups` claim in the ID token. Its login form is oidc-provider's development one (login name and any
// password), except that an unknown login name is refused.
//
// Usage: node oidc_provider.mjs CONFIG.json
//   {
//     "host": "127.0.0.1",                       (optional, default 127.0.0.1)
//     "port": 0,                                 (optional, default 0: any free port)
//     "issuer": "http://127.0.0.1:PORT",         (optional, default http://HOST:PORT once listening)
//     "client": {"client_id": "...", "client_secret": "...", "redirect_uris": ["..."],
//                "token_endpoint_auth_method": "client_secret_basic"},   (or client_secret_post)
//     "accounts": {"LOGIN": {"sub": "...", "name": "...", "email": "...", "groups": ["..."]}}
//   }
// Prints `READY <issuer>` on stdout once it listens; exits when stdin closes or on SIGTERM/SIGINT.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const MAX_FORM_BYTES = 16 * 1024;

function fail(message) {
  process.stderr.write(`oidc_provider: ${message}\n`);
  process.exit(2);
}

function readConfig(path) {
  if (!path) fail('usage: node oidc_provider.mjs CONFIG.json');
  const config = JSON.parse(readFileSync(path, 'utf8'));
  const { client, accounts } = config;
  if (!client?.client_id || !client?.client_secret || !Array.isArray(client?.redirect_uris)) {
    fail('the config needs client.client_id, client.client_secret and client.redirect_uris');
  }
  if (!accounts || typeof accounts !== 'object' || Object.keys(accounts).length === 0) {
    fail('the config needs at least one account');
  }
  return config;
}

// login name -> account, and sub -> account (the provider knows accounts by sub only)
function accountTables(accounts) {
  const byLogin = new Map();
  const bySub = new Map();
  for (const [login, account] of Object.entries(accounts)) {
    if (!account.sub) fail('every account needs a sub');
    const entry = {
      sub: String(account.sub),
      name: account.name,
      email: account.email,
      groups: Array.isArray(account.groups) ? account.groups.map(String) : [],
    };
    byLogin.set(login, entry);
    bySub.set(entry.sub, entry);
  }
  return { byLogin, bySub };
}

function signingKey() {
  // a fresh key per run: the tests read it from the provider's JWKS, as a relying party does
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw Object.assign(new Error('form too large'), { status: 413, expose: true });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function unknownLoginPage(uid) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign-in failed</title></head>
<body>
<main>
<h1>Sign-in failed</h1>
<p role="alert" id="sign-in-error">Unknown login name.</p>
<p><a href="/interaction/${encodeURIComponent(uid)}">Try again</a></p>
</main>
</body>
</html>
`;
}

function buildProvider(issuer, config, tables) {
  const { client } = config;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.client_id,
        client_secret: client.client_secret,
        redirect_uris: client.redirect_uris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
      },
    ],
    // PKCE with S256 on every authorization request, confidential client or not
    pkce: { methods: ['S256'], required: () => true },
    scopes: ['openid', 'profile', 'email', 'groups'],
    claims: { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups'] },
    // the scopes' claims go into the ID token too (a relying party that reads groups from it needs them)
    conformIdTokenClaims: false,
    findAccount(ctx, sub) {
      const account = tables.bySub.get(sub);
      if (!account) return undefined;
      return {
        accountId: account.sub,
        async claims() {
          return {
            sub: account.sub, name: account.name, email: account.email, groups: account.groups,
          };
        },
      };
    },
    jwks: { keys: [signingKey()] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      // plain http on loopback: Chromium drops SameSite=None cookies that are not Secure
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    features: { devInteractions: { enabled: true } },
  });

  // The development login accepts any login name; this one takes only the configured accounts.
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || !/^\/interaction\/[^/]+$/.test(ctx.path)) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name !== 'login') return next(); // consent: the development form handles it
    const form = await readForm(ctx.req);
    const account = tables.byLogin.get(form.get('login') ?? '');
    if (!account) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = unknownLoginPage(details.uid);
      return undefined;
    }
    return provider.interactionFinished(
      ctx.req,
      ctx.res,
      { login: { accountId: account.sub } },
      { mergeWithLastSubmission: false },
    );
  });
  return provider;
}

function main() {
  const config = readConfig(process.argv[2]);
  const tables = accountTables(config.accounts);
  const host = config.host ?? '127.0.0.1';
  const server = createServer();

  const stop = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();

  server.listen(config.port ?? 0, host, () => {
    const issuer = config.issuer ?? `http://${host}:${server.address().port}`;
    const provider = buildProvider(issuer, config, tables);
    server.on('request', provider.callback());
    process.stdout.write(`READY ${issuer}\n`);
  });
}

main();

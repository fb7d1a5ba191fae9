// A standards-based issuer for tests/api/standard_issuer.rs: panva's
// oidc-provider (a certified OpenID Provider) on 127.0.0.1, and beside it a
// tiny client service that obtains tokens from it and calls the API with
// them through oauth4webapi (a certified client), so the Rust test drives
// both over HTTP.
//
// Prints one JSON line on stdout once both listen:
//   {"issuer", "client", "audience", "client_id", "id_token", "versions"}
// then serves until killed or until stdin closes (the test's end).
//
// The provider: issuer `http://127.0.0.1:PORT` (no trailing slash: its
// tokens' `iss` is exactly this), a fresh RS256 key, a client_credentials
// client `machine` (client_secret_basic) with the scopes the API knows,
// resource indicators (RFC 8707) answering JWT access tokens (RFC 9068) for
// any https resource, and DPoP (RFC 9449). A `web` client signs a user in
// through the development interactions to get an ID token.
//
// The client service (POST, JSON in and out):
//   /token {scope, resource, dpop}   a client_credentials token response
//   /call  {url, access_token}       GET url with the token under DPoP and a
//                                    fresh proof by the client's key:
//                                    {status, body, proof, nonce_retries}
//   /discover {url, resource}        the API's RFC 9728 metadata at url, and
//                                    the authorization server it names:
//                                    {resource, issuer, token_endpoint}

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import * as oauth from 'oauth4webapi';
import Provider from 'oidc-provider';

const AUDIENCE = process.env.AUDIENCE ?? 'https://api.test.example';
const SCOPES = 'read:messages read:admin-messages';
const MACHINE = { client_id: 'machine', client_secret: randomUUID() };
const WEB = { client_id: 'web', client_secret: randomUUID(), redirect_uri: 'https://client.test.example/cb' };

function version(name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

// The provider's own HTTP server first: its issuer names its port.
const providerServer = createServer();
const port = await listen(providerServer);
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'oidc-test', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [
    {
      ...MACHINE,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      ...WEB,
      redirect_uri: undefined,
      redirect_uris: [WEB.redirect_uri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Any https resource is a resource server taking JWT access tokens
      // (the default format is opaque, which the API cannot check).
      async getResourceServerInfo(_ctx, resource) {
        if (!resource.startsWith('https://')) {
          throw new Provider.errors.InvalidTarget();
        }
        return { scope: SCOPES, audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: 600 };
      },
      // The code flow asks for no resource: its access token is opaque.
      defaultResource: () => undefined,
    },
  },
  async findAccount(_ctx, sub) {
    return { accountId: sub, claims: () => ({ sub }) };
  },
  cookies: { keys: [randomUUID()] },
  // Set, so that the provider prints no notices about their defaults.
  ttl: { AccessToken: 600, ClientCredentials: 600, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
  pkce: { required: () => false },
});
// Quiet: the test reads stdout; errors still go to stderr.
provider.on('server_error', (_ctx, error) => console.error('provider:', error));
providerServer.on('request', provider.callback());

// The client side: oauth4webapi against the provider, found by discovery.
const insecure = { [oauth.allowInsecureRequests]: true };
const as = await oauth
  .discoveryRequest(new URL(issuer), { ...insecure, algorithm: 'oidc' })
  .then((response) => oauth.processDiscoveryResponse(new URL(issuer), response));
const dpopKey = await oauth.generateKeyPair('ES256');

async function clientCredentials({ scope, resource, dpop }) {
  const client = { client_id: MACHINE.client_id };
  const DPoP = dpop ? oauth.DPoP(client, dpopKey) : undefined;
  const response = await oauth.clientCredentialsGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic(MACHINE.client_secret),
    { scope, resource },
    { ...insecure, DPoP },
  );
  return oauth.processClientCredentialsResponse(as, client, response);
}

// GET url with access_token under DPoP; the last proof sent is captured.
// A `use_dpop_nonce` challenge is met as oauth4webapi's documentation says:
// the handle keeps the nonce, the request is made once more.
async function callWithDpop({ url, access_token }) {
  const client = { client_id: MACHINE.client_id };
  const DPoP = oauth.DPoP(client, dpopKey);
  let proof;
  const options = {
    ...insecure,
    DPoP,
    [oauth.customFetch]: (input, init) => {
      proof = new Headers(init.headers).get('dpop');
      return fetch(input, init);
    },
  };
  const request = () => oauth.protectedResourceRequest(access_token, 'GET', new URL(url), new Headers(), null, options);
  let response;
  let nonce_retries = 0;
  try {
    response = await request().catch(async (error) => {
      if (!oauth.isDPoPNonceError(error)) throw error;
      nonce_retries += 1;
      return request();
    });
  } catch (error) {
    // Another challenge: the refusal itself is the answer.
    if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
    response = error.response;
  }
  return { status: response.status, body: await response.json(), proof, nonce_retries };
}

// A user signs in at the development login form and consents, as a browser
// would (cookies kept by name); the code is exchanged for an ID token.
async function idToken() {
  const cookies = new Map();
  async function go(url, init = {}) {
    const headers = new Headers(init.headers);
    headers.set('cookie', [...cookies].map(([name, value]) => `${name}=${value}`).join('; '));
    const response = await fetch(new URL(url, issuer), { ...init, headers, redirect: 'manual' });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair.indexOf('=');
      cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response.headers.get('location');
  }
  const nonce = oauth.generateRandomNonce();
  const authorize = new URL(as.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: WEB.client_id,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: WEB.redirect_uri,
    nonce,
  });
  let location = await go(authorize);
  for (const prompt of ['login', 'consent']) {
    const form = new URLSearchParams({ prompt, login: 'user-1', password: 'any' });
    location = await go(await go(location, { method: 'POST', body: form }));
  }
  const client = { client_id: WEB.client_id };
  const callback = oauth.validateAuthResponse(as, client, new URL(location), oauth.expectNoState);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic(WEB.client_secret),
    callback,
    WEB.redirect_uri,
    oauth.nopkce,
    insecure,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce });
  return tokens.id_token;
}

// What a client learns from the API's RFC 9728 metadata at `url`, checked
// by oauth4webapi against `resource`, and from the authorization server it
// names, found by discovery and checked against that name.
async function discover({ url, resource }) {
  const metadata = await oauth.processResourceDiscoveryResponse(new URL(resource), await fetch(url));
  const named = new URL(metadata.authorization_servers[0]);
  const server = await oauth
    .discoveryRequest(named, { ...insecure, algorithm: 'oidc' })
    .then((response) => oauth.processDiscoveryResponse(named, response));
  return { resource: metadata.resource, issuer: server.issuer, token_endpoint: server.token_endpoint };
}

const routes = { '/token': clientCredentials, '/call': callWithDpop, '/discover': discover };
const clientServer = createServer(async (request, response) => {
  const route = routes[request.url];
  if (request.method !== 'POST' || !route) {
    response.writeHead(404).end();
    return;
  }
  try {
    let body = '';
    for await (const chunk of request) body += chunk;
    const answer = await route(JSON.parse(body));
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  } catch (error) {
    console.error('client:', error);
    const detail = { error: String(error), cause: error.cause?.error ?? error.cause };
    response.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify(detail));
  }
});
const clientPort = await listen(clientServer);

console.log(
  JSON.stringify({
    issuer,
    client: `http://127.0.0.1:${clientPort}`,
    audience: AUDIENCE,
    client_id: MACHINE.client_id,
    id_token: await idToken(),
    versions: { 'oidc-provider': version('oidc-provider'), oauth4webapi: version('oauth4webapi') },
  }),
);

// The test's end closes stdin: stop then, whatever else happens.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

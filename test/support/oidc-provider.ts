import { generateKeyPairSync, randomBytes } from "node:crypto";
import http, { type RequestListener } from "node:http";
import type { Socket } from "node:net";
import Provider from "oidc-provider";

/**
 * A real OpenID Provider (npm `oidc-provider`, OpenID Certified) on a loopback port, for the `jwt` authenticator.
 *
 * A user normally gets a token in a browser (authorization code flow). Without a browser, each test user is a
 * client of its own (`app-<user>`) that asks the token endpoint with the client credentials grant (RFC 6749
 * §4.4) and a resource indicator (RFC 8707) whose resource server takes JWT access tokens (RFC 9068), signed
 * with the provider's key and published in its JWKS; `extraTokenClaims` adds `preferred_username: <user>`,
 * the claim a domain names in `userClaim`. Issuer, audience, expiry and signature are the provider's own.
 */

export interface OidcProvider {
  /** `http://127.0.0.1:<port>`: also the discovery base (`/.well-known/openid-configuration`). */
  issuer: string;
  jwksUri: string;
  /** The `kid` of the key the provider signs with now. */
  kid(): string;
  /** A JWT access token for `user` (one of `users`), for the audience given. */
  token(user: string): Promise<string>;
  /** The provider started again at the same address with a new key set (a new kid, the old key gone). */
  rotate(): void;
  /** The provider down: every connection is cut at once. */
  stop(): void;
  close(): Promise<void>;
}

export async function startOidcProvider(o: { audience: string; users: string[] }): Promise<OidcProvider> {
  const resource = "https://xmpp.example/";
  const secrets = new Map(o.users.map((u) => [u, randomBytes(16).toString("hex")]));
  let handler: RequestListener | undefined;
  let generation = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    if (handler) handler(req, res);
    else req.socket.destroy();
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  let kid = "";

  const start = () => {
    generation++;
    kid = `key-${generation}-${randomBytes(4).toString("hex")}`;
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const provider = new Provider(issuer, {
      jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" }] },
      clients: o.users.map((u) => ({
        client_id: `app-${u}`,
        client_secret: secrets.get(u),
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
      })),
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => resource,
          getResourceServerInfo: () => ({
            scope: "xmpp",
            audience: o.audience,
            accessTokenFormat: "jwt",
            accessTokenTTL: 300,
            jwt: { sign: { alg: "RS256" } },
          }),
        },
      },
      ttl: { ClientCredentials: 300 },
      extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => ({
        preferred_username: token.clientId?.replace(/^app-/, ""),
      }),
    });
    handler = provider.callback();
  };
  start();

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    kid: () => kid,
    async token(user) {
      const secret = secrets.get(user);
      if (!secret) throw new Error(`${user} is not a user of this provider`);
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`app-${user}:${secret}`).toString("base64")}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ grant_type: "client_credentials", resource, scope: "xmpp" }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json()) as { access_token?: string; error?: string };
      if (!res.ok || !body.access_token)
        throw new Error(`token endpoint: ${res.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    rotate: start,
    stop() {
      handler = undefined;
      for (const s of sockets) s.destroy();
    },
    close() {
      handler = undefined;
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

import { createPublicKey, createSecretKey, type KeyObject, X509Certificate } from "node:crypto";
import { createRemoteJWKSet, customFetch, type FetchImplementation, type JWTVerifyGetKey } from "jose";
import {
  createOutboundPolicy,
  OutboundError,
  type OutboundPolicy,
  outboundRequest,
} from "#common/http/outbound-address.ts";
import { OptionError, readOptionFile } from "#common/plugins/problems.ts";

/**
 * Where the keys of a `jwt` domain come from (jwt-authenticator.ts): a shared secret (HS*, RFC 7518 §3.2), a
 * public key in a PEM file, or an issuer's JSON Web Key Set (RFC 7517 §5) fetched through the outbound policy
 * (#common/http/outbound-address.ts), named directly or found through OpenID Connect Discovery 1.0 §4.
 */

export const HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"] as const;
export const PUBLIC_KEY_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;
export type Algorithm = (typeof HMAC_ALGORITHMS)[number] | (typeof PUBLIC_KEY_ALGORITHMS)[number];

export const isHmac = (alg: string): boolean => alg.startsWith("HS");

/** RFC 7518 §3.2: an HMAC key at least as long as the hash's output. */
const HMAC_KEY_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };

/** What a check verifies a token with: one key, or a resolver that picks a key by the token's header. */
export type VerificationKey = KeyObject | JWTVerifyGetKey;

/** The JWKS (or the issuer's discovery document) could not be had: a "could not tell", never a "no". */
export class KeySourceError extends Error {
  override name = "KeySourceError";
}

/** The secret's bytes: as written in config, or a file's content without its final line break. */
export function secretKey(
  o: { secret?: string | undefined; secretFile?: string | undefined },
  algorithms: readonly string[],
): KeyObject {
  const option = o.secret !== undefined ? "secret" : "secretFile";
  const bytes =
    o.secret !== undefined
      ? Buffer.from(o.secret, "utf8")
      : Buffer.from(
          readOptionFile("secretFile", o.secretFile ?? "")
            .toString("utf8")
            .replace(/\r?\n$/, ""),
          "utf8",
        );
  const needed = Math.max(...algorithms.map((a) => HMAC_KEY_BYTES[a] ?? 0));
  if (bytes.length < needed) {
    // the length only: the secret itself is never in a message
    throw new OptionError(
      option,
      `the secret has ${bytes.length} bytes; ${algorithms.join(", ")} needs at least ${needed} ` +
        "(RFC 7518 §3.2): use a longer random secret, e.g. `openssl rand -base64 48`",
    );
  }
  return createSecretKey(bytes);
}

/** The curve of each ECDSA algorithm (RFC 7518 §3.4), as node:crypto names it. */
const EC_CURVES: Record<string, string> = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" };

/** What a key must be for `alg`, or undefined when `key` is that. */
function misfit(alg: string, key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  const details: NonNullable<KeyObject["asymmetricKeyDetails"]> = key.asymmetricKeyDetails ?? {};
  if (alg.startsWith("RS") || alg.startsWith("PS")) {
    const rsa = type === "rsa" || (type === "rsa-pss" && alg.startsWith("PS"));
    if (!rsa) return "an RSA key";
    return (details.modulusLength ?? 0) < 2048 ? "an RSA key of at least 2048 bits" : undefined;
  }
  const curve = EC_CURVES[alg];
  if (curve) return type === "ec" && details.namedCurve === curve ? undefined : `an EC key on ${curve}`;
  if (alg === "Ed25519") return type === "ed25519" ? undefined : "an Ed25519 key";
  if (alg === "EdDSA") return type === "ed25519" || type === "ed448" ? undefined : "an Ed25519 or Ed448 key";
  return "a key of a known algorithm";
}

/** A PEM public key (SPKI or PKCS#1) or certificate, fit for every algorithm listed. */
export function publicKey(file: string, algorithms: readonly string[]): KeyObject {
  const pem = readOptionFile("publicKey", file).toString("utf8");
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new OptionError(
      "publicKey",
      `${file} holds a private key: give only the public key (\`openssl pkey -in key.pem -pubout\`); the private key has no business on this machine`,
    );
  }
  let key: KeyObject;
  try {
    key = pem.includes("-----BEGIN CERTIFICATE-----")
      ? new X509Certificate(pem).publicKey
      : createPublicKey(pem);
  } catch (err) {
    throw new OptionError(
      "publicKey",
      `${file} is not a PEM public key or certificate (${(err as Error).message}): write it as -----BEGIN PUBLIC KEY-----`,
    );
  }
  for (const alg of algorithms) {
    const wanted = misfit(alg, key);
    if (wanted) {
      throw new OptionError(
        "algorithms",
        `${alg} needs ${wanted}, and ${file} holds a ${key.asymmetricKeyType} key: list the algorithms of that key`,
      );
    }
  }
  return key;
}

export interface RemoteKeyOptions {
  jwksUrl?: string | undefined;
  issuerUrl?: string | undefined;
  jwksTimeoutMs: number;
  jwksCooldownSeconds: number;
  jwksCacheMaxAgeSeconds: number;
  allowTargets: string[];
  tls: { ca?: string | undefined };
}

/** GET through the outbound policy, the whole exchange bounded; the body when the answer is a 200. */
async function getJson(
  url: string,
  what: string,
  o: RemoteKeyOptions,
  policy: OutboundPolicy,
  ca: Buffer | undefined,
  headers: Record<string, string> = { accept: "application/json" },
): Promise<string> {
  let answer: { status: number; body: string };
  try {
    answer = await outboundRequest(url, {
      method: "GET",
      headers,
      timeoutMs: o.jwksTimeoutMs,
      policy,
      maxAnswerBytes: 512 * 1024,
      tls: { ca },
    });
  } catch (err) {
    const reason = err instanceof OutboundError ? err.reason : "unreachable";
    if (reason === "timeout")
      throw new KeySourceError(`${what} ${url} did not answer within ${o.jwksTimeoutMs} ms`);
    throw new KeySourceError(
      `${what} ${url} ${reason === "refused" ? "refused" : "unreachable"}: ${(err as Error).message}`,
    );
  }
  if (answer.status !== 200) throw new KeySourceError(`${what} ${url} answered ${answer.status}`);
  return answer.body;
}

/**
 * The issuer's keys, fetched when first needed, again after `jwksCacheMaxAgeSeconds`, and again when a token
 * names a `kid` the cached set lacks (at most once per `jwksCooldownSeconds`: a stream of made-up kids costs
 * the provider one request per cooldown). jose's own fetch would connect anywhere; its `customFetch` sends the
 * request through the outbound policy instead, so a provider on a private or loopback address must be listed in
 * `allowTargets`, and a name resolving there is refused at each connection.
 */
export function remoteKeys(o: RemoteKeyOptions, domain: string): JWTVerifyGetKey {
  const ca = o.tls.ca ? readOptionFile("tls.ca", o.tls.ca) : undefined;
  const policy = createOutboundPolicy(o.allowTargets, `domains.${domain}.authenticator.options.allowTargets`);
  const source = o.jwksUrl ? "jwksUrl" : "issuerUrl";
  try {
    policy.checkUrl(o.jwksUrl ?? o.issuerUrl ?? "");
  } catch (err) {
    throw new OptionError(source, (err as Error).message);
  }

  const fetchThroughPolicy: FetchImplementation = async (url, init) => {
    const headers = Object.fromEntries(init.headers.entries());
    const body = getJson(url, "the JWKS at", o, policy, ca, headers);
    // jose's AbortSignal.timeout answers first when both fire: it becomes jose's JWKSTimeout
    const aborted = new Promise<never>((_, reject) => {
      init.signal.addEventListener("abort", () => reject(init.signal.reason), { once: true });
    });
    // whichever loses the race rejects later (or never): no unhandled rejection
    aborted.catch(() => {});
    body.catch(() => {});
    return new Response(await Promise.race([body, aborted]), {
      status: 200,
      headers: { "content-type": "application/json" },
    });
  };
  const jwksOf = (url: string) =>
    createRemoteJWKSet(new URL(url), {
      timeoutDuration: o.jwksTimeoutMs,
      cooldownDuration: o.jwksCooldownSeconds * 1000,
      cacheMaxAge: o.jwksCacheMaxAgeSeconds * 1000,
      [customFetch]: fetchThroughPolicy,
    });

  if (o.jwksUrl) return jwksOf(o.jwksUrl);

  // OpenID Connect Discovery 1.0 §4: <issuer>/.well-known/openid-configuration names jwks_uri; its `issuer`
  // must be the URL asked (§4.3), or another issuer could hand out keys in this one's name
  const issuerUrl = o.issuerUrl ?? "";
  let discovered: JWTVerifyGetKey | undefined;
  let pending: Promise<JWTVerifyGetKey> | undefined;
  const discover = async (): Promise<JWTVerifyGetKey> => {
    const url = `${issuerUrl.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const text = await getJson(url, "the discovery document at", o, policy, ca);
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw new KeySourceError(`the discovery document at ${url} is not JSON`);
    }
    if (doc.issuer !== issuerUrl) {
      throw new KeySourceError(
        `the discovery document at ${url} names the issuer ${JSON.stringify(doc.issuer)}, not ${issuerUrl}`,
      );
    }
    let jwksUri: URL;
    try {
      jwksUri = new URL(String(doc.jwks_uri));
      if (jwksUri.protocol !== "https:" && jwksUri.protocol !== "http:") throw new Error("not http(s)");
    } catch {
      throw new KeySourceError(`the discovery document at ${url} has no usable jwks_uri`);
    }
    discovered = jwksOf(jwksUri.href);
    return discovered;
  };
  return async (header, token) => {
    if (discovered) return discovered(header, token);
    // one discovery at a time; a failed one is tried again at the next token
    pending ??= discover().finally(() => {
      pending = undefined;
    });
    return (await pending)(header, token);
  };
}

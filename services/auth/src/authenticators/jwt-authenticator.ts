import { errors, type JWTPayload, type JWTVerifyOptions, jwtVerify } from "jose";
import { z } from "zod";
import { StartupProblems } from "#common/errors.ts";
import type { Jid } from "#common/users/jid.ts";
import * as webUsers from "#common/users/web-users.ts";
import { type Authenticator, type CheckResult, defineAuthenticator } from "./authenticator.ts";
import {
  HMAC_ALGORITHMS,
  isHmac,
  KeySourceError,
  PUBLIC_KEY_ALGORITHMS,
  publicKey,
  remoteKeys,
  secretKey,
  type VerificationKey,
} from "./jwt-keys.ts";

/**
 * The `jwt` kind: the password a user presents (SASL PLAIN through MongooseIM's check_password or ejabberd's
 * extauth `auth`, HTTP Basic to the app API) is a JSON Web Token (RFC 7519) that an identity provider signed,
 * checked with jose: signature (RFC 7515), `alg` among those configured, `iss`, `aud`, `exp` and `nbf` with a
 * clock tolerance, and a claim naming the user. It holds no credentials: get_password, set_password, register
 * and remove_user are refused by the auth core, so MongooseIM must log users in with PLAIN (docs/auth.md
 * "Token (JWT) domains").
 */

/** A string or a list of them (`"aud": "xmpp"` or `["xmpp", "chat"]`), read as a list. */
const oneOrMore = (description: string) =>
  z
    .preprocess(
      (v) => (typeof v === "string" ? [v] : v),
      z.array(z.string().min(1)).min(1, "list at least one value"),
    )
    .describe(description);

export const jwtOptionsSchema = z
  .object({
    secret: z
      .string()
      .min(1)
      .optional()
      .describe("shared secret of HS256/HS384/HS512, its UTF-8 bytes (32, 48, 64 at least); or secretFile"),
    secretFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "file holding the shared secret (a final line break is not part of it), so it need not sit in config",
      ),
    publicKey: z
      .string()
      .min(1)
      .optional()
      .describe("PEM file of the issuer's public key or certificate: RS*, PS*, ES*, EdDSA tokens"),
    jwksUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "the issuer's JSON Web Key Set (an OpenID provider's jwks_uri), fetched again for an unknown kid",
      ),
    issuerUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "an OpenID provider: jwks_uri read from <issuerUrl>/.well-known/openid-configuration at first use; also the default issuer",
      ),
    algorithms: z
      .array(z.enum([...HMAC_ALGORITHMS, ...PUBLIC_KEY_ALGORITHMS]))
      .min(1)
      .describe(
        "accepted `alg` values, of the key source's kind: HS* with a secret, the others with a key or JWKS",
      ),
    issuer: oneOrMore("accepted `iss` value(s); required unless issuerUrl is set").optional(),
    audience: oneOrMore(
      "accepted `aud` value(s): what the provider calls this XMPP service (a token for another service is refused)",
    ),
    clockToleranceSeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(30)
      .describe("clock skew allowed on exp and nbf"),
    maxTokenBytes: z
      .number()
      .int()
      .min(256)
      .max(12_288)
      .default(8192)
      .describe(
        "longer tokens are refused unread (MongooseIM's request must stay under the contract's 16 KiB)",
      ),
    requireExpiry: z.boolean().default(true).describe("refuse a token without `exp`"),
    userClaim: z.string().min(1).default("sub").describe("the claim naming the user"),
    userClaimIs: z
      .enum(["node", "jid"])
      .default("node")
      .describe("`node`: the claim is the JID's user part; `jid`: the whole JID, user@<this domain>"),
    userExists: z
      .enum(["any", "web_users"])
      .default("any")
      .describe(
        "user_exists answers: `any` true for every user (no directory to ask), `web_users` from the table",
      ),
    jwksTimeoutMs: z
      .number()
      .int()
      .min(50)
      .max(30_000)
      .default(1000)
      .describe("bound on a JWKS (or discovery) request; keep it under services.auth.backendTimeoutMs"),
    jwksCooldownSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(30)
      .describe("after a fetch, how long an unknown kid is refused without fetching the set again"),
    jwksCacheMaxAgeSeconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(600)
      .describe("how long fetched keys are used before the set is fetched again"),
    allowTargets: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "hosts, IP addresses or CIDR blocks of the provider allowed although loopback, private or link-local",
      ),
    tls: z
      .object({ ca: z.string().min(1).optional().describe("PEM file of a CA to trust for the provider") })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((o, ctx) => {
    const sources = (["secret", "secretFile", "publicKey", "jwksUrl", "issuerUrl"] as const).filter(
      (k) => o[k] !== undefined,
    );
    if (sources.length !== 1) {
      ctx.addIssue({
        code: "custom",
        path: sources.length === 0 ? [] : [sources[1] as string],
        message:
          sources.length === 0
            ? "no key source: set one of secret, secretFile (HS*), publicKey, jwksUrl or issuerUrl"
            : `${sources.join(" and ")} are both key sources: keep one`,
      });
      return;
    }
    const shared = o.secret !== undefined || o.secretFile !== undefined;
    for (const alg of o.algorithms) {
      if (shared && !isHmac(alg)) {
        ctx.addIssue({
          code: "custom",
          path: ["algorithms"],
          message: `${alg} needs a public key (publicKey, jwksUrl or issuerUrl), not a shared secret: list HS256, HS384 or HS512`,
        });
      } else if (!shared && isHmac(alg)) {
        // the HS/RS confusion: a key that is public used as an HMAC secret lets anyone sign tokens
        ctx.addIssue({
          code: "custom",
          path: ["algorithms"],
          message: `${alg} with a public key would let anyone holding that key sign tokens: list the key's own algorithms (RS256, ES256…)`,
        });
      }
    }
    if (o.issuer === undefined && o.issuerUrl === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["issuer"],
        message: "required: the `iss` of the provider's tokens (or set issuerUrl)",
      });
    }
    if (o.tls.ca !== undefined && !o.jwksUrl && !o.issuerUrl) {
      ctx.addIssue({
        code: "custom",
        path: ["tls", "ca"],
        message: "only used with jwksUrl or issuerUrl: remove it",
      });
    }
  });

export type JwtOptions = z.infer<typeof jwtOptionsSchema>;

/** jose's answers about the token itself: a "no". Anything else (the JWKS unreachable or broken) throws. */
const TOKEN_REFUSALS = new Set([
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWT_INVALID",
  "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JOSE_NOT_SUPPORTED",
  "ERR_JWKS_NO_MATCHING_KEY",
]);

/** The verified claims; several keys matching a kid-less token are tried in turn (jose leaves that to us). */
async function verify(token: string, key: VerificationKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, key, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    for await (const candidate of err) {
      try {
        return (await jwtVerify(token, candidate, options)).payload;
      } catch (e) {
        if (!(e instanceof errors.JWSSignatureVerificationFailed)) throw e;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/** The user a claim names, normalised as a JID's user part is (lower case), or undefined. */
function claimedNode(value: unknown, form: JwtOptions["userClaimIs"], domain: string): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  if (form === "node") return value.toLowerCase();
  const at = value.lastIndexOf("@");
  if (at <= 0 || value.slice(at + 1).toLowerCase() !== domain) return undefined;
  return value.slice(0, at).toLowerCase();
}

export default defineAuthenticator({
  kind: "jwt",
  summary: "a signed token (JWT) from an identity provider as the password: secret, public key or JWKS",
  options: jwtOptionsSchema,
  create(o, deps): Authenticator {
    if (deps.domainConfig.passwordFormat !== "plain") {
      throw new StartupProblems([
        `domains.${deps.domain}.passwordFormat: a jwt domain has no password to hand out (get_password): ` +
          'set "plain", so that MongooseIM asks check_password (and allows only SASL PLAIN, docs/auth.md)',
      ]);
    }
    const key: VerificationKey =
      o.secret !== undefined || o.secretFile !== undefined
        ? secretKey(o, o.algorithms)
        : o.publicKey !== undefined
          ? publicKey(o.publicKey, o.algorithms)
          : remoteKeys(o, deps.domain);
    const options: JWTVerifyOptions = {
      algorithms: o.algorithms,
      issuer: o.issuer ?? o.issuerUrl,
      audience: o.audience,
      clockTolerance: o.clockToleranceSeconds,
      ...(o.requireExpiry ? { requiredClaims: ["exp"] } : {}),
    };
    const refused = (why: string, jid: Jid): CheckResult => {
      // the reason and the user, never the token
      deps.log.debug({ user: jid.node, why }, "token refused");
      return { ok: false, reason: "bad_password" };
    };

    return {
      kind: "jwt",
      maxPasswordBytes: o.maxTokenBytes,
      async checkPassword(jid, token) {
        if (Buffer.byteLength(token) > o.maxTokenBytes) return refused("longer than maxTokenBytes", jid);
        let claims: JWTPayload;
        try {
          claims = await verify(token, key, options);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (typeof code === "string" && TOKEN_REFUSALS.has(code)) return refused(code, jid);
          if (err instanceof KeySourceError) throw err;
          if (err instanceof errors.JWKSTimeout) {
            throw new KeySourceError(`the JWKS did not answer within ${o.jwksTimeoutMs} ms`);
          }
          // a JWKS that is not one, a provider's key jose cannot use: the provider's problem, not the user's
          throw new KeySourceError(`cannot verify tokens: ${(err as Error).message}`);
        }
        const node = claimedNode(claims[o.userClaim], o.userClaimIs, jid.domain);
        if (node !== jid.node) return refused(`${o.userClaim} names another user`, jid);
        return {
          ok: true,
          ...(typeof claims.exp === "number" ? { validUntilMs: claims.exp * 1000 } : {}),
        };
      },
      async userExists(jid) {
        return o.userExists === "any" ? true : webUsers.userExists(deps.pool, jid);
      },
      everyUserExists: o.userExists === "any",
    };
  },
});

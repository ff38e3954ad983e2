import { createPrivateKey, type KeyObject, sign, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Secrets } from "#common/config/secrets.ts";
import type { PushApps } from "./sender.ts";

/**
 * How an APNs provider authenticates ("Establishing a token-based connection to APNs" and "Establishing a
 * certificate-based connection to APNs", developer.apple.com/documentation/usernotifications): a provider
 * token, an ES256 JWT signed by the team's `.p8` key and sent as `authorization: bearer …`, or a TLS client
 * certificate. Everything is read and checked once, at startup.
 */

export type ApnsOptions = NonNullable<PushApps[string]["apns"]>;
export type Environment = "production" | "sandbox";

/** Apple: refresh a provider token no more than once every 20 minutes, and use none older than an hour. */
const TOKEN_LIFETIME_MS = 50 * 60_000;

export interface ProviderToken {
  /** `bearer <jwt>`, signed again once it is 50 minutes old. */
  authorization(): string;
  /** APNs answered ExpiredProviderToken to `used`: the next request carries a new one (once for all). */
  expired(used: string): void;
}

export type ApnsCredentials =
  | { kind: "token"; token: ProviderToken }
  | {
      kind: "certificate";
      tls: { cert: string; key: string; passphrase?: string };
      certificate: X509Certificate;
    };

export function loadApnsCredentials(
  options: ApnsOptions,
  deps: { app: string; secrets?: Pick<Secrets, "env"> | undefined },
): ApnsCredentials {
  const where = `push.apps.${deps.app}.apns`;
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new Error(`${where}.${what}: cannot read ${file} (${code})`);
    }
  };
  if (options.keyFile && options.keyId && options.teamId) {
    const pem = read("keyFile", options.keyFile);
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      throw new Error(`${where}.keyFile: not a private key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new Error(`${where}.keyFile: not a P-256 key, cannot sign ES256 provider tokens`);
    }
    return { kind: "token", token: providerToken(key, options.keyId, options.teamId) };
  }
  if (options.certFile && options.certKeyFile) {
    let passphrase: string | undefined;
    if (options.passphraseEnv) {
      passphrase = deps.secrets?.env(options.passphraseEnv);
      if (passphrase === undefined) {
        throw new Error(`${where}.passphraseEnv: ${options.passphraseEnv} is not set`);
      }
    }
    const cert = read("certFile", options.certFile);
    const key = read("certKeyFile", options.certKeyFile);
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(cert);
      const privateKey = createPrivateKey(passphrase === undefined ? key : { key, passphrase });
      if (!certificate.checkPrivateKey(privateKey)) throw new Error("the key is not the certificate's");
    } catch (err) {
      throw new Error(`${where}: certFile and certKeyFile: ${(err as Error).message}`);
    }
    if (Date.parse(certificate.validTo) < Date.now()) {
      throw new Error(`${where}.certFile: the certificate expired on ${certificate.validTo}`);
    }
    return {
      kind: "certificate",
      tls: { cert, key, ...(passphrase !== undefined && { passphrase }) },
      certificate,
    };
  }
  throw new Error(`${where}: give keyFile, keyId and teamId, or certFile and certKeyFile`);
}

/** Apple's extensions of an APNs certificate: "Apple Push Notification service SSL" (sandbox, production). */
const ENVIRONMENT_OIDS: Record<Environment, Buffer> = {
  sandbox: oid("1.2.840.113635.100.6.3.1"),
  production: oid("1.2.840.113635.100.6.3.2"),
};

/**
 * Throws unless the certificate may be used in `environment`. Apple issues APNs certificates with RSA keys and
 * the extension of each environment they serve; a certificate of another kind (made for a test) is not one
 * of Apple's and is taken as it is, as node-apn did.
 */
export function checkCertificateEnvironment(certificate: X509Certificate, environment: Environment): void {
  if (certificate.publicKey.asymmetricKeyType !== "rsa") return;
  if (!certificate.raw.includes(ENVIRONMENT_OIDS[environment])) {
    throw new Error(
      `certificate does not support configured environment, production: ${environment === "production"}`,
    );
  }
}

/** The DER encoding of an object identifier (tag, length, content), to find it in a certificate. */
function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split(".").map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) base128.unshift((v & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return Buffer.from([0x06, bytes.length, ...bytes]);
}

function providerToken(key: KeyObject, keyId: string, teamId: string): ProviderToken {
  const header = Buffer.from(JSON.stringify({ alg: "ES256", kid: keyId })).toString("base64url");
  let current = "";
  let signedAt = 0;
  const renew = () => {
    const iat = Math.floor(Date.now() / 1000);
    const claims = Buffer.from(JSON.stringify({ iss: teamId, iat })).toString("base64url");
    const signature = sign("sha256", Buffer.from(`${header}.${claims}`), { key, dsaEncoding: "ieee-p1363" });
    current = `bearer ${header}.${claims}.${signature.toString("base64url")}`;
    signedAt = Date.now();
  };
  renew(); // a key that cannot sign stops the service at startup
  return {
    authorization() {
      if (Date.now() - signedAt >= TOKEN_LIFETIME_MS) renew();
      return current;
    },
    expired(used) {
      if (used === current) renew();
    },
  };
}

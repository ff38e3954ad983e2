import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Salted SCRAM credentials (RFC 5802 section 3): SaltedPassword = PBKDF2-HMAC-H(password, salt, i),
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key").
 * What web_users.scram stores; MongooseIM's serializations are derived from it.
 */

export const SCRAM_HASHES = ["sha1", "sha224", "sha256", "sha384", "sha512"] as const;
export type ScramHash = (typeof SCRAM_HASHES)[number];

export interface ScramEntry {
  salt: string; // base64
  storedKey: string; // base64
  serverKey: string; // base64
}

export type ScramCredentials = { iterations: number } & Partial<Record<ScramHash, ScramEntry>>;

const KEY_LENGTH: Record<ScramHash, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

export function deriveEntry(password: string, salt: Buffer, iterations: number, hash: ScramHash): ScramEntry {
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, KEY_LENGTH[hash], hash);
  const clientKey = createHmac(hash, salted).update("Client Key").digest();
  return {
    salt: salt.toString("base64"),
    storedKey: createHash(hash).update(clientKey).digest("base64"),
    serverKey: createHmac(hash, salted).update("Server Key").digest("base64"),
  };
}

/** New credentials, each hash with its own random salt (as MongooseIM 6.x does). */
export function hashPassword(
  password: string,
  options: { iterations?: number; hashes?: readonly ScramHash[] } = {},
): ScramCredentials {
  const iterations = options.iterations ?? 10_000;
  const creds: ScramCredentials = { iterations };
  for (const h of options.hashes ?? ["sha1", "sha256", "sha512"]) {
    creds[h] = deriveEntry(password, randomBytes(16), iterations, h);
  }
  return creds;
}

/** Checks a password against the strongest stored hash, in constant time. */
export function verifyPassword(password: string, creds: ScramCredentials): boolean {
  const hash = [...SCRAM_HASHES].reverse().find((h) => creds[h]);
  const entry = hash ? creds[hash] : undefined;
  if (!hash || !entry) return false;
  const derived = deriveEntry(password, Buffer.from(entry.salt, "base64"), creds.iterations, hash);
  const a = Buffer.from(derived.storedKey, "base64");
  const b = Buffer.from(entry.storedKey, "base64");
  return a.length === b.length && timingSafeEqual(a, b);
}

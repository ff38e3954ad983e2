import { pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { Hmac, hashBytes } from "./hmac.ts";

/**
 * Salted SCRAM credentials (RFC 5802 section 3): SaltedPassword = PBKDF2-HMAC-H(password, salt, i),
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key").
 * What web_users.scram stores; MongooseIM's serializations are derived from it (scram-serialization.ts).
 * PBKDF2 runs on libuv's thread pool (async): thousands of iterations must not stall the event loop.
 */

const pbkdf2Async = promisify(pbkdf2);

export const SCRAM_HASHES = ["sha1", "sha224", "sha256", "sha384", "sha512"] as const;
export type ScramHash = (typeof SCRAM_HASHES)[number];

export interface ScramEntry {
  salt: string; // base64
  storedKey: string; // base64
  serverKey: string; // base64
}

export type ScramCredentials = { iterations: number } & Partial<Record<ScramHash, ScramEntry>>;

const KEY_LENGTH: Record<ScramHash, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

export async function deriveEntry(
  password: string,
  salt: Buffer,
  iterations: number,
  hash: ScramHash,
): Promise<ScramEntry> {
  const salted = await pbkdf2Async(password.normalize("NFKC"), salt, iterations, KEY_LENGTH[hash], hash);
  const key = new Hmac(hash, salted);
  return {
    salt: salt.toString("base64"),
    storedKey: hashBytes(hash, key.digest("Client Key")).toString("base64"),
    serverKey: key.digestBase64("Server Key"),
  };
}

/** New credentials, each hash with its own random salt (as MongooseIM 6.x does). */
export async function hashPassword(
  password: string,
  options: { iterations?: number; hashes?: readonly ScramHash[] } = {},
): Promise<ScramCredentials> {
  const iterations = options.iterations ?? 10_000;
  const hashes = options.hashes ?? ["sha1", "sha256", "sha512"];
  const entries = await Promise.all(hashes.map((h) => deriveEntry(password, randomBytes(16), iterations, h)));
  const creds: ScramCredentials = { iterations };
  hashes.forEach((h, i) => {
    creds[h] = entries[i];
  });
  return creds;
}

/** The hash a check uses: SHA-256 when stored (strong, cheaper than SHA-512), else the strongest there is. */
function checkHash(creds: ScramCredentials): ScramHash | undefined {
  return checkHashOf(SCRAM_HASHES.filter((h) => creds[h]));
}

function checkHashOf(hashes: readonly ScramHash[]): ScramHash | undefined {
  if (hashes.includes("sha256")) return "sha256";
  return [...SCRAM_HASHES].reverse().find((h) => hashes.includes(h));
}

const DUMMY_SALT = randomBytes(16);

/**
 * Spends what checking a password against credentials of these parameters costs, and answers no: the "no"
 * for a user who does not exist (or has no usable credentials) then takes as long as a wrong password for one
 * who does, so the time of an answer tells no one which accounts exist.
 */
export async function verifyNothing(
  password: string,
  params: { iterations: number; hashes: readonly ScramHash[] },
): Promise<false> {
  await deriveEntry(password, DUMMY_SALT, params.iterations, checkHashOf(params.hashes) ?? "sha256");
  return false;
}

/** Checks a password against stored credentials, comparing in constant time. */
export async function verifyPassword(password: string, creds: ScramCredentials): Promise<boolean> {
  const hash = checkHash(creds);
  const entry = hash ? creds[hash] : undefined;
  if (!hash || !entry) return false;
  const derived = await deriveEntry(password, Buffer.from(entry.salt, "base64"), creds.iterations, hash);
  const a = Buffer.from(derived.storedKey, "base64");
  const b = Buffer.from(entry.storedKey, "base64");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time comparison of two secrets of any length (legacy cleartext tokens). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(hashBytes("sha256", a), hashBytes("sha256", b));
}

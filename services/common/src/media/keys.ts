import { randomBytes } from "node:crypto";

/**
 * Stored names: 144 random bits in base64url plus a lower-case extension. They are capabilities (public
 * downloads go by name), and the only strings that ever reach a storage backend: anything else, whatever its
 * encoding, is refused before a path or an object name is built from it.
 */
const KEY = /^[A-Za-z0-9_-]{24}(\.[a-z0-9]{2,5})?$/;

export function newKey(extension: string): string {
  const key = `${randomBytes(18).toString("base64url")}.${extension}`;
  assertKey(key);
  return key;
}

export function isKey(value: string): boolean {
  return KEY.test(value);
}

export function assertKey(key: string): void {
  if (!KEY.test(key)) throw new InvalidKeyError(key);
}

export class InvalidKeyError extends Error {
  override name = "InvalidKeyError";
  constructor(key: string) {
    super(`not a stored name: ${JSON.stringify(key.slice(0, 80))}`);
  }
}

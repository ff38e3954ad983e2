import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";

/**
 * The answer of a consumed code, kept for a few seconds for a retry whose answer was lost (docs/registration.md,
 * "Lost answers"). The token is an XMPP password, so it is never stored in clear: it is sealed with AES-256-GCM
 * under a key derived with HKDF (RFC 5869) from the client's session nonce, which is never stored either, only
 * its SHA-256 (to tell a wrong nonce from a damaged box). The JID is authenticated data: a box copied to another
 * row does not open.
 */

const INFO = "xmpp-sidecars registration retry token";
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface Sealed {
  nonceHash: Buffer;
  salt: Buffer;
  /** iv | tag | ciphertext */
  box: Buffer;
}

export const nonceHash = (nonce: string): Buffer => createHash("sha256").update(nonce, "utf8").digest();

function keyOf(nonce: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(nonce, "utf8"), salt, INFO, 32));
}

export function sealToken(token: string, nonce: string, aad: string): Sealed {
  const salt = randomBytes(16);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keyOf(nonce, salt), iv);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(token, "utf8"), cipher.final()]);
  return { nonceHash: nonceHash(nonce), salt, box: Buffer.concat([iv, cipher.getAuthTag(), ciphertext]) };
}

/** The token, or undefined when the nonce is not the one it was sealed with (or the box is damaged). */
export function openToken(sealed: Sealed, nonce: string, aad: string): string | undefined {
  const presented = nonceHash(nonce);
  if (presented.length !== sealed.nonceHash.length || !timingSafeEqual(presented, sealed.nonceHash)) {
    return undefined;
  }
  if (sealed.box.length <= IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv(
      "aes-256-gcm",
      keyOf(nonce, sealed.salt),
      sealed.box.subarray(0, IV_BYTES),
    );
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(sealed.box.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([
      decipher.update(sealed.box.subarray(IV_BYTES + TAG_BYTES)),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    return undefined;
  }
}

import { createHash, createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type HashName, Hmac, hashBytes, hmac } from "./hmac.ts";

const HASHES: HashName[] = ["sha1", "sha224", "sha256", "sha384", "sha512"];

describe("hmac", () => {
  it("gives createHmac's bytes for every hash, key lengths around the block size, any message", () => {
    for (const algorithm of HASHES) {
      for (const keyLength of [0, 1, 20, 32, 63, 64, 65, 127, 128, 129, 300]) {
        const key = randomBytes(keyLength);
        for (const data of ["", "Client Key", "ä€ unicode", randomBytes(1000)]) {
          const want = createHmac(algorithm, key).update(data).digest("hex");
          expect(hmac(algorithm, key, data).toString("hex"), `${algorithm} key ${keyLength}`).toBe(want);
          expect(new Hmac(algorithm, key).digestBase64(data)).toBe(
            Buffer.from(want, "hex").toString("base64"),
          );
        }
      }
    }
  });

  it("matches RFC 4231 test case 2 (HMAC-SHA-256, key 'Jefe')", () => {
    expect(hmac("sha256", Buffer.from("Jefe"), "what do ya want for nothing?").toString("hex")).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
  });

  it("hashBytes gives createHash's bytes, strings hashed as UTF-8", () => {
    for (const algorithm of HASHES)
      for (const data of ["", "ä€", randomBytes(500)])
        expect(hashBytes(algorithm, data).equals(createHash(algorithm).update(data).digest())).toBe(true);
  });

  it("a kept key gives the same digests again and again, and different keys differ", () => {
    const h = new Hmac("sha256", Buffer.from("key one"));
    expect(h.digest("x").equals(h.digest("x"))).toBe(true);
    expect(h.digest("x").equals(new Hmac("sha256", Buffer.from("key two")).digest("x"))).toBe(false);
  });
});

import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { hashPassword, type ScramCredentials } from "./scram.ts";
import {
  isScramSerialization,
  parseScramSerialization,
  toLegacySerialization,
  toMultiSerialization,
} from "./scram-serialization.ts";

/** RFC 5802 computed independently of scram.ts: what a SCRAM client would check against. */
function rfc5802(password: string, saltB64: string, i: number, hash: "sha1" | "sha256", len: number) {
  const salted = pbkdf2Sync(password, Buffer.from(saltB64, "base64"), i, len, hash);
  const clientKey = createHmac(hash, salted).update("Client Key").digest();
  return {
    storedKey: createHash(hash).update(clientKey).digest("base64"),
    serverKey: createHmac(hash, salted).update("Server Key").digest("base64"),
  };
}

describe("SCRAM serializations", () => {
  let creds: ScramCredentials;
  beforeAll(async () => {
    creds = await hashPassword("pässword", { iterations: 4096, hashes: ["sha1", "sha256"] });
  });

  it("writes the 2.x form, SHA-1 only, checked by an independent computation", () => {
    const text = toLegacySerialization(creds) as string;
    const [tag, stored, server, salt, i] = text.split(",");
    expect(tag).toBe("==SCRAM==");
    expect(i).toBe("4096");
    expect({ storedKey: stored, serverKey: server }).toEqual(
      rfc5802("pässword", salt as string, 4096, "sha1", 20),
    );
  });

  it("writes the 6.x form with a salt per hash, checked by an independent computation", () => {
    const text = toMultiSerialization(creds, ["sha1", "sha224", "sha256"]) as string;
    const m =
      /^==MULTI_SCRAM==,4096,===SHA1===([^|]+)\|([^|]+)\|([^,]+),==SHA256==([^|]+)\|([^|]+)\|([^,]+)$/.exec(
        text,
      );
    expect(m).not.toBeNull();
    const [, s1, st1, sv1, s256, st256, sv256] = m as RegExpExecArray;
    expect({ storedKey: st1, serverKey: sv1 }).toEqual(rfc5802("pässword", s1 as string, 4096, "sha1", 20));
    expect({ storedKey: st256, serverKey: sv256 }).toEqual(
      rfc5802("pässword", s256 as string, 4096, "sha256", 32),
    );
  });

  it("reads back what it writes, and both 6.x layouts", () => {
    expect(parseScramSerialization(toMultiSerialization(creds, ["sha1", "sha256"]) as string)).toEqual(creds);
    expect(parseScramSerialization(toLegacySerialization(creds) as string)).toEqual({
      iterations: 4096,
      sha1: creds.sha1,
    });
    const salt = "inKXODlSY5y5SCsLxibi0w==";
    const oneSalt = `==MULTI_SCRAM==,${salt},4096,===SHA1===tmi5IE+9pceRV/jkPLFHEaVY33c=|MiWNa8T3dniVDwmh77ufJ41fpAQ=`;
    expect(parseScramSerialization(oneSalt)).toEqual({
      iterations: 4096,
      sha1: { salt, storedKey: "tmi5IE+9pceRV/jkPLFHEaVY33c=", serverKey: "MiWNa8T3dniVDwmh77ufJ41fpAQ=" },
    });
  });

  it("refuses anything malformed", () => {
    for (const bad of [
      "",
      "misio",
      "==SCRAM==,a,b,c",
      "==SCRAM==,a,b,c,0",
      "==SCRAM==,a,b,c,x",
      "==SCRAM==,a!,b,c,4096",
      "==MULTI_SCRAM==,4096",
      "==MULTI_SCRAM==,4096,==MD5==a|b|c",
      "==MULTI_SCRAM==,4096,===SHA1===a|b",
      "==MULTI_SCRAM==,4096,===SHA1===a|b|c,===SHA1===a|b|c",
      "==MULTI_SCRAM==,4096,===SHA1===a|b|c|d",
    ]) {
      expect(parseScramSerialization(bad), bad).toBeUndefined();
    }
    expect(isScramSerialization("==SCRAM==,x")).toBe(true);
    expect(isScramSerialization("plain password")).toBe(false);
  });
});

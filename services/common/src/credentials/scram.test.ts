import { describe, expect, it } from "vitest";
import { deriveEntry, hashPassword, verifyPassword } from "./scram.ts";

describe("SCRAM credentials", () => {
  it("reproduces MongooseIM's documented example (misio, 4096 iterations)", () => {
    const entry = deriveEntry("misio", Buffer.from("inKXODlSY5y5SCsLxibi0w==", "base64"), 4096, "sha1");
    expect(entry).toEqual({
      salt: "inKXODlSY5y5SCsLxibi0w==",
      storedKey: "tmi5IE+9pceRV/jkPLFHEaVY33c=",
      serverKey: "MiWNa8T3dniVDwmh77ufJ41fpAQ=",
    });
  });

  it("salts each hash separately and verifies only the right password", () => {
    const creds = hashPassword("s3cret ünïcode", { iterations: 4096, hashes: ["sha1", "sha256"] });
    expect(creds.sha1?.salt).not.toEqual(creds.sha256?.salt);
    expect(verifyPassword("s3cret ünïcode", creds)).toBe(true);
    expect(verifyPassword("s3cret unicode", creds)).toBe(false);
    expect(verifyPassword("", creds)).toBe(false);
  });

  it("gives different stored keys for the same password (random salt)", () => {
    expect(hashPassword("a").sha256?.storedKey).not.toEqual(hashPassword("a").sha256?.storedKey);
  });
});

import { describe, expect, it } from "vitest";
import { deriveEntry, hashPassword, verifyPassword } from "./scram.ts";

describe("SCRAM credentials", () => {
  it("reproduces MongooseIM's documented example (misio, 4096 iterations)", async () => {
    const entry = await deriveEntry("misio", Buffer.from("inKXODlSY5y5SCsLxibi0w==", "base64"), 4096, "sha1");
    expect(entry).toEqual({
      salt: "inKXODlSY5y5SCsLxibi0w==",
      storedKey: "tmi5IE+9pceRV/jkPLFHEaVY33c=",
      serverKey: "MiWNa8T3dniVDwmh77ufJ41fpAQ=",
    });
  });

  it("salts each hash separately and verifies only the right password", async () => {
    const creds = await hashPassword("s3cret ünïcode", { iterations: 4096, hashes: ["sha1", "sha256"] });
    expect(creds.sha1?.salt).not.toEqual(creds.sha256?.salt);
    expect(await verifyPassword("s3cret ünïcode", creds)).toBe(true);
    expect(await verifyPassword("s3cret unicode", creds)).toBe(false);
    expect(await verifyPassword("", creds)).toBe(false);
  });

  it("gives different stored keys for the same password (random salt)", async () => {
    expect((await hashPassword("a")).sha256?.storedKey).not.toEqual(
      (await hashPassword("a")).sha256?.storedKey,
    );
  });
});

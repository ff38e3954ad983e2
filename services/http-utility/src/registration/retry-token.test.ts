import { describe, expect, it } from "vitest";
import { nonceHash, openToken, sealToken } from "./retry-token.ts";

describe("sealed retry tokens", () => {
  const nonce = "k3Jd9xQ0vT7mZ2pL5sWb8A";
  const aad = "oyo\u0000306912345678";

  it("open with the nonce they were sealed with, for the same JID only", () => {
    const sealed = sealToken("the-xmpp-password", nonce, aad);
    expect(openToken(sealed, nonce, aad)).toBe("the-xmpp-password");
    expect(openToken(sealed, `${nonce}x`, aad)).toBeUndefined();
    expect(openToken(sealed, nonce, "oyo\u0000306912345679")).toBeUndefined();
  });

  it("keep neither the token nor the nonce in clear", () => {
    const sealed = sealToken("the-xmpp-password", nonce, aad);
    const stored = Buffer.concat([sealed.nonceHash, sealed.salt, sealed.box]).toString("latin1");
    expect(stored).not.toContain("the-xmpp-password");
    expect(stored).not.toContain(nonce);
    expect(sealed.nonceHash.equals(nonceHash(nonce))).toBe(true);
    // a fresh salt and IV each time
    expect(sealToken("the-xmpp-password", nonce, aad).box.equals(sealed.box)).toBe(false);
  });

  it("refuse a damaged box", () => {
    const sealed = sealToken("the-xmpp-password", nonce, aad);
    const box = Buffer.from(sealed.box);
    box[box.length - 1] = (box[box.length - 1] ?? 0) ^ 1;
    expect(openToken({ ...sealed, box }, nonce, aad)).toBeUndefined();
    expect(openToken({ ...sealed, box: box.subarray(0, 20) }, nonce, aad)).toBeUndefined();
  });
});

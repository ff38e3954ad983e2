import path from "node:path";
import { describe, expect, it } from "vitest";
import { isKey } from "#common/media/keys.ts";
import { avatarNodeOf, isLegacyName, legacyFileOf, legacyNameProblem } from "./legacy-names.ts";

/** The names a legacy URL may carry, and the paths they may reach: never outside the legacy root. */

describe("legacy names", () => {
  it("accepts plain file names", () => {
    for (const name of [
      "IMG_20170512_103000.jpg",
      "1526383939393-306900000001.png",
      "a",
      "v.1.mp4",
      "A-b_c.JPEG",
    ]) {
      expect(legacyNameProblem(name), name).toBeUndefined();
      expect(isLegacyName(name), name).toBe(true);
    }
    expect(isLegacyName("x".repeat(200))).toBe(true);
  });

  it("refuses hidden files, dots, separators, encodings, spaces, control and non-ASCII characters, and long names", () => {
    const bad = [
      "",
      ".hidden.jpg",
      "..",
      "a..b.jpg",
      "../etc/passwd",
      "a/b.jpg",
      "a\\b.jpg",
      "%2e%2e",
      "a%2fb",
      "bad name.jpg",
      "a\u0000.jpg",
      "photo\n.jpg",
      "fotó.jpg",
      "-leading-dash.jpg",
      "_x.jpg",
      "x".repeat(201),
    ];
    for (const name of bad) {
      expect(legacyNameProblem(name), JSON.stringify(name)).toBeDefined();
      expect(isLegacyName(name), JSON.stringify(name)).toBe(false);
    }
  });

  it("leaves the stored names' form to the keys", () => {
    // a safe name of the keys' form (a key may also start with - or _, which no legacy name does): looked up
    // as a key, whose row then says where its bytes are
    const key = "1546300800000-a1B2c3D4e5.jpg";
    expect(isKey(key)).toBe(true);
    expect(legacyNameProblem(key)).toBeUndefined();
    expect(isLegacyName(key)).toBe(false);
  });
});

describe("legacyFileOf", () => {
  const root = "/srv/legacy";
  it("resolves a kind directory and a safe name under the root", () => {
    expect(legacyFileOf(root, "pictures/IMG_1.jpg")).toBe(path.join(root, "pictures", "IMG_1.jpg"));
    expect(legacyFileOf(`${root}/`, "avatars/306900000001.png")).toBe(
      path.join(root, "avatars", "306900000001.png"),
    );
  });

  it("refuses every other path", () => {
    for (const p of [
      "pictures/../../etc/passwd",
      "../pictures/a.jpg",
      "pictures/a/b.jpg",
      "pictures/thumbnails/a.jpg",
      "other/a.jpg",
      "pictures/",
      "pictures/.a",
      "/etc/passwd",
      "pictures//a.jpg",
      "pictures",
    ]) {
      expect(legacyFileOf(root, p), p).toBeUndefined();
    }
  });
});

describe("avatarNodeOf", () => {
  it("reads the user an avatar is named by, lower-cased", () => {
    expect(avatarNodeOf("306900000001.jpg")).toBe("306900000001");
    expect(avatarNodeOf("306900000001.JPEG")).toBe("306900000001");
    expect(avatarNodeOf("Alice.png")).toBe("alice");
    expect(avatarNodeOf("306900000001")).toBe("306900000001");
    // only an image extension is taken off: the rest is the node as written
    expect(avatarNodeOf("john.doe.webp")).toBe("john.doe");
  });

  it("answers nothing for a name no user can have", () => {
    expect(avatarNodeOf(".jpg")).toBeUndefined();
  });
});

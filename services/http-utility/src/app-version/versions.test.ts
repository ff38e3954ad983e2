import { describe, expect, it } from "vitest";
import { compareVersions, defaultApp, isBelow, isVersion, resolveMinimum } from "./versions.ts";

describe("compareVersions", () => {
  // each row: a < b
  it.each([
    ["0.1", "0.2"],
    ["0.2", "1.0"],
    ["0.9", "0.10"],
    ["1.9", "1.10.2"],
    ["1.10.2", "1.10.10"],
    ["1.10.2", "2"],
    ["2.0.0-alpha", "2.0.0-beta"],
    ["2.0.0-beta", "2.0.0"],
    ["2.0.0-beta.2", "2.0.0-beta.11"],
    ["2.0.0-rc.1", "2.0.0"],
    ["2.0-beta", "2.0"],
    ["1.9", "2.0-beta"],
    ["99", "100"],
    ["9", "10"],
    ["1.2.3.4", "1.2.3.5"],
    ["1.2.3", "1.2.3.1"],
    ["1.2.3.9", "1.2.4"],
  ])("%s < %s", (a, b) => {
    expect(compareVersions(a, b)).toBe(-1);
    expect(compareVersions(b, a)).toBe(1);
    expect(isBelow(a, b)).toBe(true);
    expect(isBelow(b, a)).toBe(false);
  });

  it.each([
    ["1.0", "1"],
    ["1", "1.0.0"],
    ["1.0", "1.0.0"],
    ["1.2.3", "1.2.3.0"],
    ["2.0-beta", "2.0.0-beta"],
    ["100", "100"],
  ])("%s = %s", (a, b) => {
    expect(compareVersions(a, b)).toBe(0);
    expect(compareVersions(b, a)).toBe(0);
    expect(isBelow(a, b)).toBe(false);
  });

  it("refuses what is not a version, saying how to write one", () => {
    for (const bad of ["", "v1.0", "1.x", "1..2", "1.2.3.4.5", "beta", "1.0-", "1.0-a..b", " 1.0"]) {
      expect(isVersion(bad), bad).toBe(false);
      expect(() => compareVersions(bad, "1.0"), bad).toThrow(/is not a version: write dotted numbers/);
    }
  });
});

describe("resolveMinimum", () => {
  const apps = {
    OyoChat: { minimumVersion: { android: "1.2.0", ios: "1.3", default: "1.0" } },
    Strict: { minimumVersion: { android: "5", ios: "6" } },
  };
  const none = new Map<string, string>();

  it("takes the platform's entry, or the default one for a missing or unknown platform", () => {
    expect(resolveMinimum(apps, none, "OyoChat", "ios")).toMatchObject({
      ok: true,
      platform: "ios",
      minimumVersion: "1.3",
      source: "config",
    });
    expect(resolveMinimum(apps, none, "OyoChat", "windows")).toMatchObject({
      platform: "default",
      minimumVersion: "1.0",
    });
    expect(resolveMinimum(apps, none, "OyoChat", undefined)).toMatchObject({ minimumVersion: "1.0" });
  });

  it("lets an override win, and add a platform", () => {
    const overrides = new Map([
      ["android", "2.0.0"],
      ["web", "3"],
    ]);
    expect(resolveMinimum(apps, overrides, "OyoChat", "android")).toMatchObject({
      minimumVersion: "2.0.0",
      source: "override",
    });
    expect(resolveMinimum(apps, overrides, "OyoChat", "web")).toMatchObject({ minimumVersion: "3" });
    expect(resolveMinimum(apps, overrides, "OyoChat", "ios")).toMatchObject({ minimumVersion: "1.3" });
  });

  it("says no to an unknown app, and to an unknown platform without default (listing the known ones)", () => {
    expect(resolveMinimum(apps, none, "oyochat", "ios")).toEqual({ ok: false, reason: "unknown_app" });
    expect(resolveMinimum(apps, none, "toString", "ios")).toEqual({ ok: false, reason: "unknown_app" });
    expect(resolveMinimum(apps, none, "Strict", "web")).toEqual({
      ok: false,
      reason: "unknown_platform",
      known: ["android", "ios"],
    });
    expect(resolveMinimum(apps, none, "Strict", undefined)).toMatchObject({ reason: "unknown_platform" });
  });
});

describe("defaultApp: the app a request without appName means", () => {
  const app = (isDefault?: boolean) => ({
    minimumVersion: { default: "1.0" },
    ...(isDefault === undefined ? {} : { default: isDefault }),
  });
  it("is the app marked default, else the only app, else none", () => {
    expect(defaultApp({ A: app(), B: app(true) })).toBe("B");
    expect(defaultApp({ A: app() })).toBe("A");
    expect(defaultApp({ A: app(), B: app(false) })).toBeUndefined();
    expect(defaultApp({})).toBeUndefined();
  });
});

import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "#common/paths.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";

/**
 * GET /api/v1/minimum_app_version from the config, then as `sidecars apps set-minimum` (the real command,
 * on the same config and database) changes it while the service runs.
 */

const APPS = {
  OyoChat: { minimumVersion: { android: "1.2.0", ios: "1.3", default: "1.0" } },
  Strict: { minimumVersion: { android: "5", ios: "6" } },
};

const configDir = mkdtempSync(path.join(tmpdir(), "sidecars-app-version-config-"));
cpSync(path.join(projectRoot, "config"), configDir, { recursive: true });
const testConfig = JSON.parse(readFileSync(path.join(configDir, "test.json"), "utf8"));
writeFileSync(path.join(configDir, "test.json"), JSON.stringify({ ...testConfig, apps: APPS }));

let app: HttpUtilityTestApp;

beforeAll(async () => {
  app = await startHttpUtilityApp({ configDir });
});

afterAll(async () => {
  await app?.close();
});

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
async function minimum(query: string): Promise<{ status: number; body: any }> {
  const r = await fetch(app.url(`/api/v1/minimum_app_version?${query}`));
  return { status: r.status, body: await r.json() };
}

function sidecars(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(projectRoot, "bin/sidecars.js"), ...args],
      {
        env: {
          PATH: process.env.PATH ?? "",
          APP_ENV: "test",
          DATABASE_URL: app.db.url,
          CONFIG_DIR: configDir,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("GET /api/v1/minimum_app_version", () => {
  it("answers the configured minimum of the platform, without credentials", async () => {
    expect(await minimum("appName=OyoChat&platform=android")).toEqual({
      status: 200,
      body: { appName: "OyoChat", platform: "android", minimumVersion: "1.2.0" },
    });
    expect((await minimum("appName=OyoChat&platform=iOS")).body).toMatchObject({
      platform: "ios",
      minimumVersion: "1.3",
    });
  });

  it("falls back to the default entry for a missing or unknown platform", async () => {
    const expected = { appName: "OyoChat", platform: "default", minimumVersion: "1.0" };
    expect(await minimum("appName=OyoChat")).toEqual({ status: 200, body: expected });
    expect((await minimum("appName=OyoChat&platform=")).body).toEqual(expected);
    expect((await minimum("appName=OyoChat&platform=windows")).body).toEqual(expected);
  });

  it("answers 404 unknown_app for an app not configured (names are case-sensitive)", async () => {
    for (const name of ["NoSuchApp", "oyochat", "toString"]) {
      const r = await minimum(`appName=${name}&platform=android`);
      expect(r.status, name).toBe(404);
      expect(r.body.error.code, name).toBe("unknown_app");
    }
  });

  it("answers 404 unknown_platform listing the platforms when there is no default", async () => {
    const r = await minimum("appName=Strict&platform=windows");
    expect(r).toEqual({
      status: 404,
      body: {
        error: {
          code: "unknown_platform",
          message:
            '"Strict" has no minimum version for this platform and no default: send platform as one of android, ios.',
        },
      },
    });
    expect((await minimum("appName=Strict")).body.error.code).toBe("unknown_platform");
  });

  it("answers 400 without an appName when no app is the default, and for a malformed platform", async () => {
    for (const query of ["platform=android", "appName=&platform=android"]) {
      const none = await minimum(query);
      expect(none.status, query).toBe(400);
      expect(none.body.error.code, query).toBe("app_name_required");
      expect(none.body.error.message, query).toBe(
        "Send appName, one of OyoChat, Strict; or the operator marks one app default (apps.<name>.default) for apps that send none.",
      );
    }
    const malformed = await minimum("appName=OyoChat&platform=and%20roid");
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe("invalid_request");
  });

  it("follows `sidecars apps set-minimum` and `clear-minimum` at once, without a restart", async () => {
    const set = await sidecars(["apps", "set-minimum", "OyoChat", "android", "1.10.2"]);
    expect(set).toMatchObject({ code: 0, stdout: "OyoChat android: 1.2.0 → 1.10.2\n", stderr: "" });
    expect((await minimum("appName=OyoChat&platform=android")).body.minimumVersion).toBe("1.10.2");
    expect((await minimum("appName=OyoChat&platform=ios")).body.minimumVersion).toBe("1.3");

    const again = await sidecars(["apps", "set-minimum", "OyoChat", "android", "2.0.0-beta"]);
    expect(again.stdout).toBe("OyoChat android: 1.10.2 → 2.0.0-beta\n");
    expect((await minimum("appName=OyoChat&platform=android")).body.minimumVersion).toBe("2.0.0-beta");

    // an override may give an app a default it did not have
    const fallback = await sidecars(["apps", "set-minimum", "Strict", "default", "4"]);
    expect(fallback.stdout).toBe("Strict default: none → 4\n");
    expect((await minimum("appName=Strict&platform=windows")).body).toEqual({
      appName: "Strict",
      platform: "default",
      minimumVersion: "4",
    });

    const cleared = await sidecars(["apps", "clear-minimum", "OyoChat", "android"]);
    expect(cleared).toMatchObject({ code: 0, stdout: "OyoChat android: 2.0.0-beta → 1.2.0\n" });
    expect((await minimum("appName=OyoChat&platform=android")).body.minimumVersion).toBe("1.2.0");
    await sidecars(["apps", "clear-minimum", "Strict", "default"]);
    expect((await minimum("appName=Strict&platform=windows")).status).toBe(404);
  });
});

describe("GET /api/v1/minimum_app_version as installed legacy apps call it (no appName)", () => {
  let legacy: HttpUtilityTestApp;
  beforeAll(async () => {
    legacy = await startHttpUtilityApp({
      configDir,
      overrides: { apps: { Strict: { default: true } } },
    });
  });
  afterAll(async () => {
    await legacy?.close();
  });

  it("answers for the app marked default, in the same shape, for any platform it has", async () => {
    // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
    const ask = async (query: string): Promise<{ status: number; body: any }> => {
      const r = await fetch(legacy.url(`/api/v1/minimum_app_version${query}`));
      return { status: r.status, body: await r.json() };
    };
    expect(await ask("?platform=ios")).toEqual({
      status: 200,
      body: { appName: "Strict", platform: "ios", minimumVersion: "6" },
    });
    // an app named explicitly still answers for itself
    expect((await ask("?appName=OyoChat")).body).toEqual({
      appName: "OyoChat",
      platform: "default",
      minimumVersion: "1.0",
    });
    // the default app has no `default` platform: the answer says which platforms it has
    const bare = await ask("");
    expect(bare.status).toBe(404);
    expect(bare.body.error.code).toBe("unknown_platform");
  });
});

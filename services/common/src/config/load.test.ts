import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load.ts";

function configDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "sidecars-config-"));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(path.join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("loads the repository's config for every environment", () => {
    for (const env of ["development", "test"]) {
      const c = loadConfig({ env: { APP_ENV: env } });
      expect(c.env).toBe(env);
      expect(c.services.auth.host).toBe("127.0.0.1");
    }
    expect(loadConfig({ env: { APP_ENV: "demo", AUTH_BASIC_AUTH: "mim:pw" } }).env).toBe("demo");
    const prod = loadConfig({
      env: { APP_ENV: "production", AUTH_BASIC_AUTH: "mim:pw", DATABASE_URL: "postgres://db.internal/xmpp" },
    });
    expect(prod.services.httpUtility.tls.cert).toBe("ssl/server.crt");
  });

  it("gives development the localhost domain with the web_users authenticator and plain passwords", () => {
    const c = loadConfig({ env: {} });
    expect(c.env).toBe("development");
    expect(c.domains.localhost).toMatchObject({
      authenticator: { kind: "web_users" },
      passwordFormat: "plain",
    });
  });

  it("applies environment overrides and *_FILE secrets", () => {
    const dir = configDir({});
    const secret = path.join(dir, "basic");
    writeFileSync(secret, "mongooseim:from-file\n");
    const c = loadConfig({
      env: {
        APP_ENV: "test",
        DATABASE_URL: "postgres://u:p@db.example:5432/x",
        AUTH_BASIC_AUTH_FILE: secret,
        HTTP_UTILITY_PORT: "8443",
        LOG_LEVEL: "warn",
      },
    });
    expect(c.database.url).toBe("postgres://u:p@db.example:5432/x");
    expect(c.services.auth.basicAuth).toBe("mongooseim:from-file");
    expect(c.services.httpUtility.port).toBe(8443);
    expect(c.log.level).toBe("warn");
  });

  it("lists every problem at once, each naming the key and the fix", () => {
    const dir = configDir({
      "default.json": JSON.parse(
        JSON.stringify(loadConfigRaw()).replace(
          '"host":"127.0.0.1","port":3300',
          '"host":"0.0.0.0","port":3300',
        ),
      ),
      "test.json": { log: { level: "loud" }, databse: {}, services: { httpUtility: { port: "3000" } } },
    });
    const problems = problemsOf(() =>
      loadConfig({ configDir: dir, env: { APP_ENV: "test", AUTH_PORT: "http", DATABASE_URL: "mysql://x" } }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^AUTH_PORT: "http" is not a port number/),
        expect.stringMatching(/^log\.level: /),
        expect.stringMatching(/^databse: unknown key/),
        expect.stringMatching(/^services\.httpUtility\.port: /),
        expect.stringMatching(/^database\.url: must be a postgres:\/\/ URL/),
        expect.stringMatching(/^services\.auth\.host: is not loopback/),
      ]),
    );
    expect(problems).toHaveLength(6);
  });

  it("names a malformed file and the way out", () => {
    const dir = configDir({ "default.json": loadConfigRaw(), "demo.json": '{ "log": { "level": "info", } ' });
    const [problem] = problemsOf(() => loadConfig({ configDir: dir, env: { APP_ENV: "demo" } }));
    expect(problem).toMatch(/demo\.json: not valid JSON .*fix the file or restore it from git/);
  });

  it("refuses an unknown APP_ENV, a secret given twice, an unreadable *_FILE, no basic auth in production", () => {
    expect(problemsOf(() => loadConfig({ env: { APP_ENV: "prod" } }))[0]).toMatch(
      /APP_ENV: "prod" is not one of/,
    );
    expect(
      problemsOf(() => loadConfig({ env: { AUTH_BASIC_AUTH: "a:b", AUTH_BASIC_AUTH_FILE: "/x" } }))[0],
    ).toMatch(/both set/);
    expect(problemsOf(() => loadConfig({ env: { DATABASE_URL_FILE: "/nonexistent/secret" } }))[0]).toMatch(
      /DATABASE_URL_FILE: cannot read \/nonexistent\/secret \(ENOENT\)/,
    );
    expect(problemsOf(() => loadConfig({ env: { APP_ENV: "production" } }))).toEqual([
      expect.stringMatching(/^services\.auth\.basicAuth: required in production: set AUTH_BASIC_AUTH/),
      expect.stringMatching(/^database\.url: required in production: set DATABASE_URL or DATABASE_URL_FILE/),
    ]);
    // the attack: a demo or staging machine where any local process may read every password from the contract
    expect(problemsOf(() => loadConfig({ env: { APP_ENV: "demo" } }))).toEqual([
      expect.stringMatching(/^services\.auth\.basicAuth: required in demo: set AUTH_BASIC_AUTH/),
    ]);
  });

  it("refuses cleartext for a scram domain and a badly named domain", () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: { APP_ENV: "test" },
        overrides: {
          domains: { "Bad Domain": {}, "ok.example": { passwordFormat: "scram", keepCleartext: true } },
        },
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^domains\.Bad Domain: a domain is lower-case/),
      expect.stringMatching(/^domains\.ok\.example\.keepCleartext: only a `plain` domain/),
    ]);
  });

  it("resolves the secrets config names from the environment it is given, and lists a missing one", () => {
    const dir = configDir({});
    const hookKeyFile = path.join(dir, "hook-key");
    writeFileSync(hookKeyFile, "bk_from_file\n");
    const apns = (passphraseEnv: string) => ({
      push: {
        apps: {
          OyoChat: {
            apns: { bundleId: "gr.oyo.chat", certFile: "c.pem", certKeyFile: "k.pem", passphraseEnv },
          },
        },
      },
    });
    const c = loadConfig({
      env: { APP_ENV: "test", APNS_PASS: "s3cret", BUDDY_PASS: "b", BUDDIES_HOOK_KEY_FILE: hookKeyFile },
      overrides: apns("APNS_PASS"),
    });
    expect(c.push.relay.hookKey).toBe("bk_from_file");
    expect(c.secrets.env("APNS_PASS")).toBe("s3cret");
    // a buddy's `password.env` may name a variable no config key knows yet (the `buddies` table)
    expect(c.secrets.env("BUDDY_PASS")).toBe("b");
    expect(c.secrets.env("PATH")).toBeUndefined(); // this process's own environment is not read
    // kept out of logs and JSON, and carried by copies of the config
    expect(JSON.stringify(c)).not.toContain("s3cret");
    expect({ ...c }.secrets.env("APNS_PASS")).toBe("s3cret");

    expect(
      problemsOf(() => loadConfig({ env: { APP_ENV: "test", APNS_PASS: "" }, overrides: apns("APNS_PASS") })),
    ).toEqual([
      "push.apps.OyoChat.apns.passphraseEnv: the environment variable APNS_PASS is not set: set it to the passphrase of certKeyFile, or remove passphraseEnv if the key has none",
    ]);
  });
});

function loadConfigRaw(): unknown {
  // the repository's default.json, as a starting point for broken variants
  return JSON.parse(readFileSync(path.join(import.meta.dirname, "../../../../config/default.json"), "utf8"));
}

import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { addUser } from "#common/users/web-users.ts";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { freePort } from "./support/free-port.ts";
import { ROOT, runService } from "./support/processes.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const BASIC = `Basic ${Buffer.from("mongooseim:s3cret").toString("base64")}`;

describe("auth service reload", () => {
  it("serves a domain added to the config after SIGHUP, without dropping a request meanwhile", async () => {
    const configDir = mkdtempSync(path.join(tmpdir(), "sidecars-auth-reload-"));
    cpSync(path.join(ROOT, "config"), configDir, { recursive: true });
    const testJson = path.join(configDir, "test.json");
    const base = JSON.parse(readFileSync(testJson, "utf8"));
    const domain = loadConfig({
      env: { APP_ENV: "test" },
      overrides: { domains: { "new.test": { scramIterations: 4096 } } },
    }).domains["new.test"];
    if (!domain) throw new Error("no domain config");
    await addUser(db.pool, { node: "ann", domain: "new.test" }, { cleartext: "pw" }, domain);
    await addUser(db.pool, { node: "bob", domain: "localhost" }, { cleartext: "pw" }, domain);

    const port = await freePort();
    const url = (user: string, server: string) =>
      `http://127.0.0.1:${port}/authorize/check_password?user=${user}&server=${server}&pass=pw`;
    const check = async (user: string, server: string) =>
      (await fetch(url(user, server), { headers: { authorization: BASIC } })).text();

    let result: { before: string; after: string; failures: number; requests: number } | undefined;
    const exited = await runService(
      "auth",
      {
        CONFIG_DIR: configDir,
        DATABASE_URL: db.url,
        AUTH_PORT: String(port),
        AUTH_BASIC_AUTH: "mongooseim:s3cret",
      },
      async (child) => {
        try {
          const before = await check("ann", "new.test");
          let stop = false;
          let failures = 0;
          let requests = 0;
          const load = (async () => {
            while (!stop) {
              const answer = await check("bob", "localhost").catch(() => "error");
              requests++;
              if (answer !== "true") failures++;
            }
          })();
          base.domains["new.test"] = { passwordFormat: "plain", scramIterations: 4096 };
          writeFileSync(testJson, JSON.stringify(base));
          child.kill("SIGHUP");
          let after = "false";
          for (let i = 0; i < 50 && after !== "true"; i++) {
            await new Promise((r) => setTimeout(r, 100));
            after = await check("ann", "new.test");
          }
          await new Promise((r) => setTimeout(r, 1000)); // the load runs on across and after the reload
          stop = true;
          await load;
          result = { before, after, failures, requests };
        } finally {
          child.kill("SIGTERM");
        }
      },
    );
    expect(exited.code).toBe(0);
    expect(result).toMatchObject({ before: "false", after: "true", failures: 0 });
    expect(result?.requests).toBeGreaterThan(10);
  });

  it("keeps the domains it has when the new config is broken, and says why", async () => {
    const configDir = mkdtempSync(path.join(tmpdir(), "sidecars-auth-reload-"));
    cpSync(path.join(ROOT, "config"), configDir, { recursive: true });
    const port = await freePort();
    const answers: string[] = [];
    const exited = await runService(
      "auth",
      {
        CONFIG_DIR: configDir,
        DATABASE_URL: db.url,
        AUTH_PORT: String(port),
        AUTH_BASIC_AUTH: "mongooseim:s3cret",
        LOG_LEVEL: "info",
      },
      async (child) => {
        try {
          writeFileSync(path.join(configDir, "test.json"), "{ not json");
          child.kill("SIGHUP");
          await new Promise((r) => setTimeout(r, 500));
          const r = await fetch(
            `http://127.0.0.1:${port}/authorize/check_password?user=bob&server=localhost&pass=pw`,
            { headers: { authorization: BASIC } },
          );
          answers.push(`${r.status} ${await r.text()}`);
        } finally {
          child.kill("SIGTERM");
        }
      },
    );
    expect(exited.code).toBe(0);
    expect(answers).toEqual(["200 true"]);
    expect(exited.stdout).toMatch(/"msg":"reload failed"/);
    expect(exited.stdout).toMatch(/test\.json: not valid JSON/);
  });
});

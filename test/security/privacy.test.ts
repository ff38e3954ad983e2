import type { ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { addUser } from "#common/users/web-users.ts";
import { testConfigDir } from "../support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { freePort } from "../support/free-port.ts";
import { runService, waitForOk } from "../support/processes.ts";

/**
 * The attack: whoever reads the logs (a log shipper, a support engineer, another user of the machine) or the
 * media folder learns which phone numbers use the service and what they sent. The real http-utility process
 * at log level info: numbers and JIDs are cut in its lines, in fields and in request paths, and what it
 * writes is not readable by other users (umask 027). docs/security.md "Privacy of logs and files".
 */

const NUMBER = "306912345678";
const USER = { node: NUMBER, domain: "localhost", password: "owner's pw" };
const BASIC = `Basic ${Buffer.from(`${NUMBER}@localhost:${USER.password}`).toString("base64")}`;
const WRONG = `Basic ${Buffer.from(`${NUMBER}@localhost:a guess`).toString("base64")}`;

let db: TestDatabase;
let configDir: string;
let root: string;

beforeAll(async () => {
  db = await createTestDatabase();
  root = mkdtempSync(path.join(tmpdir(), "sidecars-privacy-"));
  configDir = testConfigDir((test) => {
    test.log = { level: "info", pretty: false };
    test.media = {
      storage: { kind: "fs", options: { root: path.join(root, "media") } },
      tmpDir: path.join(root, "tmp"),
    };
  });
  const domain = loadConfig({ env: { APP_ENV: "test", CONFIG_DIR: configDir } }).domains.localhost;
  if (!domain) throw new Error("the test config has no localhost domain");
  await addUser(db.pool, USER, { cleartext: USER.password }, domain);
});

afterAll(async () => {
  await db?.drop();
  await rm(root, { recursive: true, force: true });
  await rm(configDir, { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map((f) => path.join(dir, String(f)));
}

describe("http-utility at log level info", () => {
  it("logs no whole phone number, and writes nothing other users can read", async () => {
    const port = await freePort();
    let child: ChildProcess | undefined;
    const exited = runService(
      "http-utility",
      { CONFIG_DIR: configDir, DATABASE_URL: db.url, HTTP_UTILITY_PORT: String(port) },
      (c) => {
        child = c;
      },
    );
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForOk(`${base}/healthz`, 30_000);
      // the number in a path, in a wrong login, in an upload, in an avatar by node
      expect(
        (await fetch(`${base}/api/v1/locations/${NUMBER}/latest`, { headers: { authorization: WRONG } }))
          .status,
      ).toBe(401);
      const form = new FormData();
      const photo = await sharp({ create: { width: 64, height: 48, channels: 3, background: "#c84" } })
        .jpeg()
        .toBuffer();
      form.append("attachments", new Blob([new Uint8Array(photo)]), "me.jpg");
      const up = await fetch(`${base}/api/v1/attachments/avatars`, {
        method: "POST",
        headers: { authorization: BASIC },
        body: form,
      });
      expect(up.status).toBe(201);
      expect((await fetch(`${base}/api/v1/attachments/avatars/${NUMBER}`)).status).toBe(200);
    } finally {
      child?.kill("SIGTERM");
    }
    const { code, stdout } = await exited;
    expect(code).toBe(0);
    expect(stdout).toMatch(/"url":"\/api\/v1\/locations\/30…78\/latest"/);
    expect(stdout).not.toContain("6912345");

    const written = [...(await filesUnder(path.join(root, "media")))];
    expect(written.length).toBeGreaterThan(2); // the avatar and its thumbnails, in their folders
    for (const f of written) expect((await stat(f)).mode & 0o007, f).toBe(0);
  });
});

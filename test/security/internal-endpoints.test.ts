import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import http from "node:http";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfigDir } from "../support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { freePort } from "../support/free-port.ts";
import { type Exited, runService, waitForOk } from "../support/processes.ts";

/**
 * The attack: MongooseIM's message hook and the MongoosePush API take no credentials and push through the
 * operator's FCM/APNs credentials. When they were decided on `req.ip`, a forged X-Forwarded-For (or any
 * client behind a same-host proxy that does not append the header) passed as loopback. Against the real
 * http-utility process (main.ts): both endpoints live on the internal listener only, and a trusted proxy
 * that does not name its client is refused (docs/security.md "Internal endpoints…").
 * Clients differ by their real source address (127.0.0.x); the trusted proxy is 127.0.0.2.
 */

const PROXY = "127.0.0.2";

let db: TestDatabase;
let configDir: string;
let child: ChildProcess | undefined;
let exited: Promise<Exited>;
let publicPort: number;
let internalPort: number;

beforeAll(async () => {
  db = await createTestDatabase();
  publicPort = await freePort();
  internalPort = await freePort();
  configDir = testConfigDir((test) => {
    test.services.httpUtility = {
      ...test.services.httpUtility,
      port: publicPort,
      internal: { host: "127.0.0.1", port: internalPort },
      trustProxy: [PROXY],
    };
  });
  exited = runService("http-utility", { CONFIG_DIR: configDir, DATABASE_URL: db.url }, (c) => {
    child = c;
  });
  await Promise.race([
    waitForOk(`http://127.0.0.1:${internalPort}/healthz`, 50_000),
    exited.then((e) => {
      throw new Error(`http-utility exited with ${e.code}: ${e.stderr}`);
    }),
  ]);
});

afterAll(async () => {
  child?.kill("SIGTERM");
  await exited;
  rmSync(configDir, { recursive: true, force: true });
  await db?.drop();
});

interface Answer {
  status: number;
  code: string | undefined;
}

/** One request from a chosen source address (a client, the proxy), as fetch cannot choose one. */
function call(
  port: number,
  method: string,
  url: string,
  o: { from?: string; headers?: Record<string, string>; body?: string; host?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: o.host ?? "127.0.0.1",
        port,
        method,
        path: url,
        localAddress: o.from ?? "127.0.0.1",
        headers: {
          ...o.headers,
          ...(o.body !== undefined ? { "content-length": Buffer.byteLength(o.body) } : {}),
        },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => {
          text += c.toString();
        });
        res.on("end", () => {
          let code: string | undefined;
          try {
            code = JSON.parse(text)?.error?.code;
          } catch {}
          resolve({ status: res.statusCode ?? 0, code });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end(o.body);
  });
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };
const CHAT = "author=306900000009&server=localhost&receiver=306900000001&message=you+won+a+prize";
const PUSH = JSON.stringify({ service: "fcm", alert: { title: "bank", body: "call us now" } });

describe("MongooseIM's endpoints on the public listener", () => {
  it("the hook with a forged X-Forwarded-For of loopback: 404, directly or through the proxy", async () => {
    const forged = { ...FORM, "x-forwarded-for": "127.0.0.1" };
    expect(
      await call(publicPort, "POST", "/api/v1/mongooseim/messages", { headers: forged, body: CHAT }),
    ).toEqual({ status: 404, code: "not_found" });
    expect(
      await call(publicPort, "POST", "/api/v1/mongooseim/messages", {
        from: PROXY,
        headers: forged,
        body: CHAT,
      }),
    ).toEqual({ status: 404, code: "not_found" });
  });

  it("the MongoosePush API (v2 and v3), from loopback itself: 404", async () => {
    for (const v of ["v2", "v3"]) {
      const r = await call(publicPort, "POST", `/${v}/notification/some-device`, {
        headers: { "content-type": "application/json" },
        body: PUSH,
      });
      expect(r).toEqual({ status: 404, code: "not_found" });
    }
  });
});

describe("a trusted proxy that does not name its client", () => {
  it("is refused with 400 missing_forwarded_for, rather than every client counted as the proxy", async () => {
    const bare = await call(publicPort, "GET", "/api/v1/minimum_app_version?app=OyoChat&platform=android", {
      from: PROXY,
    });
    expect(bare).toEqual({ status: 400, code: "missing_forwarded_for" });
    const named = await call(publicPort, "GET", "/api/v1/minimum_app_version?app=OyoChat&platform=android", {
      from: PROXY,
      headers: { "x-forwarded-for": "198.51.100.7" },
    });
    expect(named.code).not.toBe("missing_forwarded_for");
    // a direct client is not a proxy: no header needed
    const direct = await call(publicPort, "GET", "/api/v1/minimum_app_version?app=OyoChat&platform=android");
    expect(direct.code).not.toBe("missing_forwarded_for");
    // health probes keep answering a local monitor that connects through the proxy's address
    expect((await call(publicPort, "GET", "/healthz", { from: PROXY })).status).toBe(200);
  });
});

describe("the internal listener", () => {
  it("answers MongooseIM on loopback, decided on the connection: a header changes nothing", async () => {
    const hooked = await call(internalPort, "POST", "/api/v1/mongooseim/messages", {
      headers: { ...FORM, "x-forwarded-for": "203.0.113.9" },
      body: CHAT,
    });
    expect(hooked.status).toBe(204);
    // an unknown device with no app to guess: MongoosePush's own refusal, not a 404
    const pushed = await call(internalPort, "POST", "/v3/notification/some-device", {
      headers: { "content-type": "application/json" },
      body: PUSH,
    });
    expect(pushed.status).toBe(400);
  });

  it("serves nothing of the public API", async () => {
    const r = await call(internalPort, "GET", "/api/v1/minimum_app_version?app=OyoChat&platform=android");
    expect(r).toEqual({ status: 404, code: "not_found" });
  });

  it("is not reachable on the machine's other addresses", async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
    if (!external) return; // a machine with loopback only: nothing else to try
    await expect(call(internalPort, "GET", "/healthz", { host: external, from: external })).rejects.toThrow(
      /ECONNREFUSED/,
    );
  });
});

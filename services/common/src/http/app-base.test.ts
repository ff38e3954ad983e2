import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../../test/support/free-port.ts";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import { EmbeddedDatabase } from "../db/embedded.ts";
import { createPool, type Pool } from "../db/pool.ts";
import { HttpError } from "../errors.ts";
import { createAllowList } from "./address-allow-list.ts";
import { createBaseApp, finishApp } from "./app-base.ts";
import { type RunningServer, startServer } from "./server.ts";

// the app's log, kept to check what a request line holds
const { log, lines: logLines } = recordingLogger({ level: "info" });

// A database of this file's own: the test stops and restarts it.
let dir: string;
let db: EmbeddedDatabase;
let pool: Pool;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-outage-"));
  await chmod(dir, 0o755);
  db = new EmbeddedDatabase({ dataDir: path.join(dir, "pg"), port: await freePort(), database: "app" });
  await db.start();
  const database = {
    poolMax: 4,
    connectTimeoutMs: 1000,
    statementTimeoutMs: 2000,
    embedded: { dataDir: "", port: 0, database: "" },
  };
  pool = createPool({ database }, await db.url(), log);
  const app = createBaseApp({ service: "test", config: { metrics: { allow: [] } }, log, pool });
  app.get("/things/:id", async (req, res) => {
    const r = await pool.query<{ id: string }>("SELECT $1::text AS id", [req.params.id]);
    res.json(r.rows[0]);
  });
  app.get("/teapot", () => {
    throw new HttpError(418, "teapot", "I am a teapot.");
  });
  app.get("/boom", () => {
    throw new Error("secret internals: password=hunter2");
  });
  finishApp(app, log);
  server = await startServer(app, { name: "test", host: "127.0.0.1", port: 0, log });
});

afterAll(async () => {
  await server?.close(100);
  await pool?.end();
  await db?.stop();
  await rm(dir, { recursive: true, force: true });
});

const get = (p: string, init?: RequestInit) => fetch(`${server.url}${p}`, init);

describe("common endpoints", () => {
  it("answers /healthz and /readyz", async () => {
    expect(await (await get("/healthz")).json()).toEqual({ status: "ok" });
    const ready = await get("/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", database: "up" });
  });

  it("gives every answer a request id, keeping a well-formed one from the caller", async () => {
    const mine = await get("/healthz", { headers: { "x-request-id": "abc-123" } });
    expect(mine.headers.get("x-request-id")).toBe("abc-123");
    const hostile = await get("/healthz", { headers: { "x-request-id": "<script>" } });
    expect(hostile.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("logs one lean line per request: id, method, path, status; never a header or the query", async () => {
    await get("/things/9?pass=secret-in-query", {
      headers: { authorization: "Basic c2VjcmV0", "x-request-id": "line-1" },
    });
    const line = logLines.find((l) => (l.req as { id?: string } | undefined)?.id === "line-1");
    expect(line).toMatchObject({
      msg: "request completed",
      req: { id: "line-1", method: "GET", url: "/things/9", remoteAddress: "127.0.0.1" },
      res: { statusCode: 200 },
    });
    expect(JSON.stringify(line)).not.toContain("c2VjcmV0");
    expect(JSON.stringify(logLines)).not.toContain("secret-in-query");
    expect(logLines.some((l) => JSON.stringify(l).includes("/healthz"))).toBe(false); // probes are not logged
  });

  it("answers errors in the one wire format, and masks unknown errors", async () => {
    const missing = await get("/nope");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { code: "not_found", message: "No such route GET /nope: check the path and the name." },
    });
    expect(await (await get("/teapot")).json()).toEqual({
      error: { code: "teapot", message: "I am a teapot." },
    });
    const boom = await get("/boom");
    expect(boom.status).toBe(500);
    const text = await boom.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "internal_error", message: expect.any(String) } });
    expect(text).not.toContain("hunter2");
  });

  it("exposes Prometheus metrics with a request-duration histogram by route pattern and status", async () => {
    await get("/things/42");
    await get("/things/43");
    const res = await get("/metrics");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/process_cpu_user_seconds_total\{service="test"\} /);
    expect(text).toMatch(
      /http_request_duration_seconds_count\{service="test",method="GET",route="\/things\/:id",status_code="200"\} [2-9]/,
    );
    expect(text).toMatch(/route="\(unmatched\)",status_code="404"/);
    expect(text).not.toContain("/things/42");
  });
});

describe("a database that goes away", () => {
  it("turns /readyz and database routes into 503 database_unavailable, and recovers by itself", async () => {
    expect((await get("/things/1")).status).toBe(200);
    await db.stop();

    const ready = await get("/readyz");
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: "unready", error: { code: "database_unavailable" } });
    const thing = await get("/things/1");
    expect(thing.status).toBe(503);
    expect(thing.headers.get("retry-after")).toBe("5");
    expect(await thing.json()).toEqual({
      error: {
        code: "database_unavailable",
        message: "The database is not reachable right now; retry in a few seconds.",
      },
    });
    expect((await get("/healthz")).status).toBe(200); // alive, only not ready

    await db.start();
    const until = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < until && status !== 200) {
      status = (await get("/things/7")).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    expect((await get("/readyz")).status).toBe(200);
  });
});

describe("metrics allow list", () => {
  it("admits loopback (also IPv4-mapped) and the configured blocks only", () => {
    const allowed = createAllowList(["10.1.0.0/16", "2001:db8::7"]);
    expect(allowed("127.0.0.1")).toBe(true);
    expect(allowed("::ffff:127.0.0.1")).toBe(true);
    expect(allowed("::1")).toBe(true);
    expect(allowed("10.1.200.3")).toBe(true);
    expect(allowed("::ffff:10.1.200.3")).toBe(true);
    expect(allowed("10.2.0.1")).toBe(false);
    expect(allowed("2001:db8::7")).toBe(true);
    expect(allowed("2001:db8::8")).toBe(false);
    expect(allowed(undefined)).toBe(false);
    expect(() => createAllowList(["not-an-ip"])).toThrow(/not an IP address/);
  });
});

import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { type Ejabberd, ejabberdUnavailable, login, startEjabberd } from "./support/ejabberd.ts";
import { freePort } from "./support/free-port.ts";
import { ROOT } from "./support/processes.ts";

/**
 * Registration by phone number, end to end: the http-utility service started as a process (its main.ts, the
 * SMS senders built from config), a code sent with the `log` sender (read from the service's log, as a
 * developer does) and with the `http` sender to a gateway started here, the code checked, and the answered
 * JID and token logging in to ejabberd 23.01 (Debian) through `sidecars extauth`.
 */

const unavailable = ejabberdUnavailable();

/** The SMS gateway of gw.test: records every request, answers 200. */
function startGateway() {
  const received: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"queued"}');
    });
  });
  const listening = new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
  return { received, listening, close: () => new Promise((r) => server.close(r)) };
}

/** http-utility as pm2 runs it (main.ts with an IPC channel), its stdout (JSON log lines) kept. */
interface Service {
  child: ChildProcess;
  lines(): Record<string, unknown>[];
  stop(): Promise<void>;
}

async function startHttpUtility(env: Record<string, string>): Promise<Service> {
  const child = fork(path.join(ROOT, "services/http-utility/src/main.ts"), [], {
    env: { PATH: process.env.PATH ?? "", APP_ENV: "test", ...env },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`http-utility not ready after 30 s: ${stderr}`)), 30_000);
    child.on("message", (m) => {
      if (m === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`http-utility exited (${code}) before it was ready: ${stderr}`));
    });
  });
  return {
    child,
    lines: () =>
      stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// Not skipped when ejabberd cannot run here: a run that cannot check the XMPP path fails and says why.
describe("registration by phone number, then an XMPP login", () => {
  let db: TestDatabase;
  let ej: Ejabberd;
  let service: Service;
  let api: string;
  const gateway = startGateway();

  beforeAll(async () => {
    if (unavailable) throw new Error(`registration end-to-end tests cannot run: ${unavailable}`);
    db = await createTestDatabase();
    const gatewayPort = await gateway.listening;
    const testJson = JSON.parse(readFileSync(path.join(ROOT, "config/test.json"), "utf8"));
    const registration = { enabled: true, countries: ["GR", "CY"] };
    const config = {
      ...testJson,
      log: { level: "info", pretty: false },
      apps: { OyoChat: { minimumVersion: { android: "1.10.2", default: "1.0" } } },
      domains: {
        "log.test": { registration: { ...registration, sms: { kind: "log", options: {} } } },
        "gw.test": {
          registration: {
            ...registration,
            sms: {
              kind: "http",
              options: {
                url: `http://127.0.0.1:${gatewayPort}/api/sms?key=k1`,
                allowTargets: ["127.0.0.1"],
                headers: { Authorization: "Bearer gateway-key" },
                form: { number: "{msisdn}", message: "{text}" },
              },
            },
          },
        },
      },
    };
    const started = Date.now();
    ej = await startEjabberd({
      hosts: ["log.test", "gw.test"],
      files: {
        "config/default.json": readFileSync(path.join(ROOT, "config/default.json"), "utf8"),
        "config/test.json": JSON.stringify(config),
      },
      extauthEnv: (dir) => ({ APP_ENV: "test", DATABASE_URL: db.url, CONFIG_DIR: path.join(dir, "config") }),
    });
    console.info(`ejabberd started in ${Date.now() - started} ms`);
    const port = await freePort();
    service = await startHttpUtility({
      DATABASE_URL: db.url,
      CONFIG_DIR: path.join(ej.dir, "config"),
      HTTP_UTILITY_PORT: String(port),
    });
    api = `http://127.0.0.1:${port}/api/v1`;
  });

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === "fail") {
      console.error(await ej?.logs());
      console.error(JSON.stringify(service?.lines(), null, 1));
    }
  });

  afterAll(async () => {
    await service?.stop();
    await ej?.stop();
    await gateway.close();
    await db?.drop();
  });

  // biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
  async function post(route: string, body: Record<string, string>): Promise<{ status: number; body: any }> {
    const res = await fetch(`${api}${route}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  const xmppLogin = (jid: string, password: string) => {
    const [username = "", domain = ""] = jid.split("@");
    return login({ port: ej.tlsPort, ca: ej.ca, domain, username, password });
  };

  /** The code the log sender wrote for `e164`, once the line is out. */
  async function loggedCode(e164: string): Promise<string> {
    const until = Date.now() + 5000;
    for (;;) {
      const line = service.lines().find((l) => l.to === e164 && typeof l.code === "string");
      if (line) return line.code as string;
      if (Date.now() > until) throw new Error(`no SMS to ${e164} in the service's log`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it("log sender: the code from the log registers the number, and the answered token logs in", async () => {
    const sent = await post("/users", {
      appName: "OyoChat",
      appVersionCode: "1.10.2",
      platform: "android",
      domain: "log.test",
      node: "+30 694 111 1111",
    });
    expect(sent).toEqual({
      status: 201,
      body: { node: "306941111111", domain: "log.test", expiresIn: 600, resendAfter: 60 },
    });
    const code = await loggedCode("+306941111111");
    const ok = await post("/users/authorize", {
      node: "306941111111",
      challengecode: code,
      domain: "log.test",
    });
    expect(ok).toMatchObject({ status: 200, body: { jid: "306941111111@log.test", node: "306941111111" } });
    await expect(xmppLogin(ok.body.jid, ok.body.token)).resolves.toBe("306941111111@log.test/test");
    await expect(xmppLogin(ok.body.jid, code)).rejects.toMatchObject({ condition: "not-authorized" });
  });

  it("http sender: the code the gateway received registers the number, once", async () => {
    const sent = await post("/users", {
      appName: "OyoChat",
      appVersionCode: "1.2",
      domain: "gw.test",
      node: "0035799111111",
    });
    expect(sent).toMatchObject({ status: 201, body: { node: "35799111111", domain: "gw.test" } });
    expect(gateway.received).toHaveLength(1);
    const [sms] = gateway.received as [(typeof gateway.received)[number]];
    expect(sms.method).toBe("POST");
    expect(sms.url).toBe("/api/sms?key=k1");
    expect(sms.headers.authorization).toBe("Bearer gateway-key");
    expect(sms.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const form = Object.fromEntries(new URLSearchParams(sms.body));
    expect(form).toEqual({
      number: "35799111111",
      message: expect.stringMatching(/^Your OyoChat code is \d{6}$/),
    });
    const code = (form.message as string).slice(-6);
    // only the log sender ever writes a code to the log
    expect(service.lines().filter((l) => JSON.stringify(l).includes(code))).toEqual([]);

    const first = await post("/users/authorize", {
      node: "+35799111111",
      challengecode: code,
      domain: "gw.test",
    });
    const second = await post("/users/authorize", {
      node: "+35799111111",
      challengecode: code,
      domain: "gw.test",
    });
    // a code works once (docs/registration.md, Limits): the second answer changes nothing
    expect([first.status, second.status]).toEqual([200, 410]);
    expect(second.body.error.code).toBe("code_used");
    expect(first.body.jid).toBe("35799111111@gw.test");
    await expect(xmppLogin(first.body.jid, first.body.token)).resolves.toBe("35799111111@gw.test/test");
  });

  it("an old app and a number of another country get nothing to log in with", async () => {
    const old = await post("/users", {
      appName: "OyoChat",
      appVersionCode: "1.9",
      platform: "android",
      domain: "log.test",
      node: "+306942222222",
    });
    expect(old).toMatchObject({
      status: 426,
      body: { error: { code: "app_version_too_old", minimumVersion: "1.10.2" } },
    });
    const german = await post("/users", {
      appName: "OyoChat",
      appVersionCode: "2.0",
      domain: "log.test",
      node: "+4915100000009",
    });
    expect(german).toMatchObject({ status: 400, body: { error: { code: "country_not_allowed" } } });
    expect(service.lines().some((l) => l.to === "+306942222222" || l.to === "+4915100000009")).toBe(false);
  });
});

import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { hostname } from "node:os";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "./config/schema.ts";

/**
 * `log.syslog` as an operator sees it: a process logs through the logger of logger.ts, then exits as
 * runService exits (flush, then process.exit), and a syslog server on loopback has received every line as
 * an RFC 5424 or RFC 3164 message, secrets and phone numbers masked as on stdout, which keeps its lines.
 */

const LOGGER = pathToFileURL(new URL("./logger.ts", import.meta.url).pathname).href;

/** What the logging process writes: a login with secrets and a JID, then (LINGER_MS later) an error, then it exits. */
const PROGRAM = `
const { createLogger } = await import(${JSON.stringify(LOGGER)});
const log = createLogger(JSON.parse(process.env.LOG_CONFIG), "auth");
log.info({ password: "hunter2", token: "t0ken-value", jid: "306912345678@oyo.example" }, "user logged in");
await new Promise((r) => setTimeout(r, Number(process.env.LINGER_MS)));
log.error({ authorization: "Basic c2VjcmV0OnB3" }, "backend down");
log.flush(() => process.exit(0));
`;

const SECRETS = ["hunter2", "t0ken-value", "c2VjcmV0OnB3", "6912345"];

/** Runs PROGRAM with this `log` config; resolves with its exit code, stdout and stderr once it has exited. */
async function runLogger(
  log: Config["log"],
  lingerMs = 0,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", PROGRAM], {
    env: { PATH: process.env.PATH ?? "", LOG_CONFIG: JSON.stringify({ log }), LINGER_MS: String(lingerMs) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

/** Waits until `messages` holds `count` entries, or 5 s have passed. */
async function received(messages: string[], count: number): Promise<string[]> {
  const until = Date.now() + 5000;
  while (messages.length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return messages;
}

/** A TCP syslog server on loopback (at `port`, or a free one) putting each line it receives in `messages`. */
async function tcpSyslogServer(messages: string[], port = 0): Promise<number> {
  const server = createServer((socket) => {
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      messages.push(...lines);
    });
  });
  closers.push(() => server.close());
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** A loopback port nobody listens on (it was free a moment ago). */
async function unusedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** RFC 5424 section 6: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG */
const RFC5424 =
  /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) (-|\[.*\]) (.*)$/s;
/** RFC 3164 section 4.1: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[pid]: MSG */
const RFC3164 = /^<(\d{1,3})>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ([!-~]+?)\[(\d+)\]: (.*)$/s;

describe("log.syslog", () => {
  it("sends each line over UDP as an RFC 5424 message naming the service, secrets masked", async () => {
    const server = createSocket("udp4");
    closers.push(() => server.close());
    const messages: string[] = [];
    server.on("message", (m) => messages.push(m.toString("utf8")));
    server.bind(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address();

    const run = await runLogger({ level: "info", pretty: false, syslog: { ...SYSLOG_DEFAULTS, port } });
    expect(run).toMatchObject({ code: 0, stderr: "" });
    const [login, failure] = await received(messages, 2);
    expect(messages).toHaveLength(2);

    const [, pri, time, host, app, procid, , , msg] = RFC5424.exec(login ?? "") ?? [];
    expect(login).toMatch(RFC5424);
    expect(Number(pri)).toBe(16 * 8 + 6); // local0, informational
    expect(Math.abs(Date.parse(time ?? "") - Date.now())).toBeLessThan(60_000);
    expect(host).toBe(hostname());
    expect(app).toBe("auth");
    expect(Number(procid)).toBeGreaterThan(0);
    expect(JSON.parse(msg ?? "")).toMatchObject({
      service: "auth",
      msg: "user logged in",
      password: "[redacted]",
      token: "[redacted]",
      jid: "30…78@oyo.example",
    });
    expect(Number(RFC5424.exec(failure ?? "")?.[1])).toBe(16 * 8 + 3); // local0, error
    for (const secret of SECRETS) expect(messages.join("\n")).not.toContain(secret);

    // stdout keeps the same lines, as without syslog
    const stdout = run.stdout.trim().split("\n");
    expect(stdout.map((l) => JSON.parse(l).msg)).toEqual(["user logged in", "backend down"]);
    for (const secret of SECRETS) expect(run.stdout).not.toContain(secret);
  });

  it("sends over TCP as RFC 3164, one message a line, with the facility and name configured", async () => {
    const messages: string[] = [];
    const port = await tcpSyslogServer(messages);

    const syslog = {
      ...SYSLOG_DEFAULTS,
      port,
      protocol: "tcp",
      format: "rfc3164",
      facility: "daemon",
      appName: "xmpp-sidecars",
    } as const;
    const run = await runLogger({ level: "info", pretty: false, syslog });
    expect(run).toMatchObject({ code: 0, stderr: "" });
    await received(messages, 2);
    expect(messages).toHaveLength(2);
    const [, pri, , host, tag, pid, msg] = RFC3164.exec(messages[0] ?? "") ?? [];
    expect(messages[0]).toMatch(RFC3164);
    expect(Number(pri)).toBe(3 * 8 + 6); // daemon, informational
    expect(host).toBe(hostname().split(".")[0]);
    expect(tag).toBe("xmpp-sidecars");
    expect(Number(pid)).toBeGreaterThan(0);
    expect(JSON.parse(msg ?? "")).toMatchObject({
      service: "auth",
      password: "[redacted]",
      jid: "30…78@oyo.example",
    });
    for (const secret of SECRETS) expect(messages.join("\n")).not.toContain(secret);
  });

  it("keeps logging to stdout, says so once, and exits at once, when the syslog server is away", async () => {
    const port = await unusedPort();

    // long enough for three attempts to connect (500 ms, then 1 s apart)
    const lingerMs = 2000;
    const started = Date.now();
    const syslog = { ...SYSLOG_DEFAULTS, port, protocol: "tcp" } as const;
    const run = await runLogger({ level: "info", pretty: false, syslog }, lingerMs);
    expect(run.code).toBe(0);
    expect(Date.now() - started - lingerMs).toBeLessThan(3000);
    expect(
      run.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).msg),
    ).toEqual(["user logged in", "backend down"]);
    const told = run.stderr.trim().split("\n");
    expect(told).toHaveLength(1);
    expect(told[0]).toContain(`syslog tcp://127.0.0.1:${port}: connect ECONNREFUSED`);
  });

  it("keeps what it logs while a TCP server is away and sends it once the server is back", async () => {
    const port = await unusedPort();
    const syslog = { ...SYSLOG_DEFAULTS, port, protocol: "tcp" } as const;
    const running = runLogger({ level: "info", pretty: false, syslog }, 2500);
    await new Promise((r) => setTimeout(r, 700)); // the first line is logged while nobody listens
    const messages: string[] = [];
    await tcpSyslogServer(messages, port);
    expect((await running).code).toBe(0);
    await received(messages, 2);
    expect(messages.map((m) => JSON.parse(RFC5424.exec(m)?.[8] ?? "null")?.msg)).toEqual([
      "user logged in",
      "backend down",
    ]);
  });
});

const SYSLOG_DEFAULTS = {
  host: "127.0.0.1",
  port: 514,
  protocol: "udp",
  format: "rfc5424",
  facility: "local0",
} as const;

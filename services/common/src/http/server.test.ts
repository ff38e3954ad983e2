import { mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeCertificate, type TestCertificate } from "../../../../test/support/certificates.ts";
import { type RunningServer, startServer } from "./server.ts";

const log = pino({ level: "silent" });
const running: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close(100)));
});

const hello: http.RequestListener = (_req, res) => {
  res.end("hello");
};

/** The certificate a fresh TLS connection is given. */
function peerFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port, path: "/", ca, agent: false, servername: "localhost" },
      (res) => {
        const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        res.resume();
        res.on("end", () => resolve(fp));
      },
    );
    req.on("error", reject);
  });
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("TLS", () => {
  let dir: string;
  let a: TestCertificate;
  let b: TestCertificate;
  let paths: { cert: string; key: string; ca: string };

  beforeAll(async () => {
    [a, b] = await Promise.all([makeCertificate("first"), makeCertificate("second")]);
    dir = await mkdtemp(path.join(tmpdir(), "sidecars-tls-"));
    // the legacy layout: ssl/server.crt -> /etc/mongooseim/<name>.cer, and so on
    await writeFile(path.join(dir, "host.cer"), a.cert);
    await writeFile(path.join(dir, "host.key"), a.key);
    await writeFile(path.join(dir, "ca.cer"), a.cert);
    paths = {
      cert: path.join(dir, "server.crt"),
      key: path.join(dir, "server.key"),
      ca: path.join(dir, "ca.crt"),
    };
    await symlink(path.join(dir, "host.cer"), paths.cert);
    await symlink(path.join(dir, "host.key"), paths.key);
    await symlink(path.join(dir, "ca.cer"), paths.ca);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** What acme.sh does at renewal: new files replace the old ones under the same names. */
  async function renew(to: TestCertificate) {
    await writeFile(path.join(dir, "host.cer.new"), to.cert);
    await writeFile(path.join(dir, "host.key.new"), to.key);
    await rename(path.join(dir, "host.key.new"), path.join(dir, "host.key"));
    await rename(path.join(dir, "host.cer.new"), path.join(dir, "host.cer"));
  }

  it("serves HTTPS and picks up renewed certificates without a restart", async () => {
    const s = await startServer(hello, { name: "t", host: "127.0.0.1", port: 0, tls: paths, log });
    running.push(s);
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await peerFingerprint(s.port, a.cert)).toBe(a.fingerprint256);

    await renew(b);
    const seen = await eventually(
      () => peerFingerprint(s.port, b.cert).catch(() => "old"),
      (fp) => fp === b.fingerprint256,
    );
    expect(seen).toBe(b.fingerprint256);

    await renew(a);
    expect(s.reloadTls()).toBe(true); // SIGHUP path: at once
    expect(await peerFingerprint(s.port, a.cert)).toBe(a.fingerprint256);
  });

  it("keeps serving the old pair when the new files do not belong together", async () => {
    const s = await startServer(hello, { name: "t", host: "127.0.0.1", port: 0, tls: paths, log });
    running.push(s);
    await writeFile(path.join(dir, "host.cer"), b.cert); // half-way through a renewal: new cert, old key
    expect(s.reloadTls()).toBe(false);
    expect(await peerFingerprint(s.port, a.cert)).toBe(a.fingerprint256);
    await renew(a);
  });

  it("refuses to start on a missing or mismatched certificate, naming the file and the fix", async () => {
    await expect(
      startServer(hello, {
        name: "t",
        host: "127.0.0.1",
        port: 0,
        tls: { ...paths, cert: path.join(dir, "nope.crt") },
        log,
      }),
    ).rejects.toThrow(/TLS certificate .*nope\.crt: cannot be read \(ENOENT\); create the ssl\/ links/);
    await writeFile(path.join(dir, "other.cer"), b.cert);
    await expect(
      startServer(hello, {
        name: "t",
        host: "127.0.0.1",
        port: 0,
        tls: { ...paths, cert: path.join(dir, "other.cer") },
        log,
      }),
    ).rejects.toThrow(/unusable .*check that the key belongs to the certificate/);
  });
});

describe("listening", () => {
  it("names the address, the cause and the fix when the port is taken", async () => {
    const first = await startServer(hello, { name: "t", host: "127.0.0.1", port: 0, log });
    running.push(first);
    await expect(
      startServer(hello, {
        name: "http-utility",
        host: "127.0.0.1",
        port: first.port,
        portEnv: "HTTP_UTILITY_PORT",
        log,
      }),
    ).rejects.toThrow(
      `http-utility: 127.0.0.1:${first.port} is already in use; stop the other process or choose another port (HTTP_UTILITY_PORT)`,
    );
  });
});

function get(
  port: number,
  agent?: http.Agent,
): Promise<{ status: number; body: string; connection?: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/", ...(agent ? { agent } : {}) }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            ...(res.headers.connection ? { connection: res.headers.connection } : {}),
          }),
        );
      })
      .on("error", reject);
  });
}

describe("graceful close", () => {
  it("finishes in-flight requests, refuses new connections, and lets keep-alive sockets finish cleanly", async () => {
    const slow: http.RequestListener = (_req, res) => {
      setTimeout(() => res.end("done"), 400);
    };
    const s = await startServer(slow, { name: "t", host: "127.0.0.1", port: 0, log });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect(await get(s.port, agent)).toMatchObject({ status: 200, connection: "keep-alive" });
    const inFlight = get(s.port);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const closed = s.close(5000);
    await expect(get(s.port, new http.Agent())).rejects.toMatchObject({ code: "ECONNREFUSED" });
    // the request under way is answered, and told the connection ends
    expect(await inFlight).toMatchObject({ status: 200, body: "done", connection: "close" });
    // a client reusing its idle keep-alive socket is still answered, not cut off mid-request
    expect(await get(s.port, agent)).toMatchObject({ status: 200, body: "done", connection: "close" });
    await closed;
    expect(Date.now() - t0).toBeLessThan(2000);
    agent.destroy();
  });

  it("waits for idle keep-alive sockets no longer than the keep-alive timeout", async () => {
    const s = await startServer(hello, {
      name: "t",
      host: "127.0.0.1",
      port: 0,
      keepAliveTimeoutMs: 300,
      log,
    });
    const agent = new http.Agent({ keepAlive: true });
    await get(s.port, agent);
    const t0 = Date.now();
    await s.close(5000);
    expect(Date.now() - t0).toBeLessThan(1500);
    agent.destroy();
  });

  it("cuts requests still running when the bound is reached", async () => {
    const never: http.RequestListener = () => {};
    const s = await startServer(never, { name: "t", host: "127.0.0.1", port: 0, log });
    const hanging = get(s.port).catch((err: unknown) => err); // rejects during close(): keep it handled
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await s.close(300);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await hanging).toMatchObject({ code: "ECONNRESET" });
  });
});

import { mkdtempSync, writeFileSync } from "node:fs";
import net, { type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCertificate, type TestCertificate } from "../../../../test/support/certificates.ts";
import { createXmppClient, type XmppTls } from "./connection.ts";

/**
 * The buddies' XMPP client against a minimal local server (RFC 6120: STARTTLS or direct TLS, SASL PLAIN,
 * resource binding): the server's certificate is verified on both paths, a private CA is honoured, and a
 * password never crosses an unencrypted stream.
 */

const DOMAIN = "example.test";
const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='${DOMAIN}' version='1.0'>`;
const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

let cert: TestCertificate;
let caFile: string;

interface FakeServer {
  port: number;
  /** What the server saw: `starttls`, `tls`, `auth:<decoded PLAIN>`, `bind`. */
  events: string[];
  close(): void;
}

/** Serves one login at a time: features, STARTTLS (unless direct TLS or `noTls`), PLAIN, bind. */
async function fakeServer(mode: "starttls" | "direct" | "no-tls"): Promise<FakeServer> {
  const events: string[] = [];
  const serve = (socket: Socket, secure: boolean) => {
    let buffer = "";
    let authed = false;
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      for (;;) {
        if (/<stream:stream[^>]*>/.test(buffer)) {
          buffer = buffer.replace(/<\?xml[^>]*\?>/, "").replace(/<stream:stream[^>]*>/, "");
          const features = authed
            ? "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
            : !secure && mode === "starttls"
              ? `<starttls xmlns='${NS_TLS}'><required/></starttls>`
              : `<mechanisms xmlns='${NS_SASL}'><mechanism>PLAIN</mechanism></mechanisms>`;
          socket.write(`${HEADER}<stream:features>${features}</stream:features>`);
          continue;
        }
        const starttls = /<starttls[^>]*\/>/.exec(buffer);
        if (starttls) {
          events.push("starttls");
          buffer = "";
          socket.write(`<proceed xmlns='${NS_TLS}'/>`);
          socket.removeAllListeners("data");
          const upgraded = new tls.TLSSocket(socket, { isServer: true, key: cert.key, cert: cert.cert });
          upgraded.on("secure", () => events.push("tls"));
          serve(upgraded, true);
          return;
        }
        const auth = /<auth[^>]*>([^<]*)<\/auth>/.exec(buffer);
        if (auth) {
          events.push(
            `auth:${Buffer.from(auth[1] ?? "", "base64")
              .toString("utf8")
              .replaceAll("\0", "|")}`,
          );
          buffer = buffer.slice((auth.index ?? 0) + auth[0].length);
          authed = true;
          socket.write(`<success xmlns='${NS_SASL}'/>`);
          continue;
        }
        const iq = /<iq[^>]*id=["']([^"']+)["'][^>]*>.*?<\/iq>/s.exec(buffer);
        if (iq) {
          events.push("bind");
          buffer = buffer.slice((iq.index ?? 0) + iq[0].length);
          socket.write(
            `<iq type='result' id='${iq[1]}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>bot@${DOMAIN}/buddy</jid></bind></iq>`,
          );
          continue;
        }
        return;
      }
    });
  };
  const server =
    mode === "direct"
      ? tls.createServer({ key: cert.key, cert: cert.cert }, (s) => {
          events.push("tls");
          serve(s, true);
        })
      : net.createServer((s) => serve(s, false));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    events,
    close: () => server.close(),
  };
}

/** Logs in and says how it went: "online" or the error's message. */
async function login(service: string, t: XmppTls): Promise<string> {
  const c = createXmppClient({
    service,
    domain: DOMAIN,
    username: "bot",
    password: "s3cret",
    resource: "buddy",
    tls: t,
  });
  const outcome = new Promise<string>((resolve) => {
    c.on("online", () => resolve("online"));
    c.on("error", (err: Error) => resolve(err.message));
  });
  try {
    await c.connect(service).catch(() => {});
    c.open({ domain: DOMAIN }).catch(() => {});
    return await Promise.race([outcome, new Promise<string>((r) => setTimeout(() => r("timeout"), 5000))]);
  } finally {
    // the fake server never closes its stream: do not wait out the client's close timeout
    await Promise.race([c.stop().catch(() => {}), new Promise((r) => setTimeout(r, 100))]);
    (c as unknown as { socket?: { socket?: { destroy(): void } } }).socket?.socket?.destroy();
  }
}

beforeAll(async () => {
  cert = await makeCertificate("localhost", [DOMAIN]);
  caFile = path.join(mkdtempSync(path.join(tmpdir(), "sidecars-xmpp-ca-")), "ca.pem");
  writeFileSync(caFile, cert.cert);
});

describe("the buddies' XMPP connection", () => {
  const servers: FakeServer[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });
  const start = async (mode: "starttls" | "direct" | "no-tls") => {
    const s = await fakeServer(mode);
    servers.push(s);
    return s;
  };

  it("STARTTLS with the private CA: upgrades, then sends the password, then binds", async () => {
    const s = await start("starttls");
    expect(await login(`xmpp://127.0.0.1:${s.port}`, { verify: true, ca: caFile })).toBe("online");
    expect(s.events).toEqual(["starttls", "tls", "auth:|bot|s3cret", "bind"]);
  });

  it("STARTTLS to an untrusted certificate: refused before any password is sent", async () => {
    const s = await start("starttls");
    expect(await login(`xmpp://127.0.0.1:${s.port}`, { verify: true })).toMatch(/self-signed certificate/);
    expect(s.events.filter((e) => e.startsWith("auth"))).toEqual([]);
  });

  it("direct TLS (xmpps://): verified against the CA; without it refused; `verify: false` accepts", async () => {
    const s = await start("direct");
    expect(await login(`xmpps://127.0.0.1:${s.port}`, { verify: true, ca: caFile })).toBe("online");
    expect(await login(`xmpps://127.0.0.1:${s.port}`, { verify: true })).toMatch(/self-signed certificate/);
    expect(await login(`xmpps://127.0.0.1:${s.port}`, { verify: false })).toBe("online");
    expect(s.events.filter((e) => e.startsWith("auth"))).toEqual(["auth:|bot|s3cret", "auth:|bot|s3cret"]);
  });

  it("checks the certificate against the XMPP domain, not the host it connects to", async () => {
    const other = await makeCertificate("localhost", ["not-the-domain.test"]);
    const otherCa = path.join(path.dirname(caFile), "other.pem");
    writeFileSync(otherCa, other.cert);
    const s = await start("direct");
    expect(await login(`xmpps://127.0.0.1:${s.port}`, { verify: true, ca: otherCa })).toMatch(
      /certificate|altnames/i,
    );
  });

  it("never sends a password over a stream without TLS", async () => {
    const s = await start("no-tls");
    expect(await login(`xmpp://127.0.0.1:${s.port}`, { verify: true })).toMatch(/no safe SASL mechanism/);
    expect(s.events).toEqual([]);
  });
});

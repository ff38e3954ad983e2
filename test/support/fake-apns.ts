import { createPublicKey, type KeyObject, randomUUID, verify, X509Certificate } from "node:crypto";
import {
  createSecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { TLSSocket } from "node:tls";
import { generate } from "selfsigned";
import { makeCertificate } from "./certificates.ts";

/**
 * A local APNs for the push tests: Apple's HTTP/2 provider API ("Sending notification requests to APNs",
 * developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns), enough of it
 * for the APNs sender (services/http-utility/src/push/senders/apns.ts) to talk to: `POST /3/device/<token>` over TLS with ALPN h2, provider authentication
 * by a JWT (ES256, `kid` and `iss` checked against the keys given) or by a client certificate, 200 with an
 * `apns-id`, or the JSON error body `{ reason, timestamp? }` scripted per device token. Test-only.
 */

export interface FakeApnsAnswer {
  status: number;
  /** APNs `reason` (Unregistered, BadDeviceToken, TooManyRequests, …); none for a 2xx */
  reason?: string;
  /** extra response headers (e.g. `retry-after`) */
  headers?: Record<string, string>;
}

export interface FakeApnsRequest {
  token: string;
  method: string;
  authority: string;
  /** the request's regular headers (apns-topic, apns-push-type, apns-priority, …), pseudo-headers left out */
  headers: Record<string, string>;
  /** the JSON body, `undefined` when it was empty */
  body: unknown;
  /** how the provider authenticated: the JWT's `kid`, or `certificate` */
  auth: { kind: "token"; keyId: string; teamId: string } | { kind: "certificate"; fingerprint256: string };
  /** which TLS connection carried it, numbered from 1 in the order they were accepted */
  connection: number;
}

export interface FakeApnsOptions {
  /** signing keys accepted for token authentication */
  tokenKeys?: { keyId: string; teamId: string; publicKey: KeyObject | string }[];
  /** client certificates (PEM) accepted for certificate authentication */
  clientCertificates?: string[];
  /** listen on this port (default: any free one) */
  port?: number;
  /** the server certificate (default: a new one), to come back at the same port with the same identity */
  certificate?: { cert: string; key: string };
}

export interface FakeApns {
  port: number;
  /** the PEM certificate a client must trust */
  ca: string;
  requests: FakeApnsRequest[];
  /** TLS connections accepted so far */
  connections(): number;
  /** answer every later request to `token` with `answer` */
  script(token: string, answer: FakeApnsAnswer): void;
  close(): Promise<void>;
}

export async function startFakeApns(options: FakeApnsOptions = {}): Promise<FakeApns> {
  const certificate = options.certificate ?? (await makeCertificate("localhost"));
  const keys = (options.tokenKeys ?? []).map((k) => ({
    ...k,
    publicKey: typeof k.publicKey === "string" ? createPublicKey(k.publicKey) : k.publicKey,
  }));
  const clientFingerprints = new Set(
    (options.clientCertificates ?? []).map((pem) => new X509Certificate(pem).fingerprint256),
  );
  const scripted = new Map<string, FakeApnsAnswer>();
  const requests: FakeApnsRequest[] = [];
  const sessions = new Set<ServerHttp2Session>();
  const sessionNumbers = new WeakMap<ServerHttp2Session, number>();
  let connections = 0;

  const server = createSecureServer({
    cert: certificate.cert,
    key: certificate.key,
    ALPNProtocols: ["h2"],
    // asks for a client certificate and decides about it per request (token auth sends none)
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on("secureConnection", () => {
    connections++;
  });
  server.on("session", (session) => {
    sessions.add(session);
    sessionNumbers.set(session, connections);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const connection = sessionNumbers.get(stream.session as ServerHttp2Session) ?? 0;
      answer(stream, headers, Buffer.concat(chunks).toString("utf8"), connection);
    });
  });

  function answer(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, text: string, connection: number) {
    const path = String(headers[":path"]);
    const match = /^\/3\/device\/([^/]+)$/.exec(path);
    const apnsId = typeof headers["apns-id"] === "string" ? headers["apns-id"] : randomUUID();
    const reply = (status: number, reason?: string, extra: Record<string, string> = {}) => {
      stream.respond({ ":status": status, "apns-id": apnsId, ...extra });
      if (reason === undefined) {
        stream.end();
        return;
      }
      const timestamp = status === 410 ? { timestamp: Date.now() } : {};
      stream.end(JSON.stringify({ reason, ...timestamp }));
    };
    if (headers[":method"] !== "POST") return reply(405, "MethodNotAllowed");
    if (!match?.[1]) return reply(404, "BadPath");
    const auth = authenticate(stream, headers);
    if (typeof auth === "string") return reply(403, auth);

    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      return reply(400, "BadPayload");
    }
    requests.push({
      token: match[1],
      method: String(headers[":method"]),
      authority: String(headers[":authority"]),
      headers: regularHeaders(headers),
      body,
      auth,
      connection,
    });
    if (body === undefined) return reply(400, "PayloadEmpty");
    const scriptedAnswer = scripted.get(match[1]);
    if (scriptedAnswer) return reply(scriptedAnswer.status, scriptedAnswer.reason, scriptedAnswer.headers);
    reply(200);
  }

  /** The authentication of a request, or the APNs reason for refusing it. */
  function authenticate(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
  ): FakeApnsRequest["auth"] | string {
    const authorization = headers.authorization;
    if (typeof authorization === "string") {
      const jwt = /^bearer (.+)$/i.exec(authorization)?.[1];
      return (jwt && verifyJwt(jwt)) || "InvalidProviderToken";
    }
    const peer = (stream.session?.socket as TLSSocket | undefined)?.getPeerCertificate();
    if (peer?.fingerprint256 && clientFingerprints.has(peer.fingerprint256)) {
      return { kind: "certificate", fingerprint256: peer.fingerprint256 };
    }
    return clientFingerprints.size > 0 && peer?.fingerprint256 ? "BadCertificate" : "MissingProviderToken";
  }

  /** ES256 as APNs checks it: header `alg`/`kid`, claim `iss` (the team) and a fresh `iat`. */
  function verifyJwt(jwt: string): FakeApnsRequest["auth"] | undefined {
    const [h, p, s] = jwt.split(".");
    if (!h || !p || !s) return undefined;
    try {
      const header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
      const claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
      const key = keys.find((k) => k.keyId === header.kid && k.teamId === claims.iss);
      if (header.alg !== "ES256" || !key) return undefined;
      if (typeof claims.iat !== "number" || Math.abs(Date.now() / 1000 - claims.iat) > 3600) return undefined;
      const signed = Buffer.from(`${h}.${p}`);
      const signature = Buffer.from(s, "base64url");
      if (!verify("sha256", signed, { key: key.publicKey, dsaEncoding: "ieee-p1363" }, signature)) {
        return undefined;
      }
      return { kind: "token", keyId: key.keyId, teamId: key.teamId };
    } catch {
      return undefined;
    }
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as { port: number }).port);
    });
  });

  return {
    port,
    ca: certificate.cert,
    requests,
    connections: () => connections,
    script: (token, answer) => {
      scripted.set(token, answer);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

function regularHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(":") && value !== undefined) out[name] = String(value);
  }
  return out;
}

/**
 * A client certificate and key for certificate authentication, made in the test. An EC key: the sender
 * (apns-credentials.ts) checks key match and expiry of any certificate, and Apple's sandbox/production
 * extensions, which a self-signed certificate cannot carry, on RSA certificates only.
 */
export async function makeEcClientCertificate(): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: "Apple Push Services: test.app" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [{ name: "extKeyUsage", clientAuth: true }],
  });
  return { cert: pems.cert, key: pems.private };
}

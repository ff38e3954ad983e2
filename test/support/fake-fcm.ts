import { generateKeyPairSync, type KeyObject, randomBytes, verify } from "node:crypto";
import { writeFile } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";
import https from "node:https";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";
import { makeCertificate } from "./certificates.ts";

/**
 * A local Firebase Cloud Messaging for the real FCM sender (services/http-utility/src/push/senders/fcm.ts):
 * Google's OAuth 2.0 token endpoint (`POST /token`, the JWT-bearer grant of RFC 7523 that a service account
 * uses, fetched by google-auth-library) and the FCM HTTP v1 API
 * (`POST /v1/projects/{project}/messages:send`, https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send),
 * both on one HTTPS server on 127.0.0.1.
 *
 * The sender has both host names built in (oauth2.googleapis.com, fcm.googleapis.com). It is pointed here by
 * `agent()`: an https.Agent that opens every connection to this server whatever host was asked, keeping that
 * host as the TLS server name, and trusts the test certificate made for those two names; the sender takes it
 * through its test hook (`fcmAgent`) for the token fetch and the sends. Test-only.
 */

export const OAUTH_HOST = "oauth2.googleapis.com";
export const FCM_HOST = "fcm.googleapis.com";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

export interface FakeFcmRequest {
  /** the Host header: the host the SDK meant to reach */
  host: string;
  /** the TLS server name the client sent */
  servername: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** the parsed body: the form of a token request, the JSON of a send */
  body: unknown;
  /** what was answered */
  status: number;
}

export interface FcmAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** FCM v1 error bodies, as FCM writes them (an FcmError detail carries the FCM error code). */
function fcmError(code: number, status: string, message: string, errorCode?: string, extra: unknown[] = []) {
  const details = [...(errorCode ? [{ "@type": FCM_ERROR, errorCode }] : []), ...extra];
  return { error: { code, message, status, ...(details.length ? { details } : {}) } };
}

export const fcmAnswers = {
  unregistered: (): FcmAnswer => ({
    status: 404,
    body: fcmError(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
  }),
  invalidToken: (): FcmAnswer => ({
    status: 400,
    body: fcmError(
      400,
      "INVALID_ARGUMENT",
      "The registration token is not a valid FCM registration token",
      "INVALID_ARGUMENT",
      [
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: [
            {
              field: "message.token",
              description: "The registration token is not a valid FCM registration token",
            },
          ],
        },
      ],
    ),
  }),
  /** a 400 about something else than the token (here the TTL) */
  invalidArgument: (): FcmAnswer => ({
    status: 400,
    body: fcmError(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'", "INVALID_ARGUMENT", [
      {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        fieldViolations: [
          { field: "message.android.ttl", description: "Invalid value at 'message.android.ttl'" },
        ],
      },
    ]),
  }),
  senderIdMismatch: (): FcmAnswer => ({
    status: 403,
    body: fcmError(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
  }),
  /** the service account may not send for this project (IAM), nothing to do with the token */
  permissionDenied: (): FcmAnswer => ({
    status: 403,
    body: fcmError(
      403,
      "PERMISSION_DENIED",
      "Permission 'cloudmessaging.messages.create' denied on resource",
      undefined,
    ),
  }),
  quotaExceeded: (retryAfterSeconds?: number): FcmAnswer => ({
    status: 429,
    body: fcmError(
      429,
      "RESOURCE_EXHAUSTED",
      "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'",
      "QUOTA_EXCEEDED",
    ),
    headers: retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) },
  }),
  unavailable: (retryAfterSeconds?: number): FcmAnswer => ({
    status: 503,
    body: fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
    headers: retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) },
  }),
  internal: (): FcmAnswer => ({
    status: 500,
    body: fcmError(500, "INTERNAL", "Internal error encountered.", "INTERNAL"),
  }),
} satisfies Record<string, (...a: never[]) => FcmAnswer>;

export interface ServiceAccountFile {
  file: string;
  projectId: string;
  clientEmail: string;
}

export interface FakeFcm {
  port: number;
  /** the agent to hand to the SDK: every connection to this server, TLS trusting its certificate */
  agent(): https.Agent;
  /** every request, in order */
  readonly requests: FakeFcmRequest[];
  /** the sends' JSON bodies (`{ message }`), in order */
  sends(): Array<{ message: Record<string, unknown> }>;
  /** the access tokens issued, in order */
  readonly issued: string[];
  /** answers for the next sends to `token`, used in turn; then sends to it succeed again */
  script(token: string, ...answers: FcmAnswer[]): void;
  /** answers for the next token requests, used in turn; then grants are checked again */
  scriptToken(...answers: FcmAnswer[]): void;
  /** a new service-account key trusted by the token endpoint, written as Google writes it */
  addServiceAccount(file: string, projectId: string): Promise<ServiceAccountFile>;
  close(): Promise<void>;
}

export async function startFakeFcm(): Promise<FakeFcm> {
  const certificate = await makeCertificate(FCM_HOST, [FCM_HOST, OAUTH_HOST]);
  const keys = new Map<string, KeyObject>(); // client_email → public key
  const issued: string[] = [];
  const requests: FakeFcmRequest[] = [];
  const scripts = new Map<string, FcmAnswer[]>();
  let tokenScript: FcmAnswer[] = [];
  let nextId = 1;

  function tokenGrant(form: URLSearchParams): FcmAnswer {
    const refuse = (error: string, error_description: string): FcmAnswer => ({
      status: 400,
      body: { error, error_description },
    });
    if (form.get("grant_type") !== JWT_BEARER) return refuse("unsupported_grant_type", "Invalid grant_type");
    const [header, payload, signature, ...rest] = (form.get("assertion") ?? "").split(".");
    if (!header || !payload || !signature || rest.length) return refuse("invalid_request", "Invalid JWT");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const alg = (JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: string }).alg;
    const key = keys.get(String(claims.iss));
    const now = Date.now() / 1000;
    if (!key) return refuse("invalid_grant", "Invalid grant: account not found");
    if (
      alg !== "RS256" ||
      !verify("sha256", Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, "base64url"))
    ) {
      return refuse("invalid_grant", "Invalid JWT Signature.");
    }
    if (claims.aud !== `https://${OAUTH_HOST}/token`) return refuse("invalid_grant", "Invalid JWT audience");
    if (typeof claims.exp !== "number" || claims.exp < now || typeof claims.iat !== "number") {
      return refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token");
    }
    if (!String(claims.scope).split(" ").includes("https://www.googleapis.com/auth/firebase.messaging")) {
      return refuse("invalid_scope", "the firebase.messaging scope is missing");
    }
    const accessToken = `ya29.fake-${randomBytes(12).toString("base64url")}`;
    issued.push(accessToken);
    return { status: 200, body: { access_token: accessToken, expires_in: 3599, token_type: "Bearer" } };
  }

  function messagesSend(project: string, headers: IncomingHttpHeaders, body: unknown): FcmAnswer {
    const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? "")?.[1];
    if (!bearer || !issued.includes(bearer)) {
      return {
        status: 401,
        body: {
          error: {
            code: 401,
            message: "Request had invalid authentication credentials.",
            status: "UNAUTHENTICATED",
          },
        },
      };
    }
    const token = (body as { message?: { token?: unknown } } | undefined)?.message?.token;
    const scripted = typeof token === "string" ? scripts.get(token)?.shift() : undefined;
    return scripted ?? { status: 200, body: { name: `projects/${project}/messages/0:${nextId++}` } };
  }

  const server = https.createServer({ cert: certificate.cert, key: certificate.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "https://x");
      const host = req.headers.host ?? "";
      let body: unknown = text;
      let answer: FcmAnswer;
      const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(url.pathname);
      if (req.method === "POST" && host === OAUTH_HOST && url.pathname === "/token") {
        const form = new URLSearchParams(text);
        body = Object.fromEntries(form);
        answer = tokenScript.shift() ?? tokenGrant(form);
      } else if (req.method === "POST" && host === FCM_HOST && send?.[1]) {
        try {
          body = JSON.parse(text);
        } catch {}
        answer = messagesSend(decodeURIComponent(send[1]), req.headers, body);
      } else {
        answer = { status: 404, body: { error: { code: 404, message: "Not Found", status: "NOT_FOUND" } } };
      }
      const servername = (req.socket as { servername?: string | false }).servername || "";
      requests.push({
        host,
        servername,
        method: req.method ?? "",
        path: url.pathname,
        headers: req.headers,
        body,
        status: answer.status,
      });
      res
        .writeHead(answer.status, { "content-type": "application/json; charset=UTF-8", ...answer.headers })
        .end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    requests,
    issued,
    agent: () => loopbackAgent(port, certificate.cert),
    sends: () =>
      requests.filter((r) => r.host === FCM_HOST).map((r) => r.body as { message: Record<string, unknown> }),
    script(token, ...answers) {
      scripts.set(token, answers);
    },
    scriptToken(...answers) {
      tokenScript = answers;
    },
    async addServiceAccount(file, projectId) {
      const account = await writeServiceAccount(file, projectId);
      keys.set(account.clientEmail, account.publicKey);
      return { file, projectId, clientEmail: account.clientEmail };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * An https.Agent that connects to 127.0.0.1:`port` for any host, sending the asked host as SNI and checking
 * the certificate against it. No connection made through it resolves a name.
 */
export function loopbackAgent(port: number, ca: string): https.Agent {
  class LoopbackAgent extends https.Agent {
    override createConnection(
      options: https.RequestOptions,
      callback?: (err: Error | null, stream: Duplex) => void,
    ): Duplex | null | undefined {
      const asked = options.host ?? options.hostname ?? "";
      const servername = (options as { servername?: string }).servername || asked;
      return super.createConnection({ ...options, host: "127.0.0.1", port, servername }, callback);
    }
  }
  return new LoopbackAgent({ ca, keepAlive: false });
}

/**
 * A Firebase service-account key file (the JSON the Firebase console downloads), its RSA key made here.
 * `token_uri` is Google's: the SDK ignores it anyway.
 */
export async function writeServiceAccount(
  file: string,
  projectId: string,
): Promise<{ clientEmail: string; publicKey: KeyObject }> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const clientEmail = `firebase-adminsdk-${randomBytes(3).toString("hex")}@${projectId}.iam.gserviceaccount.com`;
  const json = {
    type: "service_account",
    project_id: projectId,
    private_key_id: randomBytes(20).toString("hex"),
    private_key: privateKey.export({ type: "pkcs8", format: "pem" }),
    client_email: clientEmail,
    client_id: String(100_000_000_000_000_000_000n + BigInt(randomBytes(4).readUInt32BE())),
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: `https://${OAUTH_HOST}/token`,
    auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
    universe_domain: "googleapis.com",
  };
  await writeFile(file, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600 });
  return { clientEmail, publicKey };
}

/**
 * Fails every name lookup made in this process except loopback names, and lists them: proof that nothing
 * went around the agent to the real Google hosts. `restore()` puts dns.lookup back.
 */
export function refuseDns(): { lookups: string[]; restore(): void } {
  const dns = createRequire(import.meta.url)("node:dns") as { lookup: (...a: unknown[]) => void };
  const original = dns.lookup;
  const lookups: string[] = [];
  dns.lookup = (host: unknown, ...rest: unknown[]) => {
    if (host === "localhost" || host === "127.0.0.1" || host === "::1") return original(host, ...rest);
    lookups.push(String(host));
    const callback = rest.at(-1) as (err: Error) => void;
    const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${String(host)} (refused by the test)`), {
      code: "ENOTFOUND",
    });
    process.nextTick(callback, err);
  };
  return {
    lookups,
    restore() {
      dns.lookup = original;
    },
  };
}

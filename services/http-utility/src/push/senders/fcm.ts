import { createHash, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import https, { type Agent } from "node:https";
import { setTimeout as delay } from "node:timers/promises";
import { fcmCredentials } from "#common/config/push-schema.ts";
import { fromRoot } from "#common/paths.ts";
import { OptionError } from "#common/plugins/problems.ts";
import { type AccessTokens, accessTokens, type ServiceAccountKey } from "./fcm-access-token.ts";
import { outcomeOfAnswer, toFcmMessage, tokenFetchOutcome } from "./fcm-message.ts";
import {
  definePushSender,
  type PushMessage,
  type PushSender,
  type SenderDeps,
  type SendOutcome,
} from "./sender.ts";

/**
 * FCM's HTTP v1 API, `messages.send`, one message a request
 * (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send), over node:https with a
 * keep-alive agent, the OAuth 2.0 access token of the service-account key from fcm-access-token.ts.
 * firebase-admin did this before; it cost a third more CPU per message than the bare request
 * (docs/push.md "Senders").
 *
 * As firebase-admin did, a 503 and a connection reset or timeout are tried again here, up to four times
 * (at once, then after 1, 2, 4 s, or the Retry-After when it asks for at most 60 s); what outlasts that, and
 * every other error, goes to the orchestrator at once.
 */

export default definePushSender({
  kind: "fcm",
  summary: "Firebase Cloud Messaging (Android, and iOS through Firebase)",
  options: fcmCredentials,
  create: (options, ctx) => [
    createFcmSender(options, {
      app: ctx.app,
      log: ctx.log,
      ...(ctx.endpoints?.fcmAgent ? { httpAgent: ctx.endpoints.fcmAgent } : {}),
    }),
  ],
});

export interface FcmSenderOptions {
  serviceAccountFile: string;
  projectId?: string;
}

const FCM_HOST = "fcm.googleapis.com";
/** firebase-admin's timeout of a send. */
const TIMEOUT_MS = 15_000;
const RETRIES = 4;
const MAX_RETRY_DELAY_MS = 60_000;
const RETRY_IO_CODES = new Set(["ECONNRESET", "ETIMEDOUT"]);

/** The token of `check()`'s dry run: well-formed, registered to no device. */
const DRY_RUN_TOKEN = "sidecars-doctor-dry-run-token";

/** One access-token source per key file, shared by the senders using it (one grant, not one per app). */
const shared = new Map<string, { tokens: AccessTokens; users: number }>();

type Answer = { status: number; body: string; retryAfter: string | undefined };

export function createFcmSender(
  options: FcmSenderOptions,
  deps: SenderDeps & { httpAgent?: Agent },
): PushSender {
  const file = fromRoot(options.serviceAccountFile);
  const json = readServiceAccount(options.serviceAccountFile, file);
  const projectId = options.projectId ?? json.project_id;
  if (typeof projectId !== "string" || !projectId) {
    throw new Error(
      `push.apps.${deps.app}.fcm: no projectId and no project_id in ${options.serviceAccountFile}`,
    );
  }
  const key = signingKey(options.serviceAccountFile, json);
  // without a test agent, one of our own: connections kept open, the most recently used first (as Node's
  // global agent), the others left to FCM's idle timeout
  const agent = deps.httpAgent ?? new https.Agent({ keepAlive: true, scheduling: "lifo" });
  const name = createHash("sha256").update(file).digest("hex");
  let entry = shared.get(name);
  if (!entry) {
    // the test agent of the first sender of a key file serves the grants of all of them; without one,
    // google-auth-library's own transport
    entry = { tokens: accessTokens(key, deps.httpAgent), users: 0 };
    shared.set(name, entry);
  }
  entry.users++;
  const { tokens } = entry;
  const path = `/v1/projects/${encodeURIComponent(projectId)}/messages:send`;
  const log = deps.log.child({ push: "fcm", app: deps.app });
  let closed = false;

  function post(authorization: string, body: string): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const req = https.request(
        {
          host: FCM_HOST,
          method: "POST",
          path,
          agent,
          timeout: TIMEOUT_MS,
          headers: {
            authorization,
            "content-type": "application/json; charset=utf-8",
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("error", reject);
          res.on("end", () => {
            const retryAfter = res.headers["retry-after"];
            resolve({ status: res.statusCode ?? 0, body: text, retryAfter });
          });
        },
      );
      req.on("timeout", () => req.destroy(Object.assign(new Error("FCM timed out"), { code: "ETIMEDOUT" })));
      req.on("error", reject);
      req.end(body);
    });
  }

  /** One message to FCM, tried again as firebase-admin did; the answer, or the network error's outcome. */
  async function request(body: string): Promise<SendOutcome> {
    let authorization: string;
    try {
      authorization = await tokens.authorization();
    } catch (err) {
      return tokenFetchOutcome(err);
    }
    for (let retries = 0; ; retries++) {
      let answer: Answer | undefined;
      let ioCode: string | undefined;
      try {
        answer = await post(authorization, body);
      } catch (err) {
        ioCode = String((err as NodeJS.ErrnoException).code ?? "unknown");
      }
      if (answer?.status === 200) return sentOutcome(answer.body);
      const again = answer ? answer.status === 503 : RETRY_IO_CODES.has(ioCode as string);
      if (again && retries < RETRIES) {
        const asked = answer ? retryAfterDelay(answer.retryAfter) : 0;
        const wait = asked > 0 ? asked : retries === 0 ? 0 : 2 ** retries * 500;
        if (wait <= MAX_RETRY_DELAY_MS) {
          if (wait > 0) await delay(wait);
          continue;
        }
      }
      if (!answer) return { status: "retry", reason: `network: ${ioCode}` };
      // an access token FCM no longer takes: the next send asks for a new one
      if (answer.status === 401) tokens.forget();
      return outcomeOfAnswer(answer.status, answer.body, answer.retryAfter);
    }
  }

  return {
    service: "fcm",
    async send(token, message) {
      if (closed) throw new Error(`FCM sender of ${deps.app} is closed`);
      const outcome = await request(JSON.stringify({ message: toFcmMessage(token, message) }));
      if (outcome.status === "sent") {
        if (log.isLevelEnabled("debug"))
          log.debug({ tokenPrefix: token.slice(0, 8), ...outcome }, "fcm send");
        return outcome;
      }
      // never the whole token, nor a request (token, bearer)
      const line = { tokenPrefix: token.slice(0, 8), ...outcome };
      if (outcome.status === "failed") log.warn(line, "fcm send failed");
      else log.debug(line, "fcm send");
      return outcome;
    },
    /**
     * FCM's dry run (`validate_only`) to a made-up token: an answer about the token means the access token was
     * granted and the project accepts our key; nothing reaches a device.
     */
    async check() {
      const message: PushMessage = { title: "check" };
      const outcome = await request(
        JSON.stringify({ validate_only: true, message: toFcmMessage(DRY_RUN_TOKEN, message) }),
      );
      if (outcome.status === "sent" || outcome.status === "dead_token") {
        return { status: "ok", detail: "credentials accepted (a dry run to a made-up token)" };
      }
      if (outcome.status === "retry") return { status: "unreachable", detail: `dry run: ${outcome.reason}` };
      return { status: "refused", detail: `dry run refused: ${outcome.reason}` };
    },
    async close() {
      if (closed) return;
      closed = true;
      const current = shared.get(name);
      if (current && --current.users === 0) shared.delete(name);
      if (!deps.httpAgent) agent.destroy();
    },
  };
}

/** FCM's answer to a send, `{ name: "projects/…/messages/…" }`: the message id. */
function sentOutcome(body: string): SendOutcome {
  let id: unknown;
  try {
    id = (JSON.parse(body) as { name?: unknown }).name;
  } catch {}
  return { status: "sent", ...(typeof id === "string" ? { id } : {}) };
}

/** Retry-After as firebase-admin read it: whole seconds or an HTTP-date; 0 when absent or past. */
function retryAfterDelay(value: string | undefined): number {
  if (!value) return 0;
  const seconds = Number.parseInt(value, 10);
  if (!Number.isNaN(seconds)) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now());
}

function readServiceAccount(configured: string, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new OptionError(
      "serviceAccountFile",
      `cannot read ${configured} (${(err as NodeJS.ErrnoException).code}): fix the path or the file's permissions`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {}
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new OptionError(
      "serviceAccountFile",
      `${configured} is not a service-account JSON key: download the key again from the Firebase console`,
    );
  }
  return json as Record<string, unknown>;
}

function signingKey(configured: string, key: Record<string, unknown>): ServiceAccountKey {
  if (typeof key.client_email !== "string" || typeof key.private_key !== "string") {
    throw new OptionError(
      "serviceAccountFile",
      `${configured} has no client_email or no private_key: download the key again from the Firebase console`,
    );
  }
  try {
    createPrivateKey(key.private_key);
  } catch (err) {
    throw new OptionError(
      "serviceAccountFile",
      `the private_key of ${configured} cannot be read (${(err as Error).message}): download the key again`,
    );
  }
  return key as unknown as ServiceAccountKey;
}

import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { hashBytes } from "#common/credentials/hmac.ts";
import type { Logger } from "#common/logger.ts";
import type { Jid } from "#common/users/jid.ts";
import type { AuthApi } from "../core/auth-core.ts";
import { parseParams, rawQuery } from "./params.ts";

/**
 * MongooseIM's HTTP auth contract (ejabberd_auth_http, docs/auth.md "The contract"), also spoken by
 * Prosody's mod_auth_http. Every answer has Content-Length and a byte-exact body; only the codes MongooseIM
 * knows (200, 201, 400, 401, 403, 404, 409) are used: 2.1.0 crashes on any other, so an internal failure is a
 * 400 with a short reason, never a 5xx.
 *
 * This is a plain node:http handler in front of the Express app, not an Express router: it is the path
 * MongooseIM takes on every login, and Express's routing, request logger and response helpers cost more than
 * everything else on it (test/bench/auth-*.bench.ts). Its metrics are the core's per-domain histogram.
 */

const MAX_BODY = 16 * 1024;

/** Head and body in one write: node:http joins a string body to the head, a Buffer body goes as a second write. */
function answer(res: ServerResponse, status: number, body = ""): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body, "utf8"),
  });
  res.end(body, "utf8");
}

const digest = (s: string): Buffer => hashBytes("sha256", s);

type Params = { jid: Jid; pass: string | undefined };

const PASSWORD_REQUIRED = new Set(["check_password", "set_password", "register", "remove_user_validate"]);

function readParams(raw: string, method: string): Params | string {
  const params = parseParams(raw);
  if (!params) return "bad_request: not UTF-8";
  const user = params.get("user");
  const server = params.get("server");
  const pass = params.get("pass");
  if (user === undefined || server === undefined) return "bad_request: user and server are required";
  if (pass === undefined && PASSWORD_REQUIRED.has(method)) return "bad_request: pass is required";
  return { jid: { node: user.toLowerCase(), domain: server.toLowerCase() }, pass };
}

const METHODS: Record<string, (core: AuthApi, p: Params, res: ServerResponse) => Promise<void>> = {
  async check_password(core, { jid, pass }, res) {
    answer(res, 200, (await core.checkPassword(jid, pass ?? "")) ? "true" : "false");
  },
  async get_password(core, { jid }, res) {
    const password = await core.getPassword(jid);
    if (password === undefined) answer(res, 404, "");
    else answer(res, 200, password);
  },
  async user_exists(core, { jid }, res) {
    answer(res, 200, (await core.userExists(jid)) ? "true" : "false");
  },
  async set_password(core, { jid, pass }, res) {
    const r = await core.setPassword(jid, pass ?? "");
    answer(res, r === "ok" ? 200 : r === "unknown_user" ? 404 : 403, r === "ok" ? "" : r);
  },
  async register(core, { jid, pass }, res) {
    const r = await core.register(jid, pass ?? "");
    answer(res, r === "created" ? 201 : r === "exists" ? 409 : 403, r === "created" ? "" : r);
  },
  async remove_user(core, { jid }, res) {
    const r = await core.removeUser(jid);
    answer(res, r === "removed" ? 200 : r === "unknown_user" ? 404 : 403, r === "removed" ? "" : r);
  },
  async remove_user_validate(core, { jid, pass }, res) {
    const r = await core.removeUserValidate(jid, pass ?? "");
    answer(res, r === "removed" ? 200 : r === "unknown_user" ? 404 : 403, r === "removed" ? "" : r);
  },
  // certificate login (SASL EXTERNAL) is not offered: MongooseIM treats anything but 200 as "no certificates"
  async get_certs(_core, _p, res) {
    answer(res, 404, "not_supported");
  },
};

/** The request's body, at most MAX_BODY bytes; undefined when larger (the rest is not read). */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.removeAllListeners("data");
        req.pause();
        resolve(undefined);
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/**
 * Returns a handler that answers the requests under `pathPrefix` and returns true, or returns false for
 * anything else (the Express app answers those).
 */
export function contractHandler(deps: {
  core: AuthApi;
  pathPrefix: string;
  basicAuth?: string | undefined;
  log: Logger;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const want = deps.basicAuth ? digest(`Basic ${Buffer.from(deps.basicAuth).toString("base64")}`) : undefined;
  const prefix = deps.pathPrefix;

  async function handle(req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
    // Basic auth compared in constant time (digests of equal length, whatever was sent)
    if (want && !timingSafeEqual(digest(req.headers.authorization ?? ""), want)) {
      res.setHeader("www-authenticate", 'Basic realm="xmpp-sidecars auth"');
      return answer(res, 401, "unauthorized");
    }
    const q = url.indexOf("?");
    const method = url.slice(prefix.length, q < 0 ? undefined : q);
    const handler = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined;
    if (!handler || (req.method !== "GET" && req.method !== "POST"))
      return answer(res, 404, "unknown_method");
    // POST carries its parameters as a body without Content-Type; GET (and a body-less POST) in the query
    const body = req.method === "POST" ? await readBody(req) : Buffer.alloc(0);
    if (body === undefined) {
      res.setHeader("connection", "close");
      return answer(res, 400, "bad_request: body over 16 KiB");
    }
    const params = readParams(body.length > 0 ? body.toString("latin1") : rawQuery(url), method);
    if (typeof params === "string") return answer(res, 400, params);
    try {
      await handler(deps.core, params, res);
    } catch (err) {
      deps.log.error(
        { err: (err as Error).message, method, domain: params.jid.domain },
        "auth backend failed",
      );
      if (!res.headersSent) answer(res, 400, "internal_error");
    }
  }

  return (req, res) => {
    const url = req.url ?? "/";
    if (!url.startsWith(prefix)) return false;
    handle(req, res, url).catch((err: Error) => {
      deps.log.error({ err: err.message }, "auth request failed");
      if (!res.headersSent) answer(res, 400, "bad_request");
    });
    return true;
  };
}

import { createHash, timingSafeEqual } from "node:crypto";
import express, { type ErrorRequestHandler, type Request, type Response, Router } from "express";
import type { Logger } from "../../../common/src/logger.ts";
import type { Jid } from "../../../common/src/users/jid.ts";
import type { AuthApi } from "../auth-service.ts";
import { parseParams, queryBytes } from "./params.ts";

/**
 * MongooseIM's HTTP auth contract (ejabberd_auth_http, ../shared/mongooseim-contract.md §1), also spoken by
 * Prosody's mod_auth_http. Every answer has Content-Length and a byte-exact body; only the codes MongooseIM
 * knows (200, 201, 400, 401, 403, 404, 409) are used: 2.1.0 crashes on any other, so an internal failure is a
 * 400 with a short reason, never a 5xx.
 */

function answer(res: Response, status: number, body = ""): void {
  const bytes = Buffer.from(body, "utf8");
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": bytes.length });
  res.end(bytes);
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Basic auth compared in constant time (digests of equal length, whatever was sent). */
function basicAuthCheck(expected: string | undefined) {
  const want = expected ? digest(`Basic ${Buffer.from(expected).toString("base64")}`) : undefined;
  return (req: Request, res: Response, next: () => void) => {
    if (!want) return next();
    const got = digest(req.headers.authorization ?? "");
    if (timingSafeEqual(got, want)) return next();
    res.setHeader("www-authenticate", 'Basic realm="xmpp-sidecars auth"');
    answer(res, 401, "unauthorized");
  };
}

type Params = { jid: Jid; pass: string | undefined };

const PASSWORD_REQUIRED = new Set(["check_password", "set_password", "register", "remove_user_validate"]);

function readParams(req: Request, method: string): Params | string {
  const body = req.body instanceof Buffer && req.body.length > 0 ? req.body : undefined;
  const params = parseParams(body ?? queryBytes(req.originalUrl));
  if (!params) return "bad_request: not UTF-8";
  const user = params.get("user");
  const server = params.get("server");
  const pass = params.get("pass");
  if (user === undefined || server === undefined) return "bad_request: user and server are required";
  if (pass === undefined && PASSWORD_REQUIRED.has(method)) return "bad_request: pass is required";
  return { jid: { node: user.toLowerCase(), domain: server.toLowerCase() }, pass };
}

const METHODS: Record<string, (core: AuthApi, p: Params, res: Response) => Promise<void>> = {
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

export function authorizeRouter(deps: {
  core: AuthApi;
  basicAuth?: string | undefined;
  log: Logger;
}): Router {
  const router = Router();
  router.use(basicAuthCheck(deps.basicAuth));
  // POST carries no Content-Type: read any body as bytes
  router.use(express.raw({ type: () => true, limit: "16kb" }));
  router.all("/:method", async (req, res) => {
    const method = String(req.params.method);
    const handler = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined;
    if (!handler || (req.method !== "GET" && req.method !== "POST"))
      return answer(res, 404, "unknown_method");
    const params = readParams(req, method);
    if (typeof params === "string") return answer(res, 400, params);
    try {
      await handler(deps.core, params, res);
    } catch (err) {
      (req.log ?? deps.log).error(
        { err: (err as Error).message, method, domain: params.jid.domain },
        "auth backend failed",
      );
      if (!res.headersSent) answer(res, 400, "internal_error");
    }
  });
  router.use((_req, res) => answer(res, 404, "unknown_method"));
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const tooLarge = (err as { type?: string }).type === "entity.too.large";
    if (!res.headersSent) answer(res, 400, tooLarge ? "bad_request: body over 16 KiB" : "bad_request");
  };
  router.use(onError);
  return router;
}

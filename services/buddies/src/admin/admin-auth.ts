import { timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import type { Config } from "#common/config/schema.ts";
import { hashBytes } from "#common/credentials/hmac.ts";
import { errors } from "../errors.ts";

/**
 * Who may use the admin API and page: the holders of the keys under `services.buddies.admins` (made by
 * `sidecars buddies admin-key <name>`), as HTTP Basic `name:key` (the browser asks for it) or
 * `Authorization: Bearer <key>`. Browsers resend Basic credentials to any page that posts here, so a
 * state-changing request from another origin is refused (CSRF).
 */

type Admins = Config["services"]["buddies"]["admins"];

const sha256 = (s: string) => hashBytes("sha256", s);

/** The name of the admin whose key this is, or undefined. */
export function adminOf(admins: Admins, header: string | undefined): string | undefined {
  if (!header) return undefined;
  let key: string | undefined;
  let name: string | undefined;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (basic?.[1]) {
    const decoded = Buffer.from(basic[1], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 1) return undefined;
    name = decoded.slice(0, colon);
    key = decoded.slice(colon + 1);
  } else if (bearer?.[1]) {
    key = bearer[1];
  }
  if (!key) return undefined;
  const presented = sha256(key);
  for (const [n, a] of Object.entries(admins)) {
    if (name !== undefined && n !== name) continue;
    if (timingSafeEqual(presented, Buffer.from(a.sha256, "hex"))) return n;
  }
  return undefined;
}

export function requireAdmin(admins: () => Admins): RequestHandler {
  return (req, res, next) => {
    const current = admins();
    const admin = adminOf(current, req.headers.authorization);
    if (!admin) {
      next(Object.keys(current).length === 0 ? errors.noAdminKeys() : errors.invalidAdminKey());
      return;
    }
    res.locals.admin = admin;
    next();
  };
}

/** State changes only from this origin (or from tools that send no Origin, such as curl). */
export const sameOrigin: RequestHandler = (req, _res, next) => {
  if (req.method === "GET" || req.method === "HEAD") {
    next();
    return;
  }
  const site = req.headers["sec-fetch-site"];
  const origin = req.headers.origin;
  const host = req.headers.host;
  let foreignOrigin = false;
  try {
    foreignOrigin =
      origin !== undefined && origin !== "null" && host !== undefined && new URL(origin).host !== host;
  } catch {
    foreignOrigin = true; // not even a URL
  }
  if (
    (site !== undefined && site !== "same-origin" && site !== "none") ||
    foreignOrigin ||
    origin === "null"
  ) {
    next(errors.crossOrigin());
    return;
  }
  next();
};

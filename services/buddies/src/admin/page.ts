import { readFileSync } from "node:fs";
import { type Response, Router } from "express";

/**
 * The admin web page of the buddies service, the operator console: one HTML file, three script modules
 * (admin.js: buddies; console.js: users, domains, lockouts, retention; common.js: what both use), one
 * stylesheet, no build step.
 * Mounted after the admin authentication, so the browser has already answered the Basic challenge; the
 * page talks only to the same origin's `/api`. The policy below allows nothing inline and nothing from
 * another origin, so text that reaches the page from a buddy (errors, log lines) can never run as code.
 */

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
};

// read once: the files change only with a deploy, which restarts the process
const INDEX_HTML = readFileSync(new URL("./page/index.html", import.meta.url), "utf8");
const SCRIPTS: Record<string, string> = Object.fromEntries(
  ["admin.js", "console.js", "common.js"].map((f) => [
    f,
    readFileSync(new URL(`./page/${f}`, import.meta.url), "utf8"),
  ]),
);
const ADMIN_CSS = readFileSync(new URL("./page/admin.css", import.meta.url), "utf8");

function send(res: Response, type: string, body: string): void {
  res.set(HEADERS).type(type).send(body);
}

export function adminPageRouter(): Router {
  const router = Router();
  router.get("/", (req, res) => {
    // the page's relative URLs (admin.js, admin.css) need the trailing slash: /admin → /admin/
    const url = new URL(req.originalUrl, "http://localhost");
    if (!url.pathname.endsWith("/")) {
      res.redirect(301, `${url.pathname.split("/").pop()}/${url.search}`);
      return;
    }
    send(res, "text/html; charset=utf-8", INDEX_HTML);
  });
  for (const [file, body] of Object.entries(SCRIPTS)) {
    router.get(`/${file}`, (_req, res) => send(res, "text/javascript; charset=utf-8", body));
  }
  router.get("/admin.css", (_req, res) => send(res, "text/css; charset=utf-8", ADMIN_CSS));
  return router;
}

import { createRequire } from "node:module";
import path from "node:path";
import express, { type RequestHandler, Router } from "express";
import type { OpenApiDocument } from "./document.ts";

/**
 * `/api/docs`: the OpenAPI document as JSON (`openapi.json`) and a Swagger UI page that renders it. The page
 * is served from swagger-ui-dist's own files with our index and initializer, so it loads nothing from any
 * other origin; its Content-Security-Policy says so to the browser.
 */

// absolute-path.js only: the package's index would load the whole 1.5 MB UI bundle into every worker
const require = createRequire(import.meta.url);
const getAbsoluteFSPath = require("swagger-ui-dist/absolute-path.js") as () => string;
const SWAGGER_UI_DIR = getAbsoluteFSPath();

/** The files of swagger-ui-dist the page uses; nothing else of that folder is served. */
const ASSETS = new Set([
  "swagger-ui.css",
  "index.css",
  "swagger-ui-bundle.js",
  "favicon-32x32.png",
  "favicon-16x16.png",
]);

// Self only. `data:` images because swagger-ui.css draws its icons as data: URLs; scripts and styles come
// from files of this origin, never inline.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join("; ");

const INDEX_HTML = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>xmpp-sidecars API</title>
    <link rel="stylesheet" href="./swagger-ui.css">
    <link rel="stylesheet" href="./index.css">
    <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="./favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js"></script>
    <script src="./swagger-initializer.js"></script>
  </body>
</html>
`;

// In a file of its own: the policy allows no inline script. No validator badge (it would call
// validator.swagger.io), no ?url= or ?configUrl= (a page that loads any document it is given is an XSS risk).
const INITIALIZER_JS = `"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "./openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    queryConfigEnabled: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
`;

export function apiDocsRouter(document: OpenApiDocument): Router {
  const json = JSON.stringify(document);
  const router = Router();
  router.use((_req, res, next) => {
    res.set({ "content-security-policy": CONTENT_SECURITY_POLICY, "x-content-type-options": "nosniff" });
    next();
  });

  router.get("/openapi.json", (_req, res) => {
    res.type("application/json").set("cache-control", "no-cache").send(json);
  });

  router.get("/", (req, res) => {
    // the page's relative URLs (./openapi.json, ./swagger-ui.css) need the trailing slash: /api/docs → /api/docs/
    const url = new URL(req.originalUrl, "http://localhost");
    if (!url.pathname.endsWith("/")) {
      res.redirect(301, `${path.posix.basename(url.pathname)}/${url.search}`);
      return;
    }
    res.type("html").set("cache-control", "no-cache").send(INDEX_HTML);
  });

  router.get("/swagger-initializer.js", (_req, res) => {
    res.type("text/javascript").set("cache-control", "no-cache").send(INITIALIZER_JS);
  });

  const files = express.static(SWAGGER_UI_DIR, { index: false, redirect: false, maxAge: "1d" });
  const assets: RequestHandler = (req, res, next) => {
    if (ASSETS.has(String(req.params.asset))) files(req, res, next);
    else next();
  };
  router.get("/:asset", assets);
  return router;
}

import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { z } from "zod";
import { fromRoot } from "../../paths.ts";
import type { Authenticator, AuthenticatorDeps, CheckResult } from "./authenticator.ts";

/**
 * A generic REST backend: POST JSON `{ username, domain, password }`; 200 with `{ "ok": true }` means yes,
 * 200 `{ "ok": false }` or 401/403/404 means no; anything else (5xx, timeout, nonsense) means "could not
 * tell" and throws, so a backend outage is never mistaken for a wrong password.
 */
export const httpOptionsSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }).describe("where password checks are POSTed"),
    userExistsUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe("POST { username, domain } answers { ok } (without it user_exists is false for this domain)"),
    timeoutMs: z.number().int().min(50).max(30_000).default(1500),
    headers: z.record(z.string(), z.string()).default({}),
    tls: z
      .object({ ca: z.string().min(1).optional(), rejectUnauthorized: z.boolean().default(true) })
      .strict()
      .default({ rejectUnauthorized: true }),
  })
  .strict();

export type HttpOptions = z.infer<typeof httpOptionsSchema>;

export class BackendError extends Error {
  override name = "BackendError";
}

function postJson(
  url: string,
  body: unknown,
  o: HttpOptions,
  ca: Buffer | undefined,
): Promise<{ status: number; json: unknown }> {
  const payload = Buffer.from(JSON.stringify(body));
  const target = new URL(url);
  const lib = target.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method: "POST",
        headers: { ...o.headers, "content-type": "application/json", "content-length": payload.length },
        timeout: o.timeoutMs,
        ...(target.protocol === "https:" ? { ca, rejectUnauthorized: o.tls.rejectUnauthorized } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > 64 * 1024) req.destroy(new BackendError("backend answer over 64 KiB"));
          else chunks.push(c);
        });
        res.on("end", () => {
          let json: unknown;
          try {
            json = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new BackendError(`backend did not answer within ${o.timeoutMs} ms`)));
    req.on("error", (err) =>
      reject(err instanceof BackendError ? err : new BackendError(`backend unreachable: ${err.message}`)),
    );
    req.end(payload);
  });
}

const isOk = (json: unknown) =>
  typeof json === "object" && json !== null && (json as { ok?: unknown }).ok === true;

export function createHttpAuthenticator(
  rawOptions: Record<string, unknown>,
  deps: AuthenticatorDeps,
): Authenticator {
  const o = httpOptionsSchema.parse(rawOptions);
  const ca = o.tls.ca ? readFileSync(fromRoot(o.tls.ca)) : undefined;
  if (!o.userExistsUrl)
    deps.log.warn(
      { domain: deps.domain },
      "http authenticator without userExistsUrl: user_exists answers false",
    );
  return {
    kind: "http",
    async checkPassword(jid, password): Promise<CheckResult> {
      const { status, json } = await postJson(
        o.url,
        { username: jid.node, domain: jid.domain, password },
        o,
        ca,
      );
      if (status === 200) return isOk(json) ? { ok: true } : { ok: false, reason: "bad_password" };
      if (status === 401 || status === 403) return { ok: false, reason: "bad_password" };
      if (status === 404) return { ok: false, reason: "unknown_user" };
      throw new BackendError(`backend answered ${status}`);
    },
    async userExists(jid) {
      if (!o.userExistsUrl) return false;
      const { status, json } = await postJson(
        o.userExistsUrl,
        { username: jid.node, domain: jid.domain },
        o,
        ca,
      );
      if (status === 200) return isOk(json);
      if (status === 404) return false;
      throw new BackendError(`backend answered ${status}`);
    },
  };
}

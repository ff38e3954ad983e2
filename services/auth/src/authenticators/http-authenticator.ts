import { z } from "zod";
import { createOutboundPolicy, type OutboundPolicy, outboundRequest } from "#common/http/outbound-address.ts";
import { readOptionFile } from "#common/plugins/problems.ts";
import {
  type Authenticator,
  type AuthenticatorDeps,
  type CheckResult,
  defineAuthenticator,
} from "./authenticator.ts";

/**
 * A generic REST backend: POST JSON `{ username, domain, password }`; 200 with `{ "ok": true }` means yes,
 * 200 `{ "ok": false }` or 401/403/404 means no; anything else (5xx, timeout, nonsense) means "could not
 * tell" and throws, so a backend outage is never mistaken for a wrong password. The backend must be on a
 * public address unless `allowTargets` lists it (outbound-address.ts): a config that names a private or
 * loopback service says so explicitly, and a name that resolves there is refused at each connection.
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
    allowTargets: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "hosts, IP addresses or CIDR blocks of the backend allowed although loopback, private or link-local",
      ),
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

async function postJson(
  url: string,
  body: unknown,
  o: HttpOptions,
  ca: Buffer | undefined,
  policy: OutboundPolicy,
): Promise<{ status: number; json: unknown }> {
  let answer: { status: number; body: string };
  try {
    answer = await outboundRequest(url, {
      method: "POST",
      headers: { ...o.headers, "content-type": "application/json" },
      body: JSON.stringify(body),
      timeoutMs: o.timeoutMs,
      policy,
      maxAnswerBytes: 64 * 1024,
      tls: { ca, rejectUnauthorized: o.tls.rejectUnauthorized },
    });
  } catch (err) {
    const e = err as Error & { reason?: string };
    if (e.reason === "timeout") throw new BackendError(`backend did not answer within ${o.timeoutMs} ms`);
    if (e.reason === "too_large") throw new BackendError("backend answer over 64 KiB");
    throw new BackendError(`backend unreachable: ${e.message}`);
  }
  let json: unknown;
  try {
    json = answer.body ? JSON.parse(answer.body) : undefined;
  } catch {
    json = undefined;
  }
  return { status: answer.status, json };
}

const isOk = (json: unknown) =>
  typeof json === "object" && json !== null && (json as { ok?: unknown }).ok === true;

export default defineAuthenticator({
  kind: "http",
  summary: "a REST backend: POST { username, domain, password }, answered { ok }",
  options: httpOptionsSchema,
  create: (options, deps) => createHttpAuthenticator(options, deps),
});

/** The http authenticator of parsed options: also what a per-domain module wraps (externals-auth/). */
export function createHttpAuthenticator(o: HttpOptions, deps: AuthenticatorDeps): Authenticator {
  const ca = o.tls.ca ? readOptionFile("tls.ca", o.tls.ca) : undefined;
  const policy = createOutboundPolicy(
    o.allowTargets,
    `domains.${deps.domain}.authenticator.options.allowTargets`,
  );
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
        policy,
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
        policy,
      );
      if (status === 200) return isOk(json);
      if (status === 404) return false;
      throw new BackendError(`backend answered ${status}`);
    },
  };
}

import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { errors } from "../errors.ts";
import type { KindContext, MessageContext } from "./kind.ts";
import { bareJid, type Recipients } from "./recipients.ts";

/**
 * The Zabbix preset of the `notify` kind. A Zabbix webhook media type (its script POSTs JSON built from
 * macros such as {EVENT.ID}, {ALERT.SUBJECT}) calls the hook `zabbix`; the buddy writes the alert to its
 * recipients and takes `ack <id>` / `resolve <id>` back, reporting them to Zabbix's JSON-RPC API
 * (event.acknowledge, https://www.zabbix.com/documentation/current/en/manual/api/reference/event/acknowledge)
 * or, as plain JSON, to any endpoint that wants them.
 */

const REPORT_ATTEMPTS = 3;
const BACKOFF_MS = [200, 600];
const ATTEMPT_TIMEOUT_MS = 10_000;
/** Event ids announced lately, to tell a user who acks a mistyped id. */
const REMEMBERED = 1000;
/** event.acknowledge `action` bits: 1 close problem, 2 acknowledge, 4 add message. */
const ACTION_BITS = { ack: 2 | 4, resolve: 1 | 2 | 4 } as const;
const SEVERITIES = ["Not classified", "Information", "Warning", "Average", "High", "Disaster"];

const report = z
  .object({
    url: z.url({ protocol: /^https?$/ }).describe("Zabbix's api_jsonrpc.php, or the endpoint taking JSON"),
    format: z.enum(["zabbix-api", "json"]).describe('"zabbix-api": event.acknowledge; "json": a plain POST'),
    tokenEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name such as ZABBIX_API_TOKEN")
      .optional()
      .describe("environment variable holding the API token, sent as `Authorization: Bearer`"),
  })
  .strict()
  .refine((r) => r.format !== "zabbix-api" || r.tokenEnv, {
    path: ["tokenEnv"],
    message: "the Zabbix API needs a token: name the environment variable that holds it",
  });

/** Options of the preset, next to `preset: "zabbix"` in the notify kind's options. */
export const zabbixOptionFields = {
  to: z.array(bareJid).min(1).max(100).optional().describe("who gets alerts whose webhook body has no `to`"),
  report: report.optional().describe("where ack and resolve go; without it alerts are one-way"),
};

export interface ZabbixOptions {
  to?: string[];
  report?: z.output<typeof report>;
}

const eventId = z
  .union([z.string().trim(), z.number().int().nonnegative()])
  .transform(String)
  .pipe(z.string().regex(/^\d{1,20}$/, "a numeric event id (is {EVENT.ID} in the media type's parameters?)"));

const text = (max: number) =>
  z.union([z.string(), z.number()]).transform((v) => String(v).trim().slice(0, max));

/** What the media type's script sends; lenient about types, since macros arrive as strings. */
export const zabbixWebhook = z.preprocess(
  (v) => {
    if (typeof v !== "object" || v === null || "eventId" in v) return v;
    const o = v as Record<string, unknown>;
    return { ...o, eventId: o.eventid ?? o.event_id };
  },
  z.object({
    eventId,
    subject: text(1000).pipe(z.string().min(1, "the alert's subject ({ALERT.SUBJECT})")),
    message: text(10_000).optional(),
    severity: text(64).optional(),
    host: text(255).optional(),
    status: text(32).optional(),
    recovery: z.union([z.boolean(), z.string(), z.number()]).optional(),
    to: z.union([bareJid.transform((j) => [j]), z.array(bareJid).min(1).max(100)]).optional(),
  }),
);
export type ZabbixAlert = z.output<typeof zabbixWebhook>;

function statusOf(a: ZabbixAlert): "PROBLEM" | "RESOLVED" | "UPDATE" {
  const recovery = a.recovery === true || ["1", "true", "yes"].includes(String(a.recovery).toLowerCase());
  const status = a.status?.toUpperCase();
  if (recovery || status === "RESOLVED" || status === "OK") return "RESOLVED";
  return status === "UPDATE" ? "UPDATE" : "PROBLEM";
}

export function formatAlert(a: ZabbixAlert, answerable: boolean): string {
  const status = statusOf(a);
  const severity = a.severity && /^[0-5]$/.test(a.severity) ? SEVERITIES[Number(a.severity)] : a.severity;
  const head = `${status}${severity ? ` [${severity}]` : ""}${a.host ? ` on ${a.host}` : ""}: ${a.subject}`;
  const lines = [head];
  if (a.message && a.message !== a.subject) lines.push(a.message);
  lines.push(
    answerable && status !== "RESOLVED"
      ? `event ${a.eventId}: answer "ack ${a.eventId}" or "resolve ${a.eventId}"`
      : `event ${a.eventId}`,
  );
  return lines.join("\n");
}

type Action = keyof typeof ACTION_BITS;
type Outcome = { ok: true } | { ok: false; reason: string };

interface Report {
  eventId: string;
  action: Action;
  by: string;
  comment: string;
}

function requestBody(format: "zabbix-api" | "json", r: Report): unknown {
  if (format === "json")
    return { eventId: r.eventId, action: r.action, by: r.by, comment: r.comment || null };
  const done = r.action === "ack" ? "acknowledged" : "resolved";
  const message = (r.comment ? `${r.comment}, by ${r.by}` : `${done} by ${r.by}`).slice(0, 2048);
  return {
    jsonrpc: "2.0",
    method: "event.acknowledge",
    params: { eventids: [r.eventId], action: ACTION_BITS[r.action], message },
    id: 1,
  };
}

/** Why a request got no answer: undici hides the socket error in `cause`. */
function networkReason(err: unknown): string {
  const e = err as Error & { cause?: { message?: string } };
  if (e.name === "TimeoutError") return `no answer in ${ATTEMPT_TIMEOUT_MS / 1000}s`;
  return e.cause?.message ?? e.message;
}

/** What an answer means; `retry` for the ones worth another attempt (5xx). */
function judge(format: "zabbix-api" | "json", status: number, text: string): Outcome & { retry?: boolean } {
  const excerpt = text.trim().slice(0, 200);
  if (status >= 500) return { ok: false, retry: true, reason: `HTTP ${status}` };
  if (status < 200 || status > 299)
    return { ok: false, reason: `HTTP ${status}${excerpt ? ` ${excerpt}` : ""}` };
  if (format === "json") return { ok: true };
  // JSON-RPC errors (bad token, no permission, manual close not allowed) come with HTTP 200
  let answer: { result?: unknown; error?: { message?: string; data?: string } };
  try {
    answer = JSON.parse(text);
  } catch {
    return { ok: false, reason: `not a JSON-RPC answer: ${excerpt}` };
  }
  if (answer.error)
    return { ok: false, reason: [answer.error.message, answer.error.data].filter(Boolean).join(" ") };
  return answer.result === undefined
    ? { ok: false, reason: `not a JSON-RPC answer: ${excerpt}` }
    : { ok: true };
}

async function send(ctx: KindContext<ZabbixOptions>, token: string | undefined, r: Report): Promise<Outcome> {
  const target = ctx.options.report as z.output<typeof report>;
  const headers: Record<string, string> = {
    "content-type": target.format === "zabbix-api" ? "application/json-rpc" : "application/json",
  };
  if (token) headers.authorization = `Bearer ${token}`;
  const body = JSON.stringify(requestBody(target.format, r));
  let outcome: Outcome = { ok: false, reason: "not tried" };
  for (let attempt = 1; attempt <= REPORT_ATTEMPTS; attempt++) {
    if (attempt > 1) await sleep(BACKOFF_MS[attempt - 2] ?? 1000);
    try {
      const res = await ctx.fetch(target.url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      const verdict = judge(target.format, res.status, await res.text());
      outcome = verdict.ok ? { ok: true } : { ok: false, reason: verdict.reason };
      if (!verdict.retry) break;
    } catch (err) {
      outcome = { ok: false, reason: networkReason(err) };
    }
  }
  return outcome;
}

export function installZabbix(ctx: KindContext<ZabbixOptions>, recipients: Recipients): void {
  const announced = new Set<string>();
  const remember = (id: string) => {
    announced.delete(id);
    announced.add(id);
    if (announced.size > REMEMBERED) announced.delete(announced.values().next().value as string);
  };

  ctx.hook("zabbix", async (req) => {
    const alert = zabbixWebhook.parse(req.body);
    const to = alert.to ?? ctx.options.to;
    if (!to) {
      throw errors.noAlertRecipient();
    }
    const targets = to.map((jid) => recipients.target(jid));
    await recipients.deliver(targets, formatAlert(alert, ctx.options.report !== undefined));
    remember(alert.eventId);
    return { body: { eventId: alert.eventId, sent: targets } };
  });

  if (!ctx.options.report) return;
  const { tokenEnv } = ctx.options.report;
  const token = tokenEnv ? ctx.secrets.env(tokenEnv) : undefined;
  if (tokenEnv && !token) {
    throw new Error(
      `notify/zabbix: environment variable ${tokenEnv} (options.report.tokenEnv) is empty: put the API token there`,
    );
  }

  const answer = (action: Action) => async (args: string, c: MessageContext) => {
    const [eventId = "", ...comment] = args.split(" ").filter(Boolean);
    if (!/^\d{1,20}$/.test(eventId))
      return `usage: ${action} <eventId> [comment], e.g. ${action} 123 disk cleaned`;
    const m = c.message;
    // in a room only the occupant JID is known, and it is what the room shows
    const by = m.type === "groupchat" ? m.from : m.sender;
    const r: Report = { eventId, action, by, comment: comment.join(" ").slice(0, 1000) };
    const outcome = await send(ctx, token, r);
    const unknown = announced.has(eventId) ? "" : " (not an event I announced: check the id)";
    if (!outcome.ok) {
      ctx.log.warn({ eventId, action, by, reason: outcome.reason }, "zabbix report failed");
      return `could not report event ${eventId}: ${outcome.reason}${unknown}`;
    }
    ctx.log.info({ eventId, action, by }, "zabbix event reported");
    return `${action === "ack" ? "acknowledged" : "resolved"} event ${eventId}${unknown}`;
  };
  ctx.command("ack", "ack <eventId> [comment]: acknowledge a Zabbix problem", answer("ack"));
  ctx.command(
    "resolve",
    "resolve <eventId> [comment]: acknowledge and close a Zabbix problem",
    answer("resolve"),
  );
}

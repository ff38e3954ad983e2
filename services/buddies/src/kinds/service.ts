import { z } from "zod";
import { defineKind, type ServiceStatus } from "./kind.ts";

/**
 * The `service` kind: an operator's probe inside XMPP. `ping` proves the buddy is alive without a round trip
 * to anything, `status` asks the three services for their health, `whoami` shows how the server presents the
 * asker (bare JID in a chat, nick in a room), which is what an authorization mix-up usually comes down to.
 */

/** `3d 4h`, `2h 5m`, `4m 10s`, `12s`: the two largest units are enough to read uptime. */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || (unit === "s" && parts.length === 0)) parts.push(`${n}${unit}`);
  }
  return parts.slice(0, 2).join(" ");
}

export function formatStatus(statuses: readonly ServiceStatus[]): string {
  const up = statuses.filter((s) => s.up).length;
  const lines = statuses.map(
    (s) => `${s.service}: ${s.up ? "up" : "down"}, ${s.url}${s.detail ? `, ${s.detail}` : ""}`,
  );
  return [`${up} of ${statuses.length} services up`, ...lines].join("\n");
}

export default defineKind({
  kind: "service",
  summary: "service probe: ping, status of the services, whoami",
  options: z.object({}).strict(),
  create(_options, ctx) {
    const started = Date.now();

    ctx.command("ping", "answers pong and how long I have been running", () => {
      return `pong (up ${formatDuration(Date.now() - started)})`;
    });

    ctx.command("status", "health of the auth, http-utility and buddies services", async () => {
      try {
        return formatStatus(await ctx.serviceStatus());
      } catch (err) {
        ctx.log.warn({ err }, "service status failed");
        return `could not check the services: ${(err as Error).message}`;
      }
    });

    ctx.command("whoami", "who you are as the server tells me", (_args, c) => {
      const m = c.message;
      return m.type === "groupchat" ? `you are ${m.nick} in ${m.room}` : `you are ${m.sender}`;
    });
  },
});

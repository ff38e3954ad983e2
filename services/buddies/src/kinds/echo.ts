import { z } from "zod";
import { defineKind, type IncomingMessage } from "./kind.ts";

/**
 * The `echo` kind, for diagnostics: proves a buddy logs in, receives and sends. It answers a chat with the
 * same body, and a room message addressed to it (`nick: …` or `nick, …`) with the text after the address.
 * Commands (`help`) still win, so an echo buddy can be asked what it is.
 */

const options = z
  .object({
    prefix: z.string().max(100).optional().describe("text put before every echo, e.g. `echo: `"),
  })
  .strict();

/** What to echo, or undefined for a room message not addressed to us. */
function echoText(m: IncomingMessage, nick: string): string | undefined {
  if (m.type === "chat") return m.body;
  const lower = m.body.toLowerCase();
  for (const sep of [":", ","]) {
    const address = `${nick.toLowerCase()}${sep}`;
    if (lower.startsWith(address)) return m.body.slice(address.length).trim() || undefined;
  }
  return undefined;
}

export default defineKind({
  kind: "echo",
  summary: "diagnostics: answers a message with the same text",
  options,
  create(o, ctx) {
    const prefix = o.prefix ?? "";
    ctx.use(async (c, next) => {
      const text = echoText(c.message, ctx.buddy.nick);
      if (text === undefined) return next();
      // never addressed back to the writer: two echo buddies in a room would answer each other forever
      await c.reply(`${prefix}${text}`);
    });
  },
});

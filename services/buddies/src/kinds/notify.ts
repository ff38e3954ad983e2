import { z } from "zod";
import { errors } from "../errors.ts";
import { defineKind } from "./kind.ts";
import { bareJid, createRecipients } from "./recipients.ts";
import { installZabbix, zabbixOptionFields } from "./zabbix.ts";

/**
 * The `notify` kind: lets other systems write to people and rooms over HTTP. Its hook `send`
 * (`POST /hooks/<domain>/<username>/send`) takes `{ to, message, type? }`; a preset adds a tailored hook and
 * commands for one alerting system (`preset: "zabbix"`, see zabbix.ts), configured by the preset's options
 * next to `preset`. Its hook `notification-action` receives what http-utility relays when someone replies to
 * or resolves a push notification this buddy is the origin of (docs/push.md), and tells `actionsTo`.
 */

const options = z
  .object({
    preset: z
      .literal("zabbix")
      .optional()
      .describe('"zabbix": alerts from a Zabbix webhook, with ack/resolve'),
    actionsTo: z
      .array(bareJid)
      .max(20)
      .optional()
      .describe("users or rooms told of replies to and resolves of push notifications sent for this buddy"),
    ...zabbixOptionFields,
  })
  .strict()
  .superRefine((o, c) => {
    if (o.preset !== undefined) return;
    for (const key of Object.keys(zabbixOptionFields)) {
      if (o[key as keyof typeof zabbixOptionFields] !== undefined) {
        c.addIssue({
          code: "custom",
          path: [key],
          message: 'is an option of preset "zabbix": add preset: "zabbix"',
        });
      }
    }
  });

export const sendBody = z
  .object({
    to: bareJid,
    message: z
      .string()
      .min(1)
      .max(10_000)
      .refine((s) => s.trim() !== "", "must not be blank"),
    type: z.enum(["chat", "groupchat"]).optional(),
  })
  .strict();

/** What http-utility's relay posts (services/http-utility/src/push/mongooseim/relay.ts). */
export const actionBody = z.object({
  notificationId: z.string().min(1).max(100),
  action: z.enum(["reply", "resolve"]),
  text: z.string().max(4000).optional(),
  from: z.string().min(1).max(3071),
  at: z.string().optional(),
});

export default defineKind({
  kind: "notify",
  summary: "notifications over HTTP: POST a message to a user or a room",
  options,
  create(o, ctx) {
    const recipients = createRecipients(ctx.buddy, ctx.send);

    ctx.hook("send", async (req) => {
      const body = sendBody.parse(req.body);
      const target = recipients.target(body.to, body.type);
      await recipients.deliver([target], body.message);
      return { body: { sent: [target] } };
    });

    ctx.hook("notification-action", async (req) => {
      const a = actionBody.parse(req.body);
      const to = o.actionsTo ?? [];
      if (to.length === 0) {
        throw errors.noActionRecipient(ctx.buddy.jid);
      }
      const text =
        a.action === "reply"
          ? `${a.from} replied to notification ${a.notificationId}: ${a.text ?? ""}`
          : `${a.from} resolved notification ${a.notificationId}`;
      const targets = to.map((t) => recipients.target(t));
      await recipients.deliver(targets, text);
      return { body: { sent: targets } };
    });

    if (o.preset === "zabbix") installZabbix(ctx, recipients);
  },
});

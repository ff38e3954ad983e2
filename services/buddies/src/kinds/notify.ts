import { z } from "zod";
import { defineKind } from "./kind.ts";
import { bareJid, createRecipients } from "./recipients.ts";
import { installZabbix, zabbixOptionFields } from "./zabbix.ts";

/**
 * The `notify` kind: lets other systems write to people and rooms over HTTP. Its hook `send`
 * (`POST /hooks/<domain>/<username>/send`) takes `{ to, message, type? }`; a preset adds a tailored hook and
 * commands for one alerting system (`preset: "zabbix"`, see zabbix.ts), configured by the preset's options
 * next to `preset`.
 */

const options = z
  .object({
    preset: z
      .literal("zabbix")
      .optional()
      .describe('"zabbix": alerts from a Zabbix webhook, with ack/resolve'),
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

export default defineKind({
  description: "notifications over HTTP: POST a message to a user or a room",
  options,
  create(ctx) {
    const recipients = createRecipients(ctx.buddy, ctx.send);

    ctx.hook("send", async (req) => {
      const body = sendBody.parse(req.body);
      const target = recipients.target(body.to, body.type);
      await recipients.deliver([target], body.message);
      return { body: { sent: [target] } };
    });

    if (ctx.options.preset === "zabbix") installZabbix(ctx, recipients);
  },
});

import { z } from "zod";
import { passwordSource } from "./buddies-schema.ts";

/**
 * `push.xep0357` (docs/xmpp-clients.md "Push (XEP-0357)"): the XEP-0357 app server of each domain, an XMPP
 * component (XEP-0114) that standard clients register their devices with and that ejabberd's `mod_push` and
 * Prosody's `mod_cloud_notify` publish to. The component's password is named here, never held.
 */

const APP = /^[\w.-]{1,100}$/;
const DOMAIN = /^[a-z0-9.-]+$/;

export const xep0357Domain = z
  .object({
    app: z
      .string()
      .regex(APP, "an app name of `push.apps` such as OyoChat")
      .describe("the app of `push.apps` whose FCM/APNs credentials push to the devices registered here"),
    component: z
      .string()
      .regex(DOMAIN, "a component name such as push.example.com")
      .optional()
      .describe(
        "the component's JID, as the XMPP server's component listener names it (default `push.<domain>`)",
      ),
    server: z
      .url({
        protocol: /^xmpp$/,
        error: "an xmpp:// URL of the server's component listener, such as xmpp://127.0.0.1:5347",
      })
      .describe("the XMPP server's XEP-0114 component listener, e.g. `xmpp://127.0.0.1:5347`"),
    password: passwordSource.describe(
      "`{ file }` or `{ env }`: the component's shared secret (ejabberd `password`, Prosody `component_secret`); the publish secrets handed to devices derive from it",
    ),
    private: z.boolean().optional().describe("this domain's privacy mode (default `push.xep0357.private`)"),
    alertTitle: z
      .string()
      .min(1)
      .max(100)
      .default("New message")
      .describe("what an APNs alert says in privacy mode (the device shows no sender or text)"),
  })
  .strict();

export const xep0357Schema = z
  .object({
    private: z
      .boolean()
      .default(true)
      .describe(
        "privacy mode: pushes carry no message text or sender, only that a message came and the server's count; the app fetches the rest when it wakes",
      ),
    checkMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(5000)
      .describe(
        "how often each http-utility process tries to take a component no process holds, and checks the database session holding its own",
      ),
    domains: z
      .record(z.string().regex(DOMAIN, "a domain is lower-case letters, digits, dots, dashes"), xep0357Domain)
      .default({})
      .describe("the domains whose users' XMPP server pushes through our app server: one component each"),
  })
  .strict()
  .prefault({});

export type Xep0357Config = z.output<typeof xep0357Schema>;
export type Xep0357DomainConfig = z.output<typeof xep0357Domain>;

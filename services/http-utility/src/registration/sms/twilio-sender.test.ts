import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { smsSenderKinds } from "./registry.ts";
import type { SmsSenderDeps } from "./sender.ts";

/**
 * The twilio sender against a fake Twilio on 127.0.0.1 (`baseUrl`): the path, HTTP Basic and form body of
 * Twilio's Messages API, and its error format.
 */

const SID = `AC${"0123456789abcdef".repeat(2)}`;
const SERVICE = `MG${"fedcba9876543210".repeat(2)}`;
const TOKEN = "tw-auth-token";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  form: Record<string, string>;
}

const seen: Seen[] = [];
let answer: (res: ServerResponse, form: Record<string, string>) => void;
let server: Server;
let baseUrl: string;

/** Twilio's 201 answer (abridged), echoing the message. */
function queued(res: ServerResponse, form: Record<string, string>) {
  res
    .writeHead(201, { "content-type": "application/json" })
    .end(JSON.stringify({ sid: `SM${"a".repeat(32)}`, status: "queued", to: form.To, body: form.Body }));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString("utf8");
    });
    req.on("end", () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, form });
      answer(res, form);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

/** The test gateway listens on loopback: listed in allowTargets, as an operator lists a gateway of their own. */
const twilioOnLoopback = (options: Record<string, unknown>, d: SmsSenderDeps) =>
  smsSenderKinds.create("sms", { kind: "twilio", options: { allowTargets: ["127.0.0.1"], ...options } }, d);

const deps: SmsSenderDeps = { domain: "oyo", env: "test", log: pino({ level: "silent" }) };
const TO = "+306912345678";
const TEXT = "Your OyoChat code is 042917";

describe("the twilio SMS sender", () => {
  it("POSTs the form of Twilio's Messages API with HTTP Basic (account SID, auth token)", async () => {
    answer = queued;
    seen.length = 0;
    await twilioOnLoopback({ accountSid: SID, authToken: TOKEN, from: "+15005550006", baseUrl }, deps).send(
      TO,
      TEXT,
      "042917",
    );
    expect(seen).toHaveLength(1);
    const [req] = seen as [Seen];
    expect(req.method).toBe("POST");
    expect(req.url).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`);
    expect(req.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(req.form).toEqual({ To: TO, From: "+15005550006", Body: TEXT });
  });

  it("sends through a messaging service, with the auth token read from a file", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "twilio-"));
    writeFileSync(path.join(dir, "token"), `${TOKEN}\n`);
    answer = queued;
    seen.length = 0;
    await twilioOnLoopback(
      {
        accountSid: SID,
        authTokenFile: path.join(dir, "token"),
        messagingServiceSid: SERVICE,
        baseUrl: `${baseUrl}/`,
      },
      deps,
    ).send(TO, TEXT, "042917");
    const [req] = seen as [Seen];
    expect(req.url).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`);
    expect(req.form).toEqual({ To: TO, MessagingServiceSid: SERVICE, Body: TEXT });
  });

  it("fails with Twilio's error code and message", async () => {
    answer = (res) =>
      res.writeHead(400, { "content-type": "application/json" }).end(
        JSON.stringify({
          code: 21211,
          message: "The 'To' number +306912345678 is not a valid phone number.",
          more_info: "https://www.twilio.com/docs/errors/21211",
          status: 400,
        }),
      );
    const sender = twilioOnLoopback(
      { accountSid: SID, authToken: TOKEN, from: "+15005550006", baseUrl },
      deps,
    );
    await expect(sender.send(TO, TEXT, "042917")).rejects.toThrow(
      "Twilio answered 400: error 21211: The 'To' number +306912345678 is not a valid phone number.",
    );
    answer = (res) => res.writeHead(401).end("Unauthorized");
    await expect(sender.send(TO, TEXT, "042917")).rejects.toMatchObject({
      name: "SmsError",
      message: "Twilio answered 401: Unauthorized",
    });
  });
});

import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { smsSenderKinds } from "./registry.ts";
import type { SmsSenderDeps } from "./sender.ts";

/** The http sender against a gateway on 127.0.0.1 that records every request and answers as told. */

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const seen: Seen[] = [];
let answer: (res: ServerResponse) => void = (res) => res.writeHead(200).end("OK");
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString("utf8");
    });
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      answer(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** The test gateway listens on loopback: listed in allowTargets, as an operator lists a gateway of their own. */
const gatewayOnLoopback = (options: Record<string, unknown>, d: SmsSenderDeps) =>
  smsSenderKinds.create("sms", { kind: "http", options: { allowTargets: ["127.0.0.1"], ...options } }, d);

const deps: SmsSenderDeps = { domain: "oyo", env: "test", log: pino({ level: "silent" }) };
const TO = "+306912345678";
// quotes, an ampersand, a newline and non-ASCII: what breaks a template that does not encode
const TEXT = 'Your "Oyo" code is 042917 & welcome\nΚαλώς';
const CODE = "042917";

async function sendWith(options: Record<string, unknown>): Promise<Seen> {
  seen.length = 0;
  await gatewayOnLoopback(options, deps).send(TO, TEXT, CODE);
  expect(seen).toHaveLength(1);
  return seen[0] as Seen;
}

describe("the http SMS sender", () => {
  it("POSTs a JSON body built from the template, placeholders JSON-escaped, with the configured headers", async () => {
    answer = (res) => res.writeHead(202, { "content-type": "application/json" }).end('{"queued":true}');
    const req = await sendWith({
      url: `${base}/v1/sms`,
      headers: { "X-Api-Key": "k-123" },
      json: {
        to: "{to}",
        number: "{msisdn}",
        message: "{text}",
        otp: "{code}",
        meta: { tags: ["otp", "{code}"], n: 1 },
      },
    });
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/v1/sms");
    expect(req.headers["x-api-key"]).toBe("k-123");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req.body)).toEqual({
      to: TO,
      number: "306912345678",
      message: TEXT,
      otp: CODE,
      meta: { tags: ["otp", CODE], n: 1 },
    });
  });

  it("PUTs a form body, form-encoded", async () => {
    answer = (res) => res.writeHead(200).end();
    const req = await sendWith({
      url: `${base}/send`,
      method: "PUT",
      form: { dst: "{msisdn}", txt: "{text}" },
    });
    expect(req.method).toBe("PUT");
    expect(req.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(new URLSearchParams(req.body))).toEqual({ dst: "306912345678", txt: TEXT });
  });

  it("GETs a URL whose placeholders are URL-encoded", async () => {
    answer = (res) => res.writeHead(200).end("OK: 1 message");
    const req = await sendWith({ url: `${base}/api/send?to={to}&text={text}&user=me`, method: "GET" });
    expect(req.method).toBe("GET");
    const url = new URL(req.url, base);
    expect(url.pathname).toBe("/api/send");
    expect(Object.fromEntries(url.searchParams)).toEqual({ to: TO, text: TEXT, user: "me" });
    expect(req.body).toBe("");
  });

  it("sends a raw body template as it is, with the content-type of the headers", async () => {
    answer = (res) => res.writeHead(201).end();
    const req = await sendWith({
      url: `${base}/xml`,
      headers: { "Content-Type": "application/xml" },
      body: "<sms><to>{to}</to><code>{code}</code></sms>",
    });
    expect(req.headers["content-type"]).toBe("application/xml");
    expect(req.body).toBe(`<sms><to>${TO}</to><code>${CODE}</code></sms>`);
  });

  it("reads secret headers from files", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "sms-secret-"));
    const file = path.join(dir, "authorization");
    writeFileSync(file, "Bearer s3cr3t\n");
    answer = (res) => res.writeHead(200).end();
    const req = await sendWith({
      url: `${base}/s`,
      headerFiles: { Authorization: file },
      json: { t: "{text}" },
    });
    expect(req.headers.authorization).toBe("Bearer s3cr3t");
    expect(() =>
      gatewayOnLoopback({ url: `${base}/s`, headerFiles: { Authorization: path.join(dir, "nope") } }, deps),
    ).toThrow(/headerFiles\.Authorization: cannot read .*nope \(ENOENT\)/);
  });

  it("fails on a non-2xx answer, saying what the gateway answered, without the code", async () => {
    answer = (res) => res.writeHead(400).end(`{"error":"rejected message 'Your code is ${CODE}'"}`);
    const sender = gatewayOnLoopback({ url: `${base}/s`, json: { t: "{text}" } }, deps);
    const failure = sender.send(TO, TEXT, CODE);
    await expect(failure).rejects.toMatchObject({ name: "SmsError" });
    await expect(failure).rejects.toThrow(
      /^SMS gateway answered 400: .*rejected message 'Your code is \[code\]'/,
    );
    await expect(failure).rejects.not.toThrow(CODE);
  });

  it("does not follow a redirect (a 3xx is not a sent message)", async () => {
    answer = (res) => res.writeHead(302, { location: `${base}/elsewhere` }).end();
    seen.length = 0;
    await expect(gatewayOnLoopback({ url: `${base}/s` }, deps).send(TO, TEXT, CODE)).rejects.toThrow(
      "SMS gateway answered 302",
    );
    expect(seen.map((s) => s.url)).toEqual(["/s"]);
  });

  it("gives up after timeoutMs, and when nothing listens", async () => {
    answer = () => {}; // never answers
    await expect(
      gatewayOnLoopback({ url: `${base}/slow`, timeoutMs: 200 }, deps).send(TO, TEXT, CODE),
    ).rejects.toThrow("SMS gateway did not answer within 200 ms");
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    await expect(
      gatewayOnLoopback({ url: `http://127.0.0.1:${port}/` }, deps).send(TO, TEXT, CODE),
    ).rejects.toThrow("SMS gateway unreachable: ECONNREFUSED");
  });
});

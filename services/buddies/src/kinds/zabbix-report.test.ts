import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ZodError } from "zod";
import { freePort } from "../../../../test/support/free-port.ts";
import type { FakeEntity } from "./testing/fake-entity.ts";
import { PROBLEM, ROOM, zabbixBuddy } from "./testing/zabbix-buddy.ts";

/**
 * The Zabbix preset's ack and resolve on loopback: answers in XMPP, reports to a local HTTP server standing
 * in for Zabbix's API (or a JSON endpoint) that records every request and answers as each test says.
 */

const ALICE = "alice@example.com/phone";
const TOKEN_ENV = "ZABBIX_TEST_TOKEN";
const TOKEN = "zbx-token-5f1e9c7d";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}
const seen: Seen[] = [];
/** What the next requests get, in order; then a JSON-RPC success. */
let answers: Array<(res: ServerResponse) => void> = [];
let server: Server;
let url: string;

const ok = (res: ServerResponse) =>
  res
    .writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ jsonrpc: "2.0", result: { eventids: ["123"] }, id: 1 }));

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString("utf8");
    });
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: JSON.parse(body),
      });
      (answers.shift() ?? ok)(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/api_jsonrpc.php`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen.length = 0;
  answers = [];
});

const zabbixApi = () => ({ url, format: "zabbix-api", tokenEnv: TOKEN_ENV });
/** The buddy, its token in the environment its config captured (common/config/secrets.ts). */
const buddy = (options: Record<string, unknown> = {}, env: Record<string, string> = { [TOKEN_ENV]: TOKEN }) =>
  zabbixBuddy(zabbixApi(), options, env);

async function announced(b: FakeEntity, body: unknown = PROBLEM): Promise<void> {
  await b.hook("zabbix", body);
  b.take();
}

describe("the Zabbix preset: ack and resolve", () => {
  it("acknowledges through event.acknowledge with the token, the comment and who did it", async () => {
    const b = await buddy();
    await announced(b);
    await b.chat(ALICE, "ack 123 looking at it");
    expect(seen).toEqual([
      {
        method: "POST",
        url: "/api_jsonrpc.php",
        headers: expect.objectContaining({
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json-rpc",
        }),
        body: {
          jsonrpc: "2.0",
          method: "event.acknowledge",
          params: { eventids: ["123"], action: 6, message: "looking at it, by alice@example.com" },
          id: 1,
        },
      },
    ]);
    expect(b.take()).toEqual([{ to: ALICE, type: "chat", body: "acknowledged event 123" }]);
  });

  it("resolves from a room: closes the problem (action 7) by the occupant, answering in the room", async () => {
    const b = await buddy();
    await announced(b);
    await b.groupchat(ROOM, "alice", "!resolve 123");
    expect(seen[0]?.body).toMatchObject({
      method: "event.acknowledge",
      params: {
        eventids: ["123"],
        action: 7,
        message: `resolved by ${ROOM}/alice`,
      },
    });
    expect(b.take()).toEqual([{ to: ROOM, type: "groupchat", body: "resolved event 123" }]);
  });

  it("reports an id it never announced, and says so", async () => {
    const b = await buddy();
    await b.chat(ALICE, "ack 999");
    expect(seen[0]?.body).toMatchObject({ params: { eventids: ["999"], action: 6 } });
    expect(b.take()[0]?.body).toBe("acknowledged event 999 (not an event I announced: check the id)");
  });

  it("answers usage for a missing or non-numeric id, reporting nothing", async () => {
    const b = await buddy();
    await b.chat(ALICE, "ack");
    await b.chat(ALICE, "resolve abc");
    expect(seen).toEqual([]);
    expect(b.take().map((m) => m.body)).toEqual([
      "usage: ack <eventId> [comment], e.g. ack 123 disk cleaned",
      "usage: resolve <eventId> [comment], e.g. resolve 123 disk cleaned",
    ]);
  });

  it("passes on Zabbix's JSON-RPC error without retrying it", async () => {
    const b = await buddy();
    await announced(b);
    answers = [
      (res) =>
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            jsonrpc: "2.0",
            error: {
              code: -32500,
              message: "Application error.",
              data: "Cannot close problem: trigger does not allow manual closing.",
            },
            id: 1,
          }),
        ),
    ];
    await b.chat(ALICE, "resolve 123");
    expect(seen).toHaveLength(1);
    expect(b.take()[0]?.body).toBe(
      "could not report event 123: Application error. Cannot close problem: trigger does not allow manual closing.",
    );
  });

  it("retries a 5xx up to three attempts: succeeds on the third, gives up after it", async () => {
    const b = await buddy();
    await announced(b);
    const unavailable = (res: ServerResponse) => res.writeHead(503).end("busy");
    answers = [unavailable, unavailable];
    await b.chat(ALICE, "ack 123");
    expect(seen).toHaveLength(3);
    answers = [unavailable, unavailable, unavailable];
    await b.chat(ALICE, "ack 123");
    expect(seen).toHaveLength(6);
    expect(b.take().map((m) => m.body)).toEqual([
      "acknowledged event 123",
      "could not report event 123: HTTP 503",
    ]);
  });

  it("does not retry a 4xx and quotes the answer", async () => {
    const b = await buddy();
    await announced(b);
    answers = [(res) => res.writeHead(403).end("forbidden")];
    await b.chat(ALICE, "ack 123");
    expect(seen).toHaveLength(1);
    expect(b.take()[0]?.body).toBe("could not report event 123: HTTP 403 forbidden");
  });

  it("retries a refused connection and names it", async () => {
    const port = await freePort();
    const b = await buddy({ report: { ...zabbixApi(), url: `http://127.0.0.1:${port}/api_jsonrpc.php` } });
    await announced(b);
    await b.chat(ALICE, "ack 123");
    expect(b.take()[0]?.body).toBe(`could not report event 123: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it("posts plain JSON in the json format, without a token unless one is named", async () => {
    const b = await buddy({
      report: { url: `${url.replace("/api_jsonrpc.php", "")}/zabbix-events`, format: "json" },
    });
    await announced(b);
    answers = [(res) => res.writeHead(204).end(), (res) => res.writeHead(204).end()];
    await b.chat(ALICE, "ack 123 on it");
    await b.groupchat(ROOM, "bob", "zabbix: resolve 123");
    expect(seen.map((s) => [s.url, s.headers.authorization, s.headers["content-type"], s.body])).toEqual([
      [
        "/zabbix-events",
        undefined,
        "application/json",
        { eventId: "123", action: "ack", by: "alice@example.com", comment: "on it" },
      ],
      [
        "/zabbix-events",
        undefined,
        "application/json",
        { eventId: "123", action: "resolve", by: `${ROOM}/bob`, comment: null },
      ],
    ]);
    expect(b.take().map((m) => m.body)).toEqual(["acknowledged event 123", "resolved event 123"]);
  });

  it("never writes the token to its log or its answers", async () => {
    const b = await buddy();
    await announced(b);
    answers = [(res) => res.writeHead(401).end("bad token")];
    await b.chat(ALICE, "ack 123");
    await b.chat(ALICE, "resolve 123");
    expect(b.logLines.length).toBeGreaterThan(0);
    expect(JSON.stringify(b.logLines)).not.toContain(TOKEN);
    expect(b.socket.written.join("")).not.toContain(TOKEN);
  });

  it("refuses to start without the token in the named variable, or zabbix-api without a token at all", async () => {
    await expect(buddy({}, {})).rejects.toThrow(
      "notify/zabbix: environment variable ZABBIX_TEST_TOKEN (options.report.tokenEnv) is empty: put the API token there",
    );
    const err = await buddy({ report: { url, format: "zabbix-api" } }).catch((e: unknown) => e);
    expect((err as ZodError).issues).toMatchObject([{ path: ["report", "tokenEnv"] }]);
  });
});

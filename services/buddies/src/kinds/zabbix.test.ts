import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { PROBLEM, ROOM, zabbixBuddy } from "./testing/zabbix-buddy.ts";
import { formatAlert } from "./zabbix.ts";

/**
 * The Zabbix preset's alerts: the webhook's JSON in through the hook, a readable alert out to users and
 * rooms (ack and resolve are in zabbix-report.test.ts). No report is made here, so nothing listens on the
 * report URL.
 */

const REPORT = { url: "http://127.0.0.1:9/api_jsonrpc.php", format: "json" };

const buddy = (options: Record<string, unknown> = {}) => zabbixBuddy(REPORT, options);

const ALERT =
  'PROBLEM [High] on web-01: Disk space is low\nFree space on /var is 4%\nevent 123: answer "ack 123" or "resolve 123"';

describe("the Zabbix preset: alerts", () => {
  it("writes a readable alert to every configured recipient and answers where it went", async () => {
    const b = await buddy();
    expect(await b.hook("zabbix", PROBLEM)).toEqual({
      body: {
        eventId: "123",
        sent: [
          { to: "alice@example.com", type: "chat" },
          { to: ROOM, type: "groupchat" },
        ],
      },
    });
    expect(b.take()).toEqual([
      { to: "alice@example.com", type: "chat", body: ALERT },
      { to: ROOM, type: "groupchat", body: ALERT },
    ]);
  });

  it("takes numeric ids and severities, the eventid spelling, extra fields, and the body's own recipients", async () => {
    const b = await buddy();
    await b.hook("zabbix", {
      eventid: 77,
      subject: "CPU hot",
      severity: 5,
      host: "db-1",
      trigger: 9,
      to: "bob@example.com",
    });
    expect(b.take()).toEqual([
      {
        to: "bob@example.com",
        type: "chat",
        body: 'PROBLEM [Disaster] on db-1: CPU hot\nevent 77: answer "ack 77" or "resolve 77"',
      },
    ]);
  });

  it("announces a recovery as RESOLVED, without asking for an answer", async () => {
    const b = await buddy({ to: ["alice@example.com"] });
    await b.hook("zabbix", { ...PROBLEM, status: "RESOLVED", message: "Free space on /var is 30%" });
    await b.hook("zabbix", { ...PROBLEM, status: undefined, recovery: "1", message: undefined });
    expect(b.take().map((m) => m.body)).toEqual([
      "RESOLVED [High] on web-01: Disk space is low\nFree space on /var is 30%\nevent 123",
      "RESOLVED [High] on web-01: Disk space is low\nevent 123",
    ]);
  });

  it("refuses an unresolved macro as event id and a missing subject, sending nothing", async () => {
    const b = await buddy();
    for (const [body, field] of [
      [{ ...PROBLEM, eventId: "{EVENT.ID}" }, "eventId"],
      [{ ...PROBLEM, eventId: undefined }, "eventId"],
      [{ ...PROBLEM, subject: " " }, "subject"],
      [{ ...PROBLEM, to: "not a jid" }, "to"],
    ] as const) {
      const err = await b.hook("zabbix", body).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ZodError);
      expect((err as ZodError).issues.map((i) => i.path.join("."))).toContain(field);
    }
    expect(b.take()).toEqual([]);
  });

  it("answers 400 no_recipient without any recipient, and 409 not_in_room for a room it is not in", async () => {
    const b = await buddy({ to: undefined });
    await expect(b.hook("zabbix", PROBLEM)).rejects.toMatchObject({ status: 400, code: "no_recipient" });
    await expect(
      b.hook("zabbix", { ...PROBLEM, to: ["bob@example.com", "dev@conference.example.com"] }),
    ).rejects.toMatchObject({
      status: 409,
      code: "not_in_room",
    });
    expect(b.take()).toEqual([]);
  });

  it("without report options, alerts ask for no answer and there are no ack or resolve commands", async () => {
    const b = await buddy({ report: undefined });
    await b.hook("zabbix", PROBLEM);
    expect(b.take()[0]?.body).toBe(
      "PROBLEM [High] on web-01: Disk space is low\nFree space on /var is 4%\nevent 123",
    );
    expect([...b.bot.commands.keys()]).toEqual(["help"]);
  });

  it("formats an update, and an alert without severity or host or a message repeating the subject", () => {
    const base = { eventId: "5", subject: "Link down" };
    expect(
      formatAlert({ ...base, status: "update", severity: "2", host: "sw-3", message: "acknowledged" }, true),
    ).toBe('UPDATE [Warning] on sw-3: Link down\nacknowledged\nevent 5: answer "ack 5" or "resolve 5"');
    expect(formatAlert({ ...base, message: "Link down" }, true)).toBe(
      'PROBLEM: Link down\nevent 5: answer "ack 5" or "resolve 5"',
    );
  });
});

import notify from "../notify.ts";
import { createFakeEntity, type FakeEntity } from "./fake-entity.ts";

/** The Zabbix buddy of the preset's tests: alerts to alice and the ops room, reports where `report` says. */

export const ROOM = "ops@conference.example.com";

/** A Zabbix webhook's body for a problem. */
export const PROBLEM = {
  eventId: "123",
  subject: "Disk space is low",
  message: "Free space on /var is 4%",
  severity: "High",
  host: "web-01",
  status: "PROBLEM",
};

export function zabbixBuddy(
  report: unknown,
  options: Record<string, unknown> = {},
  env: Record<string, string> = {},
): Promise<FakeEntity> {
  return createFakeEntity({
    env,
    kind: notify,
    options: { preset: "zabbix", to: ["alice@example.com", ROOM], report, ...options },
    identity: {
      jid: "zabbix@example.com",
      username: "zabbix",
      kind: "notify",
      nick: "zabbix",
      rooms: [ROOM],
    },
  });
}

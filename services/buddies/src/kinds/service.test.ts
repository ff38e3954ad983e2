import { afterEach, describe, expect, it, vi } from "vitest";
import type { ServiceStatus } from "./kind.ts";
import service, { formatDuration } from "./service.ts";
import { createFakeEntity } from "./testing/fake-entity.ts";

const ROOM = "ops@conference.example.com";
const ALICE = "alice@example.com/phone";

const STATUSES: ServiceStatus[] = [
  { service: "auth", url: "http://127.0.0.1:8081", up: true, detail: "ready" },
  {
    service: "http-utility",
    url: "http://127.0.0.1:8082",
    up: false,
    detail: "connect ECONNREFUSED 127.0.0.1:8082",
  },
  { service: "buddies", url: "http://127.0.0.1:8083", up: true, detail: "" },
];

const buddy = (serviceStatus: () => Promise<ServiceStatus[]> = async () => STATUSES) =>
  createFakeEntity({
    kind: service,
    serviceStatus,
    identity: {
      jid: "service@example.com",
      username: "service",
      kind: "service",
      nick: "service",
      rooms: [ROOM],
    },
  });

afterEach(() => {
  vi.useRealTimers();
});

describe("the service kind", () => {
  it("answers ping with pong and how long it has been up", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: new Date("2025-01-01T00:00:00Z") });
    const b = await buddy();
    vi.setSystemTime(new Date("2025-01-01T02:05:09Z"));
    await b.chat(ALICE, "ping");
    expect(b.take()).toEqual([{ to: ALICE, type: "chat", body: "pong (up 2h 5m)" }]);
  });

  it("answers status with a summary and one line per service: up or down, url, detail", async () => {
    const b = await buddy();
    await b.chat(ALICE, "status");
    expect(b.take()).toEqual([
      {
        to: ALICE,
        type: "chat",
        body: [
          "2 of 3 services up",
          "auth: up, http://127.0.0.1:8081, ready",
          "http-utility: down, http://127.0.0.1:8082, connect ECONNREFUSED 127.0.0.1:8082",
          "buddies: up, http://127.0.0.1:8083",
        ].join("\n"),
      },
    ]);
  });

  it("says why when the status cannot be checked", async () => {
    const b = await buddy(async () => {
      throw new Error("config not loaded");
    });
    await b.groupchat(ROOM, "alice", "!status");
    expect(b.take()).toEqual([
      { to: ROOM, type: "groupchat", body: "could not check the services: config not loaded" },
    ]);
  });

  it("answers whoami with the bare JID in a chat, and the nick and room in a room", async () => {
    const b = await buddy();
    await b.chat("Alice@Example.com/phone", "whoami");
    await b.groupchat(ROOM, "alice", "service: whoami");
    expect(b.take()).toEqual([
      { to: "Alice@Example.com/phone", type: "chat", body: "you are alice@example.com" },
      { to: ROOM, type: "groupchat", body: "you are alice in ops@conference.example.com" },
    ]);
  });

  it("lists its commands in help", async () => {
    const b = await buddy();
    await b.chat(ALICE, "help");
    expect(b.take()[0]?.body).toBe(
      [
        "service (service: service probe: ping, status of the services, whoami). Commands:",
        "  help: this list",
        "  ping: answers pong and how long I have been running",
        "  status: health of the auth, http-utility and buddies services",
        "  whoami: who you are as the server tells me",
      ].join("\n"),
    );
  });

  it("formats durations with their two largest units", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(12_400)).toBe("12s");
    expect(formatDuration(250_000)).toBe("4m 10s");
    expect(formatDuration((3 * 86_400 + 4 * 3600 + 59) * 1000)).toBe("3d 4h");
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../../test/support/bytes.ts";
import { type RecordingLogger, recordingLogger } from "../../../../test/support/recording-logger.ts";
import type { UploadAnswer } from "./schema.ts";
import { ALICE, basic, bytesOf, refused, startTestApp, type TestApp, uploaded } from "./test-app.ts";
import { png, sidewaysPhoto } from "./test-fixtures.ts";

/**
 * The lean path of downloads (lean-downloads.ts): a file in memory answers without Express, exactly as the
 * full path answers it; anything it does not handle goes to the full path and gets that path's answer.
 * Which path answered is read from the debug log ("download from memory").
 */

let app: TestApp;
let logger: RecordingLogger;
/** behind a trusted proxy: every request from loopback must name its client */
let proxied: TestApp;
/** downloads handed to nginx (`media.accelRedirect`) */
let accel: TestApp;
let accelLogger: RecordingLogger;

beforeAll(async () => {
  logger = recordingLogger({ level: "debug", keep: (l) => l.msg === "download from memory" });
  accelLogger = recordingLogger({ level: "debug", keep: (l) => l.msg === "download from memory" });
  [app, accel, proxied] = await Promise.all([
    startTestApp({}, { log: logger.log }),
    startTestApp({ accelRedirect: "/protected-media/" }, { log: accelLogger.log }),
    startTestApp({}, { config: { services: { httpUtility: { trustProxy: ["loopback"] } } } }),
  ]);
});
afterAll(async () => {
  await Promise.all([app?.close(), proxied?.close(), accel?.close()]);
});

const lean = () => logger.lines.length;

async function picture(on: TestApp = app, headers: Record<string, string> = {}): Promise<UploadAnswer> {
  const form = new FormData();
  form.append(
    "attachments",
    new Blob([new Uint8Array(await sidewaysPhoto())], { type: "image/jpeg" }),
    "p.jpg",
  );
  const res = await fetch(on.url("/pictures"), {
    method: "POST",
    headers: { authorization: basic(ALICE), ...headers },
    body: form,
  });
  return (await uploaded(res)).attachments[0] as UploadAnswer;
}

/** The answer's headers a client sees, without those that differ on every answer. */
function headersOf(res: Response): Record<string, string> {
  const h = Object.fromEntries(res.headers);
  delete h.date;
  delete h["x-request-id"];
  return h;
}

describe("a file in memory answers without Express, as the full path does", () => {
  it("GET: the same status, headers and bytes the second time, from memory", async () => {
    const a = await picture();
    const url = a.thumbnailUrl as string;
    logger.clear();
    const first = await fetch(url);
    const firstBytes = await bytesOf(first);
    expect(lean()).toBe(0); // the first read fills the cache
    const second = await fetch(url);
    const secondBytes = await bytesOf(second);
    expect(lean()).toBe(1);
    expect(second.status).toBe(200);
    expect(headersOf(second)).toEqual(headersOf(first));
    expect(secondBytes.equals(firstBytes)).toBe(true);
    expect(second.headers.get("content-type")).toBe("image/webp");
    expect(second.headers.get("content-length")).toBe(String(firstBytes.length));
    expect(second.headers.get("x-request-id")).toMatch(/^[\w-]{36}$/);
  });

  it("HEAD: the headers without a body; a caller's request id comes back", async () => {
    const a = await picture();
    await bytesOf(await fetch(a.url));
    logger.clear();
    const res = await fetch(a.url, { method: "HEAD", headers: { "x-request-id": "trace-42" } });
    expect(lean()).toBe(1);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("trace-42");
    expect(Number(res.headers.get("content-length"))).toBe(a.size);
    expect((await bytesOf(res)).length).toBe(0);
  });

  it("If-None-Match: 304 without a body or a length; no-cache and If-Modified-Since alone go the full way", async () => {
    const a = await picture();
    const full = await fetch(a.url);
    await bytesOf(full);
    const etag = String(full.headers.get("etag"));
    logger.clear();
    // fetch adds `Cache-Control: no-cache` to conditional requests unless told otherwise
    const fresh = await fetch(a.url, {
      headers: { "if-none-match": `"x", W/${etag}`, "cache-control": "max-age=0" },
    });
    expect(lean()).toBe(1);
    expect(fresh.status).toBe(304);
    expect(fresh.headers.get("etag")).toBe(etag);
    expect(fresh.headers.get("content-length")).toBeNull();
    expect((await bytesOf(fresh)).length).toBe(0);

    const other = await fetch(a.url, {
      headers: { "if-none-match": '"other"', "cache-control": "max-age=0" },
    });
    expect(other.status).toBe(200);
    expect(sha256(await bytesOf(other))).toBe(a.sha256);
    expect(lean()).toBe(2);

    const noCache = await fetch(a.url, { headers: { "if-none-match": etag, "cache-control": "no-cache" } });
    expect(noCache.status).toBe(200);
    await bytesOf(noCache);
    const since = await fetch(a.url, {
      headers: {
        "if-modified-since": String(full.headers.get("last-modified")),
        "cache-control": "max-age=0",
      },
    });
    expect(since.status).toBe(304);
    expect(lean()).toBe(2);
  });

  it("a Range of a file in memory is a 206 of the full path", async () => {
    const a = await picture();
    const whole = await bytesOf(await fetch(a.url));
    logger.clear();
    const res = await fetch(a.url, { headers: { range: "bytes=10-19" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 10-19/${whole.length}`);
    expect((await bytesOf(res)).equals(whole.subarray(10, 20))).toBe(true);
    expect(lean()).toBe(0);
  });

  it("a name under another kind's path is 404 there, cached or not", async () => {
    const res = await app.upload("avatars", ALICE, [{ data: await png(), name: "me.png" }]);
    const avatar = (await uploaded(res)).attachments[0] as UploadAnswer;
    await bytesOf(await fetch(avatar.url));
    await bytesOf(await fetch(avatar.url));
    logger.clear();
    await refused(await fetch(app.url(`/pictures/${avatar.fileName}`)), 404, "not_found");
    await refused(await fetch(app.url(`/videos/${avatar.fileName}`)), 404, "not_found");
    expect(lean()).toBe(0);
  });

  it("a deleted file (the previous avatar) is 404 at once, though it was in memory", async () => {
    const first = (await uploaded(await app.upload("avatars", ALICE, [{ data: await png(), name: "a.png" }])))
      .attachments[0] as UploadAnswer;
    await bytesOf(await fetch(first.url));
    expect((await fetch(first.url)).status).toBe(200);
    await uploaded(await app.upload("avatars", ALICE, [{ data: await sidewaysPhoto(), name: "b.jpg" }]));
    await refused(await fetch(first.url), 404, "not_found");
  });

  it("behind a trusted proxy, a request that does not name its client is refused as on every path", async () => {
    const named = { "x-forwarded-for": "203.0.113.7" };
    const a = await picture(proxied, named);
    await bytesOf(await fetch(a.url, { headers: named }));
    expect((await fetch(a.url, { headers: named })).status).toBe(200);
    await refused(await fetch(a.url), 400, "missing_forwarded_for");
  });
});

describe("with X-Accel-Redirect", () => {
  it("a known name is handed to nginx from memory with the same headers; a 304 hands nothing over", async () => {
    const a = await picture(accel);
    accelLogger.clear();
    const first = await fetch(a.url);
    expect((await bytesOf(first)).length).toBe(0);
    expect(first.headers.get("x-accel-redirect")).toBe(
      `/protected-media/${a.fileName.slice(0, 2)}/${a.fileName}`,
    );
    const second = await fetch(a.url);
    expect((await bytesOf(second)).length).toBe(0);
    expect(accelLogger.lines.length).toBe(1);
    expect(headersOf(second)).toEqual(headersOf(first));

    const etag = String(first.headers.get("etag"));
    const fresh = await fetch(a.url, { headers: { "if-none-match": etag, "cache-control": "max-age=0" } });
    expect(fresh.status).toBe(304);
    expect(fresh.headers.get("x-accel-redirect")).toBeNull();
    expect(accelLogger.lines.length).toBe(2);
  });
});

describe("counted as the full path counts", () => {
  it("http_request_duration_seconds has the lean answers under the route's label", async () => {
    const a = await picture();
    await bytesOf(await fetch(a.url));
    const count = async () => {
      const text = await (await fetch(`${app.base}/metrics`)).text();
      const line = text
        .split("\n")
        .find((l) =>
          l.startsWith(
            'http_request_duration_seconds_count{service="http-utility",method="GET",route="/api/v1/attachments/pictures/:filename",status_code="200"}',
          ),
        );
      return Number(line?.split(" ").at(-1) ?? 0);
    };
    const before = await count();
    logger.clear();
    for (let i = 0; i < 3; i++) await bytesOf(await fetch(a.url));
    expect(lean()).toBe(3);
    expect(await count()).toBe(before + 3);
  });
});

import { createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import xml, { type Element } from "@xmpp/xml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteOldAttachments } from "../services/http-utility/src/attachments/gc.ts";
import { createSlot, type MongooseImOptions, token } from "./bench/xep0363-mongooseim.ts";
import { expectSameBytes } from "./support/bytes.ts";
import { type Ejabberd, ejabberdUnavailable, startEjabberd } from "./support/ejabberd.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "./support/http-utility-app.ts";
import { ROOT } from "./support/processes.ts";
import { type Prosody, prosodyUnavailable, startProsody } from "./support/prosody.ts";
import { connectUser, type XmppUser } from "./support/xmpp-user.ts";

/**
 * XEP-0363 HTTP File Upload (docs/xmpp-clients.md "File upload (XEP-0363)") end to end: ejabberd 23.01's
 * `mod_http_upload` with `external_secret` and Prosody 0.12's `mod_http_upload_external` (v1, v2) and
 * `mod_http_file_share` (token) handing out slots to an XMPP client, which PUTs and GETs through our
 * http-utility; MongooseIM's presigned S3 URLs made here exactly as its `mod_http_upload` makes them
 * (bench/xep0363-mongooseim.ts).
 */

const NS = "urn:xmpp:http:upload:0";
const EXT_SECRET = "ext secret shared with ejabberd and prosody";
const S3_SECRET = "s3 secret of mongooseim";
const MiB = 1024 * 1024;
const MONGOOSE: Omit<MongooseImOptions, "bucketUrl"> = {
  region: "eu-east-1",
  accessKeyId: "AKIDMONGOOSEIM",
  secretAccessKey: S3_SECRET,
  expirationTime: 60,
};

let app: HttpUtilityTestApp;

async function put(url: string, body: Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: "PUT", body, headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

const codeOf = (text: string) => (JSON.parse(text) as { error: { code: string } }).error.code;

beforeAll(async () => {
  app = await startHttpUtilityApp({
    env: { XEP0363_EXT_SECRET: EXT_SECRET, XEP0363_S3_SECRET: S3_SECRET },
    overrides: {
      media: {
        xmppUpload: {
          domains: {
            localhost: {
              maxBytes: MiB,
              quotaBytes: 64 * MiB,
              external: { secret: { env: "XEP0363_EXT_SECRET" } },
              s3: {
                accessKeyId: MONGOOSE.accessKeyId,
                secretAccessKey: { env: "XEP0363_S3_SECRET" },
                region: MONGOOSE.region,
              },
            },
            "small.test": {
              quotaBytes: 100_000,
              s3: {
                accessKeyId: "AKIDSMALL",
                secretAccessKey: { env: "XEP0363_S3_SECRET" },
                region: "eu-east-1",
              },
            },
          },
        },
      },
    },
    users: [{ node: "alice", domain: "localhost", password: "alice pw" }],
  });
});

afterAll(async () => {
  await app?.close();
});

describe("MongooseIM: presigned S3 URLs as mod_http_upload makes them", () => {
  const options = (domain = "localhost", o: Partial<MongooseImOptions> = {}): MongooseImOptions => ({
    ...MONGOOSE,
    bucketUrl: app.url(`/api/v1/xmpp-upload/s3/${domain}`),
    ...o,
  });
  const slot = (filename: string, size: number, o: { contentType?: string; utc?: Date } = {}) =>
    createSlot(options(), {
      utc: o.utc ?? new Date(),
      token: token(randomBytes(32)),
      filename,
      contentType: o.contentType,
      size,
    });

  it("stores an OMEMO-like blob byte for byte and serves it back", async () => {
    const blob = randomBytes(300_000);
    const s = slot("ph0to été #1.jpg", blob.length, { contentType: "image/jpeg" });
    const up = await put(s.put, blob, { "content-type": "image/jpeg" });
    expect(up.status, up.text).toBe(201);
    const down = await get(s.get);
    expect(down.status).toBe(200);
    expectSameBytes(down.body, blob, "the downloaded file");
    expect(down.headers.get("content-type")).toBe("image/jpeg");
    expect(down.headers.get("content-disposition")).toMatch(/^inline/);
    expect(down.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("serves a type that is not image, audio or video as an attachment, its type sanitised", async () => {
    const page = Buffer.from("<script>alert(1)</script>");
    const s = slot("page.html", page.length, { contentType: "text/html; charset=utf-8" });
    expect((await put(s.put, page, { "content-type": "text/html; charset=utf-8" })).status).toBe(201);
    const down = await get(s.get);
    expect(down.headers.get("content-type")).toMatch(/^text\/html/);
    expect(down.headers.get("content-disposition")).toMatch(/^attachment/);
    expect(down.headers.get("content-security-policy")).toContain("sandbox");
  });

  it("takes a slot without content-type and one with add_acl", async () => {
    const body = randomBytes(1000);
    const plain = slot("blob", body.length);
    expect((await put(plain.put, body)).status).toBe(201);
    const acl = createSlot(options("localhost", { addAcl: true }), {
      utc: new Date(),
      token: token(randomBytes(32)),
      filename: "a.bin",
      size: body.length,
    });
    expect((await put(acl.put, body, { "x-amz-acl": "public-read" })).status).toBe(201);
    expect((await put(acl.put, body)).status, "x-amz-acl is signed").toBe(403);
    expect((await put(acl.put, body, { "x-amz-acl": "public-read" })).status).toBe(409);
  });

  it("takes MongooseIM 2.1.0's URLs: x-amz-acl in the signed query", async () => {
    const body = randomBytes(3000);
    const s = createSlot(options("localhost", { addAcl: true, version: "2.1.0" }), {
      utc: new Date(),
      token: token(randomBytes(32)),
      filename: "legacy photo.jpg",
      contentType: "image/jpeg",
      size: body.length,
    });
    expect(s.put).toContain("x-amz-acl=public-read");
    expect((await put(s.put.replace("&x-amz-acl=public-read", ""), body, s.headers)).status).toBe(403);
    expect((await put(s.put, body, s.headers)).status).toBe(201);
    expectSameBytes((await get(s.get)).body, body, "the 2.1.0 upload");
  });

  it("refuses a tampered signature, an expired URL, another size, another type and a second PUT", async () => {
    const body = randomBytes(2048);
    const s = slot("x.png", body.length, { contentType: "image/png" });
    const tampered = s.put.replace(
      /X-Amz-Signature=([0-9a-f])/,
      (_m, c: string) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`,
    );
    const t = await put(tampered, body, { "content-type": "image/png" });
    expect([t.status, codeOf(t.text)]).toEqual([403, "invalid_signature"]);
    const other = await put(s.put.replace("/x.png", "/y.png"), body, { "content-type": "image/png" });
    expect(other.status).toBe(403);
    const size = await put(s.put, body.subarray(1), { "content-type": "image/png" });
    expect([size.status, codeOf(size.text)]).toEqual([403, "invalid_signature"]);
    const type = await put(s.put, body, { "content-type": "image/gif" });
    expect(type.status).toBe(403);
    const old = slot("old.png", body.length, {
      contentType: "image/png",
      utc: new Date(Date.now() - 61_000),
    });
    const expired = await put(old.put, body, { "content-type": "image/png" });
    expect([expired.status, codeOf(expired.text)]).toEqual([403, "url_expired"]);
    expect((await get(old.get)).status).toBe(404);

    expect((await put(s.put, body, { "content-type": "image/png" })).status).toBe(201);
    const again = await put(s.put, body, { "content-type": "image/png" });
    expect([again.status, codeOf(again.text)]).toEqual([409, "slot_used"]);
    expectSameBytes((await get(s.get)).body, body, "the first upload");
  });

  it("refuses a file over the domain's size limit and over its quota", async () => {
    const big = randomBytes(MiB + 1);
    const s = slot("big.bin", big.length);
    const over = await put(s.put, big);
    expect([over.status, codeOf(over.text)]).toEqual([413, "file_too_large"]);

    const small = (n: number) =>
      createSlot(options("small.test", { accessKeyId: "AKIDSMALL" }), {
        utc: new Date(),
        token: token(randomBytes(32)),
        filename: `f${n}`,
        size: 40_000,
      });
    const body = randomBytes(40_000);
    expect((await put(small(1).put, body)).status).toBe(201);
    expect((await put(small(2).put, body)).status).toBe(201);
    const full = await put(small(3).put, body);
    expect([full.status, codeOf(full.text)]).toEqual([413, "quota_exceeded"]);
    // a key of another domain signs nothing here
    const wrongKey = createSlot(options("small.test"), {
      utc: new Date(),
      token: token(randomBytes(32)),
      filename: "k",
      size: 10,
    });
    expect((await put(wrongKey.put, randomBytes(10))).status).toBe(403);
  });
});

describe("XEP-0363 files among the attachments", () => {
  const mongoose = (filename: string, size: number) =>
    createSlot(
      { ...MONGOOSE, bucketUrl: app.url("/api/v1/xmpp-upload/s3/localhost") },
      { utc: new Date(), token: token(randomBytes(32)), filename, size },
    );

  it("takes one of two PUTs to one slot at once, and none after a failed one", async () => {
    const body = randomBytes(200_000);
    const s = mongoose("twice.bin", body.length);
    const both = await Promise.all([put(s.put, body), put(s.put, body)]);
    expect(both.map((r) => r.status).sort()).toEqual([201, 409]);
    expectSameBytes((await get(s.get)).body, body, "the one stored");
  });

  it("is deleted by media gc like any attachment, rows then files", async () => {
    const body = randomBytes(1000);
    const s = mongoose("old.bin", body.length);
    expect((await put(s.put, body)).status).toBe(201);
    const { attachments } = await deleteOldAttachments(
      app.db.pool,
      app.deps.attachments.storage,
      new Date(Date.now() + 60_000),
    );
    expect(attachments).toBeGreaterThan(0);
    const left = await app.db.pool.query("SELECT count(*)::int AS n FROM attachments WHERE kind = 'upload'");
    expect(left.rows[0].n).toBe(0);
    // the row cache of the process forgets within a minute; the file is gone at once: 404 either way
    expect((await get(s.get)).status).toBe(404);
  });
});

/** An XMPP client of a server: discovers the upload service, asks it for slots. */
function uploader(user: XmppUser, domain: string) {
  let n = 0;
  const iq = async (to: string, child: Element, ms = 10_000) => {
    const id = `q${++n}`;
    await user.send(xml("iq", { type: "get", to, id }, child));
    return user.waitFor((s) => s.is("iq") && s.attrs.id === id, ms, `the answer to ${id}`);
  };
  return {
    /** Every service of the domain that offers XEP-0363, with its max-file-size. */
    async discover(): Promise<Array<{ jid: string; maxFileSize: number }>> {
      const items = await iq(domain, xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }));
      const jids = (items.getChild("query")?.getChildren("item") ?? []).map((i) => String(i.attrs.jid));
      const found: Array<{ jid: string; maxFileSize: number }> = [];
      // asked at once; an item that does not answer (a component not connected) is no upload service. The
      // bound is a loaded machine's (every item answers in milliseconds on a quiet one, a missing one at once)
      const infos = await Promise.all(
        jids.map((jid) =>
          iq(jid, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }), 15_000).then(
            (answer) => ({ jid, info: answer.getChild("query") }),
            () => ({ jid, info: undefined }),
          ),
        ),
      );
      for (const { jid, info } of infos) {
        if (!info?.getChildren("feature").some((f) => f.attrs.var === NS)) continue;
        const field = info
          .getChildren("x")
          .flatMap((x) => x.getChildren("field"))
          .find((f) => f.attrs.var === "max-file-size");
        found.push({ jid, maxFileSize: Number(field?.getChildText("value")) });
      }
      return found;
    },
    async slot(
      service: string,
      filename: string,
      size: number,
      contentType = "application/octet-stream",
      refusalWithin = 10_000,
    ) {
      let answer: Element;
      try {
        answer = await iq(
          service,
          xml("request", { xmlns: NS, filename, size: String(size), "content-type": contentType }),
          refusalWithin,
        );
      } catch {
        // Debian's mod_http_upload_external (hg 2023-02-23) answers nothing to a file over its limit: its
        // error_reply passes the <file-too-large/> payload where Prosody 0.12 takes `error_by`
        return { error: "no answer" };
      }
      if (answer.attrs.type !== "result") return { error: answer.getChild("error")?.toString() ?? "error" };
      const slot = answer.getChild("slot") as Element;
      const putEl = slot.getChild("put") as Element;
      const headers = Object.fromEntries(
        putEl.getChildren("header").map((h) => [String(h.attrs.name), h.text()] as const),
      );
      return { put: String(putEl.attrs.url), get: String(slot.getChild("get")?.attrs.url), headers };
    },
  };
}

type Uploader = ReturnType<typeof uploader>;

/** The round trip and the refusals every server's slots must show. */
async function roundTrip(client: Uploader, service: string) {
  const blob = randomBytes(200_000);
  const s = await client.slot(service, "voice message.ogg", blob.length, "audio/ogg");
  if ("error" in s) throw new Error(`no slot: ${s.error}`);
  const up = await put(s.put, blob, { "content-type": "audio/ogg", ...s.headers });
  expect(up.status, up.text).toBe(201);
  const down = await get(s.get);
  expect(down.status).toBe(200);
  expectSameBytes(down.body, blob, `the file of ${service}`);
  expect(down.headers.get("content-type")).toBe("audio/ogg");
  const again = await put(s.put, blob, { "content-type": "audio/ogg", ...s.headers });
  expect(again.status).toBe(409);
  return s;
}

describe("ejabberd 23.01: mod_http_upload with external_secret (v)", () => {
  const unavailable = ejabberdUnavailable();
  let ej: Ejabberd;
  let alice: XmppUser;

  beforeAll(async () => {
    if (unavailable) throw new Error(`ejabberd end-to-end tests cannot run: ${unavailable}`);
    const testJson = JSON.parse(readFileSync(path.join(ROOT, "config/test.json"), "utf8"));
    ej = await startEjabberd({
      hosts: ["localhost"],
      files: {
        "config/default.json": readFileSync(path.join(ROOT, "config/default.json"), "utf8"),
        "config/test.json": JSON.stringify(testJson),
      },
      extauthEnv: (dir) => ({
        APP_ENV: "test",
        DATABASE_URL: app.db.url,
        CONFIG_DIR: path.join(dir, "config"),
      }),
      // the module's config as docs/xmpp-clients.md gives it, with this test's URL and limits
      modules: `mod_disco: {}
mod_http_upload:
  access: all
  put_url: ${JSON.stringify(app.url("/api/v1/xmpp-upload/ext/@HOST@"))}
  external_secret: ${JSON.stringify(EXT_SECRET)}
  max_size: ${2 * MiB}
`,
    });
    alice = await connectUser({
      port: ej.tlsPort,
      ca: ej.ca,
      domain: "localhost",
      username: "alice",
      password: "alice pw",
    });
  }, 90_000);

  afterAll(async () => {
    await alice?.stop();
    await ej?.stop();
  });

  it("discovers the service, uploads and downloads through its slot; refuses oversize and tampered", async () => {
    const client = uploader(alice, "localhost");
    const services = await client.discover();
    expect(services).toEqual([{ jid: "upload.localhost", maxFileSize: 2 * MiB }]);
    const s = await roundTrip(client, "upload.localhost");
    expect(s.put).toMatch(/\?v=[0-9a-f]{64}$/);

    // over ejabberd's max_size: no slot at all; over ours (1 MiB) but not ejabberd's: 413 at the PUT
    expect(await client.slot("upload.localhost", "huge.bin", 3 * MiB)).toHaveProperty("error");
    const big = randomBytes(MiB + 10);
    const bigSlot = await client.slot("upload.localhost", "big.bin", big.length);
    if ("error" in bigSlot) throw new Error(bigSlot.error);
    const over = await put(bigSlot.put, big);
    expect([over.status, codeOf(over.text)]).toEqual([413, "file_too_large"]);

    const body = randomBytes(5000);
    const t = await client.slot("upload.localhost", "t.txt", body.length, "text/plain");
    if ("error" in t) throw new Error(t.error);
    const tampered = await put(
      t.put.replace(/v=(.)/, (_m, c: string) => `v=${c === "a" ? "b" : "a"}`),
      body,
    );
    expect([tampered.status, codeOf(tampered.text)]).toEqual([403, "invalid_signature"]);
    const otherFile = await put(t.put.replace("/t.txt", "/u.txt"), body);
    expect(otherFile.status).toBe(403);
    const otherSize = await put(t.put, body.subarray(10));
    expect(otherSize.status).toBe(403);
    expect((await put(t.put, body, { "content-type": "text/plain" })).status).toBe(201);
  });
});

describe("Prosody 0.12: mod_http_upload_external (v, v2) and mod_http_file_share (token)", () => {
  const unavailable = prosodyUnavailable();
  let prosody: Prosody;
  let alice: XmppUser;

  beforeAll(async () => {
    if (unavailable) throw new Error(`Prosody end-to-end tests cannot run: ${unavailable}`);
    const base = JSON.stringify(app.url("/api/v1/xmpp-upload/ext/localhost/"));
    const secret = JSON.stringify(EXT_SECRET);
    // the components as docs/xmpp-clients.md gives them, with this test's URL and limits
    // without stream management: xmpp.js 0.14 can acknowledge a stanza more than Prosody sent, which Prosody
    // answers by closing the stream (seen once in three runs)
    const components = `  modules_disabled = { "s2s", "smacks" }
Component "upload.localhost" "http_upload_external"
  http_upload_external_base_url = ${base}
  http_upload_external_secret = ${secret}
  http_upload_external_file_size_limit = ${2 * MiB}
Component "upload2.localhost" "http_upload_external"
  http_upload_external_base_url = ${base}
  http_upload_external_secret = ${secret}
  http_upload_external_protocol = "v2"
  http_upload_external_file_size_limit = ${2 * MiB}
Component "share.localhost" "http_file_share"
  http_file_share_base_url = ${base}
  http_file_share_secret = ${secret}
  http_file_share_size_limit = ${2 * MiB}
`;
    // test/support/prosody.ts waits for its component port too, which Prosody opens for an external component
    prosody = await startProsody({
      hosts: { localhost: components },
      components: { "unused.localhost": "unused" },
    });
    await prosody.register("alice", "localhost", "alice pw");
    alice = await connectUser({
      port: prosody.tlsPort,
      ca: prosody.ca,
      domain: "localhost",
      username: "alice",
      password: "alice pw",
    });
  }, 60_000);

  afterAll(async () => {
    await alice?.stop();
    await prosody?.stop();
  });

  it("discovers the three services; each one's slot uploads and downloads; oversize and tampered are refused", async () => {
    const client = uploader(alice, "localhost");
    const services = await client.discover();
    expect(services.map((s) => s.jid).sort()).toEqual([
      "share.localhost",
      "upload.localhost",
      "upload2.localhost",
    ]);
    expect(services.every((s) => s.maxFileSize === 2 * MiB)).toBe(true);

    const v1 = await roundTrip(client, "upload.localhost");
    expect(v1.put).toMatch(/\?v=[0-9a-f]{64}$/);
    const v2 = await roundTrip(client, "upload2.localhost");
    expect(v2.put).toMatch(/\?v2=[0-9a-f]{64}$/);
    const share = await roundTrip(client, "share.localhost");
    expect(share.headers.Authorization).toMatch(/^Bearer /);

    for (const service of ["upload.localhost", "upload2.localhost", "share.localhost"]) {
      expect(await client.slot(service, "huge.bin", 3 * MiB, undefined, 3000), service).toHaveProperty(
        "error",
      );
      const big = randomBytes(MiB + 10);
      const bigSlot = await client.slot(service, "big.bin", big.length);
      if ("error" in bigSlot) throw new Error(bigSlot.error);
      const over = await put(bigSlot.put, big, bigSlot.headers);
      expect([over.status, codeOf(over.text)], service).toEqual([413, "file_too_large"]);
    }

    // v2 signs the type: another one is another signature
    const body = randomBytes(4000);
    const typed = await client.slot("upload2.localhost", "t.png", body.length, "image/png");
    if ("error" in typed) throw new Error(typed.error);
    expect((await put(typed.put, body, { "content-type": "image/gif" })).status).toBe(403);
    const v2Tampered = await put(typed.put.replace("/t.png", "/u.png"), body, {
      "content-type": "image/png",
    });
    expect([v2Tampered.status, codeOf(v2Tampered.text)]).toEqual([403, "invalid_signature"]);
    expect((await put(typed.put, body, { "content-type": "image/png" })).status).toBe(201);

    // the token: its own size is the only one it takes (413), a token changed by a byte is refused
    const tok = await client.slot("share.localhost", "s.bin", body.length);
    if ("error" in tok) throw new Error(tok.error);
    const bearer = tok.headers.Authorization as string;
    const size = await put(tok.put, body.subarray(1), { authorization: bearer });
    expect([size.status, codeOf(size.text)]).toEqual([413, "size_mismatch"]);
    const forged = `${bearer.slice(0, -2)}${bearer.endsWith("A") ? "B" : "A"}${bearer.slice(-1)}`;
    expect((await put(tok.put, body, { authorization: forged })).status).toBe(403);
    expect((await put(tok.put, body)).status).toBe(403);
    expect((await put(tok.put, body, { authorization: bearer })).status).toBe(201);
  });

  it("refuses an expired token", async () => {
    // made as mod_http_file_share makes one (util/jwt.lua), its exp five minutes ago
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      sub: "alice@localhost",
      iat: now - 600,
      exp: now - 300,
      slot: "OLDSLOT",
      filename: "f",
      filesize: 3,
    };
    const signed = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
    const jwt = `${signed}.${createHmac("sha256", EXT_SECRET).update(signed).digest("base64url")}`;
    const res = await put(app.url("/api/v1/xmpp-upload/ext/localhost/OLDSLOT/f"), Buffer.from("abc"), {
      authorization: `Bearer ${jwt}`,
    });
    expect([res.status, codeOf(res.text)]).toEqual([403, "url_expired"]);
  });
});

import { mkdtemp, readdir, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { expect } from "vitest";
import type { Config } from "#common/config/schema.ts";
import type { TestDatabase } from "../../../../test/support/database.ts";
import { startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";
import type { MediaDeps } from "./media-deps.ts";
import type { UploadAnswer } from "./schema.ts";

/**
 * The http-utility app as the attachment tests run it (`startHttpUtilityApp`): a database of its own, two
 * users, the real auth core and media deps built from config, listening on a free port, with its storage
 * root and scratch directory in one temporary directory, so that "nothing was left behind" is a directory
 * listing.
 */

export const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
export const BOB = { node: "306900000002", domain: "oyo.test", password: "bob pw" };
export type User = typeof ALICE;

export interface Upload {
  data: Buffer;
  name: string;
  /** the declared type; application/octet-stream when absent */
  type?: string;
}

export interface UploadBody {
  attachments: UploadAnswer[];
  files: { attachments: UploadAnswer | UploadAnswer[] };
}

export interface TestApp {
  /** `http://127.0.0.1:<port>` */
  base: string;
  config: Config;
  db: TestDatabase;
  media: MediaDeps;
  /** the storage root of an fs backend (`<dir>/store`) */
  root: string;
  /** the temporary directory holding the storage root and the scratch directory */
  dir: string;
  /** `<base>/api/v1/attachments<rest>` */
  url(rest: string): string;
  upload(kind: string, user: User | undefined, files: Upload[], field?: string): Promise<Response>;
  /** Every file under the temporary directory (stored, `.partial`, scratch), as relative paths. */
  files(): Promise<string[]>;
  /** Names of every row in `attachments`. */
  rows(): Promise<string[]>;
  close(): Promise<void>;
}

export const basic = (u: User) =>
  `Basic ${Buffer.from(`${u.node}@${u.domain}:${u.password}`).toString("base64")}`;

export interface TestAppOptions {
  /** the app's logger (silent otherwise): a test counting warn lines passes its own */
  log?: Logger;
  /** more config overrides, merged key by key after `media` (e.g. `services.httpUtility.rateLimits`) */
  config?: Record<string, unknown>;
}

/**
 * Starts the app; `media` overrides the test's media config (limits, quota, cache, backend). Storage is an
 * fs directory unless `media.storage` names another.
 */
export async function startTestApp(
  media: Record<string, unknown> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const dir = await mkdtemp(path.join(tmpdir(), "attachments-test-"));
  const root = path.join(dir, "store");
  const started = await startHttpUtilityApp({
    overrides: {
      domains: { "oyo.test": { scramIterations: 4096 } },
      media: { storage: { kind: "fs", options: { root } }, tmpDir: path.join(dir, "scratch"), ...media },
      ...options.config,
    },
    users: [ALICE, BOB],
    ...(options.log ? { log: options.log } : {}),
  });
  const { config, db } = started;
  const deps = started.deps.attachments;
  const url = (rest: string) => started.url(`/api/v1/attachments${rest}`);

  return {
    base: started.base,
    config,
    db,
    media: deps,
    root,
    dir,
    url,
    upload(kind, user, files, field = "attachments") {
      const form = new FormData();
      for (const f of files) {
        const blob = new Blob([new Uint8Array(f.data)], { type: f.type ?? "application/octet-stream" });
        form.append(field, blob, f.name);
      }
      return fetch(url(`/${kind}`), {
        method: "POST",
        headers: user ? { authorization: basic(user) } : {},
        body: form,
      });
    },
    files: () => walk(dir),
    async rows() {
      const r = await db.pool.query<{ name: string }>("SELECT name FROM attachments ORDER BY name");
      return r.rows.map((x) => x.name);
    },
    async close() {
      await started.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function walk(dir: string, prefix = ""): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(path.join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

/** The body of a 201 upload answer, failing with the body when it is not one. */
export async function uploaded(res: Response): Promise<UploadBody> {
  const body = (await res.json()) as UploadBody;
  expect(res.status, JSON.stringify(body)).toBe(201);
  return body;
}

/** Checks an error answer's status and stable code; answers its message. */
export async function refused(res: Response, status: number, code: string): Promise<string> {
  const body = (await res.json()) as { error?: { code: string; message: string } };
  expect({ status: res.status, code: body.error?.code }, JSON.stringify(body)).toEqual({ status, code });
  return body.error?.message ?? "";
}

export const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());

/**
 * A GET whose path goes out exactly as written: fetch and URL normalise `%2e%2e` and `..` away before a
 * server could see them.
 */
export function rawGet(base: string, rawPath: string): Promise<{ status: number; body: Buffer }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.get({ hostname, port, path: rawPath, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

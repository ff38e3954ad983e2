import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";

/**
 * A local S3 for the storage tests: s3rver (a Koa app storing buckets in a directory) on 127.0.0.1.
 *
 * s3rver 3.7 answers ListMultipartUploads with NotImplemented and AbortMultipartUpload with
 * MethodNotAllowed, the two calls that keep a failed or crashed upload from leaving parts behind. They
 * are added here as a middleware in front of s3rver's router, over s3rver's own layout of an upload
 * (`<bucket>/._S3rver_uploads/<uploadId>/{key,metadata,<part>…}`), so the backend is tested against the
 * same calls S3 answers.
 *
 * s3rver also writes a PutObject's body straight to the object's file as it arrives, so a request cut
 * mid-body (a client killed mid-upload) leaves a partial object under its key, which S3 never shows: a
 * PutObject is stored whole or not at all. A PutObject's body is read whole here first, and a request that
 * ends before its body did stores nothing. Test-only: nothing in the services imports this file.
 */
const require = createRequire(import.meta.url);

interface KoaContext {
  method: string;
  path: string;
  req: IncomingMessage | Readable;
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverApp {
  middleware: Middleware[];
  store: FilesystemStore;
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}

const S3rver = require("s3rver") as new (options: Record<string, unknown>) => S3rverApp;
const S3Error = require("s3rver/lib/models/error") as new (code: string, message: string) => Error;

/**
 * s3rver checks SigV4 signatures made with these. A fresh object each time: an S3Client marks the
 * credentials object it is given (`$source`), which a strict options schema then refuses.
 */
export const s3rverCredentials = () => ({ accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });

export interface TestS3Server {
  endpoint: string;
  /** requests received so far, to show that a call made none */
  requests(): number;
  /** the directory of an incomplete multipart upload (its mtime is its Initiated date) */
  uploadDir(bucket: string, uploadId: string): string;
  close(): Promise<void>;
}

export async function startS3Server(): Promise<TestS3Server> {
  const directory = await mkdtemp(path.join(tmpdir(), "sidecars-s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory });
  const uploadsOf = (bucket: string) => path.join(directory, bucket, "._S3rver_uploads");

  let requests = 0;
  const count: Middleware = async (_ctx, next) => {
    requests++;
    await next();
  };
  // before the router (the last middleware), after the XML encoding of plain-object bodies
  server.middleware.unshift(count);
  server.middleware.splice(server.middleware.length - 1, 0, multipartUploads(uploadsOf), wholePutObjects());

  answerPutsOnceWritten(server);

  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests: () => requests,
    uploadDir: (bucket, uploadId) => path.join(uploadsOf(bucket), uploadId),
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** ListMultipartUploads (one page) and AbortMultipartUpload, path-style requests only. */
function multipartUploads(uploadsOf: (bucket: string) => string): Middleware {
  return async (ctx, next) => {
    const [, bucket, key] = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path) ?? [];
    if (bucket && !key && ctx.method === "GET" && "uploads" in ctx.query) {
      const prefix = typeof ctx.query.prefix === "string" ? ctx.query.prefix : "";
      const uploads = [];
      for (const uploadId of await readdir(uploadsOf(bucket)).catch(() => [])) {
        const dir = path.join(uploadsOf(bucket), uploadId);
        const name = await readFile(path.join(dir, "key"), "utf8");
        if (!name.startsWith(prefix)) continue;
        uploads.push({ Key: name, UploadId: uploadId, Initiated: (await stat(dir)).mtime.toISOString() });
      }
      ctx.body = {
        ListMultipartUploadsResult: { Bucket: bucket, Prefix: prefix, IsTruncated: false, Upload: uploads },
      };
      return;
    }
    if (bucket && key && ctx.method === "DELETE" && typeof ctx.query.uploadId === "string") {
      const dir = path.join(uploadsOf(bucket), path.basename(ctx.query.uploadId));
      const found = await stat(dir).catch(() => undefined);
      if (!found) throw new S3Error("NoSuchUpload", "The specified upload does not exist.");
      await rm(dir, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    await next();
  };
}

interface FilesystemStore {
  putObject(object: { bucket: string; key: string }): Promise<{ size: number }>;
  getResourcePath(bucket: string, key: string, resource: string): string;
}

/**
 * s3rver 3.7's FilesystemStore.putObject resolves when its MD5 stage has seen the last byte, not when the
 * object's file is written (it waits for the stage's 'finish', not the file stream's), so a GetObject right
 * after the answer may read a file still being written: seen once under load, a 3 MiB object read back
 * short. The answer here waits for the file to have the object's size, as S3 answers once it is stored.
 */
function answerPutsOnceWritten(server: S3rverApp) {
  const store = server.store;
  const putObject = store.putObject.bind(store);
  store.putObject = async (object) => {
    const result = await putObject(object);
    const file = store.getResourcePath(object.bucket, object.key, "object");
    for (let waited = 0; (await stat(file)).size < result.size; waited += 2) {
      if (waited > 30_000) throw new Error(`s3rver: ${file} not written in 30 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return result;
  };
}

/** PutObject stored whole or not at all, as S3 stores it: the body is read to its end before s3rver sees it. */
function wholePutObjects(): Middleware {
  return async (ctx, next) => {
    const put =
      ctx.method === "PUT" &&
      /^\/[^/]+\/./.test(ctx.path) &&
      !("uploadId" in ctx.query) &&
      !("partNumber" in ctx.query) &&
      ctx.headers["x-amz-copy-source"] === undefined;
    const req = ctx.req;
    if (!put || !("complete" in req)) {
      await next();
      return;
    }
    const chunks: Buffer[] = [];
    const whole = await new Promise<boolean>((resolve) => {
      req.on("data", (c: Buffer) => chunks.push(c));
      req.once("end", () => resolve(req.complete));
      req.once("error", () => resolve(false));
      req.once("close", () => resolve(req.complete));
    });
    if (!whole) {
      ctx.status = 400; // the client is gone: nobody reads this, and nothing was stored
      return;
    }
    // the same bytes, as the stream s3rver's store reads (FilesystemStore.putObject)
    ctx.req = Readable.from([Buffer.concat(chunks)]);
    await next();
  };
}

import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { assertKey, isKey } from "./keys.ts";
import type { S3StorageOptions } from "./s3-storage.ts";
import { type ByteRange, MissingObjectError, type Storage } from "./storage.ts";

/**
 * The s3 backend's implementation, imported by its definition (s3-storage.ts) only when an s3 storage is
 * created: the AWS SDK is large, and a process that stores files elsewhere never loads it.
 *
 * An S3 bucket (AWS or an S3-compatible store). A write is a multipart upload: S3 shows the object only
 * when CompleteMultipartUpload succeeds, so a reader never sees half of it; a failed write aborts the
 * upload, and uploads a crash left behind are aborted by `sweepPartial` (a bucket lifecycle rule
 * `AbortIncompleteMultipartUpload` does the same and is worth setting too).
 */
export function openS3Bucket(o: S3StorageOptions): Storage {
  const { bucket, region, endpoint, forcePathStyle, credentials, partSizeBytes, queueSize } = o;
  const prefix = o.prefix ?? "";

  const client = new S3Client({
    region,
    endpoint,
    forcePathStyle,
    credentials,
  });

  /** The object name of a key; `assertKey` runs before any request is built. */
  function nameOf(key: string): string {
    assertKey(key);
    return prefix + key;
  }

  return {
    kind: "s3",

    async put(key, body, info) {
      const name = nameOf(key);
      // lib-storage reports the abort's failure, not the stream's, when both fail: keep the stream's, it
      // is the one the caller acts on (413, a cut connection)
      let sourceError: unknown;
      const onError = (err: unknown) => {
        sourceError ??= err;
      };
      body.on("error", onError);
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: name, Body: body, ContentType: info.contentType },
        // memory per upload: queueSize parts in flight plus the one being filled
        partSize: partSizeBytes,
        queueSize,
        // on any failure lib-storage sends AbortMultipartUpload so no parts are left (and billed)
        leavePartsOnError: false,
      });
      try {
        await upload.done();
      } catch (err) {
        // as pipeline() does for the fs backend: a failed write does not leave the source paused and open
        body.destroy();
        throw sourceError ?? err;
      } finally {
        body.off("error", onError);
      }
    },

    async get(key, range?: ByteRange) {
      const name = nameOf(key);
      try {
        const answer = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: name,
            Range: range ? `bytes=${range.start}-${range.end}` : undefined,
          }),
        );
        if (!(answer.Body instanceof Readable)) throw new Error(`GetObject ${name}: no stream in the answer`);
        return answer.Body;
      } catch (err) {
        if (isMissing(err)) throw new MissingObjectError(key);
        throw err;
      }
    },

    async stat(key) {
      const name = nameOf(key);
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: name }));
        return { key, size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0) };
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    },

    async delete(key) {
      // S3 answers 204 for a missing key too
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: nameOf(key) }));
    },

    async *list() {
      // the delimiter keeps "subfolders" (never ours) out of the listing
      const pages = paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix, Delimiter: "/" });
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          const key = object.Key?.slice(prefix.length);
          if (key === undefined || !isKey(key)) continue;
          yield { key, size: object.Size ?? 0, modified: object.LastModified ?? new Date(0) };
        }
      }
    },

    async sweepPartial(olderThanMs) {
      const cutoff = Date.now() - olderThanMs;
      let removed = 0;
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const page = await client.send(
          new ListMultipartUploadsCommand({
            Bucket: bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const upload of page.Uploads ?? []) {
          const key = upload.Key?.slice(prefix.length);
          // only uploads of our own names: a shared bucket may hold someone else's
          if (key === undefined || !isKey(key) || !upload.UploadId) continue;
          if (!upload.Initiated || upload.Initiated.getTime() >= cutoff) continue;
          try {
            await client.send(
              new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
            );
            removed++;
          } catch (err) {
            // another node's sweep, or the upload completing, got there first
            if (!(err instanceof S3ServiceException && err.name === "NoSuchUpload")) throw err;
          }
        }
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
      } while (keyMarker !== undefined);
      return removed;
    },

    async close() {
      client.destroy();
    },
  };
}

/**
 * "No such object": GetObject says NoSuchKey, HeadObject (no body) only 404 NotFound. A missing bucket is
 * a 404 too, but it is a broken configuration, not a missing object.
 */
function isMissing(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  if (err.name === "NoSuchKey" || err.name === "NotFound") return true;
  return err.$metadata.httpStatusCode === 404 && err.name !== "NoSuchBucket";
}

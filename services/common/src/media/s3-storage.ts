import { z } from "zod";
import { defineStorage } from "./storage.ts";

/**
 * The `s3` storage backend: an S3 bucket (AWS or an S3-compatible store such as MinIO or Ceph). Its
 * implementation (s3-bucket.ts) and the AWS SDK under it are imported when an s3 storage is created, never
 * by a process that only imports the registry.
 */
const MiB = 1024 * 1024;

const options = z
  .object({
    bucket: z.string().min(1).describe("the S3 bucket name"),
    region: z.string().min(1).default("us-east-1").describe("AWS region"),
    endpoint: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe("endpoint of an S3-compatible store (MinIO, Ceph, …)"),
    forcePathStyle: z
      .boolean()
      .default(false)
      .describe("`<endpoint>/<bucket>/<key>` URLs instead of a host per bucket"),
    prefix: z
      .string()
      .regex(
        /^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*\/$/,
        "must be names joined and ended by /, like media/",
      )
      .optional()
      .describe("key prefix of every stored object"),
    credentials: z
      .object({
        accessKeyId: z.string().min(1),
        secretAccessKey: z.string().min(1),
        sessionToken: z.string().min(1).optional(),
      })
      .strict()
      .optional()
      .describe("static credentials; without them the SDK's default chain (env, profile, instance role)"),
    partSizeBytes: z
      .number()
      .int()
      .min(5 * MiB)
      .max(5 * 1024 * MiB)
      .default(8 * MiB)
      .describe("multipart part size (S3's minimum is 5 MiB)"),
    queueSize: z.number().int().min(1).max(32).default(2).describe("parts uploaded at once, per upload"),
  })
  .strict();

export type S3StorageOptions = z.output<typeof options>;

export default defineStorage({
  kind: "s3",
  summary: "an S3 bucket (AWS or an S3-compatible store)",
  options,
  // no capabilities: objects are not files (no poster from a video, no nginx X-Accel-Redirect) and a bucket
  // has no free space to report
  async create(o) {
    const { openS3Bucket } = await import("./s3-bucket.ts");
    return openS3Bucket(o);
  },
});

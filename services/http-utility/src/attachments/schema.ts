import { z } from "zod";
import type { MediaConfig } from "#common/config/media-schema.ts";

/** Query strings of the attachment endpoints (legacy-api.md "Attachments"). */

const oneOf = (sizes: number[], what: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, `${what} must be one of ${sizes.join(", ")}`)
    .transform(Number)
    .refine((n) => sizes.includes(n), `${what} must be one of ${sizes.join(", ")}`);

/** `?size=` of a picture or avatar: one of the thumbnail sizes; absent = the original. */
export const variantQuery = (images: MediaConfig["images"]) =>
  z.object({ size: oneOf(images.thumbnailSizes, "size").optional(), domain: z.string().max(255).optional() });

export const FORMATS = ["png", "webp"] as const;

export const generatedQuery = (g: MediaConfig["generated"]) =>
  z.object({
    name: z
      .string({ error: "name is required: a node, a JID or an e-mail address" })
      .trim()
      .min(1, "name is required: a node, a JID or an e-mail address")
      .max(320, "name is longer than 320 characters"),
    size: oneOf(g.sizes, "size").default(g.defaultSize),
    format: z.enum(FORMATS, { error: "format must be png or webp" }).default("png"),
  });

export const generatedThumbnailQuery = z.object({
  format: z.enum(FORMATS, { error: "format must be png or webp" }).optional(),
});

/** A page of the caller's videos: `before` is the `next` cursor of the previous page. */
export const videoListQuery = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, "limit must be 1 to 100")
    .transform(Number)
    .refine((n) => n >= 1 && n <= 100, "limit must be 1 to 100")
    .default(20),
  before: z
    .string()
    .max(200)
    .transform((s, ctx) => {
      const cursor = decodeCursor(s);
      if (!cursor) {
        ctx.addIssue({ code: "custom", message: "before must be the `next` value of the previous page" });
        return z.NEVER;
      }
      return cursor;
    })
    .optional(),
});

export function encodeCursor(c: { created: Date; name: string }): string {
  return Buffer.from(`${c.created.toISOString()}|${c.name}`).toString("base64url");
}

function decodeCursor(s: string): { created: Date; name: string } | undefined {
  const [iso, name] = Buffer.from(s, "base64url").toString().split("|");
  const created = new Date(iso ?? "");
  return name && !Number.isNaN(created.getTime()) ? { created, name } : undefined;
}

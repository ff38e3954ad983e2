import { z } from "zod";

/** GET /api/v1/minimum_app_version (docs/locations-and-versions.md "Minimum app versions"). */

const PLATFORM = /^[a-z0-9_-]{1,40}$/;

/** An app's platform as apps send it (query or form): optional, case-insensitive, empty means not given. */
export function platformField(description: string) {
  return z
    .string()
    .trim()
    .toLowerCase()
    .optional()
    .transform((p) => (p ? p : undefined))
    .pipe(z.string().regex(PLATFORM, "letters, digits, _ or - such as android or ios").optional())
    .meta({ description, example: "android" });
}

export const minimumVersionQuery = z.object({
  appName: z
    .string()
    .trim()
    .max(100)
    .optional()
    .transform((name) => (name ? name : undefined))
    .meta({
      description:
        "the app, as named under `apps` in the config; without it (as installed legacy apps call), the default app (`apps.<name>.default`, or the only app configured)",
      example: "OyoChat",
    }),
  platform: platformField("android, ios…; without it, or for a platform with no entry, the `default` entry"),
});

export const minimumVersionAnswer = z.object({
  appName: z.string().meta({ example: "OyoChat" }),
  platform: z.string().meta({ description: "the entry that applies: the platform asked for, or `default`" }),
  minimumVersion: z.string().meta({ example: "1.10.2" }),
});
export type MinimumVersionAnswer = z.infer<typeof minimumVersionAnswer>;

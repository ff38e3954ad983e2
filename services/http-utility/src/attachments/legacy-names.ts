import path from "node:path";
import { isKey } from "#common/media/keys.ts";
import { validateUserPart } from "#common/users/jid.ts";
import type { AttachmentKind } from "./store.ts";

/**
 * The legacy media layout and names (docs/attachments.md "Importing legacy media"): plain functions, tested
 * without a file system. The legacy services kept each upload under its own name in one directory per kind,
 * `<legacy root>/pictures/<name>`, `videos/<name>`, `avatars/<name>`, served at
 * `/api/v1/attachments/<kind>/<name>`. A legacy name reaches a path only when it is a plain, short file name:
 * letters, digits, `.`, `_` and `-`, starting with a letter or digit (no hidden file, no `..`, no separator,
 * no encoding), so that nothing a URL says can leave the legacy root.
 */

/** The kind directories under the legacy root, and the kind of what each holds. */
export const LEGACY_DIRS = {
  pictures: "picture",
  videos: "video",
  avatars: "avatar",
} as const satisfies Record<string, AttachmentKind>;
export type LegacyDir = keyof typeof LEGACY_DIRS;

/** Directories of legacy thumbnails inside a kind directory: not imported, ours are made from the originals. */
export const LEGACY_THUMBNAILS = "thumbnails";

export const LEGACY_NAME_MAX = 200;
const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const isLegacyDir = (name: string): name is LegacyDir => Object.hasOwn(LEGACY_DIRS, name);

/** Why a legacy file name is not served, or undefined when it is a safe one. */
export function legacyNameProblem(name: string): string | undefined {
  if (name.length === 0) return "an empty name";
  if (name.length > LEGACY_NAME_MAX) return `a name longer than ${LEGACY_NAME_MAX} characters`;
  if (!SAFE.test(name)) {
    return "a name with characters other than letters, digits, '.', '_' and '-', or not starting with a letter or digit";
  }
  if (name.includes("..")) return "a name with '..'";
  return undefined;
}

/** A legacy name the downloads look up (safe, and not of the stored names' form, which are looked up as keys). */
export const isLegacyName = (name: string) => legacyNameProblem(name) === undefined && !isKey(name);

/** `pictures/<name>`: what `attachments.legacy_path` holds. */
export const legacyPathOf = (dir: LegacyDir, name: string) => `${dir}/${name}`;

/**
 * The file of a `legacy_path` under `root` (absolute), or undefined when the path is not one the import
 * writes (a row written by hand, a changed layout): checked again here, then the resolved path must still be
 * inside the root.
 */
export function legacyFileOf(root: string, legacyPath: string): string | undefined {
  const [dir, name, ...rest] = legacyPath.split("/");
  if (rest.length > 0 || !dir || !isLegacyDir(dir) || !name || legacyNameProblem(name)) return undefined;
  const base = path.resolve(root);
  const file = path.resolve(base, dir, name);
  return file.startsWith(base + path.sep) && path.dirname(path.dirname(file)) === base ? file : undefined;
}

/** Image extensions an avatar named by its user may carry (`<node>.<ext>`). */
const AVATAR_EXTENSIONS = /\.(jpe?g|png|gif|webp|avif)$/i;

/**
 * The user an avatar file is named by: `<node>.<ext>` (or `<node>`), lower-cased as nodes are stored; undefined
 * when the name cannot be a user part. Whether that user exists is the database's to say.
 */
export function avatarNodeOf(name: string): string | undefined {
  const node = name.replace(AVATAR_EXTENSIONS, "").toLowerCase();
  if (node.length === 0 || validateUserPart(node)) return undefined;
  return node;
}

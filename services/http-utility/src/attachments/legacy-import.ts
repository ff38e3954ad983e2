import type { Stats } from "node:fs";
import { lstat, opendir, stat } from "node:fs/promises";
import path from "node:path";
import type { Pool } from "#common/db/pool.ts";
import type { Storage } from "#common/media/storage.ts";
import { mapConcurrent } from "../push/notifier.ts";
import { removeFiles } from "./gc.ts";
import {
  type ImportProblem,
  identifyLegacyFile,
  type LegacyEntry,
  type ProblemReason,
  problem,
} from "./legacy-identify.ts";
import {
  avatarNodeOf,
  isLegacyDir,
  LEGACY_DIRS,
  LEGACY_THUMBNAILS,
  type LegacyDir,
  legacyNameProblem,
  legacyPathOf,
} from "./legacy-names.ts";
import {
  insertLegacyFiles,
  type LegacyFile,
  linkLegacyAvatars,
  recordedNames,
  updateLegacyFile,
} from "./legacy-store.ts";
import type { AttachmentKind } from "./store.ts";

export type { ImportProblem, ProblemReason };

/**
 * `sidecars media import` (docs/attachments.md "Importing legacy media"): registers the files of the legacy
 * services' media directory as attachments, in place. The tree is walked with `opendir` (entries as they
 * come, never a whole listing) in batches: each batch is stat'ed, compared with its rows in one query (a file
 * already imported with the same size and mtime is skipped without being read, which is what makes a rerun
 * or a resumed run cheap), and the rest are identified (legacy-identify.ts: typed from their bytes and hashed)
 * and recorded in one statement. A file that cannot be served is a problem reported with its reason, never a
 * failure of the run.
 */

export interface ImportOptions {
  /** the legacy root, absolute */
  root: string;
  /** the domain imported rows (and avatars named by user) belong to */
  domain: string;
  /** look and report, write nothing (files are typed from their first bytes, not read whole) */
  dryRun?: boolean;
  /** files per query and insert */
  batch?: number;
  /** files opened at once */
  concurrency?: number;
  /** every file looked at, whatever became of it (a progress bar) */
  onFile?: (bytes: number) => void;
  onProblem?: (problem: ImportProblem) => void;
  /** what the run skipped on purpose, a line each (legacy thumbnail directories) */
  onNote?: (line: string) => void;
}

export interface ImportSummary {
  /** files looked at */
  files: number;
  /** new rows (or, in a dry run, rows that would be written) by kind */
  imported: Record<AttachmentKind, number>;
  /** bytes of the imported files */
  bytes: number;
  /** files changed on disk since their import, their rows updated */
  updated: number;
  /** files imported before, unchanged */
  unchanged: number;
  /** users whose avatar an imported file named by them became */
  avatarsLinked: number;
  problems: number;
}

/** The legacy root cannot be read at all: the one failure of a run. */
export class LegacyRootError extends Error {
  override name = "LegacyRootError";
}

const BATCH = 500;
const CONCURRENCY = 8;

/** Where the kind directories are; a LegacyRootError when the root is no legacy media directory. */
async function kindDirectories(o: ImportOptions, report: (p: ImportProblem) => void): Promise<LegacyDir[]> {
  const found: LegacyDir[] = [];
  try {
    for await (const e of await opendir(o.root)) {
      // a kind directory may be the operator's symbolic link to another disk (followed, as the downloads'
      // paths follow it); the files in it never are
      const isDir = async () =>
        e.isDirectory() ||
        (await stat(path.join(o.root, e.name)).then(
          (s) => s.isDirectory(),
          () => false,
        ));
      if (isLegacyDir(e.name) && (await isDir())) {
        found.push(e.name);
      } else {
        report({
          path: e.name,
          reason: "unexpected_entry",
          detail: `not one of ${Object.keys(LEGACY_DIRS).join("/, ")}/: not imported`,
        });
      }
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new LegacyRootError(`cannot read the legacy root ${o.root}: ${e.code ?? e.message}`);
  }
  if (found.length === 0) {
    throw new LegacyRootError(
      `${o.root} holds none of ${Object.keys(LEGACY_DIRS).join("/, ")}/: is it the legacy media directory?`,
    );
  }
  return Object.keys(LEGACY_DIRS).filter((d): d is LegacyDir => found.includes(d as LegacyDir));
}

/** Files under the kind directories, counted without stat'ing them (the progress bar's total). */
export async function countLegacyFiles(root: string): Promise<number> {
  let n = 0;
  for (const dir of Object.keys(LEGACY_DIRS)) {
    try {
      for await (const e of await opendir(path.join(root, dir))) if (!e.isDirectory()) n++;
    } catch {
      // a missing or unreadable kind directory is said by the import itself
    }
  }
  return n;
}

export async function importLegacyMedia(
  deps: { pool: Pool; storage?: Storage },
  o: ImportOptions,
): Promise<ImportSummary> {
  const summary: ImportSummary = {
    files: 0,
    imported: { picture: 0, video: 0, avatar: 0 },
    bytes: 0,
    updated: 0,
    unchanged: 0,
    avatarsLinked: 0,
    problems: 0,
  };
  const report = (p: ImportProblem) => {
    summary.problems++;
    o.onProblem?.(p);
  };
  const settled = (bytes: number) => {
    summary.files++;
    o.onFile?.(bytes);
  };
  const batchSize = o.batch ?? BATCH;

  for (const dir of await kindDirectories(o, report)) {
    let batch: LegacyEntry[] = [];
    let handle: Awaited<ReturnType<typeof opendir>>;
    try {
      handle = await opendir(path.join(o.root, dir), { bufferSize: 128 });
    } catch (err) {
      report({
        path: `${dir}/`,
        reason: "unreadable",
        detail: (err as NodeJS.ErrnoException).code ?? String(err),
      });
      continue;
    }
    for await (const e of handle) {
      const entry = { dir, name: e.name, path: legacyPathOf(dir, e.name) };
      if (e.isDirectory()) {
        directory(entry);
        continue;
      }
      batch.push(entry);
      if (batch.length >= batchSize) {
        await importBatch(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await importBatch(batch);
  }
  return summary;

  function directory(entry: LegacyEntry) {
    if (entry.name === LEGACY_THUMBNAILS) {
      o.onNote?.(
        `skipped ${entry.path}/: legacy thumbnails are not imported; ours are made from the originals on first request`,
      );
    } else
      report({ path: `${entry.path}/`, reason: "unexpected_entry", detail: "a directory: not imported" });
  }

  async function importBatch(entries: LegacyEntry[]): Promise<void> {
    // names first: an unsafe name is never stat'ed, let alone opened
    const named: LegacyEntry[] = [];
    for (const entry of entries) {
      const unsafe = legacyNameProblem(entry.name);
      if (unsafe) finish(problem(entry, "unsafe_name", unsafe));
      else named.push(entry);
    }

    const stated = (
      await mapConcurrent(named, CONCURRENCY * 2, async (entry) => {
        let s: Stats;
        try {
          s = await lstat(path.join(o.root, entry.path));
        } catch (err) {
          finish(problem(entry, "unreadable", (err as NodeJS.ErrnoException).code ?? String(err)));
          return undefined;
        }
        if (s.isDirectory()) {
          directory(entry);
          return undefined;
        }
        if (s.isSymbolicLink())
          finish(problem(entry, "not_a_file", "a symbolic link: links are not followed"));
        else if (!s.isFile()) finish(problem(entry, "not_a_file", "not a regular file"));
        else if (s.size === 0) finish(problem(entry, "empty", "an empty file"));
        else return { entry, stat: s };
        return undefined;
      })
    ).filter((x) => x !== undefined);

    const recorded = await recordedNames(
      deps.pool,
      stated.map((x) => x.entry.name),
    );
    const fresh: typeof stated = [];
    const changed: typeof stated = [];
    const avatars: Array<{ node: string; name: string }> = [];
    for (const x of stated) {
      const row = recorded.get(x.entry.name);
      if (!row) fresh.push(x);
      else if (row.legacyPath !== x.entry.path) {
        const whose = row.legacyPath ? `of the imported ${row.legacyPath}` : "of an uploaded attachment";
        finish(problem(x.entry, "name_taken", `the name is already that ${whose}`));
      } else if (row.size === x.stat.size && row.created.getTime() === Math.floor(x.stat.mtimeMs)) {
        summary.unchanged++;
        if (x.entry.dir === "avatars") avatarLink({ kind: "avatar", name: x.entry.name }, avatars);
        finish();
      } else changed.push(x);
    }

    const identified = await mapConcurrent([...fresh, ...changed], CONCURRENCY, (x) =>
      identifyLegacyFile(o.root, x.entry, x.stat, { hash: !o.dryRun }),
    );
    const files: LegacyFile[] = [];
    for (const outcome of identified) {
      if ("problem" in outcome) finish(outcome);
      else files.push(outcome.file);
    }
    const isFresh = new Set(fresh.map((x) => x.entry.name));
    const added = files.filter((f) => isFresh.has(f.name));
    const modified = files.filter((f) => !isFresh.has(f.name));

    const inserted = new Set(
      o.dryRun ? added.map((f) => f.name) : await insertLegacyFiles(deps.pool, o.domain, added),
    );
    for (const f of added) {
      if (inserted.has(f.name)) {
        summary.imported[f.kind]++;
        summary.bytes += f.size;
        avatarLink(f, avatars);
      } else summary.unchanged++; // recorded meanwhile by another run
      finish(undefined, f.size);
    }
    for (const f of modified) {
      if (!o.dryRun) {
        const gone = await updateLegacyFile(deps.pool, f);
        if (deps.storage && gone.length > 0) await removeFiles(deps.storage, gone);
      }
      summary.updated++;
      avatarLink(f, avatars);
      finish(undefined, f.size);
    }
    summary.avatarsLinked += (await linkLegacyAvatars(deps.pool, o.domain, avatars, o.dryRun)).length;
  }

  /** One file settled: a problem reported, or a row written or skipped. */
  function finish(outcome?: { problem: ImportProblem }, bytes = 0) {
    if (outcome) report(outcome.problem);
    settled(bytes);
  }

  /** An imported avatar named by its user (`<node>.<ext>`) is to become that user's avatar. */
  function avatarLink(
    file: { kind: AttachmentKind; name: string },
    into: Array<{ node: string; name: string }>,
  ) {
    if (file.kind !== "avatar") return;
    const node = avatarNodeOf(file.name);
    if (node) into.push({ node, name: file.name });
  }
}

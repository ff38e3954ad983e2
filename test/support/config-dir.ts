import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT } from "./processes.ts";

/** A test's changes to config/test.json, made on its parsed JSON. */
export type TestJson = Record<string, unknown> & { services: Record<string, Record<string, unknown>> };

/**
 * A copy of the repository's config/ in a new temporary folder (under `parent` when given), with test.json
 * changed by `edit`: the CONFIG_DIR of a service a test starts as a process. The caller removes it.
 */
export function testConfigDir(edit: (test: TestJson) => void, parent: string = tmpdir()): string {
  const dir = mkdtempSync(path.join(parent, "sidecars-config-"));
  cpSync(path.join(ROOT, "config"), dir, { recursive: true });
  const file = path.join(dir, "test.json");
  const test = JSON.parse(readFileSync(file, "utf8")) as TestJson;
  edit(test);
  writeFileSync(file, JSON.stringify(test));
  return dir;
}

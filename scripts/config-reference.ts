// The README's configuration reference, generated from the one config schema
// (services/common/src/config/schema.ts), config/default.json and the environment overrides.
//   node scripts/config-reference.ts          prints the table
//   node scripts/config-reference.ts --write  replaces it in README.md (npm run docs:config)
// test/readme.test.ts fails when the README and this output differ.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { ENV_OVERRIDES } from "#common/config/env-overrides.ts";
import { configSchema } from "#common/config/schema.ts";

export const ROOT = path.resolve(import.meta.dirname, "..");
export const README = path.join(ROOT, "README.md");
export const START_MARKER = "<!-- config-reference:start -->";
export const END_MARKER = "<!-- config-reference:end -->";

/** The part of JSON Schema that z.toJSONSchema produces for our schema. */
interface JsonSchema {
  type?: string;
  enum?: unknown[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
}

interface Row {
  key: string;
  type: string;
  default: string;
  variable: string;
  description: string;
}

/** `env` is not in any file: the loader sets it from APP_ENV, development when unset (config/load.ts). */
const LOADER_KEYS: Record<string, { variable: string; default: unknown }> = {
  env: { variable: "APP_ENV", default: "development" },
};

/** Record entries (domains) are written `domains.<domain>.…`. */
const RECORD_PLACEHOLDERS: Record<string, string> = { domains: "<domain>" };

const code = (text: string) => `\`${text}\``;

/** Table-cell text: pipes escaped everywhere, `<` and `>` outside code spans (GitHub would eat `<env>`). */
function cell(text: string): string {
  return text
    .split("`")
    .map((part, i) => (i % 2 === 1 ? part : part.replaceAll("<", "&lt;").replaceAll(">", "&gt;")))
    .join("`")
    .replaceAll("|", "\\|")
    .replaceAll("\n", " ");
}

function isRecord(s: JsonSchema): boolean {
  return s.type === "object" && !s.properties && typeof s.additionalProperties === "object";
}

/** `string` for a union of strings (e.g. IPv4 or CIDR), `a | b` for a union of different types. */
function unionType(branches: JsonSchema[]): string {
  return [...new Set(branches.map((b) => typeOf(b, false)))].join(" | ");
}

function typeOf(s: JsonSchema, optional: boolean): string {
  let t: string;
  const branches = s.anyOf ?? s.oneOf;
  if (branches) t = unionType(branches);
  else if (s.enum) t = s.enum.map((v) => code(String(v))).join(" | ");
  else if (s.type === "integer") {
    const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
    if (s.minimum !== undefined && max !== undefined) t = `integer ${s.minimum}–${max}`;
    else if (s.minimum !== undefined) t = `integer ≥ ${s.minimum}`;
    else t = "integer";
  } else if (s.type === "array") {
    const item = s.items ? typeOf(s.items, false) : "any";
    t = /^\w+$/.test(item) ? `${item}[]` : `array of ${item}`;
  } else if (isRecord(s)) t = "map";
  else t = s.type ?? "any";
  return optional ? `${t}, optional` : t;
}

function valueAt(source: unknown, keys: readonly string[]): unknown {
  let node = source;
  for (const k of keys) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[k];
  }
  return node;
}

function variableFor(keys: readonly string[]): string {
  const dotted = keys.join(".");
  const loader = LOADER_KEYS[dotted];
  if (loader) return code(loader.variable);
  const o = ENV_OVERRIDES.find((e) => e.path.join(".") === dotted);
  if (!o) return "";
  return o.secret ? `${code(o.name)} or ${code(`${o.name}_FILE`)}` : code(o.name);
}

function collect(schema: JsonSchema, defaults: unknown): Row[] {
  const rows: Row[] = [];
  const visit = (s: JsonSchema, keys: string[], inRecord: boolean, optional: boolean) => {
    const dotted = keys.join(".");
    const isContainer = s.type === "object" && (s.properties !== undefined || isRecord(s));
    let fileDefault = inRecord ? undefined : valueAt(defaults, keys);
    // a filled object's default is already in the rows of its keys
    if (isContainer && s.properties && Object.keys(fileDefault ?? {}).length > 0) fileDefault = undefined;
    const def = fileDefault ?? LOADER_KEYS[dotted]?.default ?? s.default;
    const hasEntries =
      s.properties !== undefined || (isRecord(s) && Object.hasOwn(RECORD_PLACEHOLDERS, keys.at(-1) ?? ""));
    // a container gets its own row when it says something about itself; its keys always get theirs
    if (!isContainer || !hasEntries || s.description !== undefined || s.default !== undefined) {
      rows.push({
        key: code(dotted),
        type: typeOf(s, optional && def === undefined),
        default: def === undefined ? "" : code(JSON.stringify(def)),
        variable: variableFor(keys),
        description: s.description ?? "",
      });
    }
    for (const [name, child] of Object.entries(s.properties ?? {})) {
      const required = s.required?.includes(name) ?? false;
      visit(child, [...keys, name], inRecord, !required);
    }
    const last = keys.at(-1) ?? "";
    const placeholder = Object.hasOwn(RECORD_PLACEHOLDERS, last) ? RECORD_PLACEHOLDERS[last] : undefined;
    if (isRecord(s) && placeholder && typeof s.additionalProperties === "object") {
      const entry = s.additionalProperties;
      for (const [name, child] of Object.entries(entry.properties ?? {})) {
        const required = entry.required?.includes(name) ?? false;
        visit(child, [...keys, placeholder, name], true, !required);
      }
    }
  };
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    visit(child, [name], false, !(schema.required?.includes(name) ?? false));
  }
  return rows;
}

/** The Markdown table of every configuration key (no trailing newline). */
export function configReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input" }) as JsonSchema;
  const defaults: unknown = JSON.parse(readFileSync(path.join(ROOT, "config/default.json"), "utf8"));
  const lines = [
    "| key | type | default | environment variable | description |",
    "|---|---|---|---|---|",
    ...collect(schema, defaults).map(
      (r) => `| ${r.key} | ${cell(r.type)} | ${cell(r.default)} | ${r.variable} | ${cell(r.description)} |`,
    ),
  ];
  return lines.join("\n");
}

/** What README.md holds between the markers: the table set off by blank lines. */
export function referenceSection(table = configReference()): string {
  return `\n\n${table}\n\n`;
}

/** The README text between the markers, or an Error saying which marker is missing. */
export function extractSection(readme: string): string {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < 0 || end < start) {
    throw new Error(
      `README.md must contain ${START_MARKER} followed by ${END_MARKER} (the configuration reference)`,
    );
  }
  return readme.slice(start + START_MARKER.length, end);
}

export function replaceSection(readme: string, section = referenceSection()): string {
  const old = extractSection(readme);
  const at = readme.indexOf(START_MARKER) + START_MARKER.length;
  return readme.slice(0, at) + section + readme.slice(at + old.length);
}

if (import.meta.main) {
  if (process.argv.includes("--write")) {
    const before = readFileSync(README, "utf8");
    let after: string;
    try {
      after = replaceSection(before);
    } catch (err) {
      process.stderr.write(`config-reference: ${(err as Error).message}\n`);
      process.exit(1);
    }
    if (after === before) process.stdout.write("README.md: configuration reference already up to date\n");
    else {
      writeFileSync(README, after);
      process.stdout.write("README.md: configuration reference updated\n");
    }
  } else {
    process.stdout.write(`${configReference()}\n`);
  }
}

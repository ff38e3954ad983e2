import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import echo from "./echo.ts";
import type { BuddyKind } from "./kind.ts";
import { createKindRegistry, InvalidKindError, UnknownKindError } from "./registry.ts";
import { createFakeEntity, testLogger } from "./testing/fake-entity.ts";

/** Kinds by name: built-ins, and third-party files in a folder picked up and reloaded without a restart. */

const dir = mkdtempSync(path.join(tmpdir(), "buddy-kinds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A third-party kind as an operator writes it: plain JS, no imports, answering `hi` with `answer`. */
function kindSource(description: string, answer: string): string {
  return `export default {
  description: ${JSON.stringify(description)},
  options: { parse: (o) => o },
  create(ctx) {
    ctx.command("hi", "says hi", () => ${JSON.stringify(answer)});
  },
};
`;
}

let clock = Date.now() / 1000;
/** Writes a file with a fresh mtime, as an edit an hour later would have. */
function write(file: string, text: string): void {
  const full = path.join(dir, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  clock += 3600;
  utimesSync(full, clock, clock);
}

async function answerToHi(kind: BuddyKind): Promise<string | undefined> {
  const b = await createFakeEntity({ kind });
  await b.chat("alice@example.com/phone", "hi");
  return b.take()[0]?.body;
}

const { log, lines } = testLogger();
const registry = createKindRegistry({ dir, log });

describe("the kind registry", () => {
  it("has the built-ins, with or without a folder", async () => {
    expect(await registry.get("echo")).toBe(echo);
    expect(await createKindRegistry({ log }).list()).toEqual([
      { name: "echo", description: "diagnostics: answers a message with the same text", source: "built-in" },
      {
        name: "service",
        description: "service probe: ping, status of the services, whoami",
        source: "built-in",
      },
      {
        name: "notify",
        description: "notifications over HTTP: POST a message to a user or a room",
        source: "built-in",
      },
    ]);
  });

  it("loads a kind file from the folder, and an edit of it on the next get", async () => {
    write("greeter.js", kindSource("says hi", "hi, v1"));
    expect(await answerToHi(await registry.get("greeter"))).toBe("hi, v1");
    write("greeter.js", kindSource("says hi", "hi, v2"));
    expect(await answerToHi(await registry.get("greeter"))).toBe("hi, v2");
  });

  it("loads .mjs, .ts and <name>/index.js kinds added after it started", async () => {
    write("moon.mjs", kindSource("moon", "hi from mjs"));
    write("typed.ts", kindSource("typed", "hi from ts").replace("(o) => o", "(o: unknown) => o"));
    write("folder-kind/index.js", kindSource("in a folder", "hi from a folder"));
    expect(await answerToHi(await registry.get("moon"))).toBe("hi from mjs");
    expect(await answerToHi(await registry.get("typed"))).toBe("hi from ts");
    expect(await answerToHi(await registry.get("folder-kind"))).toBe("hi from a folder");
  });

  it("loads a kind of the plugin shape, whose create gets its parsed options, and refuses a misnamed one", async () => {
    write(
      "modern.js",
      `export default {
  kind: "modern",
  summary: "says what its options say",
  options: { parse: (o) => ({ answer: o.answer ?? "hi from modern" }) },
  create(options, ctx) {
    ctx.command("hi", "says hi", () => options.answer);
  },
};
`,
    );
    expect(await answerToHi(await registry.get("modern"))).toBe("hi from modern");
    write(
      "misnamed.js",
      kindSource("x", "x").replace("export default {", 'export default {\n  kind: "other", summary: "x",'),
    );
    await expect(registry.get("misnamed")).rejects.toThrow(
      `buddy kind "misnamed" (${path.join(dir, "misnamed.js")}) is not a kind: it says it is kind "other": name its file other.js, or change its \`kind\``,
    );
    for (const file of ["misnamed.js", "modern.js"]) rmSync(path.join(dir, file));
  });

  it("keeps built-in names for the built-ins, whatever the folder holds", async () => {
    write("echo.js", kindSource("an impostor", "gotcha"));
    expect(await registry.get("echo")).toBe(echo);
    const echoes = (await registry.list()).filter((k) => k.name === "echo");
    expect(echoes).toEqual([{ name: "echo", description: echo.summary, source: "built-in" }]);
  });

  it("refuses a module that is not a kind, or does not load, saying what is wrong", async () => {
    write("nocreate.js", 'export default { description: "x", options: { parse: (o) => o } };');
    write("noschema.js", 'export default { description: "x", options: {}, create() {} };');
    write("named.js", 'export const kind = { description: "x" };');
    write("broken.js", "export default {");
    const cases: Array<[string, string]> = [
      ["nocreate", "is not a kind: `create(options, ctx)` must be a function"],
      [
        "noschema",
        "is not a kind: `options` must be a schema with a `parse` function, e.g. z.object({}).strict()",
      ],
      [
        "named",
        "is not a kind: it has no default export: export default defineKind({ kind, summary, options, create(options, ctx) })",
      ],
      ["broken", "failed to load: "],
    ];
    for (const [name, why] of cases) {
      const err = await registry.get(name).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(InvalidKindError);
      expect((err as Error).message).toContain(
        `buddy kind "${name}" (${path.join(dir, `${name}.js`)}) ${why}`,
      );
    }
  });

  it("lists the folder's good kinds with their descriptions and logs the broken ones", async () => {
    const folder = (await registry.list()).filter((k) => k.source === "folder");
    expect(folder).toEqual([
      { name: "folder-kind", description: "in a folder", source: "folder" },
      { name: "greeter", description: "says hi", source: "folder" },
      { name: "moon", description: "moon", source: "folder" },
      { name: "typed", description: "typed", source: "folder" },
    ]);
    const skipped = lines.filter((l) => l.msg === "buddy kind skipped").map((l) => l.kind);
    expect(skipped).toEqual(expect.arrayContaining(["broken", "named", "nocreate", "noschema"]));
  });

  it("answers an unknown kind with the built-ins and where a third-party kind goes", async () => {
    await expect(registry.get("nope")).rejects.toThrow(
      new UnknownKindError(
        `buddy kind "nope" is unknown: use one of echo, service, notify, or put a third-party kind in ${path.join(dir, "nope.js")} (docs/buddies.md)`,
      ),
    );
    await expect(createKindRegistry({ log }).get("nope")).rejects.toThrow(
      'buddy kind "nope" is unknown: use one of echo, service, notify, or set buddies.kindsDir for third-party kinds (docs/buddies.md)',
    );
  });

  it("refuses names that are not a plain lowercase word, before touching the disk", async () => {
    write("../outside.js", kindSource("escaped", "should never load"));
    for (const name of ["../outside", "folder-kind/index", "/etc/passwd", "Greeter", "", "x".repeat(65)]) {
      const err = await registry.get(name).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(UnknownKindError);
      expect((err as Error).message).toContain("a kind name is a lowercase word ([a-z][a-z0-9_-]*)");
    }
    rmSync(path.join(dir, "../outside.js"));
  });
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { definitionProblem } from "./definition.ts";
import { createModuleFolder, ModuleLoadError } from "./folder.ts";

/** The one loader of folder plugins (buddy kinds, per-domain authenticators). */

const dir = mkdtempSync(path.join(tmpdir(), "sidecars-plugins-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (file: string, text: string) => {
  mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  writeFileSync(path.join(dir, file), text);
};
const folder = createModuleFolder({ dir, name: /^[a-z][a-z0-9_-]*$/ });

describe("a module folder", () => {
  it("imports a module, again only when its content changed", async () => {
    write("hello.js", "export default { n: 1 };\n");
    const first = await folder.load("hello");
    expect(first).toMatchObject({
      file: path.join(dir, "hello.js"),
      module: { default: { n: 1 } },
      fresh: true,
    });
    expect(await folder.load("hello")).toMatchObject({ fresh: false });
    // same length, same second: only the content tells the edit apart
    write("hello.js", "export default { n: 2 };\n");
    expect(await folder.load("hello")).toMatchObject({ module: { default: { n: 2 } }, fresh: true });
  });

  it("finds <name>.mjs, <name>.ts and <name>/index.js, and lists them", async () => {
    write("moon.mjs", "export default 1;\n");
    write("typed.ts", "const n: number = 2;\nexport default n;\n");
    write("cloned/index.js", "export default 3;\n");
    write("notes.txt", "not a module");
    expect((await folder.load("moon"))?.module.default).toBe(1);
    expect((await folder.load("typed"))?.module.default).toBe(2);
    expect((await folder.load("cloned"))?.module.default).toBe(3);
    expect(await folder.names()).toEqual(["cloned", "hello", "moon", "typed"]);
  });

  it("never turns a name it does not allow into a path, and answers undefined for a missing one", async () => {
    write("../escaped.js", "export default 'escaped';\n");
    expect(await folder.load("../escaped")).toBeUndefined();
    expect(await folder.load("absent")).toBeUndefined();
    expect(folder.fileFor("absent")).toBe(path.join(dir, "absent.js"));
    rmSync(path.join(dir, "../escaped.js"));
  });

  it("says which file failed to load, and why", async () => {
    write("broken.js", "export default {\n");
    const err = await folder.load("broken").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModuleLoadError);
    expect((err as ModuleLoadError).file).toBe(path.join(dir, "broken.js"));
    expect((err as Error).message).toMatch(/broken\.js failed to load: /);
  });

  it("answers an empty list for a folder that does not exist", async () => {
    expect(await createModuleFolder({ dir: path.join(dir, "none"), name: /^[a-z]+$/ }).names()).toEqual([]);
  });
});

describe("definitionProblem", () => {
  it("tells a module's author what its default export lacks", () => {
    const ok = { kind: "x", summary: "s", options: { parse: (o: unknown) => o }, create: () => ({}) };
    expect(definitionProblem(ok)).toBeUndefined();
    expect(definitionProblem(undefined)).toMatch(/^it has no default export: export default definePlugin\(/);
    expect(definitionProblem({ ...ok, kind: "Bad Name" })).toBe(
      "`kind` must be a lowercase word ([a-z][a-z0-9_-]*)",
    );
    expect(definitionProblem({ ...ok, summary: " " })).toBe("`summary` must be a line of text");
    expect(definitionProblem({ ...ok, options: {} })).toMatch(/^`options` must be a schema with a `parse`/);
    expect(definitionProblem({ ...ok, capabilities: "all" })).toBe("`capabilities` must be a list of names");
    expect(definitionProblem({ ...ok, create: undefined })).toBe("`create(options, ctx)` must be a function");
  });
});

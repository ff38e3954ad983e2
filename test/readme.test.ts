// Keeps README.md true to the code: the generated configuration reference, the two Quick start commands
// (the second is what CI runs), the documented CLI commands, npm scripts and links.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { extractSection, README, ROOT, referenceSection } from "../scripts/config-reference.ts";
import { createCliContext } from "../services/cli/src/context.ts";
import { buildProgram } from "../services/cli/src/main.ts";

const readme = readFileSync(README, "utf8");
const docs = readdirSync(path.join(ROOT, "docs"))
  .filter((f) => f.endsWith(".md"))
  .map((f) => path.join(ROOT, "docs", f));

/** The lines under `## <title>` up to the next heading of level 1 or 2. */
function section(markdown: string, title: string): string[] | undefined {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => new RegExp(`^##\\s+${title}\\s*$`, "i").test(l));
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && /^#{1,2}\s/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The contents of the fenced code blocks (``` or ~~~) among these lines. */
function codeBlocks(lines: string[]): string[][] {
  const blocks: string[][] = [];
  let open: { fence: string; lines: string[] } | undefined;
  for (const line of lines) {
    const fence = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (open) {
      if (fence && fence[0] === open.fence[0] && fence.length >= open.fence.length && line.trim() === fence) {
        blocks.push(open.lines);
        open = undefined;
      } else open.lines.push(line);
    } else if (fence) open = { fence, lines: [] };
  }
  if (open) blocks.push(open.lines); // an unclosed fence runs to the end of the section
  return blocks;
}

const commandLines = (lines: string[]) =>
  lines.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));

/** `db start`, `users add`, …: every leaf command of the CLI, with its long options. */
function cliCommands(cmd: Command, prefix: string[] = []): { path: string; flags: string[] }[] {
  return cmd.commands
    .filter((c) => c.name() !== "help")
    .flatMap((c) => {
      const p = [...prefix, c.name()];
      if (c.commands.length > 0) return cliCommands(c, p);
      const flags = c.options.map((o) => o.long).filter((f): f is string => !!f && f !== "--help");
      return [{ path: p.join(" "), flags }];
    });
}

describe("README.md", () => {
  it("holds the configuration reference generated from the schema", () => {
    let current: string;
    try {
      current = extractSection(readme);
    } catch (err) {
      throw new Error(`${(err as Error).message}; then run \`npm run docs:config\``);
    }
    expect(
      current,
      "README.md's configuration reference differs from the config schema: run `npm run docs:config` and commit README.md",
    ).toBe(referenceSection());
  });

  it("has a Quick start of exactly one code block with exactly two commands", () => {
    const quickStart = section(readme, "Quick start");
    expect(quickStart, 'README.md needs a "## Quick start" section').toBeDefined();
    const blocks = codeBlocks(quickStart ?? []);
    expect(blocks.length, "the Quick start section must hold exactly one code block").toBe(1);
    const commands = commandLines(blocks[0] ?? []);
    expect(commands, "the Quick start code block must hold exactly two commands (run, test)").toHaveLength(2);
  });

  it("gives as its second Quick start command exactly what .ci/run runs", () => {
    const commands = commandLines(codeBlocks(section(readme, "Quick start") ?? [])[0] ?? []);
    const ci = commandLines(readFileSync(path.join(ROOT, ".ci/run"), "utf8").split("\n")).filter(
      (l) => !/^set\s+-/.test(l) && !/^cd\s/.test(l),
    );
    expect(ci.at(-1), ".ci/run must end by running the README's Quick start test command").toBe(commands[1]);
  });

  it("documents every sidecars command and option", async () => {
    const program = await buildProgram(createCliContext({}));
    const commands = cliCommands(program);
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) {
      expect(readme, `README.md does not mention \`sidecars ${c.path}\` (section "Commands")`).toContain(
        `sidecars ${c.path}`,
      );
      for (const flag of c.flags) {
        expect(readme, `README.md does not mention option ${flag} of \`sidecars ${c.path}\``).toContain(flag);
      }
    }
  });

  it("and docs/*.md name only npm scripts that exist", () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: object }).scripts,
    );
    for (const file of [README, ...docs]) {
      for (const [, name] of readFileSync(file, "utf8").matchAll(/npm run ([\w:.-]+)/g)) {
        expect(
          scripts,
          `${path.relative(ROOT, file)} names \`npm run ${name}\`, not in package.json`,
        ).toContain(name);
      }
    }
  });

  it("and docs/*.md link only to files that exist", () => {
    for (const file of [README, ...docs]) {
      for (const [, target] of readFileSync(file, "utf8").matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        if (!target || /^[a-z]+:/i.test(target)) continue;
        const resolved = path.resolve(path.dirname(file), target);
        expect(
          existsSync(resolved),
          `${path.relative(ROOT, file)} links to ${target}, which does not exist`,
        ).toBe(true);
      }
    }
  });
});

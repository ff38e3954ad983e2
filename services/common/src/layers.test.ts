import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { fromRoot } from "./paths.ts";

/**
 * The layers point one way (docs/architecture.md): services/common imports no app, apps reach common
 * through the `#common/*` alias (package.json `imports`) and one another only through a public entry.
 */
function grep(pattern: string, ...paths: string[]): string[] {
  try {
    const out = execFileSync("git", ["grep", "-n", "-E", pattern, "--", ...paths], {
      cwd: fromRoot("."),
      encoding: "utf8",
    });
    return out.split("\n").filter(Boolean);
  } catch (err) {
    if ((err as { status?: number }).status === 1) return []; // git grep: no match
    throw err;
  }
}

const IMPORT = String.raw`(from|import\(|vi\.mock\()\s*"`;

describe("layers", () => {
  it("services/common imports no service", () => {
    expect(grep(`${IMPORT}(#auth|[./]*/(auth|http-utility|buddies|cli)/)`, "services/common")).toEqual([]);
  });

  it("reaches common through #common/*, not through ../ chains", () => {
    expect(grep(`${IMPORT}[./]+/common/src/`, "services", "test", "scripts")).toEqual([]);
  });

  it("reaches the auth service only through its public entry", () => {
    const outside = grep(
      `${IMPORT}[./]+/auth/src/`,
      "services/http-utility",
      "services/buddies",
      "services/cli",
    );
    expect(outside).toEqual([]);
  });

  it("finds an upward import when there is one (the check itself works)", () => {
    expect(grep(`${IMPORT}#common/`, "services/cli/src/context.ts").length).toBeGreaterThan(0);
  });
});

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { projectRoot } from "#common/paths.ts";
import { runSidecars } from "../../../../test/support/cli.ts";

/**
 * `sidecars domains example` and `check`, run as operators run them: the domain entry printed is one the
 * config schema takes and that fits the MongooseIM version it names, and a domain that does not fit the version
 * it declares is named, with what to change.
 */

const dirs: string[] = [];
/** A copy of config/ whose test.json serves these domains. */
function configWith(domains: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "sidecars-domains-"));
  dirs.push(dir);
  cpSync(path.join(projectRoot, "config"), dir, { recursive: true });
  const test = JSON.parse(readFileSync(path.join(dir, "test.json"), "utf8"));
  test.domains = domains;
  writeFileSync(path.join(dir, "test.json"), JSON.stringify(test));
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The JSON block and the MongooseIM block that `example` printed. */
function parts(stdout: string): { domains: Record<string, unknown>; mongooseim: string } {
  const lines = stdout.split("\n");
  const start = lines.indexOf("{");
  const end = lines.indexOf("}", start);
  return {
    domains: JSON.parse(lines.slice(start, end + 1).join("\n")),
    mongooseim: lines.slice(end + 1).join("\n"),
  };
}

describe("sidecars domains example", () => {
  for (const version of ["2.1.0", "6.x"]) {
    it(`--mongooseim ${version}: a domain entry the schema takes and that fits, beside MongooseIM's config`, async () => {
      const r = await runSidecars(["domains", "example", "--mongooseim", version, "--domain", "oyo.example"]);
      expect(r.code, r.stderr).toBe(0);
      const { domains, mongooseim } = parts(r.stdout);
      expect(Object.keys(domains)).toEqual(["oyo.example"]);
      const config = loadConfig({ env: { APP_ENV: "test", CONFIG_DIR: configWith(domains) } });
      expect(config.domains["oyo.example"]?.mongooseim).toBe(version);
      const check = await runSidecars(["domains", "check"], { env: { CONFIG_DIR: configWith(domains) } });
      expect(check.code, check.stdout).toBe(0);
      if (version === "2.1.0") {
        expect(config.domains["oyo.example"]).toMatchObject({
          passwordFormat: "plain",
          keepCleartext: false,
        });
        expect(mongooseim).toContain('{host_config, "oyo.example", [');
        expect(mongooseim).toContain("{password_format, plain}");
        expect(mongooseim).toContain('{path_prefix, "/authorize/"}');
      } else {
        expect(config.domains["oyo.example"]).toMatchObject({
          passwordFormat: "scram",
          scramFormat: "multi",
        });
        expect(mongooseim).toContain('password.format = "scram"');
        expect(mongooseim).toContain('connection.path_prefix = "/authorize/"');
      }
      // the basic_auth password is never printed, only where it comes from
      expect(r.stdout).not.toMatch(/basic_auth.*:(?!<)[^"<]+"/);
    });
  }

  it("refuses a version it does not know and a name that is no domain", async () => {
    const r = await runSidecars(["domains", "example", "--mongooseim", "5.0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Allowed choices are 2.1.0, 6.x");
    const bad = await runSidecars(["domains", "example", "--mongooseim", "6.x", "--domain", "Oyo Chat"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--domain");
  });
});

describe("sidecars domains check", () => {
  it("names each domain whose password settings do not fit its MongooseIM, and exits 1", async () => {
    const env = {
      CONFIG_DIR: configWith({
        // defaults are 6.x's (scram, ==MULTI_SCRAM==): wrong for the 2.1.0 cluster being replaced
        "old.example": { mongooseim: "2.1.0" },
        "new.example": { mongooseim: "6.x", passwordFormat: "scram", scramFormat: "legacy" },
        "fine.example": { mongooseim: "2.1.0", passwordFormat: "plain" },
        "silent.example": {},
      }),
    };
    const r = await runSidecars(["domains", "check"], { env });
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^domain old\.example: MongooseIM 2\.1\.0 reads only the ==SCRAM==.*scramFormat "legacy"/,
    );
    expect(lines[1]).toMatch(/^domain new\.example: .*SCRAM-SHA-1 only: set scramFormat "multi"/);
    expect(r.stderr).toContain("2 domain setting(s) to fix");
  });
});

import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { testConfigDir } from "../../../../test/support/config-dir.ts";
import { ConfigError, loadConfig } from "./load.ts";
import { retentionMs } from "./retention-schema.ts";

/** The `retention` section as an operator writes it in config/<env>.json. */

function load(retention: unknown) {
  const dir = testConfigDir((t) => {
    t.retention = retention;
  });
  try {
    return loadConfig({ configDir: dir, env: { APP_ENV: "test" } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("config retention", () => {
  it("has defaults, takes the CLI's durations, and 0 or off to keep for ever", () => {
    const r = load({ pushNotifications: "12h", locations: 0, media: "off", smsBudgets: "2w" }).retention;
    expect(retentionMs(r.pushNotifications)).toBe(12 * 3_600_000);
    expect(retentionMs(r.smsBudgets)).toBe(14 * 86_400_000);
    expect(retentionMs(r.locations)).toBeUndefined();
    expect(retentionMs(r.media)).toBeUndefined();
    expect(r.registrationChallenges).toBe("7d");
    expect(r.rateLimits).toBe("1d");
    expect(r.jobs).toBe("7d");
    expect(r.schedule).toBe("17 * * * *");
  });

  it("refuses an unparseable duration at startup, naming the key and the accepted forms", () => {
    let problems: string[] = [];
    try {
      load({ pushNotifications: "30 days", rateLimits: "-1d" });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual([
      expect.stringMatching(
        /^retention\.pushNotifications: is not a duration: write a positive whole number and a unit/,
      ),
      expect.stringMatching(
        /^retention\.rateLimits: is not a duration: .* such as 90d, or 0 \(keep for ever\)$/,
      ),
    ]);
  });
});

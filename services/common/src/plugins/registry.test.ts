import { describe, expect, it } from "vitest";
import { z } from "zod";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import { StartupProblems } from "../errors.ts";
import { definePlugin } from "./definition.ts";
import { OptionError, ProblemCollector, parseOptions } from "./problems.ts";
import { createRegistry, type PluginPoint } from "./registry.ts";

/**
 * The plugin contract itself, on a made-up point: a "greeter" whose instances may be able to shout.
 * What a registry answers is what every point's operators read: `<config key>: <problem>: <fix>`.
 */

interface Greeter {
  greet(name: string): string;
  shout?(name: string): string;
}

const greeterPoint: PluginPoint<Greeter, "shout"> = {
  name: "greeter",
  docs: "docs/greeters.md",
  capabilities: {
    shout: {
      summary: "shouting",
      lost: "urgent greetings are whispered",
      has: (g) => typeof g.shout === "function",
    },
  },
};

interface Ctx {
  punctuation: string;
}

const polite = definePlugin({
  kind: "polite",
  summary: "says hello",
  options: z
    .object({
      greeting: z.string().min(1).describe("the word said before the name"),
      times: z.number().int().min(1).max(3).default(1).describe("how often"),
    })
    .strict(),
  capabilities: ["shout"],
  create: (o, ctx: Ctx): Greeter => ({
    greet: (name) => `${`${o.greeting} `.repeat(o.times)}${name}${ctx.punctuation}`,
    shout: (name) => `${o.greeting.toUpperCase()} ${name.toUpperCase()}${ctx.punctuation}`,
  }),
});

const quiet = definePlugin({
  kind: "quiet",
  summary: "nods",
  options: z.object({}).strict(),
  create: (_o, _ctx: Ctx): Greeter => ({ greet: () => "*nods*" }),
});

const fileBased = definePlugin({
  kind: "file",
  summary: "reads its greeting from a file",
  options: z.object({ file: z.string() }).strict(),
  create(o, _ctx: Ctx): Greeter {
    if (o.file === "/missing") throw new OptionError("file", "cannot read /missing (ENOENT): fix the path");
    throw new Error("the greeting file is empty");
  },
});

/** Declares shouting, has none: a plugin bug the start must not hide. */
const liar = definePlugin({
  kind: "liar",
  summary: "says it can shout",
  options: z.object({}).strict(),
  capabilities: ["shout"],
  create: (_o, _ctx: Ctx): Greeter => ({ greet: () => "hi" }),
});

/** Shouts without declaring it. */
const sneaky = definePlugin({
  kind: "sneaky",
  summary: "shouts unannounced",
  options: z.object({}).strict(),
  create: (_o, _ctx: Ctx): Greeter => ({ greet: () => "hi", shout: () => "HI" }),
});

const slow = definePlugin({
  kind: "slow",
  summary: "takes its time",
  options: z.object({ fail: z.boolean().default(false) }).strict(),
  async create(o, _ctx: Ctx): Promise<Greeter> {
    await new Promise((r) => setTimeout(r, 1));
    if (o.fail) throw new Error("the backend said no");
    return { greet: (n) => `hello ${n}` };
  },
});

const greeters = createRegistry(greeterPoint, [polite, quiet, fileBased, liar, sneaky]);
const ctx: Ctx = { punctuation: "!" };

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StartupProblems);
    return (err as StartupProblems).problems;
  }
  throw new Error("no problem was thrown");
}

describe("a plugin registry", () => {
  it("creates the instance of a known kind from its parsed options", () => {
    const g = greeters.create(
      "party.greeter",
      { kind: "polite", options: { greeting: "hello", times: 2 } },
      ctx,
    );
    expect(g.greet("ann")).toBe("hello hello ann!");
    expect(greeters.kinds).toEqual(["polite", "quiet", "file", "liar", "sneaky"]);
    expect(greeters.get("quiet")).toBe(quiet);
  });

  it("names an unknown kind's key and the kinds there are", () => {
    expect(problemsOf(() => greeters.create("party.greeter", { kind: "rude" }, ctx))).toEqual([
      'party.greeter: kind "rude" is unknown: use one of polite, quiet, file, liar, sneaky (docs/greeters.md)',
    ]);
    expect(greeters.unknownKind("rude")).toBe(
      'greeter "rude" is unknown: use one of polite, quiet, file, liar, sneaky (docs/greeters.md)',
    );
  });

  it("lists every bad option at its key under the options, with the fix", () => {
    expect(
      problemsOf(() =>
        greeters.create("party.greeter", { kind: "polite", options: { times: 9, volume: 11 } }, ctx),
      ),
    ).toEqual([
      "party.greeter.options.greeting: required: the word said before the name",
      "party.greeter.options.times: Too big: expected number to be <=3",
      "party.greeter.options.volume: unknown key: remove it, or use one of greeting, times",
    ]);
  });

  it("refuses options a kind does not take instead of ignoring them", () => {
    expect(
      problemsOf(() => greeters.create("g", { kind: "quiet", options: { greeting: "hi" } }, ctx)),
    ).toEqual(["g.options.greeting: unknown key: none is taken here: remove it"]);
  });

  it("puts options of a flat config (kind given by the key) at the plugin's own key", () => {
    expect(
      problemsOf(() =>
        greeters.create({ key: "apps.x.polite", optionsKey: "apps.x.polite" }, { kind: "polite" }, ctx),
      ),
    ).toEqual(["apps.x.polite.greeting: required: the word said before the name"]);
  });

  it("reports what create threw: an OptionError at its option, anything else at the plugin with the docs", () => {
    expect(
      problemsOf(() => greeters.create("g", { kind: "file", options: { file: "/missing" } }, ctx)),
    ).toEqual(["g.options.file: cannot read /missing (ENOENT): fix the path"]);
    expect(
      problemsOf(() => greeters.create("g", { kind: "file", options: { file: "/empty" } }, ctx)),
    ).toEqual(['g: greeter "file" could not start: the greeting file is empty: see docs/greeters.md']);
  });

  it("is as asynchronous as the definition's create, and rejects with the same problems", async () => {
    const slowOnes = createRegistry<Ctx, Promise<Greeter>>({ name: "greeter", docs: "docs/greeters.md" }, [
      slow,
    ]);
    const g = await slowOnes.create("g", { kind: "slow" }, ctx);
    expect(g.greet("bo")).toBe("hello bo");
    const err = await slowOnes.create("g", { kind: "slow", options: { fail: true } }, ctx).catch((e) => e);
    expect((err as StartupProblems).problems).toEqual([
      'g: greeter "slow" could not start: the backend said no: see docs/greeters.md',
    ]);
  });

  it("resolves without creating: the definition and the parsed options, or the problems", () => {
    const found = greeters.resolve("g", { kind: "polite", options: { greeting: "hi" } });
    expect(found).toEqual({ ok: true, definition: polite, options: { greeting: "hi", times: 1 } });
    expect(greeters.resolve("g", { kind: "nope" })).toMatchObject({
      ok: false,
      problems: [expect.any(String)],
    });
  });
});

describe("capabilities", () => {
  it("logs at start what is lost without the capabilities an instance lacks (debug: what it has)", () => {
    const { lines, log } = recordingLogger({ level: "debug" });
    greeters.create("a.greeter", { kind: "polite", options: { greeting: "hi" } }, ctx, log);
    greeters.create("b.greeter", { kind: "quiet" }, ctx, log);
    expect(lines.map((l) => [l.level, l.msg, l.capabilities, l.lost])).toEqual([
      [20, 'a.greeter: greeter "polite"', ["shout"], undefined],
      [
        30,
        'b.greeter: greeter "quiet"; without shouting: urgent greetings are whispered',
        [],
        { shout: "without shouting: urgent greetings are whispered" },
      ],
    ]);
  });

  it("refuses an instance missing a capability its definition declares, or having one it does not", () => {
    expect(problemsOf(() => greeters.create("g", { kind: "liar" }, ctx))).toEqual([
      'g: greeter "liar" declares the capability shout (shouting) but its instance has none: fix the plugin or drop "shout" from its capabilities',
    ]);
    expect(problemsOf(() => greeters.create("g", { kind: "sneaky" }, ctx))).toEqual([
      'g: greeter "sneaky" has the capability shout (shouting) without declaring it: add "shout" to its capabilities',
    ]);
  });

  // the types prevent both; a module written in plain JavaScript is not checked by them
  it("refuses, when the registry is made, a definition naming a capability its point does not have", () => {
    const odd = definePlugin({
      kind: "odd",
      summary: "sings",
      options: z.object({}),
      capabilities: ["sing"],
      create: (): Greeter => ({ greet: () => "la" }),
    });
    expect(() =>
      createRegistry({ name: "greeter", docs: "-", capabilities: {} } as PluginPoint<Greeter, "sing">, [odd]),
    ).toThrow('greeter "odd": unknown capability "sing"');
    expect(() => createRegistry(greeterPoint, [quiet, quiet])).toThrow(
      'greeter kind "quiet" is defined twice',
    );
  });
});

describe("problems of several plugins", () => {
  it("are gathered and thrown together, one line each", () => {
    const problems = new ProblemCollector();
    for (const [key, entry] of [
      ["a.greeter", { kind: "rude" }],
      ["b.greeter", { kind: "polite", options: {} }],
      ["c.greeter", { kind: "quiet" }],
    ] as const) {
      try {
        greeters.create(key, entry, ctx);
      } catch (err) {
        problems.add(err);
      }
    }
    const err = (() => {
      try {
        problems.throwIfAny();
      } catch (e) {
        return e as StartupProblems;
      }
    })();
    expect(err?.message).toBe(
      [
        "2 problems:",
        '  - a.greeter: kind "rude" is unknown: use one of polite, quiet, file, liar, sneaky (docs/greeters.md)',
        "  - b.greeter.options.greeting: required: the word said before the name",
      ].join("\n"),
    );
    expect(() => problems.add(new TypeError("a bug"))).toThrow(TypeError);
  });
});

describe("parseOptions", () => {
  it("reads a schema that is not zod (a third-party module's `{ parse }`) by what it throws", () => {
    const schema = {
      parse(o: unknown) {
        if (!(o as { url?: unknown }).url) throw new Error("url is required");
        return o;
      },
    } as unknown as z.ZodType;
    expect(parseOptions(schema, { url: "x" }, "k.options")).toEqual({ ok: true, options: { url: "x" } });
    expect(parseOptions(schema, undefined, "k.options")).toEqual({
      ok: false,
      problems: ["k.options: url is required"],
    });
  });
});

import { describe, expect, it } from "vitest";
import { z } from "zod";
import { formatIssues, issuesOf } from "./zod-issues.ts";

/** One line per zod issue, `<key>: <problem>[: <fix>]`, for config files and plugin options alike. */

const schema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).describe("address to listen on"),
        port: z.number().int().max(65535).optional(),
      })
      .strict(),
    routes: z.record(z.string().regex(/^[a-z]+$/, "a lowercase name"), z.object({ to: z.url() }).strict()),
    tags: z.array(z.string()).default([]),
  })
  .strict();

const lines = (value: unknown, format: Parameters<typeof formatIssues>[1] = {}) => {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return [];
  return formatIssues(parsed.error.issues, { schema, ...format });
};

describe("formatIssues", () => {
  it("names the full key of each problem under `at`, one line each", () => {
    expect(
      lines({ server: { host: "h", port: 70_000 }, routes: { home: { to: "nowhere" } } }, { at: "site" }),
    ).toEqual([
      "site.server.port: Too big: expected number to be <=65535",
      "site.routes.home.to: Invalid URL",
    ]);
  });

  it("describes a missing value from the schema, then says where to add it", () => {
    expect(lines({ server: {}, routes: {} })).toEqual(["server.host: required: address to listen on"]);
    expect(lines({ server: {}, routes: {} }, { missing: "add it to config/default.json" })).toEqual([
      "server.host: required: address to listen on: add it to config/default.json",
    ]);
    expect(lines({ routes: {} })).toEqual(["server: required: add it"]);
  });

  it("lists the keys allowed where an unknown one is", () => {
    expect(lines({ server: { host: "h", hots: 1 }, routes: {}, extra: true })).toEqual([
      "server.hots: unknown key: remove it, or use one of host, port",
      "extra: unknown key: remove it, or use one of server, routes, tags",
    ]);
    // without the schema it can only suggest the spelling
    const parsed = schema.safeParse({ server: { host: "h" }, routes: {}, extra: true });
    expect(formatIssues(parsed.error?.issues ?? [])).toEqual([
      "extra: unknown key: remove it or check its spelling",
    ]);
  });

  it("says what is wrong with a record's key", () => {
    expect(lines({ server: { host: "h" }, routes: { Home: { to: "https://x.example" } } })).toEqual([
      "routes.Home: a lowercase name",
    ]);
  });

  it("names the top level when there is no key at all", () => {
    const parsed = z.object({}).strict().safeParse(3, { reportInput: true });
    expect(formatIssues(parsed.error?.issues ?? [])).toEqual([
      "(top level): Invalid input: expected object, received number",
    ]);
  });
});

describe("issuesOf", () => {
  it("finds issues in a ZodError, or in anything shaped like one", () => {
    const err = z.string().safeParse(1).error;
    expect(issuesOf(err)).toHaveLength(1);
    expect(issuesOf({ issues: [{ path: [], message: "m", code: "custom" }] })).toHaveLength(1);
    expect(issuesOf(new Error("plain"))).toBeUndefined();
    expect(issuesOf(null)).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { parseParams, rawQuery } from "./params.ts";

/** MongooseIM's user/server/pass as bytes (docs/auth.md "The contract"): form rules, raw UTF-8 accepted. */
const parse = (raw: string | Buffer) =>
  parseParams(typeof raw === "string" ? Buffer.from(raw, "latin1") : raw);
const entries = (raw: string | Buffer) => Object.fromEntries(parse(raw) ?? [["(undefined)", ""]]);

describe("parseParams", () => {
  it("reads 6.x form encoding: + is a space, UTF-8 percent-encoded", () => {
    expect(entries("user=al+ice&server=plain.test&pass=p%C3%A4+ss%2B%26%3D%25word%E2%82%AC")).toEqual({
      user: "al ice",
      server: "plain.test",
      pass: "pä ss+&=%word€",
    });
  });

  it("reads 2.1.0 RFC 3986 encoding: %20 is a space, %2B a plus, %40 an at sign", () => {
    expect(entries("user=joe%5C40x&server=s&pass=a%20b%2Bc%40d")).toEqual({
      user: "joe\\40x",
      server: "s",
      pass: "a b+c@d",
    });
  });

  it("accepts raw UTF-8 bytes (2.1.0 leaves non-ASCII unencoded), also mixed with escapes", () => {
    const raw = Buffer.concat([Buffer.from("pass="), Buffer.from("pä€", "utf8"), Buffer.from("%20x")]);
    expect(entries(raw)).toEqual({ pass: "pä€ x" });
  });

  it("takes bytes or their latin1 string alike", () => {
    const raw = Buffer.concat([Buffer.from("user=j"), Buffer.from("ö", "utf8"), Buffer.from("&pass=a+b")]);
    expect(parseParams(raw.toString("latin1"))).toEqual(parseParams(raw));
    expect(Object.fromEntries(parseParams(raw) ?? [])).toEqual({ user: "jö", pass: "a b" });
  });

  it("refuses bytes that are not UTF-8, raw or escaped, in a name or a value", () => {
    for (const bad of ["pass=%C3", "pass=%FF%FE", "p%C3=x", "user=a&pass=%E2%82"])
      expect(parse(bad)).toBeUndefined();
    expect(parse(Buffer.concat([Buffer.from("pass="), Buffer.of(0xc3, 0x28)]))).toBeUndefined();
  });

  it("accepts lower-case hex (Prosody writes %c3%a4)", () => {
    expect(entries("pass=p%c3%a4%2b")).toEqual({ pass: "pä+" });
  });

  it("keeps a % that starts no escape as it is", () => {
    expect(entries("a=100%&b=%zz&c=%4&d=%&e=%%41")).toEqual({
      a: "100%",
      b: "%zz",
      c: "%4",
      d: "%",
      e: "%A",
    });
  });

  it("keeps = inside a value, skips empty pairs, reads a key without = as empty", () => {
    expect(entries("&&pass=a=b&&user&server=")).toEqual({ pass: "a=b", user: "", server: "" });
  });

  it("decodes keys too, and the first occurrence of a key wins", () => {
    expect(entries("pa%73s=one&pass=two")).toEqual({ pass: "one" });
  });

  it("an empty input has no parameters", () => {
    expect(parse("")).toEqual(new Map());
  });
});

describe("rawQuery", () => {
  it("gives what follows the first ?, each latin1 char of the request line being one byte", () => {
    const url = `/authorize/check_password?pass=${Buffer.from("ä?", "utf8").toString("latin1")}`;
    expect(Buffer.from(rawQuery(url), "latin1").toString("utf8")).toBe("pass=ä?");
  });

  it("is empty without a query", () => {
    expect(rawQuery("/authorize/check_password").length).toBe(0);
    expect(rawQuery("/authorize/check_password?").length).toBe(0);
  });
});

import { describe, expect, it } from "vitest";
import { countryAllowed, normaliseNumber } from "./phone.ts";

describe("normaliseNumber", () => {
  it.each([
    ["+306912345678", "GR"],
    ["+30 691 234 5678", "GR"],
    ["+30 (691) 234-5678", "GR"],
    ["00306912345678", "GR"],
    ["00 30 691 234 5678", "GR"],
    // legacy apps: the msisdn without +
    ["306912345678", "GR"],
    ["+35799123456", "CY"],
    ["4915123456789", "DE"],
    ["+1 202-555-0123", "US"],
  ])("takes %s as E.164 (%s)", (input, country) => {
    const n = normaliseNumber(input);
    expect(n).toMatchObject({ ok: true, country });
    if (!n.ok) return;
    expect(n.e164).toMatch(/^\+[1-9]\d{6,14}$/);
    expect(n.msisdn).toBe(n.e164.slice(1));
  });

  it("names the calling code (the scope of the per-prefix SMS budget), shared countries included", () => {
    expect(normaliseNumber("+306912345678")).toMatchObject({ prefix: "+30" });
    expect(normaliseNumber("+35799123456")).toMatchObject({ prefix: "+357" });
    expect(normaliseNumber("+1 202-555-0123")).toMatchObject({ prefix: "+1", country: "US" });
  });

  it("gives every spelling of one number the same msisdn", () => {
    const spellings = ["+306912345678", "00306912345678", "306912345678", " +30 691-234.5678 "];
    expect(new Set(spellings.map((s) => (normaliseNumber(s) as { msisdn: string }).msisdn))).toEqual(
      new Set(["306912345678"]),
    );
  });

  it.each([
    ["letters", "+30691234567a", /no letters/],
    ["a vanity number", "1-800-FLOWERS", /no letters/],
    ["symbols", "+30#6912345678", /only digits/],
    ["empty", "  ", /empty/],
    ["too short", "+30691234", /too short/],
    ["too short, two digits", "+30", /too short|not a phone number/],
    ["too long", "+3069123456789012", /too long/],
    ["a national number (leading 0)", "06912345678", /national number/],
    ["a national number without country code", "6912345678", /country code \(was it left out\?\)/],
    ["an unknown country code", "+999123456789", /does not start with a country code/],
  ])("refuses %s and says to send the international format", (_what, input, why) => {
    const n = normaliseNumber(input);
    expect(n.ok).toBe(false);
    if (n.ok) return;
    expect(n.message).toMatch(why);
    expect(n.message).toMatch(/^node: /);
    expect(n.message).toContain("international format");
  });
});

describe("countryAllowed", () => {
  it("allows any country with an empty list, only listed ones otherwise", () => {
    expect(countryAllowed("GR", [])).toBe(true);
    expect(countryAllowed(undefined, [])).toBe(true);
    expect(countryAllowed("GR", ["GR", "CY"])).toBe(true);
    expect(countryAllowed("DE", ["GR", "CY"])).toBe(false);
    expect(countryAllowed(undefined, ["GR"])).toBe(false);
  });
});

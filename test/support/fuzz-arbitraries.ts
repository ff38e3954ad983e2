import fc from "fast-check";

/**
 * What test/security/fuzz.test.ts sends: hostile strings, numbers and JSON written as text (so that a
 * number beyond 2^53, `1e999`, a `__proto__` key or a deep nesting goes out exactly as an attacker writes
 * it), and plausible values read from the OpenAPI document's schemas, so that some requests get past the
 * first check and reach the code behind it.
 */

/** Strings that have broken parsers and validators elsewhere. */
export const HOSTILE_STRINGS = [
  "",
  " ",
  "\r\n",
  "a\r\nSet-Cookie: x=1",
  "\u0000",
  "a\u0000b",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "../../etc/passwd",
  "..%2f..%2fetc%2fpasswd",
  "%",
  "%zz",
  "%C0%AE%C0%AE%C0%AF",
  "\uD800",
  "\uDFFF\uD800",
  "\uFEFF",
  "\u202E",
  "ｆｕｌｌｗｉｄｔｈ",
  "😀".repeat(50),
  "x".repeat(5000),
  "9".repeat(400),
  "9007199254740993",
  "-9007199254740993",
  "1e999",
  "-1e999",
  "1e-999",
  "NaN",
  "Infinity",
  "-0",
  "0x1f",
  "1_000",
  "00306900000001",
  "+306900000001",
  "306900000001@oyo.test",
  "306900000001@oyo.test/res",
  "null",
  "true",
  "[]",
  "{}",
  "'; DROP TABLE web_users; --",
  "<script>alert(1)</script>",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the log4shell probe, as attackers send it
  "${jndi:ldap://x}",
  "275760-09-13T00:00:00.001Z",
  "+275760-09-13T00:00:00.000Z",
  "-271821-04-20T00:00:00Z",
  "0000-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999-23:59",
  "2024-02-30T25:61:61Z",
  "8640000000000001",
  "99999999999999999999",
];

/** Raw percent-escapes that a path or query carries as they are: overlong UTF-8, NUL, CR LF, bad escapes. */
export const RAW_ESCAPES = [
  "%00",
  "%0d%0a",
  "%C0%AE",
  "%C0%AF",
  "%E0%80%AF",
  "%F0%80%80%AF",
  "%ED%A0%80",
  "%FF",
  "%2e%2e%2f",
  "%252e",
  "%",
  "%G1",
  "%u002e",
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 30_000 }).map((n) => "A".repeat(n)) },
  { weight: 1, arbitrary: fc.integer().map(String) },
);

/** A number as JSON text, most of them beyond what a double or a 32-bit integer holds. */
export const numberText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("9007199254740993", "-9007199254740993", "1e400", "-1e400", "1e-400", "-0", "4294967296"),
  fc.constantFrom("2147483648", "8640000000000001", "99999999999999999999999999999999", "0.1e1", "1E2"),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
  fc.integer().map(String),
);

/** Object keys: ordinary, prototype-polluting, hostile. */
export const keyText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("__proto__", "constructor", "prototype", "a", "locations", "data", "msisdn", "token"),
  hostileString,
);

/** JSON text of any shape, written by hand so that keys like `__proto__` and huge numbers go out verbatim. */
export const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string; array: string; object: string }>(
  (tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      numberText,
      hostileString.map((s) => JSON.stringify(s)),
      fc.constantFrom("true", "false", "null"),
      tie("array"),
      tie("object"),
    ),
    array: fc.array(tie("value"), { maxLength: 4 }).map((xs) => `[${xs.join(",")}]`),
    object: fc
      .array(fc.tuple(keyText, tie("value")), { maxLength: 5 })
      .map((es) => `{${es.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`),
  }),
).value;

/** Nesting deep enough to hurt a recursive walker, within the 256 KiB body limit. */
export const deepJsonText: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 100, max: 40_000 }), fc.boolean())
  .map(([n, arrays]) => (arrays ? "[".repeat(n) + "]".repeat(n) : `${'{"a":'.repeat(n)}1${"}".repeat(n)}`));

// ---------------------------------------------------------------------------------------------------------
// Plausible values from a JSON schema (OpenAPI 3.1), so that a share of requests passes validation.

// biome-ignore lint/suspicious/noExplicitAny: a JSON schema read from the served document
export type JsonSchema = Record<string, any>;

/** A value the schema accepts, more or less: as JSON text. */
export function plausibleText(
  schema: JsonSchema | undefined,
  resolve: (s: JsonSchema) => JsonSchema,
): fc.Arbitrary<string> {
  const s = schema ? resolve(schema) : {};
  const branches = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  if (branches?.length) return fc.oneof(...branches.slice(0, 4).map((b) => plausibleText(b, resolve)));
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]).map((v) => JSON.stringify(v)));
  if (s.const !== undefined) return fc.constant(JSON.stringify(s.const));
  switch (s.type) {
    case "integer":
    case "number": {
      const min = typeof s.minimum === "number" ? s.minimum : -1000;
      const max = typeof s.maximum === "number" ? s.maximum : 1000;
      return s.type === "integer"
        ? fc
            .integer({ min: Math.ceil(Math.max(min, -(2 ** 31))), max: Math.floor(Math.min(max, 2 ** 31)) })
            .map(String)
        : fc.double({ min, max, noNaN: true }).map((d) => JSON.stringify(d));
    }
    case "boolean":
      return fc.boolean().map(String);
    case "array":
      return fc
        .array(plausibleText(s.items as JsonSchema | undefined, resolve), { maxLength: 3 })
        .map((xs) => `[${xs.join(",")}]`);
    case "object": {
      const props = Object.entries((s.properties ?? {}) as Record<string, JsonSchema>);
      return fc
        .tuple(
          ...props.map(([k, p]) =>
            fc.option(plausibleText(p, resolve).map((v) => `${JSON.stringify(k)}:${v}`)),
          ),
        )
        .map((es) => `{${es.filter((e) => e !== null).join(",")}}`);
    }
    default: {
      const max = Math.min(typeof s.maxLength === "number" ? s.maxLength : 30, 60);
      const min = Math.min(typeof s.minLength === "number" ? s.minLength : 0, max);
      return fc.string({ minLength: min, maxLength: max }).map((v) => JSON.stringify(v));
    }
  }
}

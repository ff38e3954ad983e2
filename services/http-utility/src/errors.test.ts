import { describe, expect, it } from "vitest";
import { catalogueProblems, HttpError } from "#common/errors.ts";
import { errors } from "./errors.ts";

/** The catalogue itself: well-formed entries, and factories that make the answer their entry declares. */

describe("the error catalogue of http-utility", () => {
  const entries = Object.entries(errors);

  it("holds well-formed entries, each error declared once", () => {
    expect(catalogueProblems(errors)).toEqual([]);
  });

  it("makes the answer its entry declares, its message a function of the arguments", () => {
    const e = errors.unknownPlatform("Strict", ["android", "ios"]);
    expect(e).toBeInstanceOf(HttpError);
    expect(e).toMatchObject({
      status: 404,
      code: "unknown_platform",
      message:
        '"Strict" has no minimum version for this platform and no default: send platform as one of android, ios.',
    });
    expect(errors.tooManyFailures(42)).toMatchObject({ status: 429, headers: { "retry-after": "42" } });
    expect(errors.invalidApiKey(true).headers["www-authenticate"]).toBe(
      'Bearer realm="xmpp-sidecars", error="invalid_token"',
    );
    expect(errors.appVersionTooOld("OyoChat", "1.0", "1.2").details).toEqual({ minimumVersion: "1.2" });
    expect(errors.notFound().message).toBe("No such resource: check the path and the name.");
  });

  it("lists the codes the common layer answers by itself", () => {
    const codes = new Set(entries.map(([, e]) => e.code));
    for (const code of ["invalid_request", "invalid_body", "payload_too_large", "bad_request", "not_found"]) {
      expect(codes.has(code), code).toBe(true);
    }
    for (const code of ["database_unavailable", "internal_error", "rate_limited"]) {
      expect(codes.has(code), code).toBe(true);
    }
  });
});

import { describe, expect, it } from "vitest";
import { catalogueProblems, defineErrors, HttpError } from "./errors.ts";

describe("catalogueProblems", () => {
  it("finds bad codes, statuses and descriptions, and an error declared twice", () => {
    const bad = defineErrors({
      fine: { status: 404, code: "no_thing", description: "no such thing", message: "none" },
      again: { status: 404, code: "no_thing", description: "no such thing", message: "none" },
      otherMeaning: { status: 404, code: "no_thing", description: "not yours", message: "none" },
      camel: { status: 400, code: "badThing", description: "bad", message: "bad" },
      success: { status: 200, code: "ok", description: "fine", message: "fine" },
      prose: { status: 400, code: "long", description: "two\nlines", message: "x" },
    });
    expect(catalogueProblems(bad)).toEqual([
      "again repeats fine",
      'camel: code "badThing" is not snake_case',
      "success: status 200 is not an error",
      "prose: the description must be one line",
    ]);
  });

  it("makes an HttpError of an entry with its arguments", () => {
    const { gone } = defineErrors({
      gone: {
        status: 410,
        code: "gone",
        description: "removed",
        message: (id: string) => `${id} was removed`,
        headers: (id: string) => ({ link: `</${id}>` }),
      },
    });
    expect(gone("a")).toBeInstanceOf(HttpError);
    expect(gone("a")).toMatchObject({
      status: 410,
      code: "gone",
      message: "a was removed",
      headers: { link: "</a>" },
    });
  });
});

import { describe, expect, it } from "vitest";
import { catalogueProblems, HttpError } from "#common/errors.ts";
import { errors } from "./errors.ts";

/** The catalogue itself: well-formed entries, and factories that make the answer their entry declares. */

describe("the error catalogue of buddies", () => {
  it("holds well-formed entries, each error declared once", () => {
    expect(catalogueProblems(errors)).toEqual([]);
  });

  it("makes the answer its entry declares, its message a function of the arguments", () => {
    const e = errors.notInRoom("notify@example.com", "ops@conference.example.com", []);
    expect(e).toBeInstanceOf(HttpError);
    expect(e).toMatchObject({
      status: 409,
      code: "not_in_room",
      message:
        "notify@example.com is not in the room ops@conference.example.com (it is in no room): add the room to the buddy's rooms, or send to a user",
    });
    expect(errors.buddyNotOnline("b@example.com", "connecting")).toMatchObject({
      status: 503,
      code: "buddy_offline",
      message: "b@example.com is connecting; retry once it is online.",
      headers: { "retry-after": "10" },
    });
    expect(errors.invalidAdminKey().headers["www-authenticate"]).toBe(
      'Basic realm="xmpp-sidecars buddies admin", charset="UTF-8"',
    );
    expect(errors.invalidOptions(["options.to: required", "options.x: unknown"]).message).toBe(
      "options.to: required; options.x: unknown",
    );
  });
});

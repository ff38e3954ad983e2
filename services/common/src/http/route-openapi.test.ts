import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createDocument } from "zod-openapi";
import { defineError, defineErrors } from "../errors.ts";
import { type CallerPolicy, defineRoute } from "./route.ts";
import { errorResponses, routePaths } from "./route-openapi.ts";

/** The OpenAPI operations of route definitions, as zod-openapi renders them. */

const catalogue = defineErrors({
  notYours: { status: 403, code: "forbidden", description: "not the caller's", message: "no" },
  otherDomain: { status: 403, code: "forbidden", description: "another domain", message: "no" },
  gone: { status: 404, code: "gone", description: "no such thing", message: (id: string) => `${id}?` },
  tooOld: {
    status: 426,
    code: "too_old",
    description: "update the app",
    message: "update",
    details: () => ({ minimum: "2" }),
  },
});
const denied = defineError({ status: 401, code: "denied", description: "no token", message: "no" });
const members: CallerPolicy<{ name: string }> = { security: [{ token: [] }], errors: [denied] };
const anyone: CallerPolicy<undefined> = { security: [], errors: [] };

const JSON_AND_FORM = { bodyTypes: ["application/json", "application/x-www-form-urlencoded"] };

const render = (paths: ReturnType<typeof routePaths>) =>
  JSON.parse(JSON.stringify(createDocument({ openapi: "3.1.0", info: { title: "t", version: "1" }, paths })));

describe("routePaths", () => {
  const thing = z.object({ id: z.string() });
  const paths = routePaths(
    [
      defineRoute({
        method: "post",
        path: "/api/v1/things/{id}",
        summary: "Change a thing",
        description: "At length.",
        caller: members,
        request: { params: thing, query: z.object({ dry: z.boolean().optional() }), body: thing },
        responses: {
          200: { description: "Changed", schema: thing },
          426: { description: "Too old", schema: z.object({ minimum: z.string() }) },
        },
        errors: [catalogue.notYours, catalogue.otherDomain, catalogue.gone, catalogue.tooOld],
        handler: () => {},
      }),
      defineRoute({
        method: "get",
        path: "/api/v1/things",
        summary: "Things",
        caller: anyone,
        responses: { 200: { description: "A picture", contentType: "image/png", schema: z.string() } },
        handler: () => {},
      }),
      defineRoute({
        method: "put",
        path: "/api/v1/things",
        summary: "Many shapes",
        caller: anyone,
        request: { body: z.unknown(), documentedBody: { "application/json": z.array(thing) } },
        responses: { 204: { description: "Done" } },
        handler: () => {},
      }),
    ],
    JSON_AND_FORM,
  );
  const doc = render(paths);

  it("describes parameters, the body in each type the service reads, answers, security", () => {
    const op = doc.paths["/api/v1/things/{id}"].post;
    expect(op).toMatchObject({
      summary: "Change a thing",
      description: "At length.",
      security: [{ token: [] }],
    });
    expect(op.parameters.map((p: { in: string; name: string }) => `${p.in}:${p.name}`)).toEqual([
      "path:id",
      "query:dry",
    ]);
    expect(Object.keys(op.requestBody.content)).toEqual([
      "application/json",
      "application/x-www-form-urlencoded",
    ]);
    expect(op.requestBody.required).toBe(true);
    expect(op.responses["200"].content["application/json"].schema).toMatchObject({ type: "object" });
  });

  it("lists the errors by status, code by code: the caller's, the input's and the route's own", () => {
    const r = doc.paths["/api/v1/things/{id}"].post.responses;
    expect(Object.keys(r)).toEqual(["200", "400", "401", "403", "404", "413", "426", "default"]);
    expect(r["400"].description).toBe(
      "- `invalid_request`: a field is missing or wrong, named in the message as `<field>: <problem>`\n" +
        "- `invalid_body`: the body is not valid JSON or form data",
    );
    expect(r["401"].description).toBe("- `denied`: no token");
    expect(r["403"].description).toBe("- `forbidden`: not the caller's\n- `forbidden`: another domain");
    expect(r["404"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
    // a status that is an answer of the route's own keeps its body, and names the codes too
    expect(r["426"].description).toBe("Too old\n- `too_old`: update the app");
    expect(r["426"].content["application/json"].schema).toMatchObject({ properties: { minimum: {} } });
    expect(r.default.description).toMatch(/Any other error/);
  });

  it("says anyone may call a public route, and documents what it says of bodies and types", () => {
    const get = doc.paths["/api/v1/things"].get;
    expect(get.security).toEqual([]);
    expect(Object.keys(get.responses)).toEqual(["200", "default"]);
    expect(Object.keys(get.responses["200"].content)).toEqual(["image/png"]);
    const put = doc.paths["/api/v1/things"].put;
    expect(Object.keys(put.requestBody.content)).toEqual(["application/json"]);
    expect(put.requestBody.content["application/json"].schema).toMatchObject({ type: "array" });
    expect(put.responses["204"]).toEqual({ description: "Done" });
  });

  it("lists no catalogue codes with an answer that replaces them (a protocol's own error body)", () => {
    const reason = z.object({ reason: z.string() });
    const own = routePaths(
      [
        defineRoute({
          method: "post",
          path: "/v3/notification/{id}",
          summary: "In a protocol's words",
          caller: members,
          request: { params: thing, body: thing },
          responses: {
            200: { description: "Sent" },
            400: { description: "invalid_request", schema: reason, replacesErrors: true },
            413: { description: "payload_too_large", schema: reason, replacesErrors: true },
          },
          handler: () => {},
        }),
      ],
      JSON_AND_FORM,
    );
    const r = render(own).paths["/v3/notification/{id}"].post.responses;
    expect(Object.keys(r)).toEqual(["200", "400", "401", "413", "default"]);
    expect(r["400"].description).toBe("invalid_request");
    expect(r["400"].content["application/json"].schema).toMatchObject({ properties: { reason: {} } });
    expect(r["413"].description).toBe("payload_too_large");
    // the caller's refusal is in the common format still
    expect(r["401"].description).toBe("- `denied`: no token");
  });

  it("refuses a method and path defined twice", () => {
    const route = defineRoute({
      method: "get",
      path: "/a",
      summary: "a",
      caller: anyone,
      responses: { 200: { description: "ok" } },
      handler: () => {},
    });
    expect(() => routePaths([route, route], JSON_AND_FORM)).toThrow("GET /a is defined twice");
  });
});

describe("errorResponses", () => {
  it("is empty for no errors, one answer per status otherwise", () => {
    expect(errorResponses([])).toEqual({});
    expect(Object.keys(errorResponses([catalogue.gone, denied, catalogue.notYours]))).toEqual([
      "401",
      "403",
      "404",
    ]);
  });
});

describe("documented request headers", () => {
  it("lists the headers a handler reads as header parameters, without validating them", () => {
    const route = defineRoute({
      method: "get",
      path: "/api/v1/files/{name}",
      summary: "A file",
      caller: anyone,
      request: {
        params: z.object({ name: z.string() }),
        headers: z.object({ Range: z.string().optional().meta({ description: "bytes=<start>-<end>" }) }),
      },
      responses: { 200: { description: "The file" } },
      handler: () => {},
    });
    const op = render(routePaths([route], JSON_AND_FORM)).paths["/api/v1/files/{name}"].get;
    expect(op.parameters).toContainEqual(
      expect.objectContaining({ in: "header", name: "Range", description: "bytes=<start>-<end>" }),
    );
    expect(op.parameters).toContainEqual(expect.objectContaining({ in: "path", name: "name" }));
  });
});

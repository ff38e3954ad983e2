import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { z } from "zod";

/**
 * The one way a handler reads its input: zod schemas for body, query and params, checked before the handler
 * runs. A ZodError becomes `400 invalid_request` "<field>: <problem>" in the error middleware (app-base.ts);
 * the handler receives typed values only, and its rejections reach `next`.
 * Route definitions (route.ts) read their input with `parseInput`; `validated` is the same check for a
 * handler mounted by hand.
 */
export interface InputSchemas {
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
}

type Parsed<S extends InputSchemas> = {
  [K in keyof S]: S[K] extends z.ZodType ? z.output<S[K]> : never;
};

/** The request's params, query and body as the schemas given read them; throws the first ZodError. */
export function parseInput<S extends InputSchemas>(schemas: S, req: Request): Parsed<S> {
  const input = {} as Record<string, unknown>;
  if (schemas.params) input.params = schemas.params.parse(req.params);
  if (schemas.query) input.query = schemas.query.parse(req.query);
  if (schemas.body) input.body = schemas.body.parse(req.body ?? {});
  return input as Parsed<S>;
}

export function validated<S extends InputSchemas>(
  schemas: S,
  handler: (input: Parsed<S>, req: Request, res: Response) => unknown,
): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      await handler(parseInput(schemas, req), req, res);
    } catch (err) {
      next(err);
    }
  };
}

import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { z } from "zod";

/**
 * The one way a handler reads its input (conventions.md 3): zod schemas for body, query and params, checked
 * before the handler runs. A ZodError becomes `400 invalid_request` "<field>: <problem>" in the error
 * middleware (app-base.ts); the handler receives typed values only, and its rejections reach `next`.
 */
export interface InputSchemas {
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
}

type Parsed<S extends InputSchemas> = {
  [K in keyof S]: S[K] extends z.ZodType ? z.output<S[K]> : never;
};

export function validated<S extends InputSchemas>(
  schemas: S,
  handler: (input: Parsed<S>, req: Request, res: Response) => unknown,
): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const input = {} as Record<string, unknown>;
      if (schemas.params) input.params = schemas.params.parse(req.params);
      if (schemas.query) input.query = schemas.query.parse(req.query);
      if (schemas.body) input.body = schemas.body.parse(req.body ?? {});
      await handler(input as Parsed<S>, req, res);
    } catch (err) {
      next(err);
    }
  };
}

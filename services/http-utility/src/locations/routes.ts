import { Router } from "express";
import type { AppDeps } from "../app.ts";
import type { Callers } from "../callers.ts";

// placeholder until the route group is written
export function locationsRouter(_deps: AppDeps & { callers: Callers }): Router {
  return Router();
}

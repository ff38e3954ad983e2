import { Router } from "express";

// placeholder until the OpenAPI document is written
export function apiDocsRouter(): Router {
  return Router();
}

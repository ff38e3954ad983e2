import path from "node:path";

/** The repository root: every relative path in config is resolved against it. */
export const projectRoot = path.resolve(import.meta.dirname, "../../..");

export function fromRoot(p: string): string {
  return path.isAbsolute(p) ? p : path.join(projectRoot, p);
}

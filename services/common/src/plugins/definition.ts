import type { z } from "zod";

/**
 * What a plugin is, at every plugin point (docs/architecture.md "Plugins"): authenticators, storage backends, push
 * senders, SMS senders, buddy kinds. A definition names its `kind` (the word config uses), says in one line
 * what it is, owns the schema of its options and the capabilities its instances have, and creates an
 * instance from options already parsed. Config holds `{ "kind": "<kind>", "options": { … } }`; the point's
 * registry (registry.ts) finds the definition, parses the options and calls `create`, so a definition never
 * sees options it did not declare and never formats a problem itself.
 *
 * A definition module's default export is its definition: built-in ones are imported by their point's
 * registry, third-party ones (buddy kinds, per-domain authenticators) read from a folder (folder.ts).
 */
export interface PluginDefinition<
  S extends z.ZodType = z.ZodType,
  Ctx = never,
  R = unknown,
  C extends string = never,
> {
  /** The name config uses: a lowercase word. */
  readonly kind: string;
  /** One line for operators: the start log, the admin API, `help`. */
  readonly summary: string;
  /** Schema of the options; `.strict()` so that an option the kind does not take is refused, not ignored. */
  readonly options: S;
  /** The optional abilities of this kind's instances, among those the point declares (registry.ts). */
  readonly capabilities?: readonly C[];
  /** Makes an instance; throws (OptionError for one option, problems.ts) when the options cannot work. */
  create(options: z.output<S>, ctx: Ctx): R;
}

/** `export default definePlugin({ kind, summary, options, create(options, ctx: SomeContext) { … } })`. */
export function definePlugin<S extends z.ZodType, Ctx, R, C extends string = never>(
  definition: PluginDefinition<S, Ctx, R, C>,
): PluginDefinition<S, Ctx, R, C> {
  return definition;
}

/**
 * `definePlugin` typed for one point, so that definitions need no annotations:
 * `export const defineStorage = pluginDefiner<StorageContext, Promise<Storage>, StorageCapability>()`.
 */
export function pluginDefiner<Ctx, R, C extends string = never>() {
  return <S extends z.ZodType>(definition: PluginDefinition<S, Ctx, R, C>): PluginDefinition<S, Ctx, R, C> =>
    definition;
}

export const KIND_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/**
 * Why a module's default export is not a plugin definition, or undefined: for modules read from a folder,
 * whose authors get this line instead of a TypeError at the first use.
 */
export function definitionProblem(value: unknown): string | undefined {
  const d = value as Partial<Record<keyof PluginDefinition, unknown>> | undefined;
  const shape = "export default definePlugin({ kind, summary, options, create(options, ctx) })";
  if (typeof d !== "object" || d === null) return `it has no default export: ${shape}`;
  if (d.kind !== undefined && (typeof d.kind !== "string" || !KIND_NAME.test(d.kind)))
    return "`kind` must be a lowercase word ([a-z][a-z0-9_-]*)";
  if (typeof d.summary !== "string" || d.summary.trim() === "") return "`summary` must be a line of text";
  const options = d.options as { parse?: unknown } | undefined;
  if (typeof options?.parse !== "function")
    return "`options` must be a schema with a `parse` function, e.g. z.object({}).strict()";
  if (d.capabilities !== undefined && !Array.isArray(d.capabilities))
    return "`capabilities` must be a list of names";
  if (typeof d.create !== "function") return "`create(options, ctx)` must be a function";
  return undefined;
}

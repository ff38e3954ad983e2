import { readFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { type Command, Option } from "commander";
import { checkAuthenticators } from "#auth";
import {
  domainExample,
  formatMismatches,
  MONGOOSEIM_VERSIONS,
  type MongooseImVersion,
  mongooseImExample,
} from "#common/config/mongooseim.ts";
import {
  type DomainsView,
  deleteRuntimeDomain,
  insertRuntimeDomain,
  parseDomainEntry,
  updateRuntimeDomain,
} from "#common/config/runtime-domains.ts";
import { StartupProblems } from "#common/errors.ts";
import { createLogger } from "#common/logger.ts";
import { type CliContext, CliError } from "../context.ts";

/**
 * `sidecars domains`: the settings of a domain as the MongooseIM version serving it needs them
 * (services/common/src/config/mongooseim.ts), and which configured domains do not fit the version they declare;
 * domains added, changed and removed at runtime (services/common/src/config/runtime-domains.ts), which every
 * process serves within a second.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** `authenticator.options.url=https://…`: the key's path, and the value as JSON when it is JSON, else as text. */
function assignment(text: string): { path: string[]; value: unknown } {
  const eq = text.indexOf("=");
  const path = (eq < 0 ? "" : text.slice(0, eq)).split(".");
  if (eq < 1 || !path.every((k) => /^[A-Za-z][A-Za-z0-9_]*$/.test(k))) {
    throw new CliError(`"${text}" is not key=value (a key such as passwordFormat or authenticator.kind)`, 2);
  }
  const raw = text.slice(eq + 1);
  try {
    return { path, value: JSON.parse(raw) };
  } catch {
    return { path, value: raw };
  }
}

function keyPath(text: string): string[] {
  const path = text.split(".");
  if (!path.every((k) => /^[A-Za-z][A-Za-z0-9_]*$/.test(k))) {
    throw new CliError(`"${text}" is not a key (such as mongooseim or authenticator.options.timeoutMs)`, 2);
  }
  return path;
}

/** The entry with `key=value`s set and keys removed, nested objects made on the way. */
function edited(entry: Json, assignments: readonly string[], unset: readonly string[] = []): Json {
  const out = structuredClone(entry);
  for (const { path, value } of assignments.map(assignment)) {
    let node = out;
    for (const k of path.slice(0, -1)) {
      if (!isObject(node[k])) node[k] = {};
      node = node[k] as Json;
    }
    node[path[path.length - 1] as string] = value;
  }
  for (const path of unset.map(keyPath)) {
    let node: unknown = out;
    for (const k of path.slice(0, -1)) node = isObject(node) ? node[k] : undefined;
    if (isObject(node)) delete node[path[path.length - 1] as string];
  }
  return out;
}

/** A JSON object from a file, or standard input for `-`. */
function jsonInput(source: string): Json {
  let text: string;
  try {
    text = readFileSync(source === "-" ? 0 : source, "utf8");
  } catch (err) {
    throw new CliError(`--from-json: cannot read ${source} (${(err as NodeJS.ErrnoException).code})`, 2);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`--from-json: ${source} is not JSON (${(err as Error).message})`, 2);
  }
  if (!isObject(value))
    throw new CliError(`--from-json: ${source} must hold one JSON object, a domain's entry`, 2);
  return value;
}

function changedBy(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry for this uid (a container): the host still says where
  }
  return `${user}@${hostname()} (sidecars)`;
}

export function register(program: Command, ctx: CliContext): void {
  const domains = program
    .command("domains")
    .description("XMPP domains served (config: domains; at runtime: the database, `domains add`)");

  const silent = createLogger({ log: { level: "silent", pretty: false } }, "cli");

  /** The domain checked as every process will load it, its authenticator built once; or exit 2 saying why. */
  async function checked(name: string, value: Json): Promise<void> {
    const runtime = await ctx.runtimeDomains();
    const result = await runtime.check(name, value);
    if (!result.ok) throw new CliError(`domain ${name} refused: ${result.problems.join("; ")}`, 2);
    const parsed = parseDomainEntry(name, value);
    if (!parsed.ok) throw new CliError(`domain ${name} refused: ${parsed.problems.join("; ")}`, 2);
    try {
      await checkAuthenticators(
        { domains: { [name]: parsed.domain } },
        { pool: await ctx.pool(), log: silent },
      );
    } catch (err) {
      if (!(err instanceof StartupProblems)) throw err;
      throw new CliError(`domain ${name} refused: ${err.problems.join("; ")}`, 2);
    }
  }

  async function current(): Promise<DomainsView> {
    return (await ctx.runtimeDomains()).view();
  }

  /** The row of `name`, or exit 1 saying where the domain is instead. */
  function rowOf(view: DomainsView, name: string) {
    const entry = view.domains.find((d) => d.name === name);
    const row = entry?.row ?? view.invalid.find((i) => i.row.name === name)?.row;
    if (row) return row;
    if (entry) {
      throw new CliError(
        `${name} is defined in the config files, not the database: change it there (config/<env>.json) and reload`,
      );
    }
    throw new CliError(`unknown domain "${name}": \`sidecars domains list\` shows the domains served`);
  }

  const hiddenNote = (name: string) =>
    process.stderr.write(
      `warning: ${name} is also in the config files, which win: this row is served only once the files no longer define it\n`,
    );

  domains
    .command("example")
    .description(
      "print a domain's config entry and the matching MongooseIM config side by side, for MongooseIM 2.1.0 or 6.x",
    )
    .addOption(
      new Option("--mongooseim <version>", "the MongooseIM version serving the domain")
        .choices([...MONGOOSEIM_VERSIONS])
        .makeOptionMandatory(),
    )
    .option("--domain <domain>", "the domain's name", "example.com")
    .action((opts: { mongooseim: MongooseImVersion; domain: string }) => {
      if (!/^[a-z0-9.-]+$/.test(opts.domain)) {
        throw new CliError(
          `--domain: "${opts.domain}" is not a domain (lower-case letters, digits, dots, dashes)`,
          2,
        );
      }
      let authUrl = "http://127.0.0.1:3300";
      let basicAuth = "mongooseim:<AUTH_BASIC_AUTH>";
      try {
        const auth = ctx.config().services.auth;
        authUrl = `http://${auth.host === "0.0.0.0" || auth.host === "::" ? "127.0.0.1" : auth.host}:${auth.port}`;
        // the user part only: the password stays where the operator keeps it
        if (auth.basicAuth) basicAuth = `${auth.basicAuth.split(":")[0]}:<AUTH_BASIC_AUTH password>`;
      } catch {
        // a config this machine cannot load still gets the example, with the defaults
      }
      ctx.out(`# config/<env>.json: under "domains" (our side)`);
      ctx.out(JSON.stringify({ [opts.domain]: domainExample(opts.mongooseim) }, null, 2));
      ctx.out("");
      ctx.out(mongooseImExample(opts.mongooseim, { domain: opts.domain, authUrl, basicAuth }));
    });

  domains
    .command("check")
    .description(
      "the configured domains whose password settings do not fit the MongooseIM version they declare",
    )
    .action(() => {
      const problems = Object.entries(ctx.config().domains).flatMap(([name, d]) => formatMismatches(name, d));
      for (const p of problems) ctx.out(p);
      if (problems.length > 0) throw new CliError(`${problems.length} domain setting(s) to fix`, 1);
      ctx.out("every domain fits the MongooseIM version it declares (or declares none)");
    });

  domains
    .command("add <name>")
    .description(
      "add a domain at runtime (stored in the database; every process of every machine serves it within a second): an entry as under `domains` in config/<env>.json",
    )
    .option(
      "--set <key=value...>",
      'a key of the entry (JSON values: true, 4096, ["a"]; anything else is text)',
    )
    .option("--from-json <file|->", "the entry from a JSON file, or from standard input for -")
    .action(async (name: string, opts: { set?: string[]; fromJson?: string }) => {
      const value = edited(opts.fromJson ? jsonInput(opts.fromJson) : {}, opts.set ?? []);
      const view = await current();
      const known = view.domains.find((d) => d.name === name);
      if (known?.row || view.invalid.some((i) => i.row.name === name)) {
        throw new CliError(`${name} is in the database already: change it with \`sidecars domains set\``);
      }
      await checked(name, value);
      if (!(await insertRuntimeDomain(await ctx.pool(), name, value, changedBy()))) {
        throw new CliError(`${name} was added meanwhile: change it with \`sidecars domains set\``);
      }
      if (known) {
        hiddenNote(name);
        ctx.out(`added ${name} to the database, where the config files' entry hides it`);
        return;
      }
      ctx.out(`added ${name}: every process serves it within a second (\`sidecars domains show ${name}\`)`);
    });

  domains
    .command("set <name> [key=value...]")
    .description("change keys of a domain added at runtime; every process serves the change within a second")
    .option("--unset <key...>", "remove a key, so that its default applies")
    .action(async (name: string, assignments: string[], opts: { unset?: string[] }) => {
      if (assignments.length === 0 && !opts.unset?.length) {
        throw new CliError("nothing to change: give key=value pairs or --unset <key>", 2);
      }
      const view = await current();
      const row = rowOf(view, name);
      const value = edited(isObject(row.config) ? row.config : {}, assignments, opts.unset);
      await checked(name, value);
      if (!(await updateRuntimeDomain(await ctx.pool(), name, value, changedBy()))) {
        throw new CliError(`${name} was removed meanwhile: add it again with \`sidecars domains add\``);
      }
      if (view.hidden.some((r) => r.name === name)) hiddenNote(name);
      ctx.out(`changed ${name}: every process serves the change within a second`);
    });

  domains
    .command("remove <name>")
    .description(
      "remove a domain added at runtime: every process refuses its users within a second (their accounts stay in web_users)",
    )
    .action(async (name: string) => {
      rowOf(await current(), name);
      const result = await (await ctx.runtimeDomains()).check(name, undefined);
      if (!result.ok) throw new CliError(`${name} cannot be removed: ${result.problems.join("; ")}`);
      if (!(await deleteRuntimeDomain(await ctx.pool(), name)))
        throw new CliError(`${name} was removed meanwhile`);
      ctx.out(`removed ${name}: every process stops serving it within a second`);
    });

  domains
    .command("list")
    .description("the domains served: name, source (config or database), password format, authenticator")
    .action(async () => {
      const view = await current();
      for (const d of view.domains) {
        const source = d.source === "config" && d.row ? "config (hides a database row)" : d.source;
        ctx.out(`${d.name}\t${source}\t${d.config.passwordFormat}\t${d.config.authenticator.kind}`);
      }
      for (const { row } of view.invalid) ctx.out(`${row.name}\tdatabase (not valid: not served)\t-\t-`);
      if (view.domains.length + view.invalid.length === 0) ctx.out("no domains");
      const problems = [...view.invalid.flatMap((i) => i.problems), ...view.problems];
      if (problems.length > 0) throw new CliError(`to fix: ${problems.join("; ")}`);
    });

  domains
    .command("show <name>")
    .description("the effective entry of a domain, with every default, as JSON")
    .action(async (name: string) => {
      const view = await current();
      const entry = view.domains.find((d) => d.name === name);
      if (entry) {
        ctx.out(JSON.stringify(entry.config, null, 2));
        return;
      }
      const invalid = view.invalid.find((i) => i.row.name === name);
      if (invalid) {
        throw new CliError(
          `${name}: its database row is not valid, so not served: ${invalid.problems.join("; ")}`,
        );
      }
      throw new CliError(`unknown domain "${name}": \`sidecars domains list\` shows the domains served`);
    });
}

import { Command, CommanderError } from "commander";
import { StartupError } from "#common/errors.ts";
import { type CliContext, CliError, createCliContext } from "./context.ts";

type Register = (program: Command, ctx: CliContext) => void;

/**
 * The commands, by name, each imported only when it runs: `sidecars extauth`, which ejabberd starts for
 * every connection pool, loads the login core and nothing else (no S3 SDK, no buddy kinds). Help, and a
 * name that is no command, load them all so commander can describe or suggest.
 */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  migrate: () => import("./commands/migrate.ts"),
  db: () => import("./commands/db.ts"),
  users: () => import("./commands/users.ts"),
  extauth: () => import("./commands/extauth.ts"),
  locations: () => import("./commands/locations.ts"),
  media: () => import("./commands/media.ts"),
  purge: () => import("./commands/purge.ts"),
  apps: () => import("./commands/apps.ts"),
  "api-keys": () => import("./commands/api-keys.ts"),
  buddies: () => import("./commands/buddies.ts"),
  doctor: () => import("./commands/doctor.ts"),
  domains: () => import("./commands/domains.ts"),
  sessions: () => import("./commands/sessions.ts"),
};

/** The command names `argv` runs: its first word when that is a command, else all of them. */
function commandsFor(argv: readonly string[] | undefined): string[] {
  const first = argv?.find((a) => !a.startsWith("-"));
  return first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
}

/** `sidecars`: the operator's command. Every failure is one line on stderr and a non-zero exit. */
export async function buildProgram(ctx: CliContext, argv?: readonly string[]): Promise<Command> {
  const program = new Command("sidecars")
    .description(
      "operate the xmpp-sidecars services (config from config/ and APP_ENV, database from DATABASE_URL)",
    )
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  const names = commandsFor(argv);
  const modules = await Promise.all(names.map((name) => COMMANDS[name]?.()));
  for (const mod of modules) mod?.register(program, ctx);
  // the domains added at runtime join the config's before any command looks one up (context.ts)
  program.hook("preAction", async (_program, action) => {
    const path: string[] = [];
    for (let c: Command | null = action; c && c !== program; c = c.parent) path.unshift(c.name());
    await ctx.beforeAction(path.join(" "));
  });
  return program;
}

/** One line for every failure: ours as they are, the database's with its hint, anything else with its stack. */
function describe(err: unknown): string {
  if (err instanceof CliError || err instanceof StartupError) return err.message;
  const e = err as Error & { code?: unknown; hint?: unknown };
  if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) {
    return `database error ${e.code}: ${e.message}${typeof e.hint === "string" ? `. ${e.hint}` : ""}`;
  }
  return `unexpected error: ${e?.stack ?? err}`;
}

export async function runCli(argv: string[], ctx = createCliContext()): Promise<number> {
  try {
    const program = await buildProgram(ctx, argv);
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are "errors" to commander; usage problems were already printed by it
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`sidecars: ${describe(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  } finally {
    await ctx.close();
  }
}

if (import.meta.main) {
  process.exitCode = await runCli(process.argv.slice(2));
}

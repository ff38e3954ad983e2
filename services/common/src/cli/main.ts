import { Command, CommanderError } from "commander";
import { StartupError } from "../errors.ts";
import { registerApiKeys } from "./commands/api-keys.ts";
import { registerApps } from "./commands/apps.ts";
import { registerBuddies } from "./commands/buddies.ts";
import { registerDb } from "./commands/db.ts";
import { registerExtauth } from "./commands/extauth.ts";
import { registerLocations } from "./commands/locations.ts";
import { registerMedia } from "./commands/media.ts";
import { registerMigrate } from "./commands/migrate.ts";
import { registerUsers } from "./commands/users.ts";
import { type CliContext, CliError, createCliContext } from "./context.ts";

/** `sidecars`: the operator's command. Every failure is one line on stderr and a non-zero exit. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command("sidecars")
    .description(
      "operate the xmpp-sidecars services (config from config/ and APP_ENV, database from DATABASE_URL)",
    )
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerMigrate(program, ctx);
  registerDb(program, ctx);
  registerUsers(program, ctx);
  registerExtauth(program, ctx);
  registerLocations(program, ctx);
  registerMedia(program, ctx);
  registerApps(program, ctx);
  registerApiKeys(program, ctx);
  registerBuddies(program, ctx);
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
  const program = buildProgram(ctx);
  try {
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

import type { Command } from "commander";
import { embeddedDatabase } from "#common/db/pool.ts";
import { type CliContext, CliError } from "../context.ts";

export function register(program: Command, ctx: CliContext): void {
  const db = program.command("db").description("the embedded PostgreSQL (used when DATABASE_URL is unset)");
  const embedded = () => {
    if (ctx.config().database.url) {
      throw new CliError(
        "DATABASE_URL is set: the services use that database, not the embedded one; unset it to manage the embedded one",
      );
    }
    return embeddedDatabase(ctx.config());
  };
  db.command("start")
    .description("start it (or find it running) and create the database")
    .action(async () => {
      const e = embedded();
      const { reused } = await e.start();
      ctx.out(`${reused ? "already running" : "started"}: 127.0.0.1:${e.port}, data in ${e.dataDir}`);
    });
  db.command("stop")
    .description("stop it; every service using it loses its database")
    .action(async () => {
      const e = embedded();
      ctx.out((await e.stop()) ? "stopped" : "not running");
    });
  db.command("status")
    .description("running or not, port, data folder; exit 3 when not running")
    .action(async () => {
      const s = await embedded().status();
      ctx.out(
        s.running
          ? `running (pid ${s.pid}) on 127.0.0.1:${s.port}, data in ${s.dataDir}`
          : `${s.initialised ? "stopped" : "not initialised"}, data in ${s.dataDir}; start it with \`sidecars db start\``,
      );
      if (!s.running) process.exitCode = 3;
    });
}

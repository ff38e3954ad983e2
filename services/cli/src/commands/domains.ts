import { type Command, Option } from "commander";
import {
  domainExample,
  formatMismatches,
  MONGOOSEIM_VERSIONS,
  type MongooseImVersion,
  mongooseImExample,
} from "#common/config/mongooseim.ts";
import { type CliContext, CliError } from "../context.ts";

/**
 * `sidecars domains`: the settings of a domain as the MongooseIM version serving it needs them
 * (services/common/src/config/mongooseim.ts), and which configured domains do not fit the version they declare.
 */
export function register(program: Command, ctx: CliContext): void {
  const domains = program.command("domains").description("XMPP domains served (config: domains)");

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
}

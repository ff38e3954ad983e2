import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { API_SCOPES, type ApiScope } from "#common/config/schema.ts";
import { hashBytes } from "#common/credentials/hmac.ts";
import { type CliContext, CliError } from "../context.ts";

/**
 * Server API keys (docs/api.md "API keys"): a key is 32 random bytes, shown once; the config keeps
 * only its SHA-256 and scopes under services.httpUtility.apiKeys, which is what callers.ts compares a
 * presented `Authorization: Bearer` key with. Random keys of that length need no slow hash: nobody can
 * guess their way back from a SHA-256 of 256 random bits.
 */

const KEY_PREFIX = "sk_";
const NAME = /^[\w.-]+$/; // as the config schema's apiKeys names

/** The hex SHA-256 under which the config stores a key. */
export const keySha256 = (key: string): string => hashBytes("sha256", key).toString("hex");

/** A short, safe-to-show prefix of a stored SHA-256, to tell keys apart. */
const fingerprint = (sha256: string) => `sha256:${sha256.slice(0, 12)}`;

function parseScopes(list: string): ApiScope[] {
  const scopes = list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (scopes.length === 0) throw new CliError(`--scopes: give at least one of ${API_SCOPES.join(", ")}`, 2);
  for (const s of scopes) {
    if (!(API_SCOPES as readonly string[]).includes(s)) {
      throw new CliError(`unknown scope "${s}": use any of ${API_SCOPES.join(", ")} (comma-separated)`, 2);
    }
  }
  return [...new Set(scopes as ApiScope[])];
}

/** The first line of standard input (a prompt on stderr when it is a terminal). */
async function readLine(prompt: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  if (process.stdin.isTTY) process.stderr.write(prompt);
  const line = await new Promise<string>((resolve) => {
    rl.once("line", resolve);
    rl.once("close", () => resolve(""));
  });
  rl.close();
  return line;
}

export function register(program: Command, ctx: CliContext): void {
  const keys = program
    .command("api-keys")
    .description("Bearer API keys of servers calling http-utility (config: services.httpUtility.apiKeys)");

  keys
    .command("create <name>")
    .description("make a new key: prints it once, and the config entry that holds its SHA-256 and scopes")
    .requiredOption("--scopes <list>", `comma-separated, any of ${API_SCOPES.join(", ")}`)
    .option(
      "--domain <domain>",
      "limit the key to one domain: calls naming none are in it (a legacy backend's send), others are refused",
    )
    .action((name: string, opts: { scopes: string; domain?: string }) => {
      if (!NAME.test(name)) {
        throw new CliError(`"${name}" is not a key name: use letters, digits, dots, dashes, underscores`, 2);
      }
      const scopes = parseScopes(opts.scopes);
      const key = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
      if (opts.domain !== undefined && !/^[a-z0-9.-]+$/.test(opts.domain)) {
        throw new CliError(
          `--domain: "${opts.domain}" is not a domain (lower-case letters, digits, dots, dashes)`,
          2,
        );
      }
      const entry = {
        [name]: {
          sha256: keySha256(key),
          scopes,
          ...(opts.domain !== undefined ? { domain: opts.domain } : {}),
        },
      };
      ctx.out(`API key "${name}" (shown this once; the services keep only its SHA-256):`);
      ctx.out(key);
      ctx.out("");
      ctx.out("Add to services.httpUtility.apiKeys in config/<env>.json, then reload the services:");
      ctx.out(JSON.stringify(entry, null, 2));
      let configured = false;
      try {
        configured = name in ctx.config().services.httpUtility.apiKeys;
      } catch {
        // a config this machine cannot load (e.g. production secrets elsewhere) does not stop making a key
      }
      if (configured) {
        process.stderr.write(
          `note: "${name}" is configured already: this entry replaces its key, and the old key stops working at the reload. To rotate without an outage, give the new key a new name, move the callers to it, then remove "${name}".\n`,
        );
      }
    });

  keys
    .command("hash")
    .description(
      "read a key from standard input and print the SHA-256 to configure (for keys made elsewhere)",
    )
    .action(async () => {
      const key = (await readLine("API key: ")).replace(/\r$/, "");
      if (key.length === 0) throw new CliError('no key on standard input: pipe one in (echo "$KEY" | …)', 2);
      if (/\s/.test(key)) {
        throw new CliError("the key contains white space: it could never be sent as `Bearer <key>`", 2);
      }
      ctx.out(keySha256(key));
    });

  keys
    .command("list")
    .description("the configured keys: name, scopes, and a fingerprint of the stored SHA-256")
    .action(() => {
      const configured = Object.entries(ctx.config().services.httpUtility.apiKeys);
      for (const [name, k] of configured) {
        ctx.out(
          `${name}\t${k.scopes.join(",")}\t${fingerprint(k.sha256)}${k.domain ? `\t${k.domain} only` : ""}`,
        );
      }
      if (configured.length === 0) ctx.out("no API keys configured (services.httpUtility.apiKeys)");
    });
}

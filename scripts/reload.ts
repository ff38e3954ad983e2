// `npm run reload [-- <pm2 options>]`: pm2's graceful reload of the running stack
// (`pm2 reload ecosystem.config.js --update-env`: cluster workers replaced one at a time, the environment of
// the calling shell passed on) in the stack's pm2 home (scripts/pm2-home.ts). `pm2 reload` starts the apps
// it does not find, beside the copy that serves from another home; so the apps are looked for first, and
// anything else than a running stack is one line and exit 1.
import { APP_NAMES, isOurs, locateStack, noStackLine, runPm2, showHome } from "./pm2-home.ts";

const args = process.argv.slice(2);

function fail(line: string): never {
  process.stderr.write(`reload: ${line}\n`);
  process.exit(1);
}

/** The apps of `--only a,b`, else every app of ecosystem.config.js. */
function wanted(): string[] {
  const i = args.findIndex((a) => a === "--only" || a.startsWith("--only="));
  if (i < 0) return [...APP_NAMES];
  const value = args[i]?.startsWith("--only=") ? args[i]?.slice("--only=".length) : args[i + 1];
  const names = (value ?? "").split(",").filter(Boolean);
  const unknown = names.filter((n) => !APP_NAMES.includes(n));
  if (names.length === 0 || unknown.length > 0) {
    fail(`--only takes apps of ecosystem.config.js (${APP_NAMES.join(", ")}), not "${value ?? ""}"`);
  }
  return names;
}

const apps = wanted();
const where = await locateStack();
const home = showHome(where.home);
if (where.at === "nowhere") fail(noStackLine());
if (where.at === "elsewhere") {
  fail(
    `the stack runs under pm2 home ${where.elsewhere}, not ${home}: PM2_HOME=${where.elsewhere} npm run reload`,
  );
}
const running = new Set(where.processes.filter(isOurs).map((p) => p.name));
const missing = apps.filter((name) => !running.has(name));
if (missing.length > 0) {
  fail(
    `pm2 under ${home} runs ${running.size > 0 ? [...running].join(", ") : "none of the apps"}, not ${missing.join(", ")}: start ${missing.length === 1 ? "it" : "them"} with \`npm run pm2 -- start ecosystem.config.js --only ${missing.join(",")}\``,
  );
}
process.exitCode = await runPm2(["reload", "ecosystem.config.js", "--update-env", ...args], where.home);

// `npm run pm2 -- <pm2 command>`: pm2's command line in the stack's pm2 home (scripts/pm2-home.ts), so that
// `status`, `logs`, `sendSignal`, `save` reach the stack however it was started. pm2 launches an empty
// daemon for any command when none runs in its home; here a command for a running stack refuses in one line
// instead, and a start refuses when the stack already runs under another home (a second copy of every
// service would crash-loop on the ports of the first).
import { locateStack, noStackLine, pm2Home, runPm2, showHome } from "./pm2-home.ts";

const STARTS = new Set(["start", "startOrReload", "startOrRestart", "startOrGracefulReload", "resurrect"]);
/** Commands about no running stack (boot scripts, deploys from the operator's machine, help). */
const STANDALONE = new Set(["startup", "unstartup", "deploy", "ecosystem", "init", "help", "completion"]);

const args = process.argv.slice(2);
const command = args.find((a) => !a.startsWith("-"));

function fail(line: string): never {
  process.stderr.write(`pm2: ${line}\n`);
  process.exit(1);
}

/** The home to run pm2 in, once it is known that the command starts no second stack. */
async function stackHome(): Promise<string> {
  if (command === undefined || STANDALONE.has(command)) return pm2Home();
  const where = await locateStack();
  const shown = showHome(where.home);
  if (where.at === "elsewhere") {
    fail(
      `the stack runs under pm2 home ${where.elsewhere}, not ${shown}: PM2_HOME=${where.elsewhere} npm run pm2 -- ${args.join(" ")}`,
    );
  }
  if (where.at === "nowhere" && !STARTS.has(command)) {
    fail(noStackLine());
  }
  return where.home;
}

process.exitCode = await runPm2(args, await stackHome());

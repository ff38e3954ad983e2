#!/usr/bin/env node
// The `sidecars` command. The code is TypeScript run by Node >= 24 (type stripping); on an older Node,
// it re-runs itself with the project's own Node 24 (devDependency node@24).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../services/cli/src/main.ts", import.meta.url));
const major = Number(process.versions.node.split(".")[0]);
if (major >= 24) {
  const { runCli } = await import(main);
  process.exitCode = await runCli(process.argv.slice(2));
} else {
  const node = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  const r = spawnSync(node, [main, ...process.argv.slice(2)], { stdio: "inherit" });
  if (r.error) {
    process.stderr.write(
      `sidecars: Node ${process.versions.node} is too old and node@24 is not installed: run npm ci\n`,
    );
    process.exit(1);
  }
  process.exit(r.status ?? 1);
}

// pm2 apps and deploy (https://pm2.keymetrics.io/docs/usage/application-declaration/).
// Started by `npm start` (pm2-runtime, foreground) or `npm run pm2 -- start ecosystem.config.js --env <env>`
// (daemon); the pm2 daemon must run on Node >= 24 (npm scripts put the project's node@24 first on the PATH),
// since cluster workers inherit its Node.

import path from "node:path";

const root = import.meta.dirname;
const logDir = process.env.SIDECARS_LOG_DIR ?? path.join(root, "var/log");
// Graceful shutdown is bounded by config shutdown.timeoutMs (10 s by default); pm2 waits a little longer.
const killTimeout = Number(process.env.SIDECARS_KILL_TIMEOUT_MS ?? 15_000);

const envBlocks = {
  // without --env, the APP_ENV of the calling shell (so `APP_ENV=production npm run reload` stays production)
  env: { APP_ENV: process.env.APP_ENV ?? "development" },
  env_demo: { APP_ENV: "demo" },
  env_production: { APP_ENV: "production" },
  // the end-to-end suites (test/pm2-reload.test.ts)
  env_test: { APP_ENV: "test" },
};

/**
 * Node flags of a service (pm2 passes them to every worker; the benchmarks start a service with them too).
 * http-utility: V8's memory reducer shrinks an idle heap and then lets it grow back only slowly, so after a
 * quiet spell every ~2 MiB promoted started a full collection: XEP-0363 PUTs at 16 in flight fell from 260/s
 * to 160/s until restart (test/bench/xep0363-put.bench.ts). Without it the heap stays at the size the load
 * made it (max_memory_restart still bounds it).
 * @type {Record<string, string[]>}
 */
export const nodeArgs = {
  "http-utility": ["--no-memory-reducer"],
};

/** @param {string} name @param {"cluster" | "fork"} mode @param {number | string} instances */
function app(name, mode, instances) {
  return {
    name,
    cwd: root,
    script: `services/${name}/src/main.ts`,
    node_args: nodeArgs[name] ?? [],
    exec_mode: mode,
    instances,
    wait_ready: true,
    listen_timeout: 60_000,
    kill_timeout: killTimeout,
    // a crash loop backs off instead of spinning
    exp_backoff_restart_delay: 200,
    max_memory_restart: "1G",
    out_file: path.join(logDir, `${name}.out.log`),
    error_file: path.join(logDir, `${name}.err.log`),
    merge_logs: true,
    time: false,
    ...envBlocks,
  };
}

// Deployment targets come from the environment of the operator's machine; secrets and per-host values come
// from an env file on each target (see docs/operations.md, "Deploy").
// biome-ignore lint/suspicious/noTemplateCurlyInString: expanded by the target's shell, not by JavaScript
const ENV_FILE = "${SIDECARS_ENV_FILE:-/etc/xmpp-sidecars/env}";
const deployTarget = (envName) => ({
  user: process.env.DEPLOY_USER ?? "mongooseim",
  host: (process.env.DEPLOY_HOSTS ?? "localhost").split(/[\s,]+/).filter(Boolean),
  ref: process.env.DEPLOY_REF ?? "origin/main",
  repo: process.env.DEPLOY_REPO ?? "git@git.example.org:xmpp/xmpp-sidecars.git",
  path: process.env.DEPLOY_PATH ?? "/usr/lib/mongooseim/sidecars",
  "post-deploy": [
    `if [ -r "${ENV_FILE}" ]; then set -a; . "${ENV_FILE}"; set +a; fi`,
    "npm ci",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: expanded by the target's shell
    'scripts/link-certs.sh "${SSL_SOURCE_DIR:-/etc/mongooseim}" "${SSL_CERT_NAME:?set SSL_CERT_NAME in the env file}"',
    `APP_ENV=${envName} npm run migrate`,
    `APP_ENV=${envName} npm run pm2 -- startOrReload ecosystem.config.js --env ${envName} --update-env`,
    "npm run pm2 -- save",
  ].join(" && "),
});

const config = {
  apps: [
    app("http-utility", "cluster", process.env.HTTP_UTILITY_INSTANCES ?? "max"),
    app("auth", "cluster", process.env.AUTH_INSTANCES ?? 2),
    // buddies: each bot must be connected once; runners claim them through PostgreSQL (fork mode, one process)
    app("buddies", "fork", 1),
  ],
  deploy: {
    production: deployTarget("production"),
    demo: deployTarget("demo"),
  },
};

export default config;
// pm2 loads this file with require(): Node's require(esm) then returns this binding instead of the namespace.
export { config as "module.exports" };

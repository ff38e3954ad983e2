/**
 * The environment variables that override config keys: deployment-specific values and secrets. A secret
 * may also come from a file (`<NAME>_FILE`, as Docker and systemd credentials provide them).
 */
export interface EnvOverride {
  name: string;
  path: readonly string[];
  type: "string" | "port";
  secret?: boolean;
}

export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { name: "DATABASE_URL", path: ["database", "url"], type: "string", secret: true },
  { name: "AUTH_BASIC_AUTH", path: ["services", "auth", "basicAuth"], type: "string", secret: true },
  { name: "LOG_LEVEL", path: ["log", "level"], type: "string" },
  { name: "HTTP_UTILITY_PORT", path: ["services", "httpUtility", "port"], type: "port" },
  {
    name: "HTTP_UTILITY_INTERNAL_PORT",
    path: ["services", "httpUtility", "internal", "port"],
    type: "port",
  },
  { name: "AUTH_PORT", path: ["services", "auth", "port"], type: "port" },
  { name: "BUDDIES_ADMIN_PORT", path: ["services", "buddies", "port"], type: "port" },
  { name: "BUDDIES_HOOK_KEY", path: ["push", "relay", "hookKey"], type: "string", secret: true },
];

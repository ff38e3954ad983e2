/**
 * Secrets that config keys name rather than hold: environment variables such as an APNs certificate's
 * `push.apps.<app>.apns.passphraseEnv`, a buddy's `password.env` or the zabbix kind's
 * `options.report.tokenEnv`. They are read from the environment `loadConfig` was given, as it was then, so
 * a test or the CLI loading config from an environment of its own gets the answers the services would.
 * Names in buddy definitions may arrive later (the `buddies` table, kinds read without a restart): the whole
 * environment is kept, out of sight of JSON and of `{ ...config }` copies' enumeration of its contents.
 */
export class Secrets {
  readonly #env: ReadonlyMap<string, string>;

  constructor(env: Readonly<Record<string, string | undefined>>) {
    this.#env = new Map(
      Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""),
    );
  }

  /** The value of the environment variable `name`; undefined when it is unset or empty. */
  env(name: string): string | undefined {
    return this.#env.get(name);
  }

  toJSON(): string {
    return "[secrets]";
  }
}

import type { Config } from "#common/config/schema.ts";
import type { ServiceStatus } from "../kinds/kind.ts";

/**
 * The health of the three services as an operator chatting with the `service` buddy sees it: each one's
 * /readyz (which includes its database) on the address config gives it, a wildcard host asked on loopback.
 */
export function serviceStatusChecker(
  config: Pick<Config, "services">,
  self: () => string | undefined,
  timeoutMs = 2000,
): () => Promise<ServiceStatus[]> {
  const local = (host: string) => (host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host);
  const http = config.services.httpUtility;
  const targets = (): Array<{ service: string; url: string | undefined }> => [
    {
      service: "auth",
      url: config.services.auth.port
        ? `http://${local(config.services.auth.host)}:${config.services.auth.port}/readyz`
        : undefined,
    },
    {
      service: "http-utility",
      url: http.port
        ? `${http.tls.cert ? "https" : "http"}://${local(http.host)}:${http.port}/readyz`
        : undefined,
    },
    { service: "buddies", url: self() ? `${self()}/readyz` : undefined },
  ];
  return () =>
    Promise.all(
      targets().map(async ({ service, url }): Promise<ServiceStatus> => {
        if (!url) return { service, url: "(no fixed port)", up: false, detail: "not configured with a port" };
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
          const body = (await res.json().catch(() => ({}))) as { status?: string; database?: string };
          const detail =
            `${res.status} ${body.status ?? ""}${body.database ? `, database ${body.database}` : ""}`.trim();
          return { service, url, up: res.ok, detail };
        } catch (err) {
          const e = err as { cause?: { code?: string }; name?: string; message?: string };
          return { service, url, up: false, detail: e.cause?.code ?? e.name ?? String(e.message) };
        }
      }),
    );
}
